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

The pass rewrites only the graph the lowering sees; the integer twin runs the graph as
quantized, so ``golden == twin`` checks the fusion.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..generators.accel.config import AccelConfig
from ..numerics.gelu import GeluParams
from . import ir

__all__ = ["QLinearGelu", "fuse_gelu", "fused_gelu_params"]


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
