"""Fusion of element-wise ops into the GEMM that produces their input, before lowering.

A ``QGelu`` whose input is a ``QLinear``'s output, read by nothing else, runs in that GEMM's
result path (:mod:`hwaccel.generators.accel.fuse`): the pair becomes one
:class:`QLinearGelu` (the Linear's name, the GELU's output scale and table), the GELU's readers
read it, and the lowering emits one GEMM with ``fuse.gelu`` instead of a GEMM and a GELU
command. Every integer is the same: the table maps the requantized int8 outputs the GELU
command would have read. Only on configurations with attention units (the others have no
``fuse`` field), and only where the Linear runs as a GEMM of its own: not over a flattened map
(a CONV, :func:`.lower.linear_as_conv`), nor where heads' slices and products read the GELU (a
projection group's joined GEMM, :func:`.lower_attention.projection_groups`).

A ``QAdd`` of a ``QLinear``'s output (read by nothing else) and a residual ``R`` runs in that
GEMM's result path too (``fuse.add``): the GEMM overwrites ``R``'s words with the sum, so the
pair becomes one :class:`QLinearAdd` reading the Linear's input and ``R``, whose value is
``R``'s block. Only where that is safe and the layout matches: ``R`` is computed before the
Linear, no op but the ADD reads it after the Linear, it is not the graph's output or input, no
view and not the Linear reads it, and it is a whole block of its own (the output of an ADD,
LayerNorm, GELU, Linear or positional embedding). ``add_requantize`` is symmetric in its two
(value, multiplier) pairs, so the Linear's may be either input.

A ``QAddConstant`` (a learned positional embedding) of a ``QLinear``'s output, read by nothing
else (a patch embedding), runs in that GEMM's result path the same way: the pair becomes one
:class:`QLinearAddConstant` whose block the host fills with a copy of the constant a sample
before the program runs (as it stores the input), which the GEMM overwrites with the sums. The
constant's one shared copy and the ADD per sample are gone.

The passes rewrite only the graph the lowering sees; the integer twin runs the graph as
quantized, so ``golden == twin`` checks the fusion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..generators.accel.config import AccelConfig
from ..numerics.eltwise import AddRequant
from ..numerics.gelu import GeluParams
from . import ir

__all__ = ["QLinearGelu", "QLinearAdd", "QLinearAddConstant", "fuse_gelu", "fuse_add",
           "fused_gelu_params", "fused_add_args", "fused_constants"]


@dataclass(frozen=True, eq=False)
class QLinearGelu(ir.QLinear):
    """A ``QLinear`` whose int8 outputs go through ``gelu`` (the table of the GELU op
    ``gelu_name`` it absorbed) in the GEMM's result path."""

    gelu: GeluParams | None = None
    gelu_name: str = ""


def fused_gelu_params(op) -> GeluParams | None:
    """The table a Linear's GEMM applies in its result path (``None``: not fused)."""
    return op.gelu if isinstance(op, QLinearGelu) else None


def fuse_gelu(qg, cfg: AccelConfig):
    """``qg`` with every fusable ``QLinear`` -> ``QGelu`` pair as one :class:`QLinearGelu`
    (``qg`` itself when there is none, or the configuration has no attention units)."""
    if cfg.attention is None:
        return qg
    readers = qg.readers()
    producer = {op.name: op for op in qg.ops}
    pairs = {}   # GELU name -> the Linear it joins
    for op in qg.ops:
        if not isinstance(op, ir.QGelu):
            continue
        lin = producer.get(op.inputs[0])
        if (type(lin) is not ir.QLinear or len(readers[lin.name]) != 1 or lin.name == qg.output
                or isinstance(producer.get(lin.inputs[0]), ir.QFlatten)
                or any(isinstance(r, (ir.QSlice, ir.QMatMul)) for r in readers[op.name])):
            continue   # a GEMM of its own (not a CONV, not joined with projections)
        pairs[op.name] = lin
    if not pairs:
        return qg
    rename = {g: lin.name for g, lin in pairs.items()}
    gelus = {lin.name: g for g, lin in pairs.items()}
    ops = []
    for op in qg.ops:
        if op.name in pairs:
            continue
        if op.name in gelus:
            g = next(o for o in qg.ops if o.name == gelus[op.name])
            op = QLinearGelu(**{f.name: getattr(op, f.name) for f in dataclasses.fields(op)}
                             | {"s_out": g.s_out, "gelu": g.params, "gelu_name": g.name})
        else:
            op = dataclasses.replace(op, inputs=tuple(rename.get(v, v) for v in op.inputs))
        ops.append(op)
    return dataclasses.replace(qg, ops=tuple(ops), output=rename.get(qg.output, qg.output))


@dataclass(frozen=True, eq=False)
class QLinearAdd(QLinearGelu):
    """A ``QLinear`` (with or without a fused GELU) whose outputs are added to the residual
    ``inputs[1]`` in the GEMM's result path (``add``: the Linear's multiplier first), written
    over the residual's words."""

    ARITY: ClassVar[int] = 2
    add: AddRequant | None = None
    add_relu: bool = False
    add_name: str = ""


#: Views: their readers read the viewed block when they run.
VIEWS = (ir.QSlice, ir.QConcat, ir.QToken)
#: Ops whose output is a whole block of its own (a residual the GEMM may overwrite).
_OWN_BLOCK = (ir.QAdd, ir.QLayerNorm, ir.QGelu, ir.QAddConstant, ir.QLinear)


