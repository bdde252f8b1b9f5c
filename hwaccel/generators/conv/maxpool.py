"""A 2x2 stride-2 max-pool stage over a stream of channel blocks (chained after the engine).

Interface
---------
``layer``   In   one descriptor per layer: input ``width x height``, ``blocks`` beats per pixel,
                 ``enable`` (0 passes the beats through unchanged, combinationally)
``sink``    In   ``{data: lanes x int8, last}``, pixel (y, x) then block b
``source``  Out  the same layout: pooled pixel (py, px) then block b; ``last`` on a layer's last
``ending``  Out  ``layer.ready`` a cycle ahead: idle, or taking the layer's last beat (a pooled
                 layer's last beat may still be in the output register next cycle)

Floor mode, like ``torch.nn.functional.max_pool2d``: an odd last row or column is dropped.
One row of partial maxima (``width // 2 x blocks`` words) is all the state: the even row writes
its horizontal pair maxima there, the odd row folds itself in and emits. The memory's read is
synchronous (block RAM on an FPGA, an SRAM macro on an ASIC): its address is the next beat's,
presented in the cycle before that beat arrives (the beat being taken now is followed by the
next address, any other cycle holds the current one). A read of the word written in the same
cycle (consecutive beats of one pixel pair with one block) takes the written value from a
register instead: the forwarding is logic here, not a property asked of the memory, so an SRAM
macro without write-through serves and a gate count includes it. Every beat takes the cycle it
took with an asynchronous read.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import PoolConfig
from .layouts import pool_beat_layout, pool_layer_layout

__all__ = ["MaxPool"]


class MaxPool(wiring.Component):
    """2x2 stride-2 max-pool built from a :class:`PoolConfig`.

    Parameters
    ----------
    config : PoolConfig

    Members
    -------
    layer : ``In(stream.Signature(pool_layer_layout(config)))``
    sink : ``In(stream.Signature(pool_beat_layout(config)))``
    source : ``Out(stream.Signature(pool_beat_layout(config)))``
    ending : ``Out(1)``
    """

    def __init__(self, config: PoolConfig):
        if not isinstance(config, PoolConfig):
            raise TypeError(f"config must be a PoolConfig, not {config!r}")
        self.config = config
        super().__init__({
            "layer": In(stream.Signature(pool_layer_layout(config))),
            "sink": In(stream.Signature(pool_beat_layout(config))),
            "source": Out(stream.Signature(pool_beat_layout(config))),
            "ending": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        desc = Signal(pool_layer_layout(cfg))
        active = Signal()
        y, x = Signal(range(cfg.max_height)), Signal(range(cfg.max_width))
        b = Signal(range(cfg.max_blocks))
        m.d.comb += self.layer.ready.eq(~active)
        # The partial maxima's address of pixel (y, x), block b: its pooled column's first word
        # (``(x >> 1) * max_blocks``) plus b.
        pbase = Signal(range(cfg.depth + cfg.max_blocks))
        accept = self.layer.valid & ~active
        with m.If(accept):
            m.d.sync += [desc.eq(self.layer.payload), active.eq(1), y.eq(0), x.eq(0), b.eq(0),
                         pbase.eq(0)]

        mem = m.submodules.partial = memory.Memory(shape=unsigned(cfg.lanes * 8),
                                                   depth=cfg.depth, init=[])
        wr, rd = mem.write_port(), mem.read_port()

        out_valid = Signal()
        out = Signal(pool_beat_layout(cfg))
        # Pooling off: beats pass straight through (no register), once a pooled layer's last
        # beat has left the output register.
        through = Signal(pool_beat_layout(cfg))
        bypass = active & ~desc.enable & ~out_valid
        m.d.comb += [self.source.valid.eq(out_valid | (bypass & self.sink.valid)),
                     self.source.payload.eq(Mux(out_valid, out, through))]
        take = Signal()
        m.d.comb += [self.sink.ready.eq(Mux(desc.enable, active & (~out_valid | self.source.ready),
                                            bypass & self.source.ready)),
                     take.eq(self.sink.valid & self.sink.ready)]
        with m.If(self.source.ready):
            m.d.sync += out_valid.eq(0)

        ph, pw = desc.height >> 1, desc.width >> 1
        last_b, last_x, last_y = b == desc.blocks - 1, x == desc.width - 1, y == desc.height - 1
        inside = ((y >> 1) < ph) & ((x >> 1) < pw)
        addr = pbase + b
        # The next beat's address: the next block, else the pixel's first block at the next
        # pooled column (after an odd column), this one (after an even one) or the row's first.
        next_pbase = Mux(last_x, 0, Mux(x[0], pbase + cfg.max_blocks, pbase))
        next_addr = Mux(last_b, next_pbase, addr + 1)
        m.d.comb += [rd.addr.eq(Mux(take, next_addr, Mux(accept, 0, addr))),
                     wr.addr.eq(addr)]
        # Write-through: the word read next cycle is the one written this cycle.
        fwd_hit, fwd_data = Signal(), Signal.like(wr.data)
        m.d.sync += [fwd_hit.eq(wr.en & (rd.addr == wr.addr)), fwd_data.eq(wr.data)]
        v = self.sink.payload.data
        keep = Mux(fwd_hit, fwd_data, rd.data)
        lanes = []
        for i in range(cfg.lanes):
            old = keep[i * 8:(i + 1) * 8].as_signed()
            fresh = ~y[0] & ~x[0]  # the window's first pixel starts the maximum
            lanes.append(Mux(fresh | (v[i] > old), v[i], old))
        best = Cat(*lanes)
        m.d.comb += [wr.data.eq(best), wr.en.eq(take & desc.enable & inside)]
        pooled_last = ((y >> 1) == ph - 1) & ((x >> 1) == pw - 1) & last_b
        m.d.comb += [through.data.eq(v), through.last.eq(last_b & last_x & last_y)]
        with m.If(take):
            with m.If(desc.enable & inside & y[0] & x[0]):
                m.d.sync += [out_valid.eq(1), out.data.eq(best), out.last.eq(pooled_last)]
            m.d.sync += b.eq(b + 1)
            with m.If(last_b):
                m.d.sync += [b.eq(0), x.eq(x + 1), pbase.eq(next_pbase)]
                with m.If(last_x):
                    m.d.sync += [x.eq(0), y.eq(y + 1)]
                    with m.If(last_y):
                        m.d.sync += active.eq(0)
        m.d.comb += self.ending.eq(~active | (take & last_b & last_x & last_y))
        return m
