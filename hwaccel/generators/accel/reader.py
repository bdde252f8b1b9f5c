"""A DMA read unit: streams ``count`` consecutive scratchpad words starting at ``base``.

The scratchpad's read port is synchronous (block RAM), so a word arrives one cycle after its
address. A 4-deep FIFO absorbs that latency: a read issues only while the words in the FIFO plus
the one in flight leave room, so the stream never drops a word under back-pressure and a ready
consumer still gets one word per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

__all__ = ["Reader"]

DEPTH = 4


class Reader(wiring.Component):
    """Memory-to-stream reader.

    Parameters
    ----------
    width : int
        Word width in bits.
    depth : int
        Words in the memory it reads.

    Members
    -------
    start : ``In(1)``        a pulse: latch ``base`` and ``count`` and begin (while idle)
    base, count : ``In``     first address and number of words
    addr : ``Out``           the memory read port's address (``en`` is always on)
    rdata : ``In(width)``    the memory read port's data
    busy : ``Out(1)``        words remain to be issued or delivered
    source : ``Out(stream.Signature(width))``
    """

    def __init__(self, width: int, depth: int):
        self.width, self.depth = width, depth
        super().__init__({
            "start": In(1), "base": In(range(depth)), "count": In(range(depth + 1)),
            "addr": Out(range(depth)), "rdata": In(width), "busy": Out(1),
            "source": Out(stream.Signature(unsigned(width))),
        })

    def elaborate(self, platform):
        m = Module()
        fifo = m.submodules.fifo = SyncFIFO(width=self.width, depth=DEPTH)
        addr = Signal(range(self.depth))
        left = Signal(range(self.depth + 1))
        inflight = Signal()
        issue = Signal()
        m.d.comb += [
            issue.eq((left != 0) & (fifo.level + inflight < DEPTH)),
            self.addr.eq(addr),
            fifo.w_en.eq(inflight), fifo.w_data.eq(self.rdata),
            self.source.valid.eq(fifo.r_rdy), self.source.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.source.ready),
            self.busy.eq((left != 0) | inflight | fifo.r_rdy),
        ]
        m.d.sync += inflight.eq(issue)
        with m.If(issue):
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1)]
        with m.If(self.start):
            m.d.sync += [addr.eq(self.base), left.eq(self.count)]
        return m
