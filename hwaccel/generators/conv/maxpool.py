"""A 2x2 stride-2 max-pool stage over a stream of channel blocks (chained after the engine).

Interface
---------
``layer``   In   one descriptor per layer: input ``width x height``, ``blocks`` beats per pixel,
                 ``enable`` (0 passes the beats through unchanged, combinationally)
``sink``    In   ``{data: lanes x int8, last}``, pixel (y, x) then block b
``source``  Out  the same layout: pooled pixel (py, px) then block b; ``last`` on a layer's last
``ending``  Out  ``layer.ready`` a cycle ahead: idle, or finishing the layer's last beat (taking
                 it, or its second stage when pooled; its result may still be in the output
                 register next cycle)

Floor mode, like ``torch.nn.functional.max_pool2d``: an odd last row or column is dropped.
One row of partial maxima (``width // 2 x blocks`` words) is all the state: the even row writes
its horizontal pair maxima there, the odd row folds itself in and emits. The memory's read is
synchronous (block RAM on an FPGA, an SRAM macro on an ASIC): its address is the next beat's,
presented in the cycle before that beat arrives (the beat being taken now is followed by the
next address, any other cycle holds the current one).

A pooled beat takes two stages. The first registers the beat and its word as read (the block
RAM's read goes into a register, not into the compares: its clock-to-out is the slowest part
of an FPGA's block RAM); the second compares and loads the output register and a write
register, which writes the memory in the next cycle (so the compares end in flip-flops beside
them, not in the block RAM's data pins across the chip: at 4c652d6 that route was 4.3 of a
13.1 ns placed path). The read misses the three results before the beat's second stage (those
written in the cycle before the beat was taken and in the same cycle, and the one of the stage
that cycle, still to be written); registers forward all three, the newest first, as logic
here, not a property asked of the memory, so an SRAM macro without write-through serves and a
gate count includes it (with :data:`.rw.RW_POISON` a read in its word's write cycle returns
the word inverted, and the benches stay exact). A beat stuck in the second stage (the output
register full) writes its word again each cycle, the same value. Beats still stream at one a
cycle; a pooled layer ends a cycle later (:data:`.perf.POOL_STAGE`), its last word written a
cycle after that.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import PoolConfig
from .layouts import pool_beat_layout, pool_layer_layout
from .rw import NO_RW_CHECK, read_data

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
        # (``pbase``, ``(x >> 1) * max_blocks``, in ``pbase_range``) plus b.
        pbase_range = range(cfg.depth + cfg.max_blocks)
        accept = self.layer.valid & ~active
        with m.If(accept):
            m.d.sync += [desc.eq(self.layer.payload), active.eq(1), y.eq(0), x.eq(0), b.eq(0)]

        # The forwarding below gives a read the word written in its cycle, so what the memory
        # returns then is never used: ``no_rw_check`` tells Yosys so, and it adds no logic of
        # its own for it (on ECP5 a delayed write, a compare of the read address and a
        # multiplexer after the block RAM's output: the netlist estimate's second path at
        # 3360b44, 12.9 ns, from the stream's handshake into that compare).
        mem = m.submodules.partial = memory.Memory(shape=unsigned(cfg.lanes * 8),
                                                   depth=cfg.depth, init=[],
                                                   attrs=NO_RW_CHECK)
        wr, rd = mem.write_port(), mem.read_port()

        out_valid = Signal()
        out = Signal(pool_beat_layout(cfg))
        # The second stage: a pooled beat, its memory word as read and where its result goes.
        b_valid, b_write, b_emit, b_fresh = Signal(), Signal(), Signal(), Signal()
        b_last, b_plast = Signal(), Signal()
        b_v = Signal.like(self.sink.payload.data)
        b_addr = Signal(pbase_range)
        b_read = Signal(cfg.lanes * 8)
        b_go = b_valid & (~b_emit | ~out_valid | self.source.ready)
        # All beats taken (a pooled layer's last may still be in the second stage).
        taken = Signal()
        # Pooling off: beats pass straight through (no register), once a pooled layer's last
        # beat has left the output register.
        through = Signal(pool_beat_layout(cfg))
        bypass = active & ~desc.enable & ~out_valid
        m.d.comb += [self.source.valid.eq(out_valid | (bypass & self.sink.valid)),
                     self.source.payload.eq(Mux(out_valid, out, through))]
        take = Signal()
        m.d.comb += [self.sink.ready.eq(Mux(desc.enable, active & ~taken & (~b_valid | b_go),
                                            bypass & self.source.ready)),
                     take.eq(self.sink.valid & self.sink.ready)]
        with m.If(self.source.ready):
            m.d.sync += out_valid.eq(0)

        ph, pw = desc.height >> 1, desc.width >> 1
        # Each counter's "at its last value" is a flag register, worked out when the counter
        # steps (a compare of registers), so a beat's handshake only gates flags.
        last_b, last_x, last_y = Signal(), Signal(), Signal()
        last_x_next = Mux(last_x, desc.width == 1, x + 2 == desc.width)
        with m.If(accept):
            p = self.layer.payload
            m.d.sync += [last_b.eq(p.blocks == 1), last_x.eq(p.width == 1),
                         last_y.eq(p.height == 1)]
        with m.If(take):
            m.d.sync += last_b.eq(Mux(last_b, desc.blocks == 1, b + 2 == desc.blocks))
            with m.If(last_b):
                m.d.sync += last_x.eq(last_x_next)
                with m.If(last_x):
                    m.d.sync += last_y.eq(y + 2 == desc.height)
        inside = ((y >> 1) < ph) & ((x >> 1) < pw)
        # The next beat's address: the next block, else the pixel's first block at the next
        # pooled column (after an odd column), this one (after an even one) or the row's first.
        # Each is a register worked out as the counters step (``addr`` is ``pbase + b``,
        # ``addr1`` one more, ``next_pbase`` the next pixel's first), so the handshakes only
        # pick one: their adders were in front of the block RAM's address (c5086a7's placed
        # path, 12.9 ns).
        addr = Signal(range(cfg.depth + 2 * cfg.max_blocks), name="addr")
        addr1 = Signal.like(addr, name="addr1", init=1)
        next_pbase = Signal(pbase_range, name="next_pbase")
        next_addr = Mux(last_b, next_pbase, addr1)
        m.d.comb += rd.addr.eq(Mux(take, next_addr, Mux(accept, 0, addr)))
        with m.If(accept):
            m.d.sync += [addr.eq(0), addr1.eq(1), next_pbase.eq(0)]
        with m.If(take):
            m.d.sync += [addr.eq(addr1), addr1.eq(addr1 + 1)]
            with m.If(last_b):   # (after the row's last column ``next_pbase`` is 0)
                m.d.sync += [addr.eq(next_pbase), addr1.eq(next_pbase + 1), next_pbase.eq(
                    Mux(last_x_next | last_x, 0,
                        Mux(x[0], next_pbase, next_pbase + cfg.max_blocks)))]
        # The second stage's word, written from registers in the next cycle.
        w_en, w_addr = Signal(), Signal.like(b_addr)
        w_data = Signal.like(wr.data)
        m.d.comb += [wr.en.eq(w_en), wr.addr.eq(w_addr), wr.data.eq(w_data)]
        # Forwarding: the write in the cycle of the read (``hit_a``, for the next beat), the
        # one in the cycle the beat is taken (``hit_b``) and the second stage's word then
        # (``hit_c``), all for its second stage. ``hit_a`` compares each address the read may
        # take and lets the handshakes pick.
        hit_a, data_a = Signal(), Signal.like(wr.data)
        hit_b, data_b = Signal(), Signal.like(wr.data)
        hit_c, data_c = Signal(), Signal.like(wr.data)
        same = Mux(take, next_addr == w_addr, Mux(accept, w_addr == 0, addr == w_addr))
        m.d.sync += [hit_a.eq(wr.en & same), data_a.eq(wr.data)]
        lanes = []
        keep = Mux(hit_c, data_c, Mux(hit_b, data_b, b_read))
        for i in range(cfg.lanes):
            old = keep[i * 8:(i + 1) * 8].as_signed()
            lanes.append(Mux(b_fresh | (b_v[i] > old), b_v[i], old))
        best = Cat(*lanes)
        m.d.sync += [w_en.eq(b_valid & b_write), w_addr.eq(b_addr), w_data.eq(best)]
        v = self.sink.payload.data
        m.d.comb += [through.data.eq(v), through.last.eq(last_b & last_x & last_y)]
        with m.If(b_go):
            m.d.sync += b_valid.eq(0)
            with m.If(b_emit):
                m.d.sync += [out_valid.eq(1), out.data.eq(best), out.last.eq(b_plast)]
            with m.If(b_last):
                m.d.sync += active.eq(0)
        with m.If(take):
            with m.If(desc.enable):
                m.d.sync += [
                    b_valid.eq(1), b_v.eq(v), b_addr.eq(addr), b_write.eq(inside),
                    b_emit.eq(inside & y[0] & x[0]), b_fresh.eq(~y[0] & ~x[0]),
                    b_last.eq(last_b & last_x & last_y),
                    b_plast.eq(((y >> 1) == ph - 1) & ((x >> 1) == pw - 1) & last_b),
                    b_read.eq(Mux(hit_a, data_a, read_data(m, wr, rd, "partial"))),
                    hit_b.eq(wr.en & (wr.addr == addr)), data_b.eq(wr.data),
                    hit_c.eq(b_valid & b_write & (b_addr == addr)), data_c.eq(best)]
            m.d.sync += b.eq(b + 1)
            with m.If(last_b):
                m.d.sync += [b.eq(0), x.eq(x + 1)]
                with m.If(last_x):
                    m.d.sync += [x.eq(0), y.eq(y + 1)]
                    with m.If(last_y):
                        m.d.sync += taken.eq(1)
                        with m.If(~desc.enable):
                            m.d.sync += active.eq(0)
        with m.If(accept):
            m.d.sync += taken.eq(0)
        m.d.comb += self.ending.eq(~active | (take & last_b & last_x & last_y & ~desc.enable)
                                   | (b_go & b_last))
        return m
