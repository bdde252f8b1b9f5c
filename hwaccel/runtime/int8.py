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
"""

from __future__ import annotations

import numpy as np

from ..numerics import cell_update, gate_preactivation, requantize, sigmoid_fx, tanh_fx
from . import ir

__all__ = ["forward"]


def _exact_matmul(a, b):
    """``a @ b`` of integer tensors, through float64 (exact: see the module docstring)."""
    import torch

    return torch.round(a.to(torch.float64) @ b.to(torch.float64)).to(torch.int64)


def _pool(y):
    import torch
    import torch.nn.functional as F

    return F.max_pool2d(y.to(torch.float64), 2).to(torch.int64)  # int8 values: exact


def _conv(op: ir.QConv, x, dev):
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
    y = requantize(acc, torch.as_tensor(op.multiplier, device=dev).reshape(-1, 1, 1),
                   torch.as_tensor(op.shift, device=dev).reshape(-1, 1, 1), relu=op.relu)
    return _pool(y) if op.pool else y


def _linear(op: ir.QLinear, x, dev):
    import torch

    acc = _exact_matmul(x, torch.as_tensor(op.w.T.copy(), device=dev))
    acc = acc + torch.as_tensor(op.bias, device=dev)
    return requantize(acc, torch.as_tensor(op.multiplier, device=dev),
                      torch.as_tensor(op.shift, device=dev), relu=op.relu)


def _lstm(op: ir.QLstm, x, dev):
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
        c, h = cell_update(sigmoid_fx(zi), sigmoid_fx(zf), tanh_fx(zg), sigmoid_fx(zo), c)
        hs.append(h)
    return h if op.last_step else torch.stack(hs, dim=1)


def forward(qg: ir.QGraph, x_int, device="cpu") -> np.ndarray:
    """The integer outputs (int64 holding int8 values) of ``qg`` for the batch ``x_int`` (int8
    values, or token ids), computed on the torch ``device``."""
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
                x = _conv(op, x, dev)
            elif isinstance(op, ir.QMaxPool):
                x = _pool(x)
            elif isinstance(op, ir.QFlatten):
                x = x.flatten(1)
            elif isinstance(op, ir.QLinear):
                x = _linear(op, x, dev)
            elif isinstance(op, ir.QLstm):
                x = _lstm(op, x, dev)
            else:
                raise TypeError(f"op must be a quantized IR op, not {op!r}")
    return x.cpu().numpy()
