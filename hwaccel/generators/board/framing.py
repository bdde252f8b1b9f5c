"""The host link's framed protocol over a byte stream (a UART): defined once, here.

The board's UART bridge (:mod:`hwaccel.generators.board.bridge`) and the host
(:mod:`hwaccel.runtime.serial_link`) both take their constants from this module, and the
bridge's CRC logic is derived from :func:`crc16` itself (:func:`crc16_masks`), so the two sides
cannot drift.

Frames
------
Every frame, either way, is ``sync | code | length (2 bytes) | payload (length bytes) | crc
(2 bytes)``; multi-byte fields are little-endian. ``crc`` is CRC-16/CCITT-FALSE (polynomial
0x1021, initial value 0xFFFF, no reflection, no final XOR) over ``code``, ``length`` and
``payload``: every byte after ``sync``.

=========  =======================  ===========================================================
field      request (host -> board)  reply (board -> host)
=========  =======================  ===========================================================
sync       0xA5                     0x5A
code       an :class:`Op`           a :class:`Fault` (``OK`` = 0)
payload    the op's arguments       the op's result, or, for a fault, the request's code and
                                    length as received (3 bytes)
=========  =======================  ===========================================================

Requests (``W`` = the addressed region's word in whole bytes, :func:`region_bytes`: an
activation word in the ACT region, a weight word in WGT, a command word in PROG, a
:data:`REG_BYTES`-byte register in REG; addresses are host-port addresses, ``{region, offset}``
as :func:`hwaccel.generators.accel.host.address` makes them):

==========  =========================  ===============================  ========================
op          payload                    effect                           reply payload
==========  =========================  ===============================  ========================
INFO        (none)                     --                               :data:`INFO_BYTES` bytes:
                                                                        version, W of ACT, WGT,
                                                                        PROG and REG (2 each),
                                                                        max words, addr bits,
                                                                        config id (4)
WRITE       addr (4), k words (W each) words to addr .. addr + k - 1    (none)
            1 <= k <= max words
READ        addr (4), count (2)        --                               count words, W each
START       pc (2)                     CONTROL <- start at pc           (none)
STATUS      (none)                     --                               STATUS (4 bytes)
COUNTERS    (none)                     --                               the counters, 6 bytes
                                                                        each, in COUNTERS order
RESET       (none)                     CONTROL <- soft reset            (none)
==========  =========================  ===============================  ========================

A WRITE takes effect only after its checksum has been verified (the bridge buffers the frame),
so a corrupted frame never reaches the scratchpads. Faults, each answered by a reply whose code
names it (:class:`Fault`): a first byte that is not ``sync`` (BAD_SYNC), an unknown op
(BAD_OPCODE), a length the op does not take (a WRITE whose words are not its region's width
among them), or a READ count of 0 or one whose reply would not fit a frame (BAD_LENGTH), a
checksum that does not match (BAD_CRC), a UART stop bit that is not high (FRAMING), a frame
that stops arriving before its end (TRUNCATED: the line was quiet for the bridge's ``gap``
cycles), an address range past its memory or register file (BAD_ADDRESS),
and a memory access or START while the accelerator runs (BUSY: its memories belong to the DMA
then, and the host port would drop the access). After a fault found before the frame's end
the bridge discards bytes until the line is quiet for ``gap`` cycles, then replies, so the rest
of a damaged frame is never read as a new one.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from enum import IntEnum

__all__ = ["SYNC_REQUEST", "SYNC_REPLY", "VERSION", "STATUS_BYTES", "COUNTER_BYTES", "INFO_BYTES",
           "Op", "Fault", "crc16", "crc16_masks", "request", "reply", "Reply", "parse_reply",
           "LinkError", "LinkMismatch", "DeviceFault", "write_length_ok", "config_id", "Info",
           "parse_info", "CRC_INIT", "HEADER_BYTES", "REG_BYTES", "region_bytes"]

SYNC_REQUEST = 0xA5
SYNC_REPLY = 0x5A
#: 2: each region's words travel at their own width (1: every word at the host port's)
VERSION = 2
CRC_INIT = 0xFFFF
CRC_POLY = 0x1021
HEADER_BYTES = 4          # sync, code, length
STATUS_BYTES = 4          # the STATUS word (busy, done, error, cause, pc)
COUNTER_BYTES = 6         # a 48-bit counter
REG_BYTES = COUNTER_BYTES  # a register word in WRITE and READ frames: the widest register
INFO_BYTES = 15


class Op(IntEnum):
    INFO = 1
    WRITE = 2
    READ = 3
    START = 4
    STATUS = 5
    COUNTERS = 6
    RESET = 7


class Fault(IntEnum):
    OK = 0
    BAD_CRC = 1
    BAD_LENGTH = 2
    BAD_OPCODE = 3
    BAD_ADDRESS = 4
    BUSY = 5
    BAD_SYNC = 6
    TRUNCATED = 7
    FRAMING = 8


#: What each fault means, for messages.
FAULT_TEXT = {
    Fault.BAD_CRC: "bad checksum (the frame's CRC-16 does not match its bytes)",
    Fault.BAD_LENGTH: "bad length (the op does not take that payload length or count, or a "
                      "WRITE's words are not its region's width)",
    Fault.BAD_OPCODE: "unknown opcode",
    Fault.BAD_ADDRESS: "address out of range (past the region's memory or registers)",
    Fault.BUSY: "accelerator busy (memories and START are the host's only while it is idle)",
    Fault.BAD_SYNC: "bad sync (a frame must start with 0xA5)",
    Fault.TRUNCATED: "truncated frame (the line went quiet before the frame's end)",
    Fault.FRAMING: "UART framing error (a stop bit was low: baud rate mismatch or noise)",
}

#: Payload length of the fixed-size requests.
FIXED_LENGTH = {Op.INFO: 0, Op.READ: 6, Op.START: 2, Op.STATUS: 0, Op.COUNTERS: 0, Op.RESET: 0}


class LinkError(RuntimeError):
    """The link itself failed: no reply, a reply that fails its checksum or is malformed."""


class LinkMismatch(LinkError):
    """The link works, but the board runs another protocol version or accelerator than the
    host's program needs (rebuild its bitstream)."""


