"""UART transmitter: 8N1 at ``divisor`` clocks per bit."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...config import check_int

__all__ = ["UartTx"]


class UartTx(wiring.Component):
    """Sends each byte taken from ``sink`` as a start bit, eight data bits (LSB first) and a
    stop bit, ``divisor`` clocks each; ``tx`` comes straight from a flip-flop.

    ``sink.ready`` rises in the last cycle of a stop bit, so bytes offered back to back leave
    with no idle time between frames.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 1.

    Members
    -------
    sink : ``In(stream.Signature(8))``
    tx : ``Out(1)``, init 1   the line (idle high)
    """

    def __init__(self, *, divisor: int):
        self.divisor = check_int("divisor", divisor, min=1, max=1 << 20)
        super().__init__({"sink": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        frame = Signal(10, init=(1 << 10) - 1)   # bit 0 is on the line
        left = Signal(range(11))                  # bits still to finish
        timer = Signal(range(d))
        m.d.comb += [self.tx.eq(frame[0]),
                     self.sink.ready.eq((left == 0) | ((left == 1) & (timer == 0)))]
        with m.If(self.sink.valid & self.sink.ready):
            m.d.sync += [frame.eq(Cat(Const(0, 1), self.sink.payload, Const(1, 1))),
                         left.eq(10), timer.eq(d - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [frame.eq(Cat(frame[1:], Const(1, 1))), left.eq(left - 1),
                             timer.eq(d - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
