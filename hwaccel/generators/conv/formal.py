"""Formal harnesses of the convolution engine (run by ``hwaccel verify``).

Properties, on a small engine (one lane, one output channel a beat, 3 x 3 maps, kernels up to
3 x 3: every sequencer path of the big presets, few MACs):

``result_stream``  ``result`` keeps ``valid`` until the transfer and its payload stable, for
                   any descriptor and inputs that obey the stream rules, any back-pressure.
``result_fifo``    the result FIFO is never written while full (its ``w_rdy``) nor read while
                   empty: the credits always leave room for the beat being computed.
``beats``          with one fixed layer (:data:`BEATS_LAYER`: 3 x 3 input, 3 x 3 kernel, two
                   output channels), every accepted descriptor yields exactly its result beats
                   (none invented or duplicated), the engine never takes more activation,
                   weight or requantizer beats than the layer has, and none is lost: once the
                   layer's inputs are all in and ``result.ready`` has been high for
                   ``drain_cycles`` cycles, nothing is owed.

Mutants: ``result_stream`` a source that drops ``valid``; ``result_fifo`` and ``beats`` the
engine built with a result FIFO half as deep as its credits assume (a full FIFO refuses the
write, so a beat is lost).

The max-pool stage behind the engine (:class:`PoolHarness`) has its own ``source_stream``.
"""

from __future__ import annotations

import math

from amaranth.hdl import Assert, Assume, Module, Signal
from amaranth.lib.fifo import SyncFIFO

from ...formal.props import Harness, Owed, fifo_bounds, quiet_for, replaced, stream_rules
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


def formal_configs() -> dict[str, ConvConfig]:
    cfg = ConvConfig(lanes=1, block=1, max_width=3, max_height=3, max_cin=1, max_cout=2,
                     max_kernel=3, pool=False, name="formal_k3")
    return {cfg.slug: cfg}


class _HalfFIFO(SyncFIFO):
    def __init__(self, *, width: int, depth: int):
        super().__init__(width=width, depth=depth // 2)


class ConvHarness(Harness):
    """One property of one :class:`ConvEngine`."""

    # The MAC and requantize pipeline: operands, products, sums, accumulators, multipliers,
    # shifts (none of them steers control; the line-buffer and weight memories then drop out).
    # The line buffer's write data and the weight and partial-sum addresses feed memories only.
    abstract = tuple(f"w:{n}" for n in (
        "*s2_a", "*s2_w", "*prod_k*", "*sum_n*", "*acc_n*", "*mult_n*", "*shift_n*",
        "*scaled_n*", "*.sr", "*.w_addr", "*beat",
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

    def build(self, m: Module, platform) -> None:
        dut = self.dut
        if self.mutant and self.prop != "result_stream":
            with replaced(engine_module, "SyncFIFO", _HalfFIFO):
                body = self.open_up(dut, platform)
        else:
            body = self.open_up(dut, platform)
        m.submodules.dut = body
        for name in ("layer", "weights", "requant", "activations"):
            stream_rules(m, getattr(dut, name), check=Assume, name=name)
        if self.prop == "result_stream":
            valid = dut.result.valid & ~self.glitch if self.mutant else None
            stream_rules(m, dut.result, valid=valid, name="result")
        elif self.prop == "result_fifo":
            fifo = body.submodules.fifo
            fifo_bounds(m, depth=fifo.depth, w_en=fifo.w_en, w_rdy=fifo.w_rdy, r_en=fifo.r_en,
                        r_rdy=fifo.r_rdy, name="result_fifo")
        else:
            self._beats(m)

    def _beats(self, m: Module) -> None:
        cfg, dut = self.config, self.dut
        desc = descriptor(cfg, BEATS_LAYER)
        with m.If(dut.layer.valid):
            m.d.comb += Assume(dut.layer.payload.as_value()
                               == pack_struct(dut.layer.payload.shape(), desc))
        oh, ow = BEATS_LAYER.out_size
        outs = oh * ow * desc["blocks"]
        ins = BEATS_LAYER.height * BEATS_LAYER.width * desc["groups"]
        started = dut.layer.valid & dut.layer.ready

        def took(s):
            return s.valid & s.ready

        owed = Owed(m, limit=outs + engine_module.FIFO_DEPTH, name="results_owed")
        owed.update(started * outs, took(dut.result))
        inputs = []
        for name, per_layer in (("activations", ins), ("weights", desc["weight_words"]),
                                ("requant", desc["blocks"])):
            o = Owed(m, limit=per_layer, name=f"{name}_due")
            o.update(started * per_layer, took(getattr(dut, name)))
            inputs.append(o.count == 0)
        all_in = inputs[0] & inputs[1] & inputs[2]
        chunks = desc["weight_words"] // desc["blocks"]
        idle = quiet_for(m, all_in & ~started & dut.result.ready,
                         cycles=self.drain_cycles(outs * chunks), name="drained")
        with m.If(idle):
            m.d.comb += Assert(owed.count == 0, "a result beat was lost")

    def drain_cycles(self, issue_cycles: int) -> int:
        """Issue cycles of the whole layer, the pipeline (7 stages), the FIFO and slack."""
        return issue_cycles + engine_module.FIFO_DEPTH + 16 + math.ceil(issue_cycles / 4)


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
