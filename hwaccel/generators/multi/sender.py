"""Reads words from an accelerator's activation words and sends them into a link.

Interface
---------
``start``   In   a copy begins: ``src`` and ``count`` are taken in this cycle
``src``     In   first word's scratchpad address
``count``   In   words (``1..act_depth``; ``0`` is ignored: no copy starts)
``addr``    Out  the scratchpad address read (in a pipeline top, of the instance's send mirror)
``re``      Out  a read: the word is on ``rdata`` in the next cycle (a block RAM's latency)
``rdata``   In   the read data (the low ``act_bits`` are the word)
``source``  Out  stream of link beats, one word each (``count`` = the word's bytes,
                 ``last`` on the final word)
``busy``    Out  from the cycle after ``start`` until the last beat is taken

Timing
------
With ``start`` high in cycle ``s``, word 0 is read in ``s + 1`` and offered from ``s + 3``
(:data:`FIRST_BEAT`). Reads run ahead of the link into a two-word buffer: a read is issued
whenever the buffer and the read in flight, less the beat leaving this cycle, hold at most one
word. So from ``s + 3`` on the next word is always offered in the cycle after the previous one
was taken: to the link the sender is a transfer offered at ``s + 3`` and offered beat after
beat (:class:`hwaccel.parallel.link.LinkModel`'s sender), whatever the credits do.

Nothing may write the words being read while ``busy`` is high; in the pipeline top
(:mod:`.pipeline`) the sender reads the instance's send mirror, which only the instance's
scratchpad writes change, and the controller keeps those off the words in flight.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..accel.config import AccelConfig
from ..link.config import beat_layout

__all__ = ["CopySender", "FIRST_BEAT"]

#: Cycles from ``start`` to the first beat offered on ``source``.
FIRST_BEAT = 3


class CopySender(wiring.Component):
    """A copy out of an accelerator of ``config`` into a link of one word a beat.

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
            "start": In(1), "src": In(config.addr_bits),
            "count": In(range(config.act_depth + 1)),
            "addr": Out(config.addr_bits), "re": Out(1), "rdata": In(config.data_bits),
            "source": Out(stream.Signature(beat_layout(config.lanes))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        width = cfg.act_bits
        raddr = Signal(cfg.addr_bits)
        to_read = Signal(range(cfg.act_depth + 1))
        to_send = Signal(range(cfg.act_depth + 1))
        pending = Signal()                       # a read issued last cycle: its word is here
        level = Signal(range(3))                 # words in the buffer, head first
        head, tail = Signal(width), Signal(width)
        take = Signal()
        issue = Signal()

        m.d.comb += [
            self.source.valid.eq(self.busy & (level != 0)),
            self.source.payload.data.eq(head),
            self.source.payload.count.eq(cfg.lanes),
            self.source.payload.last.eq(to_send == 1),
            take.eq(self.source.valid & self.source.ready),
            issue.eq(self.busy & (to_read != 0) & (level + pending - take <= 1)),
            self.re.eq(issue), self.addr.eq(raddr),
        ]
        with m.If(issue):
            m.d.sync += [raddr.eq(raddr + 1), to_read.eq(to_read - 1)]
        m.d.sync += pending.eq(issue)

        word = self.rdata[:width]
        with m.If(pending & take):
            with m.If(level == 1):
                m.d.sync += head.eq(word)
            with m.Else():
                m.d.sync += [head.eq(tail), tail.eq(word)]
        with m.Elif(pending):
            with m.If(level == 0):
                m.d.sync += head.eq(word)
            with m.Else():
                m.d.sync += tail.eq(word)
            m.d.sync += level.eq(level + 1)
        with m.Elif(take):
            m.d.sync += [head.eq(tail), level.eq(level - 1)]

        with m.If(take):
            m.d.sync += to_send.eq(to_send - 1)
            with m.If(to_send == 1):
                m.d.sync += self.busy.eq(0)
        with m.If(self.start & ~self.busy & (self.count != 0)):
            m.d.sync += [self.busy.eq(1), raddr.eq(self.src), to_read.eq(self.count),
                         to_send.eq(self.count), level.eq(0), pending.eq(0)]
        return m
