"""The attention ops of the integer IR (:mod:`.ir_attention_q`) written plainly in numpy, sample
by sample: :mod:`.qreference`'s share for them, the reference the integer twin
(:mod:`.int8_attention`) is held to.

Products are summed in int64 one sample at a time (``np.einsum``); softmax, LayerNorm, GELU,
the constant add and the token mean are :mod:`hwaccel.numerics`' own functions. Nothing here is
shared with the twin but the numerics.
"""

from __future__ import annotations

import numpy as np

from ..numerics import add_requantize, average, gelu_int, layernorm_int, requantize, softmax_int
from . import ir

__all__ = ["forward_op"]


def _matmul(op: ir.QMatMul, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    spec = "tk,nk->tn" if op.transpose_b else "tk,kn->tn"
    acc = np.stack([np.einsum(spec, x, y) for x, y in zip(a, b)])
    return requantize(acc, op.multiplier, op.shift)


def _softmax(op: ir.QSoftmax, x: np.ndarray) -> np.ndarray:
    t, n = x.shape[1:]
    valid = np.arange(n)[None, :] <= np.arange(t)[:, None] if op.causal else None
    return np.stack([softmax_int(s, op.params, valid) for s in x])


def forward_op(op, x: np.ndarray, more: list) -> np.ndarray:
    """The int8 values (int64) of ``op`` on the batch ``x`` (and ``more``, its other inputs)."""
    if isinstance(op, ir.QMatMul):
        return _matmul(op, x, more[0])
    if isinstance(op, ir.QSoftmax):
        return _softmax(op, x)
    if isinstance(op, ir.QLayerNorm):
        return np.stack([layernorm_int(s, op.params) for s in x])
    if isinstance(op, ir.QGelu):
        return gelu_int(x, op.params)
    if isinstance(op, ir.QSlice):
        return x[..., op.start:op.stop]
    if isinstance(op, ir.QConcat):
        return np.concatenate([x, *more], axis=-1)
    if isinstance(op, ir.QAddConstant):
        return np.stack([add_requantize(s, op.value.astype(np.int64), op.params) for s in x])
    if isinstance(op, ir.QTokenMean):
        return average(x.sum(axis=1), x.shape[1])
    if isinstance(op, ir.QToken):
        return x[:, op.index]
    raise TypeError(f"op must be a quantized attention op, not {op!r}")
