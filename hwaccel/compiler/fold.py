"""The tracer's rewrites, run on the op list once every node is read (:mod:`.trace`).

Each folds a marker op the reader left into the op that produced its input, and is only
exact when nothing else reads that op's output, which is known for certain only once the
whole graph is read: so they run here, with every value's readers in hand.

* :class:`BatchNorm` -> the Conv2d or Linear before it (eval statistics: a per-channel affine
  map, so new weights and bias, exact up to float64 rounding), through a depth-to-space (each
  channel's map on the ``f * f`` channels it is made of); on an image or vector with no
  such layer alone before it (pre-activation blocks), an affine map of its own (a depthwise
  1 x 1 conv, a diagonal Linear: :mod:`.fold_affine`).
* :class:`LastStep` (``out[:, -1]`` or ``h_n[-1]``) -> the LSTM before it, ``last_step=True``.
* :class:`Relu` -> the Conv2d, Linear, Add or table before it, through max-pools, flattens and
  depth-to-spaces (they commute with it; an average does not); where none alone precedes it, an
  ADD of its input with itself, with the ReLU.
* :class:`Leaky` (a LeakyReLU) -> two element-wise adds, exactly ``slope * x + (1 - slope) *
  relu(x)``: ``relu(x / 2 + x / 2)``, then that weighted sum of ``x`` and it (both weights > 0,
  as the ADD's unsigned multipliers need). A max pool that alone reads it goes first (a max
  commutes with a rising function): the conv before it pools as it stores, and the adds
  run on a quarter of the words.
* :class:`~.fold_unflatten.ImageOf` (a vector viewed as an image) -> the Linear before it as a
  1 x 1 conv into a depth-to-space, once the batch norms and ReLUs after it have folded
  through it into that Linear (:mod:`.fold_unflatten`).
* :class:`~.fold_pools.OverlapPool` (a max pool of 3 x 3 windows at stride 1 or 2) -> 2 x 2
  pools of shifted copies and maxes of ADDs, once the ReLU before it has folded
  (:mod:`.fold_pools`); a ReLU after it moves before it. So too a 2 x 2 pool in ceil mode
  (:class:`~.fold_pools.CeilPool`) -> picks at stride 2 and maxes.
* :class:`~.fold_cat.Cat` (``torch.cat``) -> its readers, each on every part
  (:mod:`.fold_cat`).
* Affine maps (a batch norm of its own, ``x - mean``): one with no ReLU joins the map, the
  Linear or the unpadded conv that alone reads it, a Linear the vector's map after it
  (:mod:`.fold_affine`).
* :class:`~.ir_attention.Pointwise` ops (tables; no markers): one that nothing reads is
  dropped (an expression of two of a value's functions reads the value, not them), one that
  alone reads another joins it into one table, and one whose function rises goes after the
  max pools that alone read it, as a LeakyReLU goes.

A marker that cannot fold is refused with :class:`~.errors.UnsupportedOp`, by name and place.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..numerics import pointwise_rising, substitute_expr
from . import ir
from .errors import UnsupportedOp, check_finite
from .fold_affine import channel_affine, feature_affine, join_affines
from .fold_cat import Cat, concatenations, replace_with
from .fold_pools import OverlapPool, expand_overlap
from .fold_unflatten import ImageOf
from .fold_unflatten import expand as expand_view

__all__ = ["Relu", "Leaky", "BatchNorm", "LastStep", "OpTable", "fold"]


@dataclass(frozen=True, eq=False)
class Relu:
    """``max(x, 0)``, and at most ``cap`` where one is given (ReLU6, a Hardtanh or clamp from 0)."""

    name: str
    where: str
    inputs: tuple[str, ...] = ()
    cap: float | None = None


@dataclass(frozen=True, eq=False)
class Leaky:
    """``LeakyReLU(slope)``, ``0 < slope < 1``; or on an image, with ``slopes`` (one a channel,
    any numbers: a PReLU per channel), ``slopes[c] * x + (1 - slopes[c]) * relu(x)``."""

    name: str
    where: str
    slope: float
    inputs: tuple[str, ...] = ()
    slopes: tuple[float, ...] = ()


def _tighter(a: float | None, b: float | None) -> float | None:
    """The smaller of two caps (``None``: no cap)."""
    return b if a is None else a if b is None else min(a, b)


@dataclass(frozen=True, eq=False)
class BatchNorm:
    """``module`` is the eval-mode ``nn.BatchNorm1d/2d`` at ``target``; ``rank`` the per-sample
    rank of its input."""

    name: str
    where: str
    module: object
    target: str
    rank: int
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class LastStep:
    name: str
    where: str
    inputs: tuple[str, ...] = ()


def _np(t) -> np.ndarray:
    return t.detach().to("cpu").double().numpy().copy()


class OpTable:
    """The op list by value name, with in-place replacement and redirection of readers."""

    def __init__(self, ops: list, output: str):
        self.ops = {op.name: op for op in ops}
        self.output = output

    def readers(self, value: str) -> list:
        out = [op for op in self.ops.values() if value in op.inputs]
        return out + (["<output>"] if value == self.output else [])

    def only_reader(self, value: str, op) -> bool:
        return self.readers(value) == [op]

    def drop(self, marker) -> None:
        """Remove ``marker``; its readers read its input instead."""
        (src,) = marker.inputs
        del self.ops[marker.name]
        for name, op in self.ops.items():
            if marker.name in op.inputs:
                self.ops[name] = dataclasses.replace(
                    op, inputs=tuple(src if v == marker.name else v for v in op.inputs))
        if self.output == marker.name:
            self.output = src

    def replace(self, op) -> None:
        self.ops[op.name] = op

    def copy(self) -> OpTable:
        """A table of the same ops, to rewrite without touching this one."""
        return OpTable(list(self.ops.values()), self.output)


def _batchnorm(ops: OpTable, bn: BatchNorm) -> None:
    """Fold an eval-mode batch norm into the Conv2d or Linear that produced its input:
    ``y = (x - mean) * gamma / sqrt(var + eps) + beta`` becomes its weights and bias. On an
    image that no such layer produced alone (a pre-activation block's, one after an add or
    after a ReLU), it is a depthwise 1 x 1 conv of those weights and bias."""
    import torch.nn as nn

    m = bn.module
    prev, reader, f2 = ops.ops.get(bn.inputs[0]), bn, 1
    if isinstance(prev, (ir.DepthToSpace, ImageOf)) and ops.only_reader(prev.name, bn):
        # channel c's statistics are its input's channels c * f * f to (c + 1) * f * f - 1:
        # it folds into the conv before (a ConvTranspose2d's) as theirs would, or the Linear
        # before a vector's view as an image
        reader, f2, prev = prev, prev.factor ** 2, ops.ops.get(prev.inputs[0])
    # BatchNorm1d of a line (a Conv1d's (C, L), rank 3 as the IR holds it) is a Conv2d's too
    conv = isinstance(m, nn.BatchNorm2d) or bn.rank == 3
    view = isinstance(reader, ImageOf)
    want = ir.Conv2d if conv and not view else ir.Linear
    alone = (not isinstance(prev, want) or prev.relu or not ops.only_reader(prev.name, reader)
             or (want is ir.Linear and bn.rank != 1 and not view))
    if alone and not conv and bn.rank != 1:
        raise UnsupportedOp(type(m).__name__, bn.where, "on a sequence only right after a "
                                                        "Linear (no ReLU between, nothing "
                                                        "else reading it): it is folded into "
                                                        "it")
    if m.running_mean is None:
        raise UnsupportedOp(f"{type(m).__name__} attribute", bn.where,
                            "track_running_stats=False (batch statistics at inference)")
    scale = _np(m.weight) if m.affine else np.ones(m.num_features)
    shift = _np(m.bias) if m.affine else np.zeros(m.num_features)
    var = _np(m.running_var) + m.eps
    with np.errstate(invalid="ignore", divide="ignore"):  # refused just below, by name
        scale = scale / np.sqrt(var)
    if alone:   # its own layer (an image's depthwise 1 x 1 conv, a vector's diagonal Linear):
        c = m.num_features   # w = scale and b = bias of a zero input
        prev = (channel_affine if conv else feature_affine)(bn.name, np.ones(c), np.zeros(c),
                                                            bn.inputs[0])
    mean = _np(m.running_mean)
    if not alone and f2 > 1:
        scale, shift, mean = (np.repeat(v, f2) for v in (scale, shift, mean))
    w = prev.weight * scale.reshape(-1, *([1] * (prev.weight.ndim - 1)))
    b = (prev.bias - mean) * scale + shift
    why = f"; {bn.target}.running_var + eps must be > 0, not {float(var.min())!r}"
    for what, v in (("weight", w), ("bias", b)):
        check_finite(v, f"{prev.name}.{what} with {bn.target} folded in",
                     f"{prev.name!r} ({type(prev).__name__})",
                     hint=why if (var <= 0).any() else "")
    ops.replace(dataclasses.replace(prev, weight=w, bias=b))
    if not alone:
        ops.drop(bn)


def _last_step(ops: OpTable, mark: LastStep) -> None:
    lstm = ops.ops.get(mark.inputs[0])
    if not isinstance(lstm, ir.LSTM) or lstm.last_step or not ops.only_reader(lstm.name, mark):
        raise UnsupportedOp("indexing", mark.where, "only an LSTM's out[:, -1] or h_n[-1] (its "
                                                    "last step), when nothing else reads its "
                                                    "every-step output")
    ops.replace(dataclasses.replace(lstm, last_step=True))
    ops.drop(mark)


def _relu_into(ops: OpTable, value: str, reader, cap: float | None) -> bool:
    """Make ``value`` ReLU'd (at most ``cap``) at its source, if that is exact; whether it
    was. A ReLU on a ReLU'd value keeps the tighter cap."""
    op = ops.ops.get(value)
    if op is None or not ops.only_reader(value, reader):
        return False
    if isinstance(op, (ir.Conv2d, ir.Linear, ir.Add)):
        ops.replace(dataclasses.replace(op, relu=True,
                                        cap=_tighter(op.cap, cap) if op.relu else cap))
        return True
    if isinstance(op, ir.Mul) and cap is None:   # a cap: the product's scale is its inputs'
        ops.replace(dataclasses.replace(op, relu=True))
        return True
    if isinstance(op, (ir.MaxPool2d, ir.Flatten, ir.DepthToSpace, OverlapPool, ImageOf)):
        return _relu_into(ops, op.inputs[0], op, cap)
    if isinstance(op, Cat):   # a clamp of a concatenation is the concatenation of clamps
        return all(_relu_into(ops, v, op, cap) for v in op.inputs)
    if isinstance(op, ir.Pointwise):   # a table of the ReLU of its function
        ops.replace(dataclasses.replace(op, fn="expr", params=(), expr=substitute_expr(
            relu_tree(cap), op.tree())))
        return True
    return isinstance(op, Relu) and _relu_into(ops, op.inputs[0], op, cap)


