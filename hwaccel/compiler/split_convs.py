"""A preset-specific pass on the float IR, before quantization: a dense conv (kernel larger than
1 x 1) with more output channels than the preset's conv engine runs in one layer
(``ConvConfig.max_cout``, or its weight memory: output blocks x kernel chunks) becomes convs
over groups of its output channels, each the most one engine layer takes (whole activation
words), and their concatenation, which its readers then take part by part (:mod:`.fold_cat`): a
pool or flatten per group, a dense conv or Linear per group and adds -- a reading conv that is
too wide itself splits its outputs the same way. A 1 x 1 conv needs none of this where it runs as a
GEMM, which tiles its outputs in hardware (not where a max pool is fused into it).

A conv that a max pool reads beside other readers (so not fused into it) splits into groups
of the max-pool command's channels (:func:`pool_group`).

A Linear over a flattened map whose weights exceed the weight scratchpad even one output word
at a time (PyTorch's MNIST example's fc1, 9,216 inputs, on the ECP5 presets) splits its inputs
the same way: the conv that makes the map splits into groups of its channels whose Linear parts
fit (:func:`k_group`), and the Linear into one part a group (each then split by its outputs
where they do not fit at once, :meth:`~.lower_emit._Emitter.linear_parts`) and their adds.

In float it is the same function. In int8 each group has a scale of its own and a reading conv
a rounding more per group, and each add is a pass of the element-wise unit. A conv whose
readers cannot take parts (an add, a depthwise conv, the model's output) stays whole, and
lowering names the engine's limit as before.
"""

from __future__ import annotations

import dataclasses

from ..generators.conv.layer import ConvLayer, check_layer
from . import ir
from .errors import UnsupportedOp
from .fold import OpTable
from .fold_cat import Cat, replace_with, split_cat
from .lower_types import gemm_parts, linear_as_conv

__all__ = ["split_outputs"]


def _fits(cfg, op, shape, cout: int) -> bool:
    """Whether one engine layer of ``cfg`` runs ``op`` on input ``shape`` with ``cout``
    outputs (the map's size clipped to the engine's: taller maps run in bands)."""
    conv = cfg.conv
    cin, h, w = shape
    try:
        check_layer(conv, ConvLayer(min(h, conv.max_height), min(w, conv.max_width), cin, cout,
                                    ir.squash(op.kernel), op.stride, op.padding, op.relu))
    except ValueError:
        return False
    return True


def widest_for(cfg):
    """``widest(conv, part_shapes, pooled=False)``: the most output channels (a multiple of the
    word) with which every part's conv fits one engine layer of ``cfg``; ``None`` when all of
    them fit, when not even one word's do (lowering then names the limit), or for a 1 x 1 conv
    that runs as a GEMM (stride 1, no padding, no max pool fused into it: ``pooled``)."""
    lanes = cfg.lanes

    def widest(op, shapes, pooled=False):
        cout = op.weight.shape[0]

        def fits(c):
            return all(_fits(cfg, op, s, c) for s in shapes)

        if op.groups != 1 or (op.pointwise and not pooled) or fits(cout):
            return None
        return next((c for c in range((cout - 1) // lanes * lanes, 0, -lanes) if fits(c)), None)

    return widest


def pool_group(cfg, table, op) -> int | None:
    """The most output channels a group of conv ``op`` may have when a max pool that is not
    fused into it (``op`` has other readers: an overlapping pool's copies, :mod:`.fold_pools`)
    reads it: the max-pool command takes up to the engine's ``max_cout``. ``None`` when no
    such pool reads more."""
    most = cfg.conv.max_cout // cfg.lanes * cfg.lanes
    readers = table.readers(op.name)
    pools = [r for r in readers if isinstance(r, ir.MaxPool2d) and not r.line]
    if len(readers) == 1 or not pools or op.weight.shape[0] <= most:
        return None
    return most or None


def k_group(cfg, table, op, shapes) -> int | None:
    """The most output channels (whole words) a group of conv ``op`` may have so that the
    Linear over its flattened map (through a max pool) fits the weight scratchpad one output
    word at a time, part after part: its inputs split by the groups, a Linear a group and their
    adds. ``None`` when ``op``'s output is not read so, or the Linear fits as it is (as a
    GEMM, :func:`~.lower_types.gemm_parts`, or as one CONV), or one word of channels is
    already too many (lowering names it)."""
    value, readers = op.name, table.readers(op.name)
    if len(readers) == 1 and isinstance(readers[0], ir.MaxPool2d) and not readers[0].line:
        value, readers = readers[0].name, table.readers(readers[0].name)
    linear = table.readers(readers[0].name) if len(readers) == 1 and isinstance(
        readers[0], ir.Flatten) else []
    if len(linear) != 1 or not isinstance(linear[0], ir.Linear) or value not in shapes:
        return None
    (c, h, w), n = shapes[value], linear[0].weight.shape[0]
    if linear_as_conv(cfg, (c, h, w), n) or gemm_parts(cfg, h * w * -(-c // cfg.lanes), n):
        return None
    most, words = (cfg.wgt_depth // cfg.word_beats - 1) // (h * w), -(-c // cfg.lanes)
    if not most:
        return None
    parts = -(-words // most)   # as few as fit, as even as whole words make them
    return -(-words // parts) * cfg.lanes


def split_outputs(graph: ir.Graph, cfg) -> ir.Graph:
    """``graph`` with every dense conv too wide for ``cfg``'s engine split as the module says
    (the groups are ``<name>.out<g>``); ``graph`` itself when none is."""
    widest, shapes = widest_for(cfg), graph.shapes()
    table, changed = OpTable(list(graph.ops), graph.output), False
    for op in graph.ops:
        op = table.ops.get(op.name)
        if not isinstance(op, ir.Conv2d) or op.inputs[0] not in shapes:
            continue
        readers = table.readers(op.name)
        pooled = (len(readers) == 1 and isinstance(readers[0], ir.MaxPool2d)   # fused into it
                  and not readers[0].line)
        group = min((g for g in (widest(op, (shapes[op.inputs[0]],), pooled),
                                 k_group(cfg, table, op, shapes), pool_group(cfg, table, op))
                     if g), default=None)
        if group is None:
            continue
        n = op.weight.shape[0]
        starts = range(0, n, group)
        parts = [dataclasses.replace(op, name=f"{op.name}.out{g}", weight=op.weight[s:s + group],
                                     bias=op.bias[s:s + group]) for g, s in enumerate(starts)]
        shape = shapes[op.name]
        cat = Cat(op.name, f"layer {op.name!r} ({n} output channels in groups of {group} on "
                           f"{cfg.slug})", tuple((p.weight.shape[0], *shape[1:]) for p in parts),
                  tuple(p.name for p in parts))
        trial = table.copy()
        try:
            replace_with(trial, op.name, [*parts, cat])
            split_cat(trial, cat, widest, join=False)
        except UnsupportedOp:   # a reader takes the whole tensor: lowering names the limit
            continue
        table, changed = trial, True
    if not changed:
        return graph
    return dataclasses.replace(graph, ops=tuple(table.ops.values()), output=table.output)
