"""UART receiver: 8 data bits, no parity, one stop bit (8N1), at ``divisor`` clocks per bit."""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

from ...config import check_int

__all__ = ["UartRx", "RX_LAYOUT"]

#: A received byte and whether its stop bit was low (a framing error: wrong baud rate, noise).
RX_LAYOUT = data.StructLayout({"data": 8, "error": 1})


class UartRx(wiring.Component):
    """Samples ``rx`` (through a two-flop synchronizer) in the middle of each bit.

    A falling edge on the idle line starts a byte; the start bit is checked again at its middle
    (a glitch shorter than half a bit is ignored), then the eight data bits (LSB first) and the
    stop bit are sampled one ``divisor`` apart. The byte is offered on ``source`` with ``error``
    set when the stop bit was low; after such a byte the receiver waits for the line to go high
    before it looks for the next start bit. ``divisor`` may be 1 (a bit per clock, for
    simulation): the sample points are whole cycles from the edge, ``(divisor - 1) // 2`` into
    each bit.

    There is no flow control on a UART: ``source`` holds one byte, which the next byte replaces
    (its consumer, the bridge, is always ready).

    Parameters
    ----------
    divisor : int
        Clock cycles per bit, at least 1.

    Members
    -------
    rx : ``In(1)``, init 1   the line (idle high)
    source : ``Out(stream.Signature(RX_LAYOUT))``
    """

    def __init__(self, *, divisor: int):
        self.divisor = check_int("divisor", divisor, min=1, max=1 << 20)
        super().__init__({"rx": In(1, init=1), "source": Out(stream.Signature(RX_LAYOUT))})

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        half = (d - 1) // 2
        line = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, line, init=1)
        timer = Signal(range(d + 1))
        bit = Signal(range(8))
        shift = Signal(8)

        with m.If(self.source.ready):
            m.d.sync += self.source.valid.eq(0)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~line):
                    if half == 0:   # this cycle is the start bit's sample point
                        m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                        m.next = "DATA"
                    else:
                        m.d.sync += timer.eq(half - 1)
                        m.next = "START"
            with m.State("START"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(line):    # a glitch, not a start bit
                    m.next = "IDLE"
                with m.Else():
                    m.d.sync += [timer.eq(d - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(shift >> 1 | line << 7), timer.eq(d - 1),
                                 bit.eq(bit + 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [self.source.payload.data.eq(shift),
                                 self.source.payload.error.eq(~line),
                                 self.source.valid.eq(1)]
                    m.next = "IDLE"
                    with m.If(~line):
                        m.next = "BREAK"
            with m.State("BREAK"):   # a low stop bit: wait for the idle level again
                with m.If(line):
                    m.next = "IDLE"
        return m
