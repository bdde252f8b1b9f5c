"""An element-wise add that reads a concatenation, one add a part (:func:`.fold_cat.split_cat`).

The element-wise unit reads whole tensors, so an add of a concatenation could only read it
joined into one tensor (an identity 1 x 1 conv: a rounding more, C x C MACs a pixel), or, where
a preset's convs are split into groups of their outputs (:mod:`.split_convs`), not at all: a
ResNet's residual add after a conv wider than the engine kept the whole block from splitting,
and the conv was refused (CIFAR ResNet-18's 128-channel stage on ``ecp5_128``).

An add is channel by channel, so the add of two tensors split at the same channels is the
concatenation of the parts' adds. Its other operand must be split so too:

* a concatenation of inputs whose channels are the same ranges (no picks), or
* one tensor that only this add reads, made by ops that split by their output channels: a
  dense conv or Linear (its weights' rows; the bias's entries), or an add of two such (each
  split the same way). A ResNet's downsampling shortcut, a 1 x 1 conv, is one.

Each part's add keeps the add's ReLU, cap, weights and exactness. In int8 each part has a
scale of its own, as each of a split conv's groups has: no rounding more than the add had.
"""

from __future__ import annotations

import dataclasses

from . import ir

__all__ = ["splits", "split_add", "other_operand"]


def _edges(shapes) -> tuple[int, ...]:
    """The channels where each of ``shapes``' parts starts, and the total."""
    out = [0]
    for s in shapes:
        out.append(out[-1] + s[0])
    return tuple(out)


def _divisible(ops, name: str, reader) -> bool:
    """Whether op ``name``, read by ``reader`` alone, splits by its output channels."""
    op = ops.ops.get(name)
    if ops.readers(name) != [reader]:
        return False
    if isinstance(op, ir.Linear) or (isinstance(op, ir.Conv2d) and op.groups == 1):
        return True
    return (isinstance(op, ir.Add) and op.inputs[0] != op.inputs[1]
            and all(_divisible(ops, v, op) for v in op.inputs))


def other_operand(cat, add) -> str | None:
    """The operand of ``add`` that is not ``cat``; None for ``cat + cat``."""
    a, b = add.inputs
    return None if a == b else b if a == cat.name else a


def splits(ops, cat, add) -> bool:
    """Whether ``add`` (an :class:`~.ir.Add` that reads ``cat``) runs as one add a part."""
    from .fold_cat import Cat

    other = other_operand(cat, add) if isinstance(add, ir.Add) else None
    if other is None or cat.order is not None or len(cat.shapes[0]) != 3:
        return False
    src = ops.ops.get(other)
    if isinstance(src, Cat):
        return src.order is None and _edges(src.shapes) == _edges(cat.shapes)
    return _divisible(ops, other, add)


def _rows(ops, name: str, edges: tuple[int, ...]) -> list[str]:
    """Op ``name`` (:func:`_divisible`) as one op a range of its output channels between
    ``edges``, named ``<name>.part<k>``; their names."""
    from .fold_cat import replace_with

    op = ops.ops[name]
    names = [f"{name}.part{k}" for k in range(len(edges) - 1)]
    if isinstance(op, ir.Add):
        a, b = (_rows(ops, v, edges) for v in op.inputs)
        parts = [dataclasses.replace(op, name=n, inputs=(x, y)) for n, x, y in zip(names, a, b)]
    else:
        parts = [dataclasses.replace(op, name=n, weight=op.weight[s:e].copy(),
                                     bias=op.bias[s:e].copy())
                 for n, s, e in zip(names, edges, edges[1:])]
    replace_with(ops, name, parts)
    return names


def split_add(ops, cat, add):
    """``add`` (:func:`splits`) as one add a part of ``cat`` and their concatenation, named as
    the add; returns that concatenation, for its readers to be split in turn."""
    from .fold_cat import Cat, replace_with

    other = other_operand(cat, add)
    src = ops.ops.get(other)
    theirs = src.inputs if isinstance(src, Cat) else _rows(ops, other, _edges(cat.shapes))
    first = add.inputs[0] == cat.name
    parts = [dataclasses.replace(add, name=f"{add.name}.part{k}",
                                 inputs=(mine, their) if first else (their, mine))
             for k, (mine, their) in enumerate(zip(cat.inputs, theirs))]
    joined = Cat(add.name, cat.where, cat.shapes, tuple(p.name for p in parts))
    replace_with(ops, add.name, [*parts, joined])
    return joined
