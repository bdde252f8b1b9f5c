"""GELU and the residual ADD fused into a GEMM's result path: no command and no pass of their own.

A GEMM with ``fuse.gelu`` set (:mod:`.isa`; only configurations with attention units have the
``fuse`` field) passes every requantized int8 output through the 256-entry GELU table
(:func:`hwaccel.numerics.gelu_int`) before the store: ``linear1`` + GELU of a transformer's FFN
is one command, and the GELU costs no pass over the scratchpad. The result equals the GEMM
followed by a GELU command on the same table exactly (every lane of every stored word, lanes
past N included, as the GELU command maps every lane of its words).

The table: the GELU command's own load (:func:`hwaccel.generators.attention.packing.pack`,
``load_bits // 8`` entries a weight word), ``T`` = :func:`gelu_beats` words just before the
GEMM's weights (at ``wgt - T``). The command's first tile job reads them in the same stream,
ahead of its weight beats (one beat a cycle: ``T`` more load cycles, and the engine gets its
weights ``T`` cycles later); that job never reuses held weights, so the table is always in
place before the first result. A table that would start below word 0 (``wgt < T``) is a SHAPE
fault as the first job starts. The table is held as ``T`` rows of a beat each, one copy per
lane (an asynchronous read per lane: a LUT RAM each), so the store takes a word a cycle as
before and no cycle is added.

With ``fuse.add`` the result (after the table, if any) is then added to the word it overwrites,
the residual (:mod:`.fuse_add`, the command's ``elt.add`` fields): the residual is read on the
read port of the activation scratchpad's copy that MATMUL's gatherer uses (:func:`.job_io.
matmul_io`; free during a GEMM), at the address of the result's store, which is walked a cycle
ahead of the store (the job's ``dst_run`` and ``dst_stride``); the store follows a cycle later,
so each tile job takes one cycle more. Every word is read before it is written.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, ResetInserter, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..attention.packing import GELU_ENTRY_BITS, per_beat
from .config import AccelConfig
from .fuse_add import FuseAdd
from .fuse_model import gelu_beats
from .isa import Op

__all__ = ["GeluTable", "fuse_io"]


class GeluTable(wiring.Component):
    """The fused GELU's table: ``we`` writes beat ``waddr`` (``wdata``, a weight word); ``y`` is
    ``x`` (an activation word) with every lane looked up, combinationally.

    Members
    -------
    we : ``In(1)``, waddr : ``In``, wdata : ``In(wgt_bits)``   a table beat
    x : ``In(act_bits)``, y : ``Out(act_bits)``                a result word and its GELU
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = config
        self.beats = gelu_beats(config)
        super().__init__({"we": In(1), "waddr": In(range(self.beats)),
                          "wdata": In(config.wgt_bits), "x": In(config.act_bits),
                          "y": Out(config.act_bits)})

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        e = per_beat(GELU_ENTRY_BITS, cfg.wgt_bits)
        for lane in range(cfg.lanes):
            tab = m.submodules[f"lane{lane}"] = memory.Memory(
                shape=unsigned(e * GELU_ENTRY_BITS), depth=self.beats, init=[])
            wr, rd = tab.write_port(), tab.read_port(domain="comb")
            idx = Signal(8, name=f"idx{lane}")   # q + 128 of the lane's int8 value
            m.d.comb += [wr.addr.eq(self.waddr), wr.data.eq(self.wdata[: e * GELU_ENTRY_BITS]),
                         wr.en.eq(self.we),
                         idx.eq(self.x.word_select(lane, 8) ^ 0x80),
                         rd.addr.eq(idx // e),
                         self.y.word_select(lane, 8).eq(
                             rd.data.word_select(idx % e, GELU_ENTRY_BITS))]
        return m


def fuse_io(m, cfg, proc, cmd, kill, wgt_dma, conv_job_kind) -> SimpleNamespace:
    """Wire the fused GELU into the datapath. ``cmd`` is the running command (the processor's
    command register, which holds from DECODE to retirement), ``conv_job_kind``
    the processor's kind code of a conv-engine job. Returns ``now`` (this ``job_start`` is a
    fused command's first job: no weight reuse), ``busy`` (a table beat is at the head of the
    weight stream: not the engine's), ``fault`` (the table would start below word 0),
    ``result(is_conv, res_valid, res_data)`` (the store's valid and data), ``stream(loaded)``
    (to call once the stream's handshake is known), ``now_dma()`` (to call after the weight
    DMA's defaults) and ``residual(port)`` (a read port of the activation scratchpad's copy
    that only MATMUL's gatherer reads otherwise: the fused ADD's residual reads)."""
    tab = m.submodules.gelu_table = GeluTable(cfg)
    t = tab.beats
    fused = (cmd.op == Op.GEMM) & cmd.fuse.gelu
    adder = m.submodules.fuse_add = ResetInserter(kill)(FuseAdd(cfg))
    add_on = Signal()            # the running job's results are added to the words they replace
    raddr, rfirst = Signal(range(cfg.act_depth)), Signal(range(cfg.act_depth))
    rcol = Signal(range(cfg.act_depth + 1))   # the residual reads walk the store's runs
    first = Signal(init=1)       # no job of the running command has started yet
    on = Signal()                # the running job's results go through the table
    left = Signal(range(t + 1))  # table beats still to come at the head of the weight stream
    fault = Signal()
    start = proc.job_start & (proc.job_kind == conv_job_kind)
    now = start & fused & first
    with m.If(proc.job_start):
        m.d.sync += [first.eq(0), on.eq(start & fused), fault.eq(now & (proc.job_wgt < t)),
                     add_on.eq(start & (cmd.op == Op.GEMM) & cmd.fuse.add),
                     raddr.eq(proc.job_dst), rfirst.eq(proc.job_dst), rcol.eq(0)]
        m.d.sync += left.eq(Mux(now, t, 0))
    with m.If(proc.retire | kill):
        m.d.sync += first.eq(1)
    with m.If(kill):
        m.d.sync += [on.eq(0), left.eq(0), fault.eq(0), add_on.eq(0)]
    busy = left != 0

    def now_dma():
        """The table's beats, then the tile's reads, as one stream (after the defaults)."""
        with m.If(now):
            m.d.comb += [wgt_dma.base.eq(proc.job_wgt - t),
                         wgt_dma.count.eq(proc.job_wgt_count + t),
                         wgt_dma.run.eq(proc.job_wgt_run + t),
                         wgt_dma.stride.eq(proc.job_wgt_stride + t)]

    def stream(loaded):
        m.d.comb += [tab.we.eq(loaded & busy), tab.waddr.eq(t - left),
                     tab.wdata.eq(wgt_dma.source.payload)]
        with m.If(loaded & busy):
            m.d.sync += left.eq(left - 1)

    def result(is_conv, res_valid, res_data):
        m.d.comb += tab.x.eq(res_data)
        data = Mux(is_conv & on, tab.y, res_data)
        raw = res_valid & is_conv & add_on
        m.d.comb += [adder.a.eq(data), adder.a_valid.eq(raw), adder.args.eq(proc.job_elt)]
        with m.If(raw):   # the next result's word: as the store walks (``dst_run``, stride)
            with m.If(rcol + 1 == proc.job_dst_run):
                m.d.sync += [raddr.eq(rfirst + proc.job_dst_stride),
                             rfirst.eq(rfirst + proc.job_dst_stride), rcol.eq(0)]
            with m.Else():
                m.d.sync += [raddr.eq(raddr + 1), rcol.eq(rcol + 1)]
        sel = is_conv & add_on
        return Mux(sel, adder.y_valid, res_valid), Mux(sel, adder.y, data)

    def residual(port):
        m.d.comb += adder.b.eq(port.data)
        with m.If(add_on):
            m.d.comb += port.addr.eq(raddr)

    return SimpleNamespace(now=now, busy=busy, fault=fault, stream=stream, result=result,
                           now_dma=now_dma, residual=residual)