def _fuse_one_add(qg):
    """``qg`` with its first fusable ``QLinear`` -> ``QAdd`` pair fused, or ``None``."""
    readers = qg.readers()
    index = {op.name: i for i, op in enumerate(qg.ops)}
    producer = {op.name: op for op in qg.ops}
    for add in qg.ops:
        if not isinstance(add, ir.QAdd) or len(set(add.inputs)) != 2:
            continue
        for j in (0, 1):
            lin, res = producer.get(add.inputs[j]), producer.get(add.inputs[1 - j])
            if (type(lin) not in (ir.QLinear, QLinearGelu) or len(readers[lin.name]) != 1
                    or lin.name == qg.output or res is None
                    or isinstance(producer.get(lin.inputs[0]), ir.QFlatten)
                    or not isinstance(res, _OWN_BLOCK) or res.name == qg.output
                    or index[res.name] > index[lin.name] or lin.inputs[0] == res.name
                    or any(isinstance(r, (ir.QFlatten, *VIEWS)) for r in readers[res.name])
                    or any(index[r.name] > index[lin.name] for r in readers[res.name]
                           if r is not add)):
                continue
            p = add.params
            ma, mb = (p.multiplier_a, p.multiplier_b) if j == 0 else (p.multiplier_b,
                                                                      p.multiplier_a)
            fields = {f.name: getattr(lin, f.name) for f in dataclasses.fields(lin)}
            fused = QLinearAdd(**fields | {"s_out": add.s_out, "inputs": (lin.inputs[0],
                                                                          res.name),
                                           "add": AddRequant(ma, mb, p.shift),
                                           "add_relu": add.relu, "add_name": add.name})
            return _splice(qg, lin, add, fused)
    return None


def _splice(qg, lin, add, fused):
    """``qg`` with ``lin`` replaced by ``fused`` and ``add`` gone, its readers (and the
    graph's output) reading ``lin``'s name instead."""
    ops = []
    for op in qg.ops:
        if op is add:
            continue
        if op is lin:
            op = fused
        elif add.name in op.inputs:
            op = dataclasses.replace(op, inputs=tuple(lin.name if v == add.name else v
                                                      for v in op.inputs))
        ops.append(op)
    out = lin.name if qg.output == add.name else qg.output
    return dataclasses.replace(qg, ops=tuple(ops), output=out)


@dataclass(frozen=True, eq=False)
class QLinearAddConstant(QLinearGelu):
    """A ``QLinear`` (with or without a fused GELU) whose outputs are added to the int8
    constant ``value`` (a positional embedding, per-sample shape ``(T, F)``) in the GEMM's
    result path (``add``: the Linear's multiplier first), written over the copy of ``value``
    the host stores in its block for each sample."""

    add: AddRequant | None = None
    add_relu: bool = False
    add_name: str = ""
    value: np.ndarray | None = None


def _fuse_one_constant(qg):
    """``qg`` with its first fusable ``QLinear`` -> ``QAddConstant`` pair fused, or ``None``."""
    readers = qg.readers()
    producer = {op.name: op for op in qg.ops}
    for add in qg.ops:
        if not isinstance(add, ir.QAddConstant):
            continue
        lin = producer.get(add.inputs[0])
        if (type(lin) not in (ir.QLinear, QLinearGelu) or len(readers[lin.name]) != 1
                or lin.name == qg.output
                or isinstance(producer.get(lin.inputs[0]), ir.QFlatten)):
            continue
        fields = {f.name: getattr(lin, f.name) for f in dataclasses.fields(lin)}
        fused = QLinearAddConstant(**fields | {"s_out": add.s_out, "add": add.params,
                                               "add_name": add.name, "value": add.value})
        return _splice(qg, lin, add, fused)
    return None


def fuse_add(qg, cfg: AccelConfig):
    """``qg`` with every fusable ``QLinear`` -> ``QAdd`` pair as one :class:`QLinearAdd` and
    every fusable ``QLinear`` -> ``QAddConstant`` pair as one :class:`QLinearAddConstant`
    (``qg`` itself when there is none, or the configuration has no attention units)."""
    if cfg.attention is None:
        return qg
    while (nxt := _fuse_one_add(qg) or _fuse_one_constant(qg)) is not None:
        qg = nxt
    return qg


def fused_constants(qg) -> list:
    """The :class:`QLinearAddConstant` ops (the host stores their constant, a copy a sample,
    in their output block before the program runs)."""
    return [op for op in qg.ops if isinstance(op, QLinearAddConstant)]


def fused_add_args(em, op, sample: int | None = None):
    """The ``add`` argument of the driver's ``gemm`` for ``op`` (``None``: not fused): the
    residual's words (sample ``sample``'s, or the whole batch's as one matrix: the op's own
    block, which the residual's value shares, or which holds the constant), the requantizer
    and the ReLU."""
    if not isinstance(op, (QLinearAdd, QLinearAddConstant)):
        return None
    rs = em.tensors(op.name)
    r = rs[sample] if sample is not None else em.b.view(
        rs[0], rs[0].channels, 1, sum(t.height * t.width for t in rs))
    return r, op.add, op.add_relu