class DeviceFault(RuntimeError):
    """The board answered a request with a fault code (:attr:`fault` names it)."""

    def __init__(self, fault: Fault, op: int, length: int, request: str):
        self.fault = fault
        super().__init__(f"the board answered {fault.name}: {FAULT_TEXT.get(fault, '')} "
                         f"to {request} (code {op}, length {length} as it received them)")


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of ``data`` from ``crc`` (``crc16(b"123456789") == 0x29B1``)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def crc16_masks() -> list[int]:
    """For each bit ``j`` of the next CRC, the mask over ``{crc (16 bits), byte (8 bits)}`` (crc
    in bits 0-15, the byte in 16-23) whose XOR is that bit. The update is linear over GF(2)
    (no final XOR, and ``crc16(b, 0) ^ crc16(b', 0) == crc16(b ^ b', 0)``), so the masks are
    read off :func:`crc16` on unit vectors: the hardware computes exactly this function."""
    masks = [0] * 16
    for i in range(24):
        crc, byte = (1 << i, 0) if i < 16 else (0, 1 << (i - 16))
        out = crc16(bytes([byte]), crc)
        for j in range(16):
            if out >> j & 1:
                masks[j] |= 1 << i
    return masks


def _frame(sync: int, code: int, payload: bytes) -> bytes:
    if len(payload) > 0xFFFF:
        raise ValueError(f"a payload holds at most 65535 bytes, not {len(payload)}")
    body = bytes([code]) + len(payload).to_bytes(2, "little") + bytes(payload)
    return bytes([sync]) + body + crc16(body).to_bytes(2, "little")


def request(op: int, payload: bytes = b"") -> bytes:
    """A request frame."""
    return _frame(SYNC_REQUEST, int(op), payload)


