"""Writes the words arriving on a link into an idle accelerator's activation scratchpad.

The accelerator's host port has no back-pressure: it drops writes while a program runs
(STATUS.busy). This adapter turns link beats into host writes with ``sink.ready`` tied to the
instance being free, so a beat leaves the link only in a cycle its write is taken.

Interface
---------
``start``   In   a copy begins: ``dst`` is taken in this cycle
``dst``     In   the scratchpad address of the first word
``free``    In   the instance takes host writes this cycle (idle, and its port not in other use)
``sink``    In   stream of link beats, one word each; ``ready`` is ``busy & free``
``addr``    Out  the address written (region ACT on the instance's host port)
``wdata``   Out  the word (zero-extended to the port)
``we``      Out  a write, in the cycle the beat is taken
``busy``    Out  from the cycle after ``start`` until the beat with ``last`` is written

A beat taken in cycle ``p`` is written at the end of ``p``; after the last one ``busy`` is low
from ``p + 1``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..accel.config import AccelConfig
from ..link.config import beat_layout

__all__ = ["LinkWriter"]


class LinkWriter(wiring.Component):
    """A copy from a link of one word a beat into an accelerator of ``config``.

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`AccelConfig`.
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = config
        super().__init__({
            "start": In(1), "dst": In(config.addr_bits), "free": In(1),
            "sink": In(stream.Signature(beat_layout(config.lanes))),
            "addr": Out(config.addr_bits), "wdata": Out(config.data_bits), "we": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        ptr = Signal.like(self.addr)
        take = Signal()
        m.d.comb += [
            self.sink.ready.eq(self.busy & self.free),
            take.eq(self.sink.valid & self.sink.ready),
            self.we.eq(take), self.addr.eq(ptr),
            self.wdata.eq(self.sink.payload.data.as_value()),
        ]
        with m.If(take):
            m.d.sync += ptr.eq(ptr + 1)
            with m.If(self.sink.payload.last):
                m.d.sync += self.busy.eq(0)
        with m.If(self.start & ~self.busy):
            m.d.sync += [self.busy.eq(1), ptr.eq(self.dst)]
        return m
