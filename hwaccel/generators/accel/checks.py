"""The command processor's shape and range checks (:func:`command_checks`), across CALC and
CHECK.

Every command's reads and writes are checked whole before anything moves: a shape the
configuration cannot run is a SHAPE fault, a range past its scratchpad an ADDRESS fault. The
checks of ADD/AVGPOOL (:mod:`.eltwise_checks`) and of LSTM (:mod:`.lstm_checks`) live beside
their golden twins; this module holds CONV, GEMM and MAXPOOL's and puts them all together.
"""

from __future__ import annotations

import operator
from functools import reduce
from types import SimpleNamespace

from amaranth.hdl import Const, Mux, Signal

from ..conv.dw_beats import group_words
from .attn_checks import ATTN_UNIT_OPS, attn_checks
from .beats import to_words, whole_words
from .config import AccelConfig
from .eltwise_checks import elt_checks
from .isa import Op, elt_ops
from .lstm_checks import lstm_checks, lstm_words

__all__ = ["command_checks"]


def _rq_beats(cfg: AccelConfig, d):
    """A CONV command's requantizer beats per weight read of ``weight_words``: its blocks, a
    depthwise group's ``dw_beats``."""
    db = cfg.conv.dw_beats
    return d.blocks if db == 1 else Mux(d.depthwise, db, d.blocks)


