"""The host link's framing: CRC-16 and reply parsing in Python, and every fault the bridge
names, on the board's design in Verilator (the same build as tests/test_fpga_backend.py): a
bad frame is answered with its fault, and never changes a scratchpad."""

from __future__ import annotations

import random

import pytest

from hwaccel.generators.accel import PRESETS
from hwaccel.generators.accel.host import address
from hwaccel.generators.accel.isa import COUNTERS, Region
from hwaccel.generators.board import BridgeConfig
from hwaccel.generators.board.framing import (
    Fault,
    LinkError,
    Op,
    crc16,
    crc16_masks,
    parse_reply,
    reply,
    request,
)

BRIDGE = BridgeConfig(PRESETS["tiny"], divisor=1, max_words=16, gap=64, name="tiny_sim")
CFG = BRIDGE.accel
W = BRIDGE.word_bytes


# --- Python ----------------------------------------------------------------------------------
def test_crc16_is_ccitt_false_and_the_masks_compute_it(seed):
    assert crc16(b"123456789") == 0x29B1   # the catalogue's check value
    masks, rng = crc16_masks(), random.Random(seed)
    for _ in range(500):
        crc, byte = rng.getrandbits(16), rng.getrandbits(8)
        bits = crc | byte << 16
        got = sum((bin(bits & mask).count("1") & 1) << j for j, mask in enumerate(masks))
        assert got == crc16(bytes([byte]), crc)


def test_replies_that_are_damaged_are_named():
    good = reply(Fault.OK, b"\x01\x02\x03")
    assert parse_reply(good).payload == b"\x01\x02\x03"
    flipped = good[:5] + bytes([good[5] ^ 0x10]) + good[6:]
    with pytest.raises(LinkError, match=r"failed its checksum"):
        parse_reply(flipped)
    with pytest.raises(LinkError, match=r"starts with 0x5A, not 0xA5"):
        parse_reply(request(Op.INFO))
    with pytest.raises(LinkError, match=r"a reply of length 3 has 9 bytes, not 8"):
        parse_reply(good[:-1])


# --- the bridge in Verilator -----------------------------------------------------------------
@pytest.fixture(scope="module")
def line():
    from hwaccel.runtime.serial_sim import SimSerial
    from hwaccel.sim.harness import Harness
    from hwaccel.sim.runner import design_for

    link = SimSerial(Harness(design_for(BRIDGE)), BRIDGE.divisor)
    yield link
    link.close()


def exchange(line, raw: bytes):
    line.write(raw)
    head = line.read(4)
    return parse_reply(head + line.read(int.from_bytes(head[2:4], "little") + 2))


def write_frame(addr: int, words: list[int]) -> bytes:
    return request(Op.WRITE, addr.to_bytes(4, "little")
                   + b"".join(w.to_bytes(W, "little") for w in words))


def read_word(line, addr: int) -> int:
    r = exchange(line, request(Op.READ, addr.to_bytes(4, "little") + (1).to_bytes(2, "little")))
    assert r.fault == Fault.OK
    return int.from_bytes(r.payload, "little")


def assert_fault(r, fault: Fault, op: int, length: int):
    assert r.fault == fault, f"expected {fault.name}, got {r.fault.name}"
    assert r.payload == bytes([op]) + length.to_bytes(2, "little")


def test_good_frames_round_trip(line, seed):
    rng = random.Random(seed)
    words = [rng.getrandbits(CFG.act_bits) for _ in range(5)]   # an ACT word's width
    base = address(CFG, Region.ACT, 100)
    assert exchange(line, write_frame(base, words)).fault == Fault.OK
    r = exchange(line, request(Op.READ, base.to_bytes(4, "little") + (5).to_bytes(2, "little")))
    assert r.fault == Fault.OK and len(r.payload) == 5 * W
    assert [int.from_bytes(r.payload[i * W:(i + 1) * W], "little") for i in range(5)] == words
    r = exchange(line, request(Op.COUNTERS))
    assert r.fault == Fault.OK and len(r.payload) == 6 * len(COUNTERS)


