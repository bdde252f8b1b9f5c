"""A preset-specific pass on the float IR, before quantization: an average pool whose window
holds more values than the preset's AVGPOOL unit averages (``AccelConfig.avg_max_window``, 128 on
the ECP5 presets: a 12 x 12 global pool is 144) becomes two pools, the window's rows (``1 x kw``)
and then its columns (``kh x 1``). In float that is the same mean; in int8 it is one rounding
more (half a step of the pool's scale, which both pools keep), and the integer twin and the
accelerator compute the two pools alike, so they stay equal. A window whose side alone exceeds
the limit stays one pool, and lowering names the limit.

A line's global average whose length the AVGPOOL unit cannot hold as a map (a length with no
divisor up to the unit's row width whose rows fit its height: 101 MFCC frames, a prime past
``default``'s 96) becomes a depthwise ``1 x 2`` conv at stride 2 of weights ``n / L`` (``n``
its ``ceil(L / 2)`` outputs; a zero padded on the left of an odd line) and the average of its
``n`` values, until the length fits: in float the same mean, in int8 a rounding more a halving
(:func:`split_line_means`).

A global average over more channel words than the AVGPOOL unit keeps runs as a map of one pixel
a row, a row a pixel; where the map has more pixels than the unit's rows (MobileNetV2's 8 x 8
map of 128 channels on ``ecp5_128``, 64 rows against 48), it becomes an average over bands of
whole rows (``a x W``, the most rows the unit's height holds) and the average of their
``H / a`` results: the same mean in float, a rounding more in int8 (:func:`split_wide_means`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..generators.accel.avg_view import avg_parts
from . import ir

__all__ = ["split_averages", "split_line_means", "split_wide_means", "rewrite_ops"]


def rewrite_ops(graph: ir.Graph, rewrite, kind=ir.AvgPool2d) -> ir.Graph:
    """``graph`` with each op of ``kind`` for which ``rewrite(op, shapes, fresh)`` returns ops
    replaced by them (``fresh(name)``: ``name``, primed until unused); ``graph`` itself when
    none is."""
    shapes, names = graph.shapes(), {op.name for op in graph.ops}

    def fresh(name: str) -> str:
        while name in names:
            name += "'"
        names.add(name)
        return name

    ops, split = [], False
    for op in graph.ops:
        new = rewrite(op, shapes, fresh) if isinstance(op, kind) else None
        ops += new or [op]
        split = split or bool(new)
    return dataclasses.replace(graph, ops=tuple(ops)) if split else graph


def split_averages(graph: ir.Graph, limit: int) -> ir.Graph:
    """``graph`` with each :class:`~.ir.AvgPool2d` over more than ``limit`` values whose rows
    and columns each fit split in two (the second keeps the op's name, so its readers are
    unchanged; the first is ``<name>.rows``); ``graph`` itself when none is."""

    def rows(op, shapes, fresh):
        kh, kw = op.kernel
        if kh * kw <= limit or kh > limit or kw > limit or kh == 1 or kw == 1:
            return None
        first = fresh(f"{op.name}.rows")
        return [dataclasses.replace(op, name=first, kernel=(1, kw)),
                dataclasses.replace(op, kernel=(kh, 1), inputs=(first,))]

    return rewrite_ops(graph, rows)


def _runs(cfg, c: int, h: int, w: int, kh: int, kw: int) -> bool:
    """Whether ``cfg``'s AVGPOOL commands run ``kh x kw`` windows over an ``h x w`` map of ``c``
    channels (:func:`~hwaccel.generators.accel.avg_view.avg_parts`, which lowering uses)."""
    try:
        avg_parts(cfg, h, w, -(-c // cfg.lanes), kh, kw)
    except ValueError:
        return False
    return True


def split_line_means(graph: ir.Graph, cfg) -> ir.Graph:
    """``graph`` with each global average of a ``(C, 1, L)`` line that ``cfg``'s AVGPOOL unit
    cannot run (:func:`_runs`) preceded by halving depthwise convs (the pool keeps its name,
    so its readers are unchanged; the convs are ``<name>.half<i>``); ``graph`` itself when
    there is none."""

    def halves(op, shapes, fresh):
        c, h, length = shapes[op.inputs[0]]
        # the length alone: a wide conv before it may split into groups the unit keeps
        c = min(c, cfg.lanes * cfg.avg_max_blocks)
        held = lambda n: _runs(cfg, c, 1, n, 1, n)  # noqa: E731
        if h != 1 or op.kernel != (1, length) or held(length):
            return None
        ops, src = [], op.inputs[0]
        while not held(length) and length > 1:
            n, name = (length + 1) // 2, fresh(f"{op.name}.half{len(ops)}")
            ops.append(ir.Conv2d(name, np.full((c, 1, 1, 2), n / length), np.zeros(c),
                                 stride=(1, 2), padding=(0, length % 2, 0, 0), groups=c,
                                 inputs=(src,)))
            src, length = name, n
        return ops + [dataclasses.replace(op, kernel=(1, length), inputs=(src,))]

    return rewrite_ops(graph, halves)


def split_wide_means(graph: ir.Graph, cfg) -> ir.Graph:
    """``graph`` with each global average that ``cfg``'s AVGPOOL commands cannot run whole (over
    more channel words than the unit keeps and more pixels than its rows) split in two (the
    second keeps the op's name; the first is ``<name>.bands``), the tallest bands that run;
    ``graph`` itself when none is."""

    def bands(op, shapes, fresh):
        c, h, w = shapes[op.inputs[0]]
        if op.kernel != (h, w) or h == 1 or _runs(cfg, c, h, w, h, w):
            return None
        fits = [a for a in range(h - 1, 0, -1) if h % a == 0 and _runs(cfg, c, h, w, a, w)
                and _runs(cfg, c, h // a, 1, h // a, 1)]
        if not fits:
            return None
        first = fresh(f"{op.name}.bands")
        return [dataclasses.replace(op, name=first, kernel=(fits[0], w)),
                dataclasses.replace(op, kernel=(h // fits[0], 1), inputs=(first,))]

    return rewrite_ops(graph, bands)
