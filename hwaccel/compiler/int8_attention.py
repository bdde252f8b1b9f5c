"""The attention ops of the integer IR (:mod:`.ir_attention_q`) in torch, batched, on any torch
device: :mod:`.int8`'s share for them (the ``torch-int8`` backend), equal to
:mod:`.qreference_attention` exactly.

A product of two activations is a batched matmul through float64, exact as :mod:`.int8`'s
products are (int8 x int8 summed over ``K`` stays far below 2**53), then
:func:`hwaccel.numerics.requantize`; softmax, LayerNorm, GELU, the constant add and the token
mean are :mod:`hwaccel.numerics`' functions on torch tensors. Given a ``tally``, the product's
requantizer and the constant add count the values they clip (:mod:`.saturation`).
"""

from __future__ import annotations

from ..numerics import (
    INT32,
    add_requantize,
    average,
    gelu_int,
    layernorm_int,
    saturate,
    softmax_int,
)
from . import ir

__all__ = ["forward_op"]


def _matmul(op: ir.QMatMul, a, b, tally):
    import torch

    from .int8 import _requant

    b = b.transpose(-2, -1) if op.transpose_b else b
    acc = torch.round(a.to(torch.float64) @ b.to(torch.float64)).to(torch.int64)
    return _requant(acc, op.multiplier, op.shift, False, tally, op.name)


def _add_constant(op: ir.QAddConstant, x, dev, tally):
    import torch

    from .int8 import _count

    c = torch.as_tensor(op.value, dtype=torch.int64, device=dev)
    if tally is None:
        return add_requantize(x, c, op.params)
    exact = add_requantize(x, c, op.params, fmt=INT32)
    _count(tally, op.name, exact, False)
    return saturate(exact)


def forward_op(op, x, more: list, dev, tally=None):
    """The int8 values (int64 tensor) of ``op`` on the batch ``x`` (and ``more``) on ``dev``."""
    import torch

    if isinstance(op, ir.QMatMul):
        return _matmul(op, x, more[0], tally)
    if isinstance(op, ir.QSoftmax):
        valid = None
        if op.causal:
            valid = torch.ones(x.shape[-2:], dtype=torch.bool, device=dev).tril()
        return softmax_int(x, op.params, valid)
    if isinstance(op, ir.QLayerNorm):
        return layernorm_int(x, op.params)
    if isinstance(op, ir.QGelu):
        return gelu_int(x, op.params)
    if isinstance(op, ir.QSlice):
        return x[..., op.start:op.stop]
    if isinstance(op, ir.QConcat):
        return torch.cat([x, *more], dim=-1)
    if isinstance(op, ir.QAddConstant):
        return _add_constant(op, x, dev, tally)
    if isinstance(op, ir.QTokenMean):
        return average(x.sum(dim=1, dtype=torch.int64), x.shape[1])
    if isinstance(op, ir.QToken):
        return x[:, op.index]
    raise TypeError(f"op must be a quantized attention op, not {op!r}")
