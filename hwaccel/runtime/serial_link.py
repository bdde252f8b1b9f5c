"""The host side of the board's UART link: the accelerator's host port, one frame at a time.

:class:`LinkHost` offers what :class:`hwaccel.sim.host.HarnessHost` offers on the simulated
host port -- ``write_many``, ``read``, ``load``, ``run``, ``status``, ``counters``,
``soft_reset``, ``read_act`` -- as requests of :mod:`hwaccel.generators.board.framing` over a
*link*: any object with ``write(bytes)``, ``read(n) -> bytes`` (raising :class:`LinkError`
when the bytes do not come), ``pause()`` (the host waiting between status polls) and
``close()``. :class:`SerialLink` is a USB serial port (pyserial); the Verilator test's link is
:class:`hwaccel.runtime.serial_sim.SimSerial`. The same code drives both.

Each word goes at its region's width, as the board's INFO reports it
(:func:`hwaccel.generators.board.framing.region_bytes`): an activation word in its own bytes,
not the host port's widest word's.
"""

from __future__ import annotations

import time

import numpy as np

from ..generators.accel.config import AccelConfig
from ..generators.accel.host import address, load_writes
from ..generators.accel.isa import COUNTERS, Region, status_fields
from ..generators.board.framing import (
    COUNTER_BYTES,
    HEADER_BYTES,
    STATUS_BYTES,
    SYNC_REPLY,
    VERSION,
    DeviceFault,
    Fault,
    LinkError,
    LinkMismatch,
    Op,
    config_id,
    parse_info,
    parse_reply,
    region_bytes,
    request,
)
from ..hdl.pack import unpack

__all__ = ["LinkHost", "SerialLink", "LinkError", "LinkMismatch", "DeviceFault", "LinkTimeout"]


def _widths(widths) -> str:
    return "words of " + "/".join(map(str, widths)) + " bytes (ACT/WGT/PROG/REG)"


class LinkTimeout(RuntimeError):
    """The accelerator was still busy when the host stopped polling."""


class SerialLink:
    """A serial port (``/dev/ttyUSB0``, ``COM3``) through pyserial, 8N1.

    Raises
    ------
    LinkError
        pyserial is missing or the port cannot be opened (the message names the port).
    """

    def __init__(self, port: str, baud: int, *, timeout_s: float = 2.0):
        try:
            import serial
        except ModuleNotFoundError as exc:
            raise LinkError("pyserial is not installed: `pip install pyserial`") from exc
        self.port = port
        self.timeout_s = timeout_s
        try:
            self._s = serial.Serial(port, baud, timeout=timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"cannot open {port}: {exc}") from exc
        self._s.reset_input_buffer()

    def write(self, data: bytes) -> None:
        self._s.write(data)

    def read(self, n: int) -> bytes:
        data = self._s.read(n)
        if len(data) < n:
            raise LinkError(f"no reply from {self.port} within {self.timeout_s:g} s (got "
                            f"{len(data)} of {n} bytes)")
        return data

    def pause(self) -> None:
        pass   # a status poll takes a round trip over USB already

    def close(self) -> None:
        self._s.close()