def test_bad_checksum_is_named_and_writes_nothing(line):
    addr = address(CFG, Region.ACT, 7)
    assert exchange(line, write_frame(addr, [0x1234])).fault == Fault.OK
    frame = bytearray(write_frame(addr, [0x5678]))
    frame[-1] ^= 0x01   # the checksum's last bit
    assert_fault(exchange(line, bytes(frame)), Fault.BAD_CRC, Op.WRITE, 4 + W)
    frame = bytearray(write_frame(addr, [0x5678]))
    frame[8] ^= 0x80    # a data bit: the checksum no longer matches
    assert_fault(exchange(line, bytes(frame)), Fault.BAD_CRC, Op.WRITE, 4 + W)
    assert read_word(line, addr) == 0x1234


def test_bad_length_is_named(line):
    assert_fault(exchange(line, request(Op.STATUS, b"\x00")), Fault.BAD_LENGTH, Op.STATUS, 1)
    short = write_frame(address(CFG, Region.ACT, 0), [1])
    body = short[1:4 + 4 + W - 1]   # one byte less of the word, length field to match
    body = bytes([Op.WRITE]) + (3 + W).to_bytes(2, "little") + body[3:]
    frame = b"\xa5" + body + crc16(body).to_bytes(2, "little")
    assert_fault(exchange(line, frame), Fault.BAD_LENGTH, Op.WRITE, 3 + W)
    zero = request(Op.READ, address(CFG, Region.ACT, 0).to_bytes(4, "little") + b"\x00\x00")
    assert_fault(exchange(line, zero), Fault.BAD_LENGTH, Op.READ, 6)


def test_unknown_opcode_is_named(line):
    assert_fault(exchange(line, request(0x3F, b"\x01\x02")), Fault.BAD_OPCODE, 0x3F, 2)


def test_address_out_of_range_is_named(line):
    past = address(CFG, Region.ACT, CFG.act_depth - 1).to_bytes(4, "little") + b"\x02\x00"
    assert_fault(exchange(line, request(Op.READ, past)), Fault.BAD_ADDRESS, Op.READ, 6)
    reg = write_frame(address(CFG, Region.REG, 2), [0])   # only CONTROL and WATCHDOG take writes
    assert_fault(exchange(line, reg), Fault.BAD_ADDRESS, Op.WRITE, 4 + W)
    high = (1 << 31 | address(CFG, Region.ACT, 0)).to_bytes(4, "little") + b"\x01\x00"
    assert_fault(exchange(line, request(Op.READ, high)), Fault.BAD_ADDRESS, Op.READ, 6)


def test_bad_sync_and_a_truncated_frame_are_named(line):
    assert_fault(exchange(line, b"\x00\x11\x22"), Fault.BAD_SYNC, 0x00, 0)
    frame = write_frame(address(CFG, Region.ACT, 0), [9])
    line.write(frame[:6])   # then the line goes quiet
    head = line.read(4)
    r = parse_reply(head + line.read(int.from_bytes(head[2:4], "little") + 2))
    assert_fault(r, Fault.TRUNCATED, Op.WRITE, 4 + W)
    assert exchange(line, request(Op.STATUS)).fault == Fault.OK   # the link recovered


def test_memory_access_while_busy_is_refused(line, seed):
    import numpy as np

    from hwaccel.generators.accel import ProgramBuilder
    from hwaccel.runtime.serial_link import DeviceFault, LinkHost

    rng = np.random.default_rng(seed)
    prog = ProgramBuilder(CFG)   # eight 3x3 convs of 4 channels on 8x8: thousands of cycles
    x = prog.put(rng.integers(-128, 128, (4, 8, 8)))
    w = rng.integers(-128, 128, (4, 4, 3, 3))
    for _ in range(8):
        x = prog.conv(x, w, np.zeros(4, dtype=np.int64), 1 << 14, 24, padding=1)
    prog.done()
    host = LinkHost(line, CFG)
    host.soft_reset()
    host.load(prog)
    host.start(0)
    assert host.status()["busy"]
    with pytest.raises(DeviceFault, match=r"answered BUSY: accelerator busy .* to READ"):
        host.read(address(CFG, Region.ACT, 0))
    with pytest.raises(DeviceFault, match=r"answered BUSY"):
        host.start(0)
    host.soft_reset()
    assert not host.status()["busy"]
