"""Formal harnesses of the convolution engine (run by ``hwaccel verify``).

Properties, on a small engine (one lane, one output channel a beat, 3 x 3 maps, kernels up to
3 x 3: every sequencer path of the big presets, few MACs):

``result_stream``  ``result`` keeps ``valid`` until the transfer and its payload stable, for
                   any descriptor and inputs that obey the stream rules, any back-pressure.
                   Proved by 2-induction with the credit invariant below and the FIFO's
                   pointer invariant (pdr needs about 4 minutes).
``result_fifo``    the result FIFO is never written while full (its ``w_rdy``) nor read while
                   empty: the credits always leave room for the beat being computed. Proved by
                   2-induction with the helper invariants that credits, last chunks in flight
                   and FIFO rows add up to the FIFO depth, and that the issue's credit flag
                   is ``credits != 0``.
``beats``          with one fixed layer (:data:`BEATS_LAYER`: 3 x 3 input, 3 x 3 kernel, two
                   output channels) and any back-pressure, no result beat is lost, invented or
                   duplicated: every beat owed (the layer's beats per accepted descriptor, less
                   those emitted) is still to reach stage 3 of the pipeline, in stages 4-7, or
                   in the FIFO, at every cycle; when the engine is idle again all of the
                   layer's beats have passed stage 3 (the sequencer issues exactly the layer's
                   beats); and the engine never takes more activation, weight or requantizer
                   beats than the layer has (the weights and requantizers it takes are its load
                   counters). Proved with pdr (about 2 minutes). It is a safety property: that
                   the engine does finish a layer (no hang) is checked by simulation only.

Mutants: ``result_stream`` a source that drops ``valid``; ``result_fifo`` the engine built with
a result FIFO half as deep as its credits assume (a full FIFO refuses the write); ``beats`` one
with a one-row FIFO, on a one-pixel layer (:data:`MUTANT_LAYER`), so the lost second beat shows
at cycle 11.

The max-pool stage behind the engine (:class:`PoolHarness`) has its own ``source_stream``.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Module, Mux, Signal
from amaranth.lib.fifo import SyncFIFO

from ...formal.props import (
    Harness,
    Owed,
    driven,
    fifo_bounds,
    ones,
    replaced,
    stream_rules,
)
from . import engine as engine_module
from .config import ConvConfig, PoolConfig
from .engine import ConvEngine
from .layer import ConvLayer, descriptor
from .layouts import pack_struct
from .maxpool import MaxPool

__all__ = ["ConvHarness", "PoolHarness", "PROPERTIES", "formal_configs", "formal_checks",
           "BEATS_LAYER"]

PROPERTIES = ("result_stream", "result_fifo", "beats")

BEATS_LAYER = ConvLayer(height=3, width=3, cin=1, cout=2, kernel=3)
#: The ``beats`` mutant's layer: one pixel, two output channels (two beats in 13-odd cycles;
#: on :data:`BEATS_LAYER` the lost beat shows only at cycle 53, 80 s of pdr).
MUTANT_LAYER = ConvLayer(height=1, width=1, cin=1, cout=2, kernel=1)


def formal_configs() -> dict[str, ConvConfig]:
    cfg = ConvConfig(lanes=1, block=1, max_width=3, max_height=3, max_cin=1, max_cout=2,
                     max_kernel=3, pool=False, name="formal_k3")
    return {cfg.slug: cfg}


class _HalfFIFO(SyncFIFO):
    def __init__(self, *, width: int, depth: int):
        super().__init__(width=width, depth=depth // 2)


class _OneRowFIFO(SyncFIFO):
    """The ``beats`` mutant: one row behind 16 credits, so the layer's second beat is refused
    (lost) while ``result`` is stalled: a counterexample within one layer."""

    def __init__(self, *, width: int, depth: int):
        del depth
        super().__init__(width=width, depth=1)


class ConvHarness(Harness):
    """One property of one :class:`ConvEngine`."""

    # The MAC and requantize pipeline: operands (the depthwise window register's too),
    # products, sums, accumulators, multipliers, shifts (none of them steers control; the
    # line-buffer and weight memories then drop out).
    # The line buffer's write data and the weight and partial-sum addresses feed memories only.
    abstract = tuple(f"w:{n}" for n in (
        "*s2_a", "*s2_w", "*prod_k*", "*sum_n*", "*acc_n*", "*mult_n*", "*shift_n*",
        "*rq_lo_n*", "*rq_high_n*", "*scaled_n*", "*s7_big_n*", "*shifted_n*", "*half*_n*",
        "*.sr", "*.w_addr", "*beat",
        "*win_r*", "*s2_dw*", "*s1_bank*", "*s1_w", "*s4_psum", "*s4_params",
    ))

    def __init__(self, config: ConvConfig, prop: str, *, mutant: bool = False):
        if prop not in PROPERTIES:
            raise ValueError(f"prop must be one of {', '.join(PROPERTIES)}, not {prop!r}")
        super().__init__(prop, mutant=mutant)
        self.config = config
        dut = self.dut = ConvEngine(config)
        self.take_streams(dut.layer, dut.weights, dut.requant, dut.activations)
        self.take_streams(dut.result, sink=True)
        self.take(dut.psum_rdata)
        self.glitch = Signal()
        if mutant and prop == "result_stream":
            self.take(self.glitch)
        if prop in ("result_stream", "result_fifo") and not mutant:
            self.induction = 2
        if prop == "beats":  # it counts beats with ``s3_beat``, the partial-sum read address
            self.abstract = tuple(a for a in self.abstract if a != "w:*beat") + (
                "w:*s4_beat", "w:*s5_beat")

    def build(self, m: Module, platform) -> None:
        dut = self.dut
        if self.mutant and self.prop != "result_stream":
            short = _HalfFIFO if self.prop == "result_fifo" else _OneRowFIFO
            with replaced(engine_module, "SyncFIFO", short):
                body = self.open_up(dut, platform)
        else:
            body = self.open_up(dut, platform)
        m.submodules.dut = body
        for name in ("layer", "weights", "requant", "activations"):
            stream_rules(m, getattr(dut, name), check=Assume, name=name)
        if self.prop == "result_stream":
            valid = dut.result.valid & ~self.glitch if self.mutant else None
            stream_rules(m, dut.result, valid=valid, name="result")
            if not self.mutant:
                self._pointer_invariant(m, body, platform)
        elif self.prop == "result_fifo":
            fifo = body.submodules.fifo
            level = fifo_bounds(m, depth=fifo.depth, w_en=fifo.w_en, w_rdy=fifo.w_rdy,
                                r_en=fifo.r_en, r_rdy=fifo.r_rdy, name="result_fifo")
            if not self.mutant:
                self._credit_invariant(m, body, level)
        else:
            self._beats(m, body)

    def _pointer_invariant(self, m: Module, body: Module, platform) -> None:
        """What makes ``result_stream`` inductive (asserted, so proved with it): the credit
        invariant, so the FIFO is never written full, and the FIFO's pointers agree with its
        level (``produce - consume = level`` modulo the depth), so a write never
        lands on the row ``result`` holds. pdr proves it too, in about 4 minutes."""
        fifo = body.submodules.fifo
        self._credit_invariant(m, body, None)
        inner = self.open_sub(body, "fifo", platform)
        produce, consume = driven(inner, "produce"), driven(inner, "consume")
        wrapped, depth = consume + fifo.level, fifo.depth
        m.d.comb += [
            Assert((produce < depth) & (consume < depth), "a FIFO pointer out of range"),
            Assert(produce == Mux(wrapped >= depth, wrapped - depth, wrapped),
                   "FIFO pointers disagree with its level"),
        ]

    def _credit_invariant(self, m: Module, body: Module, level) -> None:
        """What makes ``result_fifo`` inductive (asserted, so proved with it): every FIFO row is
        a credit, a block's last chunk on its way down the pipeline (stages 0-4, 2m and 3s
        carry ``go`` and ``last``, stages 5-8 the result's valid) or a result in the FIFO, so
        they add up to the FIFO depth; the issue's credit flag (a register worked out a cycle
        ahead) is
        ``credits != 0``; and the FIFO's own level is the one its handshakes give."""
        fifo = body.submodules.fifo
        flights = [driven(body, f"s{i}_go") & driven(body, f"s{i}_last") for i in range(0, 5)]
        flights += [driven(body, f"{s}_go") & driven(body, f"{s}_last") for s in ("s2m", "s3s")]
        flights += [driven(body, f"s{i}_valid") for i in range(5, 9)]
        credits = driven(body, "credits")
        rows = credits + ones(*flights) + fifo.level
        m.d.comb += [
            Assert(rows == engine_module.FIFO_DEPTH,
                   "credits, beats in flight and FIFO rows do not add up"),
            Assert(driven(body, "has_credit") == (credits != 0),
                   "the credit flag disagrees with the credits"),
        ]
        if level is not None:
            m.d.comb += Assert(fifo.level == level, "the FIFO level disagrees with its handshakes")

    def _beats(self, m: Module, body: Module) -> None:
        cfg, dut = self.config, self.dut
        layer = MUTANT_LAYER if self.mutant else BEATS_LAYER
        desc = descriptor(cfg, layer)
        with m.If(dut.layer.valid):
            m.d.comb += Assume(dut.layer.payload.as_value()
                               == pack_struct(dut.layer.payload.shape(), desc))
        oh, ow = layer.out_size
        outs = oh * ow * desc["blocks"]
        ins = layer.height * layer.width * desc["groups"]
        started = dut.layer.valid & dut.layer.ready
        seen = Signal(name="layer_seen")  # a layer has been accepted
        with m.If(started):
            m.d.sync += seen.eq(1)

        def took(s):
            return s.valid & s.ready

        owed = Owed(m, limit=outs + engine_module.FIFO_DEPTH, name="results_owed")
        owed.update(started * outs, took(dut.result))
        dues = {}
        for name, per_layer in (("activations", ins), ("weights", desc["weight_words"]),
                                ("requant", desc["blocks"])):
            o = Owed(m, limit=per_layer, name=f"{name}_due")
            o.update(started * per_layer, took(getattr(dut, name)))
            dues[name] = o.count
        # Every beat owed is still to pass stage 3 of the pipeline (``s3_beat`` counts those
        # that did since the layer began), on its way through stages 3s-8, or in the FIFO: a
        # beat the FIFO refuses, or one emitted twice, breaks the sum at once.
        beat = driven(body, "s3_beat")
        fifo = body.submodules.fifo
        later = [driven(body, f"{s}_go") & driven(body, f"{s}_last") for s in ("s3s", "s4")]
        later += [driven(body, f"s{i}_valid") for i in range(5, 9)]
        idle = driven(body, "state") == 0
        m.d.comb += [
            Assert(owed.count == Mux(seen, outs - beat, 0) + ones(*later) + fifo.level,
                   "a result beat was lost or duplicated"),
            Assert(beat <= outs, "more result beats than the layer has"),
            # The sequencer issues exactly the layer's beats: when the engine is idle again,
            # all of them have passed stage 3, so what is owed is in the pipeline or the FIFO.
            Assert(~(idle & seen) | (beat == outs), "the engine went idle owing beats"),
            Assert(dues["weights"] == Mux(seen, desc["weight_words"] - driven(body, "w_count"),
                                          0), "weights taken disagree with the load counter"),
            Assert(dues["requant"] == Mux(seen, desc["blocks"] - driven(body, "p_count"), 0),
                   "requantizers taken disagree with the load counter"),
        ]
        if not self.mutant:
            self._credit_invariant(m, body, None)