def relu_tree(cap: float | None) -> tuple:
    """A ReLU (at most ``cap``) as an expression tree (:func:`hwaccel.numerics.check_expr`)."""
    return ("fn", "relu", (), ("x",)) if cap is None else ("fn", "hardtanh", (0.0, cap), ("x",))


def _relu(ops: OpTable, r: Relu) -> None:
    """Fuse ``r`` into the op before it (:func:`_relu_into`); where that is not exact (the
    input, an average pool, a value something else reads too), it is an element-wise ADD of
    its input with itself, halves, with the ReLU (and cap): one rounding more."""
    if _relu_into(ops, r.inputs[0], r, r.cap):
        return ops.drop(r)
    (x,) = r.inputs
    ops.replace(ir.Add(r.name, relu=True, cap=r.cap, weights=(0.5, 0.5), inputs=(x, x)))


def _pool_first(ops: OpTable, act):
    """Move the max pools that alone read ``act`` (a rising function of each value, so a max
    commutes with it) before it: each pools ``act``'s input instead, and its readers read
    ``act``. Returns ``act`` as it then is."""
    while len(readers := ops.readers(act.name)) == 1 and isinstance(readers[0], ir.MaxPool2d):
        pool = readers[0]
        order = {}
        for name, op in ops.ops.items():
            if name == act.name:
                order[pool.name] = dataclasses.replace(pool, inputs=act.inputs)
            elif name == pool.name:
                order[act.name] = dataclasses.replace(act, inputs=(pool.name,))
            else:
                order[name] = dataclasses.replace(op, inputs=tuple(
                    act.name if v == pool.name else v for v in op.inputs))
        ops.ops = order
        if ops.output == pool.name:
            ops.output = act.name
        act = ops.ops[act.name]
    return act


