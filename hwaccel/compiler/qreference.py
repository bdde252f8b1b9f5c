"""The integer IR's meaning, written plainly in numpy: the reference the integer twin
(:mod:`.int8`, torch, batched, built for speed on any device) is held to, op by op, for every
graph the compiler traces -- including ops no hardware runs yet (a depthwise conv), where the
accelerator's golden interpreter cannot be the reference.

Every window is gathered explicitly (``sliding_window_view``) and summed in int64; every
requantizer, add and average is :mod:`hwaccel.numerics`' own function; an LSTM layer is the
cell's golden model (:func:`hwaccel.generators.lstm.model.golden_sequence`), sample by sample;
the attention ops are :mod:`.qreference_attention`'s.
Slow, and meant to be: nothing here is shared with the twin but the numerics.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..numerics import add_requantize, average, mul_requantize, requantize
from . import ir
from .qreference_attention import forward_op as attention_op
from .reference import seq_view

__all__ = ["forward"]


def _conv(op: ir.QConv, x: np.ndarray) -> np.ndarray:
    top, left, bottom, right = op.pads
    x = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    (kh, kw), (sh, sw) = op.kernel, op.strides
    win = sliding_window_view(x, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]  # N C OH OW KH KW
    if op.depthwise:
        acc = np.einsum("nchwij,cij->nchw", win, op.w[:, 0].astype(np.int64))
    else:
        acc = np.einsum("nchwij,ocij->nohw", win, op.w.astype(np.int64))
    acc = acc + op.bias.reshape(-1, 1, 1)
    y = requantize(acc, op.multiplier.reshape(-1, 1, 1), op.shift.reshape(-1, 1, 1),
                   relu=op.relu)
    return _maxpool(y) if op.pool else y


def _maxpool(x: np.ndarray, line: bool = False) -> np.ndarray:
    n, c, h, w = x.shape
    if line:   # a (C, 1, L) line, 1 x 4 windows
        return x[:, :, :, : w // 4 * 4].reshape(n, c, 1, w // 4, 4).max(4)
    return x[:, :, : h // 2 * 2, : w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max((3, 5))


def _avgpool(op: ir.QAvgPool, x: np.ndarray) -> np.ndarray:
    (kh, kw), (n, c, h, w) = op.kernel, x.shape
    win = x[:, :, : h // kh * kh, : w // kw * kw].reshape(n, c, h // kh, kh, w // kw, kw)
    return average(win.sum((3, 5)), kh * kw)


def _depth_to_space(f: int, x: np.ndarray) -> np.ndarray:
    n, c, h, w = x.shape
    y = x.reshape(n, c // (f * f), f, f, h, w)   # (n, c, a, b, i, j)
    return y.transpose(0, 1, 4, 2, 5, 3).reshape(n, c // (f * f), h * f, w * f)


def _linear(op: ir.QLinear, x: np.ndarray) -> np.ndarray:
    acc = x @ op.w.T.astype(np.int64) + op.bias
    return requantize(acc, op.multiplier, op.shift, relu=op.relu)


def _lstm(op: ir.QLstm, x: np.ndarray) -> np.ndarray:
    from ..generators.lstm.model import golden_sequence

    hs = np.stack([golden_sequence(op.params, s)[0] for s in x])
    return hs[:, -1] if op.last_step else hs


def forward(qg: ir.QGraph, x_int) -> np.ndarray:
    """The integer outputs of ``qg`` (int64 holding int8 values) on the batch ``x_int``."""
    env = {ir.INPUT: np.asarray(x_int, dtype=np.int64)}
    for op in qg.ops:
        x, *more = (env[v] for v in op.inputs)
        if isinstance(op, ir.QEmbedding):
            y = op.table.astype(np.int64)[x]
        elif isinstance(op, ir.QConv):
            y = _conv(op, x)
        elif isinstance(op, ir.QMaxPool):
            y = _maxpool(x, op.line)
        elif isinstance(op, ir.QAvgPool):
            y = _avgpool(op, x)
        elif isinstance(op, ir.QAdd):
            y = add_requantize(x, more[0], op.params, relu=op.relu)
        elif isinstance(op, ir.QMul):   # a gate (N, C, 1, 1) broadcasts over the pixels
            y = mul_requantize(x, more[0], op.shift, relu=op.relu)
        elif isinstance(op, ir.QFlatten):
            y = x.reshape(len(x), -1)
        elif isinstance(op, ir.QUnflatten):
            y = x[:, :, None, None]
        elif isinstance(op, ir.QSeqView):
            y = seq_view(x, op.to_line, op.hw)
        elif isinstance(op, ir.QDepthToSpace):
            y = _depth_to_space(op.factor, x)
        elif isinstance(op, ir.QLinear):
            y = _linear(op, x)
        elif isinstance(op, ir.QLstm):
            y = _lstm(op, x)
        elif isinstance(op, ir.QATTENTION_OPS):
            y = attention_op(op, x, more)
        else:
            raise TypeError(f"op must be a quantized IR op, not {op!r}")
        env[op.name] = np.asarray(y, dtype=np.int64)
    return env[qg.output]
