"""The processor's checks of MATMUL (RTL), in :func:`.attn_isa.attn_check`'s order, and the job
the datapath's gatherer (:mod:`.matmul_gather`) reads.

* fields (SHAPE): ``count`` (M), ``attn.k`` and ``attn.n`` not 0, ``attn.shift >= 1``, and each
  row stride at least its row: ``sa >= KW``, ``sb >= NW`` (``KW`` transposed), ``sc >= NW``
  (``KW = ceil(K / lanes)``, ``NW = ceil(N / lanes)``);
* ranges (ADDRESS): A's ``(M - 1) x sa + KW`` words at ``src``, B's ``(R - 1) x sb + W`` at
  ``src2`` (``R, W = K, NW``; transposed ``N, KW``) and C's ``(M - 1) x sc + NW`` at ``dst``
  inside the scratchpad, and C overlapping neither A nor B (half-open word spans).

Processor timing (:func:`.checks.command_checks`): CALC registers ``KW`` and ``NW`` (a shift for a
power-of-two ``lanes``), the field checks, the factors and each span's base plus its
last row; CHECK multiplies (one product a span) and compares, as for every command. The job's
fields are registered in CALC too and stay until the next command's CALC; the processor's
tiling sets ``k0`` and ``n0`` per tile.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from amaranth.hdl import Mux, Signal
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ...numerics import MULT_BITS, SHIFT_MAX
from .attn_isa import MATMUL_MAX_K
from .beats import to_words
from .config import AccelConfig
from .isa import Op

__all__ = ["matmul_job_layout", "matmul_checks"]


def _most_words(cfg: AccelConfig) -> tuple[int, int]:
    """Most words in a row of K and of N (the fields' ranges)."""
    a = cfg.attention
    n_most = max(a.max_len, a.max_channels, cfg.act_depth * cfg.lanes)
    return math.ceil(MATMUL_MAX_K / cfg.lanes), math.ceil(n_most / cfg.lanes)


def _ceil_words(value, lanes: int):
    """``ceil(value / lanes)``: a shift for a power-of-two ``lanes``, else a constant divide."""
    if lanes & (lanes - 1) == 0:
        return (value + (lanes - 1)) >> (lanes.bit_length() - 1)
    return (value + (lanes - 1)) // lanes


def matmul_job_layout(cfg: AccelConfig) -> data.StructLayout:
    """What the gatherer needs of a MATMUL tile job: ``on`` (the job is a MATMUL's), B's
    address, stride and orientation, K, N and the requantizer, and the tile's first K word
    ``k0`` and first N block ``n0``."""
    from .attn_isa import attn_layout

    f = attn_layout(cfg)
    return data.StructLayout({
        "on": 1, "src2": range(cfg.act_depth), "sb": range(cfg.act_depth + 1), "transpose": 1,
        "k": f["k"].shape, "n": f["n"].shape, "mult": MULT_BITS, "shift": range(SHIFT_MAX + 1),
        "k0": range(cfg.act_depth + 1), "n0": range(cfg.act_depth + 1),
    })


def _job_of(m, cfg: AccelConfig, word) -> tuple:
    """``(job, groups, blocks)`` of command ``word`` (a view of :func:`.isa.command_layout`),
    combinational: :func:`matmul_job_layout`'s fields (``on``: it is a MATMUL; ``k0 = n0 =
    0``) and its first tile's K words and N blocks."""
    f, conv = word.attn, cfg.conv
    job = Signal(matmul_job_layout(cfg))
    m.d.comb += [job.on.eq(word.op == Op.MATMUL), job.src2.eq(f.src2), job.sb.eq(f.sb),
                 job.transpose.eq(f.transpose), job.k.eq(f.k), job.n.eq(f.n),
                 job.mult.eq(f.mult), job.shift.eq(f.shift)]
    kw, nw = _ceil_words(f.k, cfg.lanes), _ceil_words(f.n, cfg.lanes)
    return (job, Mux(kw > conv.max_groups, conv.max_groups, kw),
            Mux(nw > conv.max_blocks, conv.max_blocks, nw))


def matmul_checks(m, cmd, cfg: AccelConfig, *, calc) -> SimpleNamespace:
    """The processor's checks of a MATMUL command ``cmd``. Returns ``mine`` (the command is a
    MATMUL), ``kw`` and ``nw`` (registered in CALC), ``shape_ok`` and ``range_bad`` (for
    CHECK), ``job`` (:func:`matmul_job_layout`, ``k0 = n0 = 0``, registered in CALC), and
    ``job_now``, ``g_now``, ``b_now`` (what CALC registers, and its first tile's K words and N
    blocks: :func:`_job_of`)."""
    f, ad, rows = cmd.attn, cfg.act_depth, cmd.count
    mine = cmd.op == Op.MATMUL
    kw_most, nw_most = _most_words(cfg)
    kw_c, nw_c = _ceil_words(f.k, cfg.lanes), _ceil_words(f.n, cfg.lanes)
    kw, nw = Signal(range(kw_most + 1)), Signal(range(nw_most + 1))
    ok = Signal()
    big = range(2 * ad + kw_most + nw_most + 2)
    # Factors (rows - 1, stride) of A, B and C, and each span's base plus its last row's words.
    fa, fb, fc = (Signal(range(max(ad, MATMUL_MAX_K, nw_most * cfg.lanes) + 1))
                  for _ in range(3))
    sa, sb, sc = (Signal(range(ad + 1)) for _ in range(3))
    ea, eb, ec = (Signal(big) for _ in range(3))
    job = Signal(matmul_job_layout(cfg))
    job_now, g_now, b_now = _job_of(m, cfg, cmd)
    tr = f.transpose
    with m.If(calc):
        bw = Mux(tr, kw_c, nw_c)
        m.d.sync += [
            kw.eq(kw_c), nw.eq(nw_c),
            ok.eq((rows != 0) & (f.k != 0) & (f.n != 0) & (f.shift >= 1) & (f.sa >= kw_c)
                  & (f.sb >= bw) & (f.sc >= nw_c)),
            fa.eq(rows - 1), fb.eq(Mux(tr, f.n, f.k) - 1), fc.eq(rows - 1),
            sa.eq(f.sa), sb.eq(f.sb), sc.eq(f.sc),
            ea.eq(cmd.src + kw_c), eb.eq(f.src2 + bw), ec.eq(cmd.dst + nw_c),
            job.eq(job_now)]
    # CHECK: each span's end (one product), then the compares.
    a_end, b_end, c_end = ea + fa * sa, eb + fb * sb, ec + fc * sc
    a_lo, b_lo, c_lo = cmd.src, f.src2, cmd.dst
    range_bad = mine & ((a_end > ad) | (b_end > ad) | (c_end > ad)
                        | ((c_lo < a_end) & (a_lo < c_end)) | ((c_lo < b_end) & (b_lo < c_end)))
    return SimpleNamespace(mine=mine, kw=kw, nw=nw, g_now=g_now, b_now=b_now,
                           shape_ok=~mine | ok, range_bad=range_bad, job=job, job_now=job_now,
                           b_end=b_end, c_end=c_end)


#: Cycles a MATMUL's first tile job gathers B before its ISSUE: the gatherer starts in the
#: cycle the command's word loads into the processor's command register in DECODE, from the
#: word's fields, and reads on through CALC, CHECK and TILE while no job runs. After a job, in
#: the cycle after the retirement that loaded the word read ahead (that job's last result is
#: stored in the retirement's cycle): one cycle fewer, or none, from its ISSUE, when it was
#: checked under that job (:func:`.perf.checked_ahead`), unless it gathered under that job
#: (``mm_early``, :func:`.perf.gathered_ahead`). A fault in CHECK (SHAPE) or TILE (ADDRESS)
#: resets it. Later tiles gather from their ISSUE.
GATHER_LEAD = 4


def matmul_members(cfg) -> dict:
    """``job_mm``: a MATMUL tile job's fields for the gatherer (:mod:`.matmul_gather`): in
    CALC the command's (``k0 = n0 = 0``, as CALC registers them), else the registered ones
    with the tile's ``k0`` and ``n0`` (in RUN the next tile's, which the tile pipeline has
    settled by the time a tile ends); ``mm_pre``: a MATMUL's first tile job starts its gather
    (:data:`GATHER_LEAD`; ``job_mm`` then is the word's); ``mm_groups``, ``mm_blocks``: the
    tile's K words and N blocks (until TILE the first tile's)."""
    if cfg.attention is None:
        return {}
    conv = cfg.conv
    return {"job_mm": Out(matmul_job_layout(cfg)), "mm_pre": Out(1), "mm_early": Out(1),
            "mm_free": In(1),
            "mm_groups": Out(range(conv.max_groups + 1)),
            "mm_blocks": Out(range(conv.max_blocks + 1))}


def matmul_tiling(proc, m, cmd, chk, *, word, decode, calc, check, calc_regs,
                  running) -> SimpleNamespace:
    """Processor ``proc``'s MATMUL (attention configs: the GEMM M x K x N of two activations):
    its checks of the checked command ``cmd`` folded into ``chk`` (its own legality, SHAPE and
    ADDRESS checks: :func:`matmul_checks`, registered when ``calc_regs``: CALC, or CALC ahead
    under a job) and ``chk.mm``: what tiles (GEMM or MATMUL), K and N in words, A's and C's row
    strides, the descriptor the checked command's job starts with (MATMUL: the 1x1 template of
    :func:`.attn_isa.matmul_gemm`), ``tile(k0, n0)`` (the job's tile), ``accept()`` (the
    registers the running command's tiles read, loaded as its job fields are) and ``run``:
    ``tiled``, ``kw``, ``nb``, ``sa`` and ``sc`` of the ``running`` command (the checks may
    already hold the next one's); and the gatherer's early start (:data:`GATHER_LEAD`:
    ``mm_pre``, ``mm_groups``, ``mm_blocks``). ``calc`` and ``check``: the processor's CALC
    and CHECK states; ``word``: the program word the processor reads (its register of
    ``prog_data``)."""
    cfg, conv = proc.config, proc.config.conv
    op = cmd.op
    if cfg.attention is None:
        chk.mm = SimpleNamespace(
            tiled=op == Op.GEMM, kw=cmd.kw, nb=cmd.nb, sa=cmd.kw, sc=to_words(cfg, cmd.nb),
            desc=cmd.desc, tile=lambda k0, n0: [], accept=lambda: [], early=lambda **_: None,
            run=SimpleNamespace(tiled=running.op == Op.GEMM, kw=running.kw, nb=running.nb,
                                sa=running.kw, sc=to_words(cfg, running.nb)))
        return chk.mm
    from ..conv.layer import ConvLayer, descriptor

    mmc = matmul_checks(m, cmd, cfg, calc=calc_regs)
    mine = mmc.mine
    chk.legal = chk.legal | mine
    chk.shape_ok = Mux(mine, mmc.shape_ok, chk.shape_ok)
    chk.range_bad = Mux(mine, mmc.range_bad, chk.range_bad)
    g0 = Mux(mmc.kw > conv.max_groups, conv.max_groups, mmc.kw)
    b0 = Mux(mmc.nw > conv.max_blocks, conv.max_blocks, mmc.nw)
    template = descriptor(conv, ConvLayer(1, 1, cfg.lanes, conv.block, 1, 1, 0, False,
                                          False))
    desc = Signal.like(cmd.desc)
    m.d.comb += desc.eq(cmd.desc)
    with m.If(mine):
        m.d.comb += [getattr(desc, k).eq(v) for k, v in template.items()]
        m.d.comb += [desc.packed.eq(g0 == 1), desc.groups.eq(g0), desc.blocks.eq(b0),
                     desc.weight_words.eq(g0 * b0)]

    # The program word loads into the command register in DECODE; a word read ahead (always
    # ``pc + 1``'s under a job) loads as a job's command retires, but that job's last result
    # is stored in the same cycle (a read then returns the old word), so the gather starts in
    # the cycle after (``retired``: CALC, or the ISSUE of a command checked ahead), from the
    # command register.
    word, g_word, b_word = _job_of(m, cfg, word)
    retired = Signal()                        # the last cycle loaded the word read ahead
    m.d.sync += retired.eq(proc.retire & proc.in_job & (proc.pc + 1 < cfg.prog_depth))
    ahead = Signal(name="mm_ahead")   # the checked MATMUL's gather started under the job
    go = Signal()                     # and starts this cycle (``mm_early``)
    held = check | ahead | go         # the gatherer reads the checked command's job
    pre_d = decode & word.on
    pre_r = retired & mine & ~ahead
    now = calc | pre_r                # the command register's job (``job_now``)
    pre = pre_d | pre_r
    m.d.comb += [proc.mm_pre.eq(pre), proc.mm_early.eq(go),
                 proc.mm_groups.eq(Mux(pre_d, g_word, Mux(now, mmc.g_now, Mux(
                     held, g0, proc.job_desc.groups)))),
                 proc.mm_blocks.eq(Mux(pre_d, b_word, Mux(now, mmc.b_now, Mux(
                     held, b0, proc.job_desc.blocks))))]
    kw, nb = Mux(mine, mmc.kw, cmd.kw), Mux(mine, mmc.nw, cmd.nb)
    sa, sc = Mux(mine, cmd.attn.sa, cmd.kw), Mux(mine, cmd.attn.sc, cmd.nb)
    r_kw, r_nb = Signal.like(kw, name="run_kw"), Signal.like(nb, name="run_nb")
    r_sa, r_sc = Signal.like(sa, name="run_sa"), Signal.like(sc, name="run_sc")
    r_job = Signal(matmul_job_layout(cfg), name="run_mm")
    # The running command's writes: [run_wlo, run_whi) words.
    r_wlo = Signal(range(cfg.act_depth + 1), name="run_wlo")
    r_whi = Signal(range(2 * cfg.act_depth + 2), name="run_whi")

    def tile(k0, n0):
        job = Mux(pre_d, word.as_value(), Mux(now, mmc.job_now.as_value(), Mux(
            held, mmc.job.as_value(), r_job.as_value())))
        first = pre | calc | ahead | go
        return [proc.job_mm.eq(job), proc.job_mm.k0.eq(Mux(first, 0, k0)),
                proc.job_mm.n0.eq(Mux(first, 0, n0))]

    def accept():
        return [r_kw.eq(kw), r_nb.eq(nb), r_sa.eq(sa), r_sc.eq(sc), r_job.eq(mmc.job),
                r_wlo.eq(cmd.dst),
                r_whi.eq(Mux(mine, mmc.c_end, cmd.dst + chk.out_words))]

    def early(*, may, issue, idle):
        """The checked MATMUL's gather under the running job (``mm_early``), from a cycle
        ``may`` says it passed its checks under that job's last tile (not its retirement),
        when its first tile is one weight beat, B lies outside what the running command
        writes, and the gatherer and the copy's port are free (``mm_free``); ``ahead`` from
        then to its job's ISSUE (``issue``), or ``idle``."""
        single = (g0 == 1) & (b0 == 1)
        apart = (mmc.b_end <= r_wlo) | (r_whi <= cmd.attn.src2)
        m.d.comb += go.eq(may & mine & single & apart & proc.mm_free & ~ahead)
        with m.If(go):
            m.d.sync += ahead.eq(1)
        with m.If(issue | idle):
            m.d.sync += ahead.eq(0)

    r_op = running.op
    chk.mm = SimpleNamespace(tiled=(op == Op.GEMM) | mine, kw=kw, nb=nb, sa=sa, sc=sc,
                             desc=desc, tile=tile, accept=accept, early=early,
                             run=SimpleNamespace(tiled=(r_op == Op.GEMM) | (r_op == Op.MATMUL),
                                                 kw=r_kw, nb=r_nb, sa=r_sa, sc=r_sc))
    return chk.mm