def _leaky(ops: OpTable, lk: Leaky) -> None:
    """Expand ``lk`` into its two adds, after the max pools that alone read it
    (:func:`_pool_first`; with ``slopes``, where none is negative). With ``slopes``: the
    ReLU's add, then each of ``x`` and ``relu(x)`` through a depthwise 1 x 1 conv of its
    per-channel weights (``slopes``, ``1 - slopes``: signed, unlike the add's), then their
    add."""
    if not lk.slopes or min(lk.slopes) >= 0:
        lk = _pool_first(ops, lk)
    (x,) = lk.inputs
    pos = ir.Add(f"{lk.name}.relu", relu=True, weights=(0.5, 0.5), inputs=(x, x))
    if not lk.slopes:
        out = ir.Add(lk.name, weights=(lk.slope, 1.0 - lk.slope), inputs=(x, pos.name))
        return replace_with(ops, lk.name, [pos, out])
    a, zero = np.asarray(lk.slopes, dtype=np.float64), np.zeros(len(lk.slopes))
    neg = channel_affine(f"{lk.name}.x", a, zero, x)
    rel = channel_affine(f"{lk.name}.pos", 1.0 - a, zero, pos.name)
    replace_with(ops, lk.name, [pos, neg, rel, ir.Add(lk.name, inputs=(neg.name, rel.name))])


