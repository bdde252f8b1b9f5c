"""Post-training quantization of the attention ops (:mod:`.ir_attention` -> :mod:`.ir_attention_q`),
called by :func:`.quantize.quantize` for each such op, in graph order.

Scales (one symmetric int8 scale per tensor, as every other tensor of :mod:`.quantize`):

* Q, K, V and the output projection are Linears: :mod:`.quantize` calibrates them as it does
  every Linear. A head's slice of them keeps their scale (a view).
* Scores ``Q . K^T / sqrt(d)``: ``max|scores| / 127`` over the calibration data. The largest
  scores are the ones softmax keeps, so they are never clipped; the exponent table is built for
  this scale, and a difference of 255 steps reaches ``exp(-255 s)``, which is below the table's
  resolution (``2**-17``) whenever ``max|scores| > 5.9`` (the whole row span is covered at
  smaller ranges too: the table holds every int8 difference).
* Probabilities: 1/127 (:data:`~hwaccel.numerics.PROB_SCALE`), fixed by the softmax unit.
* ``P . V``, LayerNorm and GELU outputs, positional-embedding sums: ``max|x| / 127`` of the
  float value over the calibration data (the range :func:`.reference.ranges` measures for
  every op), so no calibration value saturates.
* The heads of one attention are joined (:class:`~.ir_attention_q.QConcat`) at one shared
  scale: ``max|joined| / 127``. Each head's ``P . V`` requantizer targets that scale directly,
  so the join is a view and costs no arithmetic. A join whose inputs were not made by a
  requantizer of this module and differ in scale is refused by name.
* A positional embedding is quantized at its own scale ``max|value| / 127`` and added with the
  residual ADD's integer arithmetic (two multipliers, one shift,
  :func:`~hwaccel.numerics.add_params`).
* Token means and token picks keep their input's scale (an int8 average of int8 values is
  exact, :func:`~hwaccel.numerics.average`).

A tensor that is zero on every calibration sample gets :data:`.quantize.ZERO_RANGE_SCALE`.
"""

from __future__ import annotations

import functools

import numpy as np

from ..numerics import (
    INT8,
    PROB_SCALE,
    add_params,
    expr_params,
    gelu_params,
    layernorm_params,
    requant_params,
    softmax_params,
)
from ..numerics import quantize as quantize_values
from . import ir

__all__ = ["quantize_op", "JOINABLE"]

#: The quantized ops whose output scale is free (set by their requantizer or table), so a join
#: of heads can make them share one.
JOINABLE = (ir.MatMul, ir.LayerNorm, ir.Gelu, ir.Pointwise, ir.AddConstant)


def _scale(amax: float) -> float:
    from .quantize import ZERO_RANGE_SCALE

    return amax / INT8.max if amax > 0 else ZERO_RANGE_SCALE


@functools.lru_cache(maxsize=4)
def _facts(graph: ir.Graph) -> tuple[dict, dict]:
    """The graph's shapes, and for every value read only by a Concat, that Concat's name."""
    joined = {}
    for name, readers in graph.readers().items():
        if len(readers) == 1 and isinstance(readers[0], ir.Concat) and name != graph.output:
            joined[name] = readers[0].name
    return graph.shapes(), joined


def quantize_op(op, ins: tuple[str, ...], scale: dict, amax: dict, graph: ir.Graph):
    """``(quantized op, its output scale)`` for the attention op ``op`` of ``graph``, reading
    the quantized values ``ins``; ``scale`` holds the int8 scale of every float value quantized
    so far, ``amax`` the largest ``|value|`` of every op's output on the calibration data."""
    shapes, joined = _facts(graph)
    s = scale[op.inputs[0]]
    # the output's range: a joined head takes the join's, so every head shares its scale
    s_out = _scale(amax[joined.get(op.name, op.name)])
    if isinstance(op, ir.MatMul):
        s_b = scale[op.inputs[1]]
        rq = requant_params(op.scale * s * s_b / s_out)
        return ir.QMatMul(op.name, op.n, op.transpose_b, rq.multiplier, rq.shift, op.scale, s,
                          s_b, s_out, ins), s_out
    if isinstance(op, ir.Softmax):
        n = shapes[op.inputs[0]][1]
        return ir.QSoftmax(op.name, softmax_params(s, n), op.causal, s, ins), PROB_SCALE
    if isinstance(op, ir.LayerNorm):
        try:
            p = layernorm_params(s, s_out, op.weight, op.bias, op.eps)
        except ValueError as exc:
            raise ValueError(f"layer {op.name!r} (LayerNorm) has no integer form at input scale "
                             f"{s:.3g} and output scale {s_out:.3g}: {exc}") from exc
        return ir.QLayerNorm(op.name, p, s, s_out, ins), s_out
    if isinstance(op, ir.Gelu):
        return ir.QGelu(op.name, gelu_params(s, s_out, op.approximate), s, s_out, ins), s_out
    if isinstance(op, ir.Pointwise):
        table = expr_params(op.tree(), s, s_out)
        return ir.QGelu(op.name, table, s, s_out, ins, fn=op.label()), s_out
    if isinstance(op, ir.Slice):
        return ir.QSlice(op.name, op.start, op.stop, s, ins), s
    if isinstance(op, ir.Concat):
        got = [scale[v] for v in op.inputs]
        if len(set(got)) != 1:
            odd = [v for v in op.inputs if v not in joined or not isinstance(graph.op(v),
                                                                              JOINABLE)]
            raise ValueError(f"op {op.name!r} (Concat) joins values at different scales "
                             f"({', '.join(f'{g:.3g}' for g in got)}); only outputs of "
                             f"{', '.join(k.__name__ for k in JOINABLE)} read by the join "
                             f"alone take its scale, not {', '.join(map(repr, odd))}")
        return ir.QConcat(op.name, got[0], ins), got[0]
    if isinstance(op, ir.AddConstant):
        v = np.asarray(op.value, dtype=np.float64)
        s_c = _scale(float(np.abs(v).max()))
        try:
            params = add_params(s / s_out, s_c / s_out)
        except ValueError as exc:
            raise ValueError(f"layer {op.name!r}: the constant add's scales {s:.3g} and "
                             f"{s_c:.3g} into {s_out:.3g} have no requantizer: {exc}") from exc
        return ir.QAddConstant(op.name, quantize_values(v, s_c), params, s, s_c, s_out,
                               ins), s_out
    if isinstance(op, ir.TokenMean):
        return ir.QTokenMean(op.name, s, ins), s
    if isinstance(op, ir.Token):
        return ir.QToken(op.name, op.index, s, ins), s
    raise TypeError(f"op must be an attention op of the float IR, not {op!r}")