def reply(fault: int, payload: bytes = b"") -> bytes:
    """A reply frame (what the bridge sends; the tests' reference)."""
    return _frame(SYNC_REPLY, int(fault), payload)


@dataclass(frozen=True)
class Reply:
    fault: Fault
    payload: bytes


def parse_reply(frame: bytes) -> Reply:
    """Check a whole reply frame; raises :class:`LinkError` naming what is wrong with it."""
    if len(frame) < HEADER_BYTES + 2:
        raise LinkError(f"a reply has at least {HEADER_BYTES + 2} bytes, got {len(frame)}")
    if frame[0] != SYNC_REPLY:
        raise LinkError(f"a reply starts with 0x{SYNC_REPLY:02X}, not 0x{frame[0]:02X}")
    length = int.from_bytes(frame[2:4], "little")
    if len(frame) != HEADER_BYTES + length + 2:
        raise LinkError(f"a reply of length {length} has {HEADER_BYTES + length + 2} bytes, "
                        f"not {len(frame)}")
    want = crc16(frame[1:-2])
    got = int.from_bytes(frame[-2:], "little")
    if want != got:
        raise LinkError(f"a reply failed its checksum (CRC-16 0x{got:04X}, computed "
                        f"0x{want:04X}): the line corrupted it")
    try:
        fault = Fault(frame[1])
    except ValueError:
        raise LinkError(f"a reply carries the unknown code {frame[1]}") from None
    return Reply(fault, bytes(frame[4:-2]))


def region_bytes(config) -> tuple[int, int, int, int]:
    """Bytes of one word of each :class:`~hwaccel.generators.accel.isa.Region` on the link, in
    region order (ACT, WGT, PROG, REG): an activation word, a weight word and a command word
    rounded up to whole bytes, and :data:`REG_BYTES` for a register."""
    from ..accel.isa import command_layout

    return (-(-config.act_bits // 8), -(-config.wgt_bits // 8),
            -(-command_layout(config).size // 8), REG_BYTES)


def write_length_ok(length: int, word_bytes: int, max_words: int) -> bool:
    """Whether a WRITE payload of ``length`` bytes is an address and 1..max_words words of
    ``word_bytes`` (the addressed region's, :func:`region_bytes`)."""
    words, rest = divmod(length - 4, word_bytes)
    return rest == 0 and 1 <= words <= max_words


def config_id(config) -> int:
    """A 32-bit identity of an accelerator config (CRC-32 of its JSON), which INFO reports, so
    a host refuses to run a program compiled for another preset than the bitstream's."""
    import json

    from ...config import config_to_json

    return zlib.crc32(json.dumps(config_to_json(config), sort_keys=True).encode())


@dataclass(frozen=True)
class Info:
    version: int
    region_bytes: tuple[int, int, int, int]
    max_words: int
    addr_bits: int
    config_id: int

    @property
    def word_bytes(self) -> int:
        """The widest word a frame carries (the bridge's buffer holds ``max_words`` of them)."""
        return max(self.region_bytes)


def info_payload(version: int, widths, max_words: int, addr_bits: int, cid: int) -> bytes:
    return (bytes([version]) + b"".join(int(w).to_bytes(2, "little") for w in widths)
            + bytes([max_words, addr_bits]) + cid.to_bytes(4, "little"))


def parse_info(payload: bytes) -> Info:
    if len(payload) < 1 or payload[0] != VERSION:
        got = f"protocol version {payload[0]}" if payload else "an empty payload"
        raise LinkMismatch(f"the board's INFO reports {got}, this host speaks version {VERSION} "
                        f"(rebuild the bitstream with this hwaccel)")
    if len(payload) != INFO_BYTES:
        raise LinkError(f"an INFO reply carries {INFO_BYTES} bytes, not {len(payload)}")
    widths = tuple(int.from_bytes(payload[1 + 2 * i:3 + 2 * i], "little") for i in range(4))
    return Info(payload[0], widths, payload[9], payload[10],
                int.from_bytes(payload[11:15], "little"))