def _pointwise(ops: OpTable, pw: ir.Pointwise) -> None:
    """A table that alone reads another: one table of the two functions. A rising pointwise
    function (sigmoid, tanh ...: :func:`~hwaccel.numerics.pointwise_rising`) after the max pools
    that alone read it: its table then runs on a quarter of the values, and a conv before it
    pools as it stores. Its table never decreases, so the integers are the same either way."""
    if pw.name not in ops.ops:   # dead, or joined into a table after it
        return
    pw = ops.ops[pw.name]
    while isinstance(src := ops.ops.get(pw.inputs[0]), ir.Pointwise) and ops.only_reader(
            src.name, pw):
        pw = ir.Pointwise(pw.name, "expr", inputs=src.inputs,
                          expr=substitute_expr(pw.tree(), src.tree()))
        del ops.ops[src.name]
        ops.replace(pw)
    if pw.fn != "expr" and pointwise_rising(pw.fn, pw.params):
        _pool_first(ops, pw)


def _dead(ops: OpTable) -> None:
    """Drop the tables and ReLUs nothing reads: an expression of two of a value's functions
    (``x * sigmoid(x)``) reads the value, and its operands' own tables are left behind."""
    while dead := [n for n, op in ops.ops.items()
                   if isinstance(op, (ir.Pointwise, Relu)) and not ops.readers(n)]:
        for n in dead:
            del ops.ops[n]


def fold(ops: list, output: str) -> tuple[list, str]:
    """``ops`` (and the output value) with every marker folded, in the order: batch norms,
    last steps, ReLUs (a ReLU may follow a folded batch norm), overlapping max pools,
    LeakyReLUs, concatenations
    (split into readers that have their batch norms and ReLUs); and rising pointwise functions
    after the max pools that read them."""
    table = OpTable(ops, output)
    _dead(table)

    def each(kind, fn):   # ``fn`` on every op of ``kind`` still in the table, in graph order
        for op in [op for op in ops if isinstance(op, kind) and op.name in table.ops]:
            fn(table, table.ops[op.name])

    each(BatchNorm, _batchnorm)
    each(LastStep, _last_step)
    each(Relu, _relu)
    each(ImageOf, expand_view)
    each(OverlapPool, lambda t, pool: replace_with(t, pool.name, expand_overlap(t, pool)))
    each(Leaky, _leaky)
    concatenations(table, [n for n, op in table.ops.items() if isinstance(op, Cat)])
    each(ir.Pointwise, _pointwise)
    join_affines(table)
    return list(table.ops.values()), table.output
