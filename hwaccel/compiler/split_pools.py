"""A preset-specific pass on the float IR, before quantization: an average pool whose window
holds more values than the preset's AVGPOOL unit averages (``AccelConfig.avg_max_window``, 128 on
the ECP5 presets: a 12 x 12 global pool is 144) becomes two pools, the window's rows (``1 x kw``)
and then its columns (``kh x 1``). In float that is the same mean; in int8 it is one rounding
more (half a step of the pool's scale, which both pools keep), and the integer twin and the
accelerator compute the two pools alike, so they stay equal. A window whose side alone exceeds
the limit stays one pool, and lowering names the limit."""

from __future__ import annotations

import dataclasses

from . import ir

__all__ = ["split_averages"]


def split_averages(graph: ir.Graph, limit: int) -> ir.Graph:
    """``graph`` with each :class:`~.ir.AvgPool2d` over more than ``limit`` values whose rows
    and columns each fit split in two (the second keeps the op's name, so its readers are
    unchanged; the first is ``<name>.rows``); ``graph`` itself when none is."""
    names = {op.name for op in graph.ops}
    ops, split = [], False
    for op in graph.ops:
        kh, kw = op.kernel if isinstance(op, ir.AvgPool2d) else (1, 1)
        if kh * kw <= limit or kh > limit or kw > limit or kh == 1 or kw == 1:
            ops.append(op)
            continue
        rows = f"{op.name}.rows"
        while rows in names:
            rows += "'"
        names.add(rows)
        ops += [dataclasses.replace(op, name=rows, kernel=(1, kw)),
                dataclasses.replace(op, kernel=(kh, 1), inputs=(rows,))]
        split = True
    return dataclasses.replace(graph, ops=tuple(ops)) if split else graph