class PoolHarness(Harness):
    """``source_stream`` of the max-pool stage (:class:`.maxpool.MaxPool`): ``source`` keeps
    ``valid`` and its payload until the transfer, for any descriptor and ``sink`` beats that
    obey the stream rules. Mutant: a source that drops ``valid``."""

    PROPERTIES = ("source_stream",)

    def __init__(self, config: PoolConfig, prop: str, *, mutant: bool = False):
        if prop not in self.PROPERTIES:
            raise ValueError(f"prop must be one of {', '.join(self.PROPERTIES)}, not {prop!r}")
        super().__init__(prop, mutant=mutant)
        dut = self.dut = MaxPool(config)
        self.take_streams(dut.layer, dut.sink)
        self.take_streams(dut.source, sink=True)
        self.glitch = Signal()
        if mutant:
            self.take(self.glitch)

    def build(self, m: Module, platform) -> None:
        dut = self.dut
        m.submodules.dut = dut
        stream_rules(m, dut.layer, check=Assume, name="layer")
        stream_rules(m, dut.sink, check=Assume, name="sink")
        valid = dut.source.valid & ~self.glitch if self.mutant else None
        stream_rules(m, dut.source, valid=valid, name="source")


def formal_checks():
    """(component, property, harness factory) for every conv-package property."""
    for slug, cfg in formal_configs().items():
        for prop in PROPERTIES:
            yield slug, prop, lambda *, mutant=False, c=cfg, p=prop: ConvHarness(c, p,
                                                                                 mutant=mutant)
    pool = PoolConfig(lanes=1, max_width=4, max_height=4, max_blocks=2)
    for prop in PoolHarness.PROPERTIES:
        yield "maxpool_formal", prop, lambda *, mutant=False, p=prop: PoolHarness(pool, p,
                                                                                  mutant=mutant)
