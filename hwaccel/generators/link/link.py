"""A point-to-point link between accelerator instances, with credit flow control.

Interface
---------
``sink``     In  stream of :func:`~.config.beat_layout` beats, on the sending side.
``source``   Out stream of the same beats, in order, on the receiving side.
``credits``  Out the sender's unspent credits (``0..C``).
``stalled``  Out latched high once some beat has waited ``watchdog`` cycles in a row (see below).

Protocol
--------
Write ``W`` for ``config.width`` (bytes a beat), ``L`` for ``config.latency`` and ``D`` for
``config.buffer``. The receive buffer holds ``C = D / W`` beats, and the sender starts with
``C`` credits, one per slot.

* **Sending.** ``sink.ready`` is ``credits != 0`` and nothing else: a beat is taken in every
  cycle it is offered while a credit is left, and taking it spends the credit. Back-pressure
  reaches the sender only through credits, so a taken beat always has a slot waiting for it
  and is never dropped or duplicated.
* **Flight.** A beat taken at cycle ``t`` reaches the receive buffer so that it can leave on
  ``source`` at ``t + L`` (``L = 0``: in the same cycle, through a bypass).
* **Credit rule.** The beat leaving on ``source`` at cycle ``p`` frees its slot; that credit
  travels back for ``L`` cycles and can be spent at ``p + L + 1``. A credit is therefore out
  for at least ``2L + 1`` cycles, the beat's flight, its cycle at the head and the return.

Bandwidth
---------
``C`` credits each used once per ``2L + 1`` cycles carry ``C`` beats per ``2L + 1`` cycles,
and no more than one beat a cycle enters, so with a receiver that is always ready the link
sustains ``min(W, D / (2L + 1))`` bytes a cycle. Full rate needs ``D >= W * (2L + 1)``.

Worked example: ``W = 4``, ``L = 2``, ``D = 16`` (``link_tiny``). ``C = 4`` credits, round
trip ``2L + 1 = 5``: beats are sent at cycles 0, 1, 2, 3, leave at 2, 3, 4, 5, and their
credits come back for cycles 5, 6, 7, 8; so a 40-byte transfer (10 beats) is sent at
0-3, 5-8, 10-11 and leaves by cycle 13 -- 14 cycles, ``min(4, 16/5) = 3.2`` bytes a cycle
sustained. With ``D = 20`` (5 credits) it would send a beat every cycle and finish in
``10 + L = 12`` cycles. :mod:`hwaccel.parallel.link` computes every such cycle.

Hang detection
--------------
A cycle *waits* if the sender offers a beat without a credit (``sink.valid & ~sink.ready``)
or a beat at the buffer's head is not taken (``source.valid & ~source.ready``). A counter of
consecutive cycles that wait while no beat is taken or leaves (cleared by any other cycle)
latches ``stalled`` after ``watchdog`` of them: a receiver that stops draining -- and the
credit starvation it causes -- shows at a cycle the model predicts exactly
(:class:`hwaccel.parallel.link.LinkHang`), while a slow receiver that still takes a beat now
and then does not. Beats in flight move without handshakes, so ``watchdog`` must exceed the
round trip ``2L + 1``.

Hardware decisions
------------------
* The forward delay is ``L - 1`` beat registers followed by the write into the buffer (a
  memory of ``C`` beats, read combinationally, LUT RAM on an FPGA), the return
  delay ``L`` one-bit registers; both are registers because a link's flight time is a
  property of the wires and serializers between chips, which these stand in for.
* ``sink.ready`` depends on the credit counter alone (not on ``sink.valid`` nor on the far
  side), so no combinational path crosses the link for ``L >= 1``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .config import LinkConfig, beat_layout

__all__ = ["Link"]


class Link(wiring.Component):
    """A link of a :class:`LinkConfig`: ``sink`` on the sending side, ``source`` on the
    receiving side.

    Members
    -------
    sink : ``In(stream.Signature(beat_layout(config.width)))``
    source : ``Out(stream.Signature(beat_layout(config.width)))``
    credits : ``Out(range(config.credits + 1))``
    stalled : ``Out(1)``

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`LinkConfig`.
    """

    def __init__(self, config: LinkConfig):
        if not isinstance(config, LinkConfig):
            raise TypeError(f"config must be a LinkConfig, not {config!r}")
        self.config = config
        layout = beat_layout(config.width)
        super().__init__({
            "sink": In(stream.Signature(layout)),
            "source": Out(stream.Signature(layout)),
            "credits": Out(range(config.credits + 1)),
            "stalled": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        L, C = cfg.latency, cfg.credits
        m = Module()
        layout = beat_layout(cfg.width)

        credits = Signal(range(C + 1), init=C)
        take = Signal()        # a beat enters on the sending side
        pop = Signal()         # a beat leaves on the receiving side
        back = Signal()        # a credit reaches the sender (spendable next cycle)
        m.d.comb += [self.credits.eq(credits), self.sink.ready.eq(credits != 0),
                     take.eq(self.sink.valid & self.sink.ready),
                     pop.eq(self.source.valid & self.source.ready)]
        m.d.sync += credits.eq(credits - take + back)

        # The receive buffer: C slots, read combinationally at the head. No full check:
        # a beat enters only on a spent credit, so a slot is always free for it.
        buf = _Buffer(m, layout.size, C)
        if L == 0:
            # A wire: the beat is on ``source`` in the cycle it is sent, and is stored only
            # if the receiver does not take it then (or older beats are waiting).
            m.d.comb += [
                self.source.valid.eq(buf.r_rdy | take),
                self.source.payload.eq(Mux(buf.r_rdy, buf.r_data, self.sink.payload)),
                buf.r_en.eq(self.source.ready),
                buf.w_en.eq(take & (buf.r_rdy | ~self.source.ready)),
                buf.w_data.eq(self.sink.payload),
                back.eq(pop),
            ]
        else:
            # L - 1 registers of flight, then the write that makes the beat readable a cycle
            # later: readable at t + L.
            valid, payload = take, self.sink.payload.as_value()
            for i in range(L - 1):
                v, p = Signal(name=f"fwd{i}_valid"), Signal(layout.size, name=f"fwd{i}_payload")
                m.d.sync += [v.eq(valid), p.eq(payload)]
                valid, payload = v, p
            m.d.comb += [
                buf.w_en.eq(valid), buf.w_data.eq(payload),
                self.source.valid.eq(buf.r_rdy),
                self.source.payload.eq(buf.r_data),
                buf.r_en.eq(self.source.ready),
            ]
            ret = pop
            for i in range(L):
                r = Signal(name=f"ret{i}")
                m.d.sync += r.eq(ret)
                ret = r
            m.d.comb += back.eq(ret)

        waiting = Signal()
        run = Signal(range(max(2, cfg.watchdog)))    # two states at least: no 0-bit signal
        m.d.comb += [waiting.eq((self.sink.valid & ~self.sink.ready)
                                | (self.source.valid & ~self.source.ready))]
        with m.If(~waiting | take | pop):
            m.d.sync += run.eq(0)
        with m.Elif(run == cfg.watchdog - 1):
            m.d.sync += self.stalled.eq(1)
        with m.Else():
            m.d.sync += run.eq(run + 1)
        return m


class _Buffer:
    """The receive buffer's ports: ``w_en``/``w_data`` append, ``r_en`` drops the head,
    ``r_rdy``/``r_data`` are the head. Its memory and pointers are at least two deep, so no
    address is ever 0 bits wide (one credit still uses one slot)."""

    def __init__(self, m: Module, width: int, depth: int):
        self.w_en, self.w_data = Signal(), Signal(width)
        self.r_en, self.r_rdy, self.r_data = Signal(), Signal(), Signal(width)
        size = max(2, depth)
        mem = m.submodules.buffer = Memory(shape=width, depth=size, init=[])
        wr, rd = mem.write_port(), mem.read_port(domain="comb")
        produce, consume = Signal(range(size)), Signal(range(size))
        level = Signal(range(depth + 1))
        do_read = self.r_rdy & self.r_en

        def step(ptr):
            return Mux(ptr == depth - 1, 0, ptr + 1)

        m.d.comb += [wr.addr.eq(produce), wr.data.eq(self.w_data), wr.en.eq(self.w_en),
                     rd.addr.eq(consume), self.r_data.eq(rd.data), self.r_rdy.eq(level != 0)]
        with m.If(self.w_en):
            m.d.sync += produce.eq(step(produce))
        with m.If(do_read):
            m.d.sync += consume.eq(step(consume))
        m.d.sync += level.eq(level + self.w_en - do_read)
