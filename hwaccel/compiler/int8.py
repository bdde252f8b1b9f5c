"""The integer IR's arithmetic in torch, batched, on any torch device: the ``torch-int8`` backend.

It must equal the accelerator's golden model (and so the RTL) exactly. The rules it follows are
the hardware's: products of int8 summed in int32 plus an int32 bias, then
:func:`hwaccel.numerics.requantize` (ReLU in its bounds), a fused 2x2 max-pool after the
requantizer, and the LSTM cell's fixed-point gates and tables
(:func:`~hwaccel.numerics.gate_preactivation`, :func:`~hwaccel.numerics.cell_update`).

Why float64 for the products: CUDA has no int64 convolution or matmul, and a float64 sum of int8
products is exact while it stays below 2**53 (these stay below 2**31), whatever order a kernel
adds them in -- as long as no intermediate value is anything but such a sum. So convolutions
never go to a library that may transform them (cuDNN's FFT or Winograd algorithms round): on
the CPU, ATen's float64 convolution is im2col + GEMM (and 15x faster than ``unfold`` there); on
other devices they are ``unfold`` (a copy) + matmul. Everything else is int64.

Given a ``tally``, :func:`forward` also counts the values each requantizer clips to int8
(:mod:`.saturation` defines what counts); the outputs are the same either way.
"""

from __future__ import annotations

import numpy as np

from ..numerics import (
    FX_FRAC,
    H_FRAC,
    INT8,
    INT32,
    cell_update,
    gate_preactivation,
    requantize,
    saturate,
    sigmoid_fx,
    tanh_fx,
)
from . import ir

__all__ = ["forward"]


def _requant(acc, multiplier, shift, relu: bool, tally, name: str):
    """:func:`requantize`, and with a ``tally`` the count of values it clips (see
    :mod:`.saturation`). Clamping the exact result to int32 first changes nothing: int8 lies
    inside int32, and a value beyond int32 is beyond int8 too."""
    if tally is None:
        return requantize(acc, multiplier, shift, relu=relu)
    exact = requantize(acc, multiplier, shift, fmt=INT32)
    _count(tally, name, exact, relu)
    return saturate(exact, relu=relu)


def _count(tally: dict, name: str, exact, relu: bool) -> None:
    """Add to ``tally[name]`` = [values, clipped to the top, clipped to the bottom]; ReLU's
    clamp of negatives to zero is the activation, not saturation."""
    t = tally.setdefault(name, [0, 0, 0])
    t[0] += int(exact.numel())
    t[1] += int((exact > INT8.max).sum())
    t[2] += 0 if relu else int((exact < INT8.min).sum())


def _exact_matmul(a, b):
    """``a @ b`` of integer tensors, through float64 (exact: see the module docstring)."""
    import torch

    return torch.round(a.to(torch.float64) @ b.to(torch.float64)).to(torch.int64)


def _pool(y):
    import torch
    import torch.nn.functional as F

    return F.max_pool2d(y.to(torch.float64), 2).to(torch.int64)  # int8 values: exact


def _conv(op: ir.QConv, x, dev, tally=None):
    import torch
    import torch.nn.functional as F

    cout, cin, k, _ = op.w.shape
    n, _, h, w = x.shape
    oh = (h + 2 * op.padding - k) // op.stride + 1
    ow = (w + 2 * op.padding - k) // op.stride + 1
    if dev.type == "cpu":
        w64 = torch.as_tensor(op.w, dtype=torch.float64)
        acc = F.conv2d(x.to(torch.float64), w64, stride=op.stride, padding=op.padding)
        acc = torch.round(acc).to(torch.int64)
    else:
        cols = F.unfold(x.to(torch.float64), k, padding=op.padding, stride=op.stride)
        wt = torch.as_tensor(op.w.reshape(cout, -1), dtype=torch.int64, device=dev)
        acc = _exact_matmul(wt, cols).reshape(n, cout, oh, ow)
    acc = acc + torch.as_tensor(op.bias, device=dev).reshape(-1, 1, 1)
    y = _requant(acc, torch.as_tensor(op.multiplier, device=dev).reshape(-1, 1, 1),
                 torch.as_tensor(op.shift, device=dev).reshape(-1, 1, 1), op.relu, tally, op.name)
    return _pool(y) if op.pool else y


def _linear(op: ir.QLinear, x, dev, tally=None):
    import torch

    acc = _exact_matmul(x, torch.as_tensor(op.w.T.copy(), device=dev))
    acc = acc + torch.as_tensor(op.bias, device=dev)
    return _requant(acc, torch.as_tensor(op.multiplier, device=dev),
                    torch.as_tensor(op.shift, device=dev), op.relu, tally, op.name)


def _lstm(op: ir.QLstm, x, dev, tally=None):
    """Every sequence of the batch from zero state, one step at a time (all in lockstep)."""
    import torch

    p = op.params
    t = lambda a: torch.as_tensor(np.ascontiguousarray(a), device=dev)  # noqa: E731
    w_ih_t, w_hh_t = t(p.w_ih.T), t(p.w_hh.T)
    rq_x, rq_h, bias = (t(p.mult_x), t(p.shift_x)), (t(p.mult_h), t(p.shift_h)), t(p.bias)
    hsz = p.hidden_size
    h = torch.zeros(x.shape[0], hsz, dtype=torch.int64, device=dev)
    c = torch.zeros_like(h)
    hs = []
    for step in range(x.shape[1]):
        z = gate_preactivation(_exact_matmul(x[:, step], w_ih_t), _exact_matmul(h, w_hh_t),
                               rq_x, rq_h, bias)
        zi, zf, zg, zo = z.split(hsz, dim=1)
        o = sigmoid_fx(zo)
        c, h = cell_update(sigmoid_fx(zi), sigmoid_fx(zf), tanh_fx(zg), o, c)
        if tally is not None:  # h before its int8 saturation, as cell_update rounds it
            _count(tally, op.name, requantize(o * tanh_fx(c), 1, 2 * FX_FRAC - H_FRAC,
                                              fmt=INT32), False)
        hs.append(h)
    return h if op.last_step else torch.stack(hs, dim=1)


def forward(qg: ir.QGraph, x_int, device="cpu", tally: dict | None = None) -> np.ndarray:
    """The integer outputs (int64 holding int8 values) of ``qg`` for the batch ``x_int`` (int8
    values, or token ids), computed on the torch ``device``. With a dict ``tally``, each
    requantizing layer's ``[values, clipped high, clipped low]`` is added to it by name."""
    import torch

    dev = torch.device(device)
    x = torch.as_tensor(np.asarray(x_int, dtype=np.int64), device=dev)
    if tuple(x.shape[1:]) != tuple(qg.input_shape):
        raise ValueError(f"x_int must have shape (batch, {', '.join(map(str, qg.input_shape))}),"
                         f" not {tuple(x.shape)}")
    with torch.no_grad():
        for op in qg.ops:
            if isinstance(op, ir.QEmbedding):
                x = torch.as_tensor(op.table, device=dev)[x]
            elif isinstance(op, ir.QConv):
                x = _conv(op, x, dev, tally)
            elif isinstance(op, ir.QMaxPool):
                x = _pool(x)
            elif isinstance(op, ir.QFlatten):
                x = x.flatten(1)
            elif isinstance(op, ir.QLinear):
                x = _linear(op, x, dev, tally)
            elif isinstance(op, ir.QLstm):
                x = _lstm(op, x, dev, tally)
            else:
                raise TypeError(f"op must be a quantized IR op, not {op!r}")
    return x.cpu().numpy()