def command_checks(m, cmd, cfg: AccelConfig, *, calc) -> SimpleNamespace:
    """The shape and range checks, across CALC, CHECK and the cycle after: one multiply deep
    per cycle, and no multiply before a compare.

    A range check is ``base + a * b > depth``. CALC registers the factors ``a`` and ``b``
    (themselves at most one product of command fields) and the room ``depth - base``;
    CHECK multiplies (into registers), and ``range_bad`` compares those products in the cycle
    after CHECK. Shape checks are registered in CALC, except the descriptor equalities that
    need a sum or a product first (those compare in CHECK: ``shape_ok``, which the processor
    registers and reads in the cycle after, with the range checks).
    """
    conv = cfg.conv
    ad, wd = cfg.act_depth, cfg.wgt_depth
    mg, mb = conv.max_groups, conv.max_blocks
    d, p, op = cmd.desc, cmd.pool, cmd.op
    kw, nb = cmd.kw, cmd.nb
    top = max(ad, wd, conv.max_width * conv.max_height, conv.weight_depth + mb) + 2
    if cfg.lstm is not None:
        top = max(top, *lstm_words(cfg))
    if cfg.attention is not None:   # a LAYERNORM's load words (at most 1 + C), a table's
        top = max(top, cfg.attention.max_channels + 2, 257)
    # (named: the placed-path reports print the registers' names)
    in_a, in_b, out_a, out_b, w_a, w_b = (Signal(range(top), name=n) for n in (
        "in_a", "in_b", "out_a", "out_b", "w_a", "w_b"))
    room_src, room_dst, room_wgt = (Signal(range(max(ad, wd) + 1), name=n) for n in (
        "room_src", "room_dst", "room_wgt"))
    past = Signal()             # a base beyond its memory (fields can encode more)
    ok_calc, legal = Signal(name="ok_calc"), Signal(name="legal")
    ow_calc, oh_calc = Signal(range(top), name="ow_calc"), Signal(range(top), name="oh_calc")
    gb = Signal(range(mg * mb + 1))
    pixels_out = Signal(range(conv.max_width * conv.max_height + 1))

    ow_p = Mux(d.pool, d.out_width >> 1, d.out_width)
    oh_p = Mux(d.pool, d.out_height >> 1, d.out_height)
    span_w = d.width + d.pad_left + d.pad_right
    span_h = d.height + d.pad_top + d.pad_bottom
    kh, kw_ = d.kernel_h, d.kernel_w

    def le(field, limit):
        # A constant where the field's bits cannot exceed the limit (lint CMPCONST).
        return Const(1) if limit >= (1 << len(field)) - 1 else field <= limit

    # Fields hold ``range(limit + 1)`` values, but their bits can encode more: check both
    # ends against the engine's limits (an overflowing index would corrupt or hang it).
    derived_ok = ((kh != 0) & le(kh, conv.max_kernel) & (kw_ != 0) & le(kw_, conv.max_kernel)
                  & (d.groups != 0) & le(d.groups, mg)
                  & (d.blocks != 0) & le(d.blocks, mb)
                  & (d.weight_words != 0)
                  & le(d.weight_words, conv.weight_depth)
                  & (d.row_lanes != 0) & le(d.row_lanes, conv.lanes)
                  & (d.shift_lanes != 0) & le(d.shift_lanes, conv.lanes)
                  & (d.rows_per_chunk != 0) & le(d.rows_per_chunk, conv.lanes)
                  & le(d.pad_top, conv.max_pad) & le(d.pad_left, conv.max_pad)
                  & le(d.pad_bottom, conv.max_pad) & le(d.pad_right, conv.max_pad))
    conv_ok = (derived_ok & (d.width != 0) & (d.height != 0)
               & (d.pad_top + d.pad_bottom < kh) & (d.pad_left + d.pad_right < kw_)
               & le(d.width, conv.max_width) & le(d.height, conv.max_height)
               & (span_w >= kw_) & (span_h >= kh)
               & (~d.pool | ((d.out_width >= 2) & (d.out_height >= 2))))
    # Depthwise: one group and block a job (``nb`` jobs), the engine's window register.
    dw_ok = ((nb != 0) & (d.groups == 1) & (d.blocks == 1) & ~d.packed
             & (d.weight_words == group_words(conv, kh, kw_)) & le(kh, conv.dw_kernel)
             & le(kw_, conv.dw_kernel) & (d.row_lanes == conv.lanes)
             & (d.shift_lanes == conv.lanes) & (d.rows_per_chunk == 1))
    conv_ok = conv_ok & (~d.depthwise | dw_ok)
    if cfg.word_beats > 1:   # whole words (:mod:`.beats`); a depthwise group is a word
        conv_ok = conv_ok & (d.depthwise | whole_words(cfg, d.blocks))
    gemm_ok = (derived_ok & ~d.depthwise & (kh == 1) & (kw_ == 1) & ~d.stride2_h
               & ~d.stride2_w & ~d.pool
               & (d.pad_top == 0) & (d.pad_left == 0) & (d.pad_bottom == 0)
               & (d.pad_right == 0)
               & (cmd.count != 0) & (kw != 0) & (nb != 0) & le(kw, cfg.gemm_max_words)
               & (d.groups == Mux(kw > mg, mg, kw)) & (d.blocks == Mux(nb > mb, mb, nb)))
    if cfg.word_beats > 1:
        gemm_ok = gemm_ok & whole_words(cfg, nb)
    pool_ok = ((p.width >= 2) & (p.height >= 2) & (p.blocks != 0)
               & le(p.width, conv.max_width) & le(p.height, conv.max_height)
               & le(p.blocks, cfg.maxpool_config.max_blocks))

    elt = elt_checks(m, cmd, cfg, calc=calc, le=le)   # ADD and AVGPOOL
    lstm = lstm_checks(m, cmd, cfg, calc=calc, le=le) if cfg.lstm is not None else None
    attn = attn_checks(m, cmd, cfg, calc=calc, le=le) if cfg.attention is not None else None
    ops = ((Op.CONV, Op.GEMM, Op.MAXPOOL) + ((Op.LSTM,) if cfg.lstm is not None else ())
           + elt_ops(cfg) + (ATTN_UNIT_OPS if attn is not None else ()))
    with m.If(calc):
        m.d.sync += [room_src.eq(ad - cmd.src), room_dst.eq(ad - cmd.dst),
                     room_wgt.eq(wd - cmd.wgt),
                     past.eq(~le(cmd.src, ad) | ~le(cmd.dst, ad)
                             | (~le(cmd.wgt, wd) & (op != Op.MAXPOOL) & ~elt.mine)),
                     legal.eq(reduce(operator.or_, [op == o for o in ops])),
                     w_a.eq(d.weight_words + _rq_beats(cfg, d)),
                     w_b.eq(1), pixels_out.eq(d.out_width * d.out_height),
                     ow_calc.eq(((span_w - kw_) >> d.stride2_w) + 1),
                     oh_calc.eq(((span_h - kh) >> d.stride2_h) + 1),
                     gb.eq(d.groups * d.blocks)]
        with m.If(op == Op.CONV):
            m.d.sync += [in_a.eq(d.width * d.height), in_b.eq(Mux(d.depthwise, nb, d.groups)),
                         out_a.eq(ow_p * oh_p),
                         out_b.eq(Mux(d.depthwise, nb, to_words(cfg, d.blocks))),
                         w_b.eq(Mux(d.depthwise, nb, 1)), ok_calc.eq(conv_ok)]
        with m.Elif(op == Op.GEMM):
            # The whole of A, C and the weights of every tile (kw + 1 words per block).
            m.d.sync += [in_a.eq(cmd.count), in_b.eq(kw), out_a.eq(cmd.count),
                         out_b.eq(to_words(cfg, nb)), w_a.eq(kw + 1), w_b.eq(nb),
                         ok_calc.eq(gemm_ok)]
        with m.Elif(op == Op.MAXPOOL):
            m.d.sync += [in_a.eq(p.width * p.height), in_b.eq(p.blocks),
                         out_a.eq((p.width >> 1) * (p.height >> 1)), out_b.eq(p.blocks),
                         ok_calc.eq(pool_ok)]
        with m.Elif(elt.mine):
            e = elt.calc
            m.d.sync += [in_a.eq(e["in_a"]), in_b.eq(e["in_b"]), out_a.eq(e["out_a"]),
                         out_b.eq(e["out_b"]), w_a.eq(e["w_a"]), ok_calc.eq(e["ok"])]
        with m.Else():
            m.d.sync += ok_calc.eq(0)
        if lstm is not None:
            e = lstm.calc
            with m.If(op == Op.LSTM):
                m.d.sync += [in_a.eq(e["in_a"]), in_b.eq(e["in_b"]), out_a.eq(e["out_a"]),
                             out_b.eq(e["out_b"]), w_a.eq(e["w_a"]), ok_calc.eq(e["ok"])]
        if attn is not None:
            e = attn.calc
            with m.If(attn.mine):
                m.d.sync += [in_a.eq(e["in_a"]), in_b.eq(e["in_b"]), out_a.eq(e["out_a"]),
                             out_b.eq(e["out_b"]), w_a.eq(e["w_a"]), ok_calc.eq(e["ok"])]

    in_words, out_words, w_words = in_a * in_b, out_a * out_b, w_a * w_b
    # CHECK's products, registered (every cycle: the factors hold from CALC on), so the range
    # compares read them in the cycle after CHECK (the command's first TILE or ISSUE).
    in_r, out_r, w_r = (Signal(len(x), name=n) for x, n in (
        (in_words, "in_r"), (out_words, "out_r"), (w_words, "w_r")))
    m.d.sync += [in_r.eq(in_words), out_r.eq(out_words), w_r.eq(w_words)]
    shape_ok = ok_calc & Mux(op == Op.CONV, (ow_calc == d.out_width)
                             & (oh_calc == d.out_height),
                             (op != Op.GEMM) | (d.weight_words == gb)) & elt.shape_ok
    # ``dst`` strictly inside the words read at ``src`` (src < dst < src + in_words): CALC
    # registers dst > src and dst - src, so this is one compare of two registers.
    above, gap = Signal(name="above"), Signal(len(cmd.dst), name="gap")
    with m.If(calc):
        m.d.sync += [above.eq(cmd.dst > cmd.src), gap.eq(cmd.dst - cmd.src)]
    inside = above & (gap < in_r)
    range_bad = (past | (in_r > room_src) | (out_r > room_dst)
                 | ((w_r > room_wgt) & (op != Op.MAXPOOL)) | elt.range_bad(inside))
    if attn is not None:
        range_bad = range_bad | attn.range_bad(inside)
    return SimpleNamespace(in_words=in_words, out_words=out_words, w_words=w_words,
                           legal=legal, shape_ok=shape_ok, range_bad=range_bad,
                           pixels_out=pixels_out, elt=elt.mine, in_a=in_a, out_a=out_a,
                           w_a=w_a, lstm_job=lstm.job if lstm is not None else None,
                           attn=attn.mine if attn is not None else 0,
                           attn_job=attn.job if attn is not None else None)
