"""The integer IR's arithmetic in torch, batched, on any torch device: the ``torch-int8`` backend.

It must equal the accelerator's golden model (and so the RTL) exactly. The rules it follows are
the hardware's: products of int8 summed in int32 plus an int32 bias, then
:func:`hwaccel.numerics.requantize` (ReLU in its bounds), a fused 2x2 max-pool after the
requantizer, :func:`~hwaccel.numerics.add_requantize` for a residual add,
:func:`~hwaccel.numerics.average` of each window's exact sum for an average pool, and the LSTM
cell's fixed-point gates and tables
(:func:`~hwaccel.numerics.gate_preactivation`, :func:`~hwaccel.numerics.cell_update`); the
attention ops are :mod:`.int8_attention`'s.

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
    add_requantize,
    average,
    cell_update,
    gate_preactivation,
    mul_requantize,
    requantize,
    saturate,
    sigmoid_fx,
    tanh_fx,
)
from . import ir
from .int8_attention import forward_op as attention_op
from .reference import seq_view

__all__ = ["forward", "unfold_convs"]


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


def unfold_convs(dev) -> bool:
    """Whether convolutions on the torch device ``dev`` go through ``unfold`` + matmul (every
    device but the CPU, whose float64 ``conv2d`` is already im2col + GEMM). A function, so the
    tests can run that path on the CPU (CI has no GPU)."""
    return dev.type != "cpu"


def _exact_matmul(a, b):
    """``a @ b`` of integer tensors, through float64 (exact: see the module docstring)."""
    import torch

    return torch.round(a.to(torch.float64) @ b.to(torch.float64)).to(torch.int64)


def _pool(y, line: bool = False):
    import torch
    import torch.nn.functional as F

    window = (1, 4) if line else 2   # int8 values: exact
    return F.max_pool2d(y.to(torch.float64), window).to(torch.int64)


def _conv(op: ir.QConv, x, dev, tally=None):
    import torch
    import torch.nn.functional as F

    cout, cin_g, kh, kw = op.w.shape
    n, _, h, w = x.shape
    oh, ow = op.out_size(h, w)
    pad = op.padding if isinstance(op.padding, int) else 0
    if not isinstance(op.padding, int):  # per side (torch pads symmetrically); zeros are exact
        top, left, bottom, right = op.pads
        x = F.pad(x, (left, right, top, bottom))
    if not unfold_convs(dev):
        w64 = torch.as_tensor(op.w, dtype=torch.float64)
        acc = F.conv2d(x.to(torch.float64), w64, stride=op.strides, padding=pad,
                       groups=op.groups)
        acc = torch.round(acc).to(torch.int64)
    else:  # each group's kernels times its windows: ``g x (cout/g x K) @ n x g x (K x L)``
        g = op.groups
        cols = F.unfold(x.to(torch.float64), (kh, kw), padding=pad, stride=op.strides)
        cols = cols.reshape(n, g, cin_g * kh * kw, oh * ow)
        wt = torch.as_tensor(op.w.reshape(g, cout // g, cin_g * kh * kw), device=dev)
        acc = _exact_matmul(wt, cols).reshape(n, cout, oh, ow)
    acc = acc + torch.as_tensor(op.bias, device=dev).reshape(-1, 1, 1)
    y = _requant(acc, torch.as_tensor(op.multiplier, device=dev).reshape(-1, 1, 1),
                 torch.as_tensor(op.shift, device=dev).reshape(-1, 1, 1), op.relu, tally, op.name)
    return _pool(y) if op.pool else y


def _avgpool(op: ir.QAvgPool, x):
    """:func:`hwaccel.numerics.average` of each window's exact int64 sum."""
    import torch

    kh, kw = op.kernel
    n, c, h, w = x.shape
    oh, ow = h // kh, w // kw
    win = x[:, :, : oh * kh, : ow * kw].reshape(n, c, oh, kh, ow, kw)
    return average(win.sum(dim=(3, 5), dtype=torch.int64), kh * kw)


def _add(op: ir.QAdd, a, b, tally=None):
    """:func:`hwaccel.numerics.add_requantize`; with a ``tally``, its clipped values."""
    if tally is None:
        return add_requantize(a, b, op.params, relu=op.relu)
    exact = add_requantize(a, b, op.params, fmt=INT32)
    _count(tally, op.name, exact, op.relu)
    return saturate(exact, relu=op.relu)


def _mul(op: ir.QMul, a, b, tally=None):
    """:func:`hwaccel.numerics.mul_requantize` (a gate broadcasts); with a ``tally``, its
    clipped values."""
    if tally is None:
        return mul_requantize(a, b, op.shift, relu=op.relu)
    exact = mul_requantize(a, b, op.shift, fmt=INT32)
    _count(tally, op.name, exact, op.relu)
    return saturate(exact, relu=op.relu)


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
    x = torch.as_tensor(ir.graph_input(qg, np.asarray(x_int, dtype=np.int64)), device=dev)
    if tuple(x.shape[1:]) != tuple(qg.input_shape):
        raise ValueError(f"x_int must have shape (batch, {ir.input_text(qg)}), not "
                         f"{tuple(x.shape)}")
    last = {v: op.name for op in qg.ops for v in op.inputs}
    env = {ir.INPUT: x}
    with torch.no_grad():
        for op in qg.ops:
            x, *more = (env[v] for v in op.inputs)
            if isinstance(op, ir.QEmbedding):
                y = torch.as_tensor(op.table, device=dev)[x]
            elif isinstance(op, ir.QConv):
                y = _conv(op, x, dev, tally)
            elif isinstance(op, ir.QMaxPool):
                y = _pool(x, op.line)
            elif isinstance(op, ir.QAvgPool):
                y = _avgpool(op, x)
            elif isinstance(op, ir.QAdd):
                y = _add(op, x, more[0], tally)
            elif isinstance(op, ir.QMul):
                y = _mul(op, x, more[0], tally)
            elif isinstance(op, ir.QFlatten):
                y = x.flatten(1)
            elif isinstance(op, ir.QUnflatten):
                y = x[:, :, None, None]
            elif isinstance(op, ir.QSeqView):
                y = seq_view(x, op.to_line, op.hw)
            elif isinstance(op, ir.QDepthToSpace):
                y = torch.nn.functional.pixel_shuffle(x, op.factor)
            elif isinstance(op, ir.QLinear):
                y = _linear(op, x, dev, tally)
            elif isinstance(op, ir.QLstm):
                y = _lstm(op, x, dev, tally)
            elif isinstance(op, ir.QATTENTION_OPS):
                y = attention_op(op, x, more, dev, tally)
            else:
                raise TypeError(f"op must be a quantized IR op, not {op!r}")
            env[op.name] = y
            for v in set(op.inputs):  # a value lives until its last reader
                if last[v] == op.name and v != qg.output:
                    del env[v]
    return env[qg.output].cpu().numpy()