class LinkHost:
    """The accelerator on a board, driven through the UART bridge.

    Parameters
    ----------
    link
        A byte link (see the module docstring).
    config : AccelConfig
        The preset the program was compiled for; INFO must report the same one.

    Raises
    ------
    LinkError
        The board does not answer INFO; :class:`LinkMismatch` (a LinkError) when it runs
        another protocol version or accelerator preset (the message says which).
    """

    def __init__(self, link, config: AccelConfig):
        self.link = link
        self.cfg = config
        self.bytes_out = self.bytes_in = 0
        self.link_seconds = 0.0
        info = parse_info(self.transact(Op.INFO, what="INFO"))
        want = (VERSION, region_bytes(config), config.addr_bits, config_id(config))
        got = (info.version, info.region_bytes, info.addr_bits, info.config_id)
        if got != want:
            raise LinkMismatch(f"the board runs another accelerator than {config.slug}: INFO "
                            f"reports protocol {got[0]}, {_widths(got[1])}, {got[2]} address "
                            f"bits, config id 0x{got[3]:08X}; {config.slug} needs {want[0]}, "
                            f"{_widths(want[1])}, {want[2]}, 0x{want[3]:08X} (build its "
                            f"bitstream)")
        #: bytes of a word on the link, by :class:`Region`
        self.region_bytes = info.region_bytes
        self.word_bytes = info.word_bytes
        self.max_words = info.max_words

    # --- frames --------------------------------------------------------------------------------
    def transact(self, op: Op, payload: bytes = b"", *, what: str = "") -> bytes:
        """Send one request and return its reply's payload; a fault reply raises
        :class:`DeviceFault` naming it, a damaged or missing reply :class:`LinkError`."""
        t0 = time.perf_counter()
        frame = request(op, payload)
        self.link.write(frame)
        head = self.link.read(HEADER_BYTES)
        if head[0] != SYNC_REPLY:
            raise LinkError(f"a reply to {what or op.name} starts with 0x{head[0]:02X}, not "
                            f"0x{SYNC_REPLY:02X}")
        length = int.from_bytes(head[2:4], "little")
        reply = parse_reply(head + self.link.read(length + 2))
        self.bytes_out += len(frame)
        self.bytes_in += HEADER_BYTES + length + 2
        self.link_seconds += time.perf_counter() - t0
        if reply.fault != Fault.OK:
            p = reply.payload
            raise DeviceFault(reply.fault, p[0] if p else -1,
                              int.from_bytes(p[1:3], "little") if len(p) >= 3 else -1,
                              what or op.name)
        return reply.payload

    # --- the host port -------------------------------------------------------------------------
    def width(self, addr: int) -> tuple[Region, int]:
        """The region of host address ``addr`` and the bytes of its words on the link."""
        region = Region(addr >> self.cfg.addr_bits & 3)
        return region, self.region_bytes[region]

    def write_many(self, writes) -> None:
        """``(address, data)`` writes; runs of consecutive addresses in one region go as one
        WRITE frame of up to ``max_words`` words."""
        run: list[int] = []
        first = None
        ab = self.cfg.addr_bits
        for addr, data in writes:
            if run and (addr != first + len(run) or len(run) == self.max_words
                        or addr >> ab != first >> ab):
                self._write(first, run)
                run = []
            if not run:
                first = addr
            run.append(int(data))
        if run:
            self._write(first, run)

    def _write(self, first: int, words: list[int]) -> None:
        region, wb = self.width(first)
        for k, w in enumerate(words):
            if not 0 <= w < 1 << 8 * wb:
                raise ValueError(f"{region.name} words are {wb} bytes on the link: word {k} of "
                                 f"the WRITE at 0x{first:X} is 0x{w:X}")
        payload = first.to_bytes(4, "little") + b"".join(
            w.to_bytes(wb, "little") for w in words)
        self.transact(Op.WRITE, payload, what=f"WRITE of {len(words)} words at 0x{first:X}")

    def write(self, addr: int, data: int) -> None:
        self.write_many([(addr, data)])

    def read_words(self, addr: int, count: int) -> list[int]:
        wb = self.width(addr)[1]
        most = 0xFFFF // wb
        out: list[int] = []
        for k in range(0, count, most):
            n = min(most, count - k)
            payload = (addr + k).to_bytes(4, "little") + n.to_bytes(2, "little")
            data = self.transact(Op.READ, payload, what=f"READ of {n} words at 0x{addr + k:X}")
            out += [int.from_bytes(data[i * wb:(i + 1) * wb], "little") for i in range(n)]
        return out

    def read(self, addr: int) -> int:
        return self.read_words(addr, 1)[0]

    def load(self, prog) -> None:
        self.write_many(load_writes(self.cfg, prog))

    def start(self, pc: int = 0) -> None:
        self.transact(Op.START, pc.to_bytes(2, "little"), what=f"START at pc {pc}")

    def soft_reset(self) -> None:
        self.transact(Op.RESET, what="RESET")

    def status(self) -> dict:
        return status_fields(int.from_bytes(self.transact(Op.STATUS, what="STATUS")[
            :STATUS_BYTES], "little"))

    def counters(self) -> dict:
        data = self.transact(Op.COUNTERS, what="COUNTERS")
        return {name: int.from_bytes(data[i * COUNTER_BYTES:(i + 1) * COUNTER_BYTES], "little")
                for i, name in enumerate(COUNTERS)}

    def run(self, pc: int = 0, *, timeout_s: float = 60.0) -> dict:
        """START at ``pc`` and poll STATUS until busy drops; returns the final STATUS.

        Raises
        ------
        LinkTimeout
            Still busy after ``timeout_s`` seconds of polling (the pc is in the message).
        """
        self.start(pc)
        t0 = time.monotonic()
        while True:
            status = self.status()
            if not status["busy"]:
                return status
            if time.monotonic() - t0 > timeout_s:
                raise LinkTimeout(f"the accelerator was still busy after {timeout_s:g} s of "
                                  f"polling (pc {status['pc']})")
            self.link.pause()

    def read_act(self, start: int, count: int) -> np.ndarray:
        lanes = self.cfg.lanes
        words = self.read_words(address(self.cfg, Region.ACT, start), count)
        return np.array([unpack(w, 8, lanes) for w in words], dtype=np.int64).reshape(
            count, lanes)

    def close(self) -> None:
        self.link.close()
