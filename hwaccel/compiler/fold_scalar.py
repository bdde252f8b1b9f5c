"""Expressions of a tensor and numbers that are affine maps: ``x * 0.5``, ``x / 6``, ``x + 1``,
``(a + b) / 2``, ``2 * x - 1``, any of them under a ReLU or a ReLU6, and clamps between any two
numbers (``Hardtanh``, ``x.clamp(-1, 1)``, ``Hardsigmoid``: ``clamp(x / 6 + 1 / 2, 0, 1)``) of
them.

The tracer reads an expression of a tensor and numbers as a table (:class:`~.ir.Pointwise`,
which runs on the attention units' GELU unit). One whose value is ``a * x + b`` (``a`` not 0)
on an image or a line (a channel a value) or a vector (a feature a value) is an affine map
instead: a depthwise 1 x 1 conv or a Linear of a diagonal matrix
(:func:`~.fold_affine.channel_affine`, :func:`~.fold_affine.feature_affine`), with the ReLU
and its cap where the expression had one. In float the same function; it runs on every
preset's conv engine, and :func:`~.fold_affine.join_affines` then folds it into the op next to
it where that is exact (a scale into the conv, Linear or add before it, a shift into the
conv's bias), so most cost nothing. A clamp between ``lo`` (not 0) and ``hi`` of ``a * x +
b`` is two maps: ``a * x + b - lo`` under a ReLU capped at ``hi - lo`` (``<name>.clamp``),
then ``+ lo``. On a sequence (an attention model's tokens) it stays a table.
"""

from __future__ import annotations

import dataclasses
import math

from . import ir
from .fold import OpTable
from .fold_affine import channel_affine, feature_affine, join_affines

__all__ = ["affine_tables", "affine_of", "affine_maps", "map_ops"]


def affine_maps(name: str, form: tuple) -> list | None:
    """The maps ``(name, a, b, relu, cap)`` of :func:`affine_of`'s ``form`` in order, the last
    named ``name``; None where it is not one (a constant)."""
    if form[0] == "lin":
        return [(name, form[1], form[2], False, None)] if form[1] else None
    (a, b, lo, hi), (c, d) = form[1:]
    if not a or not c or hi <= lo:
        return None
    after = (c, c * lo + d)   # c * (clamp(a x + b - lo, 0, hi - lo) + lo) + d
    cap = None if math.isinf(hi) else hi - lo
    if after == (1.0, 0.0):
        return [(name, a, b - lo, True, cap)]
    return [(f"{name}.clamp", a, b - lo, True, cap), (name, *after, False, None)]


def affine_of(tree: tuple) -> tuple | None:
    """``tree`` (:func:`hwaccel.numerics.check_expr`) as ``("lin", a, b)``: ``a * x + b``; or
    ``("clamp", (a, b, lo, hi), (c, d))``: ``c * clamp(a * x + b, lo, hi) + d`` (a ReLU is the
    clamp from 0 to infinity); None for any other expression."""
    kind = tree[0]
    if kind == "x":
        return "lin", 1.0, 0.0
    if kind == "c":
        return "lin", 0.0, float(tree[1])
    if kind == "fn":
        inner = affine_of(tree[3])
        if inner is None or inner[0] != "lin" or tree[1] not in ("relu", "hardtanh",
                                                                 "hardsigmoid"):
            return None
        if tree[1] == "hardsigmoid":   # relu6(u + 3) / 6 = clamp(u / 6 + 1 / 2, 0, 1)
            return "clamp", (inner[1] / 6, (inner[2] + 3) / 6, 0.0, 1.0), (1.0, 0.0)
        lo, hi = (0.0, math.inf) if tree[1] == "relu" else (float(v) for v in tree[2])
        return "clamp", (inner[1], inner[2], lo, hi), (1.0, 0.0)
    left, right = affine_of(tree[1]), affine_of(tree[2])
    if left is None or right is None:
        return None
    if kind in ("add", "sub"):
        sign = 1.0 if kind == "add" else -1.0
        if left[0] == right[0] == "lin":
            return "lin", left[1] + sign * right[1], left[2] + sign * right[2]
        if right[0] == "lin" and right[1] == 0:
            return _scaled(left, 1.0, sign * right[2])
        if left[0] == "lin" and left[1] == 0:
            return _scaled(right, sign, left[2])
        return None
    if kind == "mul":
        if right[0] == "lin" and right[1] == 0:
            return _scaled(left, right[2], 0.0)
        if left[0] == "lin" and left[1] == 0:
            return _scaled(right, left[2], 0.0)
        return None
    return _scaled(left, 1.0 / right[2], 0.0)   # div: by a number (check_expr)


def map_ops(maps: list, shape: tuple, src: str, fresh=lambda name: name) -> list:
    """The ops of ``maps`` (:func:`affine_maps`) on value ``src`` of per-sample ``shape``:
    depthwise 1 x 1 convs on an image, diagonal Linears on a vector, each reading the one
    before (named ``fresh(name)``)."""
    make, n, out = channel_affine if len(shape) == 3 else feature_affine, shape[0], []
    for name, a, b, relu, cap in maps:
        out.append(dataclasses.replace(make(fresh(name), [a] * n, [b] * n, src), relu=relu,
                                       cap=cap))
        src = out[-1].name
    return out


def _scaled(form: tuple, k: float, m: float) -> tuple:
    """``k * form + m``."""
    if form[0] == "lin":
        return "lin", k * form[1], k * form[2] + m
    c, d = form[2]
    return "clamp", form[1], (k * c, k * d + m)


def affine_tables(ops: list, output: str, input_shape: tuple, tokens: bool) -> tuple[list, str]:
    """``ops`` with each table that is an affine map on an image, a line or a vector made that
    map, and the maps joined to their neighbours (:func:`~.fold_affine.join_affines`)."""
    if not any(isinstance(op, ir.Pointwise) for op in ops):
        return ops, output
    shapes = ir.Graph(tuple(input_shape), tokens, tuple(ops), output=output).shapes()
    out = []
    for op in ops:
        form = affine_of(op.tree()) if isinstance(op, ir.Pointwise) else None
        shape = shapes[op.inputs[0]] if form is not None else ()
        maps = affine_maps(op.name, form) if len(shape) in (1, 3) else None
        out += [op] if maps is None else map_ops(maps, shape, op.inputs[0])
    if len(out) == len(ops) and all(x is y for x, y in zip(out, ops)):
        return ops, output
    table = OpTable(out, output)
    join_affines(table)
    return list(table.ops.values()), table.output
