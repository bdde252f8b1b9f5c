"""A simulated serial line: bytes to and from a :class:`~hwaccel.generators.board.uart_accel.
UartAccel` running in the Verilator C++ harness.

:class:`SimSerial` is a link for :class:`hwaccel.runtime.serial_link.LinkHost`, like a USB
serial port: ``write`` drives the design's ``rx`` pin bit by bit (start, eight data bits LSB
first, stop; ``divisor`` clocks each), ``read`` waits in C++ for a start bit on ``tx`` and samples
each bit in its middle, as a UART would. The bridge, the framing and the host code under test
are the ones a board runs; only the wire is simulated.
"""

from __future__ import annotations

from ..generators.board.framing import LinkError
from ..sim.runner import SimError

__all__ = ["SimSerial"]


class SimSerial:
    """The serial line to ``harness`` (a :class:`hwaccel.sim.harness.Harness` of a
    ``UartAccel``) at ``divisor`` clocks per bit.

    Resets the design with the line idle. ``reply_cycles`` bounds the wait for a reply's next
    byte; ``pause_cycles`` is the time a host spends between status polls (the design runs on
    while the host waits).
    """

    def __init__(self, harness, divisor: int, *, reply_cycles: int = 1_000_000,
                 pause_cycles: int = 2_000):
        self.h = harness
        self.d = divisor
        self.reply_cycles = reply_cycles
        self.pause_cycles = pause_cycles
        #: bytes driven onto ``rx`` and bytes received from ``tx``: what the line carried
        self.bytes_written = self.bytes_read = 0
        # The line idles high from the start: a low rx through reset would be a start bit.
        self.h.set("rx", 1)
        self.h.reset()

    def write(self, data: bytes) -> None:
        h, d = self.h, self.d
        self.bytes_written += len(data)
        for byte in data:
            bits = [0, *((byte >> i) & 1 for i in range(8)), 1]
            i = 0
            while i < 10:   # runs of equal bits in one call
                k = i
                while k < 10 and bits[k] == bits[i]:
                    k += 1
                h.set("rx", bits[i])
                h.step((k - i) * d)
                i = k

    def read(self, n: int) -> bytes:
        h, d = self.h, self.d
        out = bytearray()
        for _ in range(n):
            try:
                h.run_until("tx", 0, self.reply_cycles)
            except SimError as exc:
                raise LinkError(f"no reply byte within {self.reply_cycles:,} cycles (got "
                                f"{len(out)} of {n})") from exc
            h.step((d - 1) // 2)   # the middle of the start bit
            byte = 0
            for i in range(8):
                h.step(d)
                byte |= h.get("tx") << i
            h.step(d)
            if not h.get("tx"):
                raise LinkError(f"reply byte {len(out)} has a low stop bit (framing error)")
            out.append(byte)
            self.bytes_read += 1
        return bytes(out)

    def pause(self) -> None:
        self.h.step(self.pause_cycles)

    def idle(self, cycles: int) -> None:
        """Hold the line idle for ``cycles`` (longer than the bridge's gap: a frame ends)."""
        self.h.set("rx", 1)
        self.h.step(cycles)

    def close(self) -> None:
        self.h.close()
