"""The convolution engine with the max-pool stage chained after it (per-layer enable).

The ``layer`` descriptor is forked: the engine takes it whole, the pool takes the engine's output
size, its block count and the layer's ``pool`` bit. The fork accepts a descriptor only when both
are idle, so the two never disagree about which layer a beat belongs to. With pooling off the
stage passes beats straight through (no register), so one engine runs the CNN's pooled and
unpooled layers alike.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring

from .config import ConvConfig
from .dw_beats import beat_blocks
from .engine import ConvEngine, engine_signature
from .maxpool import MaxPool

__all__ = ["ConvPool"]


class ConvPool(wiring.Component):
    """:class:`ConvEngine` followed by :class:`MaxPool`; the same ports as the engine.

    Parameters
    ----------
    config : ConvConfig
    """

    def __init__(self, config: ConvConfig):
        if not isinstance(config, ConvConfig):
            raise TypeError(f"config must be a ConvConfig, not {config!r}")
        self.config = config
        super().__init__(engine_signature(config))

    def elaborate(self, platform):
        m = Module()
        eng = m.submodules.engine = ConvEngine(self.config)
        pool = m.submodules.pool = MaxPool(self.config.pool_config)
        for name in ("weights", "requant", "activations"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(eng, name))
        wiring.connect(m, eng.result, pool.sink)
        wiring.connect(m, pool.source, wiring.flipped(self.result))
        m.d.comb += [eng.psum_rdata.eq(self.psum_rdata), self.psum_raddr.eq(eng.psum_raddr),
                     self.psum_waddr.eq(eng.psum_waddr), self.psum_wdata.eq(eng.psum_wdata),
                     self.psum_we.eq(eng.psum_we)]
        d = self.layer.payload
        both = eng.layer.ready & pool.layer.ready
        m.d.comb += [
            self.layer.ready.eq(both),
            self.ending.eq(eng.ending & pool.ending),
            eng.layer.payload.eq(d),
            eng.layer.valid.eq(self.layer.valid & pool.layer.ready),
            pool.layer.payload.width.eq(d.out_width),
            pool.layer.payload.height.eq(d.out_height),
            pool.layer.payload.blocks.eq(beat_blocks(self.config, d)),
            pool.layer.payload.enable.eq(d.pool),
            pool.layer.valid.eq(self.layer.valid & eng.layer.ready),
        ]
        return m
