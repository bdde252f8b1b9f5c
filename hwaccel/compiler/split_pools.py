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

from . import ir

__all__ = ["split_averages", "split_line_means", "split_wide_means"]


def _rewrite(graph: ir.Graph, rewrite) -> ir.Graph:
    """``graph`` with each :class:`~.ir.AvgPool2d` for which ``rewrite(op, shapes, fresh)``
    returns ops replaced by them (``fresh(name)``: ``name``, primed until unused); ``graph``
    itself when none is."""
    shapes, names = graph.shapes(), {op.name for op in graph.ops}

    def fresh(name: str) -> str:
        while name in names:
            name += "'"
        names.add(name)
        return name

    ops, split = [], False
    for op in graph.ops:
        new = rewrite(op, shapes, fresh) if isinstance(op, ir.AvgPool2d) else None
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

    return _rewrite(graph, rows)


def _holds(cfg, length: int) -> bool:
    """Whether ``cfg``'s AVGPOOL unit holds a line of ``length`` as rows of its width."""
    c = cfg.conv
    return any(length % d == 0 and length // d <= c.max_height
               for d in range(1, min(length, c.max_width) + 1))


def split_line_means(graph: ir.Graph, cfg) -> ir.Graph:
    """``graph`` with each global average of a ``(C, 1, L)`` line that ``cfg``'s AVGPOOL unit
    cannot hold (:func:`_holds`) preceded by halving depthwise convs (the pool keeps its name,
    so its readers are unchanged; the convs are ``<name>.half<i>``); ``graph`` itself when
    there is none."""

    def halves(op, shapes, fresh):
        c, h, length = shapes[op.inputs[0]]
        if h != 1 or op.kernel != (1, length) or _holds(cfg, length):
            return None
        ops, src = [], op.inputs[0]
        while not _holds(cfg, length) and length > 1:
            n, name = (length + 1) // 2, fresh(f"{op.name}.half{len(ops)}")
            ops.append(ir.Conv2d(name, np.full((c, 1, 1, 2), n / length), np.zeros(c),
                                 stride=(1, 2), padding=(0, length % 2, 0, 0), groups=c,
                                 inputs=(src,)))
            src, length = name, n
        return ops + [dataclasses.replace(op, kernel=(1, length), inputs=(src,))]

    return _rewrite(graph, halves)


def split_wide_means(graph: ir.Graph, cfg) -> ir.Graph:
    """``graph`` with each global average over more channel words than ``cfg``'s AVGPOOL unit
    keeps and more pixels than its rows split in two (the second keeps the op's name; the first
    is ``<name>.bands``), where a band height fits; ``graph`` itself when none is."""
    top = cfg.conv.max_height

    def bands(op, shapes, fresh):
        c, h, w = shapes[op.inputs[0]]
        fits = [a for a in range(h, 0, -1) if h % a == 0 and a * w <= min(top, cfg.avg_max_window)
                and h // a <= top]
        if not fits or op.kernel != (h, w) or -(-c // cfg.lanes) <= cfg.avg_max_blocks or \
                h * w <= top:
            return None
        first = fresh(f"{op.name}.bands")
        return [dataclasses.replace(op, name=first, kernel=(fits[0], w)),
                dataclasses.replace(op, kernel=(h // fits[0], 1), inputs=(first,))]

    return _rewrite(graph, bands)
