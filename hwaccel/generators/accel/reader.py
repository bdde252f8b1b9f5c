"""A DMA read unit: streams ``count`` scratchpad words starting at ``base``, in runs.

Words come in runs of ``run`` consecutive addresses; each run starts ``stride`` words after the
previous one (``run = stride = 1``: one contiguous block). That is a column slice of a
row-major matrix -- a GEMM's K tile of A -- or two blocks of the weight scratchpad (a K tile's
weight beats, then its N tile's requantizer beats) without any help from the processor.
A second level (``group`` words, 0: none) restarts the runs one word after the previous
group's first: a depthwise job's channel groups, each group's word of every pixel in turn.

The scratchpad's read port is synchronous (block RAM), so a word arrives one cycle after its
address; with ``registered`` the reader also registers the word as it leaves the memory, a
second cycle, so nothing but the memory's own read (and, for the two-bank activation
scratchpad, its bank select) is in the cycle that ends at that register: the block RAMs'
clock-to-out and the route from them, which need not reach the FIFO's LUT RAM across the
chip in the same cycle (the critical path placed at dfd1651, 14.0 ns). A 4-deep FIFO absorbs
the latency: a read issues only while the words in the FIFO plus those in flight leave room,
so the stream never drops a word under back-pressure and a ready consumer still gets one
word per cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

__all__ = ["Reader", "DEPTH", "READ_LATENCY"]

DEPTH = 4
#: Cycles from a read's issue to its word's FIFO write (the memory's read, then the register).
READ_LATENCY = {False: 1, True: 2}


class Reader(wiring.Component):
    """Memory-to-stream reader.

    Parameters
    ----------
    width : int
        Word width in bits.
    depth : int
        Words in the memory it reads.
    registered : bool
        Register each word as it leaves the memory: it reaches the FIFO a cycle later
        (:data:`READ_LATENCY` counts both).

    Members
    -------
    start : ``In(1)``        a pulse: latch ``base`` and ``count`` and begin (while idle)
    base, count : ``In``     first address and number of words
    run, stride : ``In``     words per run, and the distance between the starts of runs
    group : ``In``           words per group (0: one group): the next starts a word further on
    addr : ``Out``           the memory read port's address (``en`` is always on)
    rdata : ``In(width)``    the memory read port's data
    busy : ``Out(1)``        words remain to be issued or delivered
    source : ``Out(stream.Signature(width))``
    """

    def __init__(self, width: int, depth: int, *, registered: bool = False):
        self.width, self.depth, self.registered = width, depth, bool(registered)
        super().__init__({
            "start": In(1), "base": In(range(depth)), "count": In(range(depth + 1)),
            "run": In(range(depth + 1)), "stride": In(range(depth + 1)),
            "group": In(range(depth + 1)),
            "addr": Out(range(depth)), "rdata": In(width), "busy": Out(1),
            "source": Out(stream.Signature(unsigned(width))),
        })

    def elaborate(self, platform):
        m = Module()
        fifo = m.submodules.fifo = SyncFIFO(width=self.width, depth=DEPTH)
        addr = Signal(range(self.depth))
        first = Signal(range(self.depth))          # start of the current run
        col = Signal(range(self.depth + 1))        # words issued in the current run
        run, stride = Signal.like(self.run), Signal.like(self.stride)
        group, g_first = Signal.like(self.group), Signal(range(self.depth))
        g_col = Signal(range(self.depth + 1))      # words issued in the current group
        # ``col + 1 == run`` and ``g_col + 1 == group``, kept a cycle ahead (from the next
        # values' terms), so an issue's next address is a mux of sums, not behind a compare.
        run_end, group_end = Signal(), Signal()
        left = Signal(range(self.depth + 1))
        inflight = Signal()          # a word read from the memory this cycle
        issue = Signal()
        in_regs, arriving, data = inflight, inflight, self.rdata
        if self.registered:          # and one in the output register
            held, word = Signal(), Signal(self.width)
            m.d.sync += [held.eq(inflight), word.eq(self.rdata)]
            in_regs, arriving, data = inflight + held, held, word
        m.d.comb += [
            issue.eq((left != 0) & (fifo.level + in_regs < DEPTH)),
            self.addr.eq(addr),
            fifo.w_en.eq(arriving), fifo.w_data.eq(data),
            self.source.valid.eq(fifo.r_rdy), self.source.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.source.ready),
            self.busy.eq((left != 0) | (in_regs != 0) | fifo.r_rdy),
        ]
        m.d.sync += inflight.eq(issue)
        with m.If(issue):
            m.d.sync += [addr.eq(addr + 1), left.eq(left - 1), col.eq(col + 1),
                         run_end.eq(Mux(group_end, run == 1, col + 2 == run))]
            with m.If(run_end):
                m.d.sync += [addr.eq(first + stride), first.eq(first + stride), col.eq(0),
                             run_end.eq(run == 1)]
            m.d.sync += [g_col.eq(g_col + 1), group_end.eq(g_col + 2 == group)]
            with m.If(group_end):
                m.d.sync += [addr.eq(g_first + 1), first.eq(g_first + 1),
                             g_first.eq(g_first + 1), col.eq(0), g_col.eq(0),
                             group_end.eq(group == 1)]
        # The address registers load while no word is left to issue (a job starts only then,
        # and its fields hold from before ``start``), so ``start``, the end of the processor's
        # ISSUE decision, drives ``left`` alone.
        with m.If(left == 0):
            m.d.sync += [addr.eq(self.base), first.eq(self.base),
                         col.eq(0), run.eq(self.run), stride.eq(self.stride),
                         group.eq(self.group), g_first.eq(self.base), g_col.eq(0),
                         run_end.eq(self.run == 1), group_end.eq(self.group == 1)]
        with m.If(self.start):
            m.d.sync += left.eq(self.count)
        return m
