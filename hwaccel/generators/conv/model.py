"""Golden models of the convolution engine.

* :func:`conv_golden` -- the bit-exact integer layer: ``torch.nn.functional.conv2d`` on int64
  tensors (``groups = cin`` when depthwise), plus the int32 bias,
  :func:`hwaccel.numerics.requantize` (ReLU folded into its bounds) and
  ``max_pool2d`` when the layer pools. The RTL must equal it exactly.
* :func:`conv_float` -- the float reference the integer layer approximates, and
  :data:`FLOAT_TOLERANCE`, the bound between the two (derived below).
* :func:`scalesim_best` -- the best SCALE-Sim dataflow for the layer as an im2col GEMM.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ...numerics import INT8, requantize
from ..systolic.model import scalesim_cycles
from .layer import ConvLayer

__all__ = ["conv_golden", "conv_float", "FLOAT_TOLERANCE", "scalesim_best", "im2col_shape"]

#: Largest difference, in int8 steps, between :func:`conv_golden` and :func:`conv_float` rounded.
#: The integer path differs from the float one only in the requantizer: ``M / 2**S`` is
#: ``s_in*s_w/s_out`` rounded to MULT_BITS=16 significant bits (relative error <= 2**-16), and it
#: rounds half up where torch rounds half to even. Below saturation ``|acc * m| < 128``, so the
#: scale error moves the real-valued result by less than ``128 * 2**-16 = 2**-9`` of a step; the
#: two roundings of values that close can then differ by at most one step. Saturation and ReLU
#: clamp both paths alike, and max-pooling is monotonic, so it cannot widen the gap.
FLOAT_TOLERANCE = 1


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.array(a), dtype=torch.int64)


def _pool(y: torch.Tensor) -> torch.Tensor:
    """2x2 stride-2 max-pool (floor mode); a map under 2x2 pools to an empty one."""
    if min(y.shape[-2:]) < 2:
        return y[..., : y.shape[-2] // 2, : y.shape[-1] // 2]
    return F.max_pool2d(y[None], 2)[0]


def _padded(layer: ConvLayer, x: torch.Tensor) -> torch.Tensor:
    """``x`` with ``layer``'s zero padding on each side (as TensorFlow's "same" or ``F.pad``)."""
    top, left, bottom, right = layer.pads
    return F.pad(x, (left, right, top, bottom))


def conv_golden(layer: ConvLayer, x, w, bias, multiplier, shift) -> np.ndarray:
    """Integer output ``Cout x OH x OW`` (int64 values in int8 range) of ``layer``."""
    stride = (layer.stride_h, layer.stride_w)
    groups = layer.cin if layer.depthwise else 1
    acc = F.conv2d(_padded(layer, _t(x))[None], _t(w), stride=stride, groups=groups)[0]
    acc = acc + _t(bias).reshape(-1, 1, 1)
    y = requantize(acc, _t(multiplier).reshape(-1, 1, 1), _t(shift).reshape(-1, 1, 1),
                   relu=layer.relu)
    if layer.pool:
        y = _pool(y)
    return y.numpy()


def conv_float(layer: ConvLayer, x, w, bias, s_in: float, s_w, s_out: float) -> np.ndarray:
    """The float layer on dequantized tensors, quantized to int8 at ``s_out`` (round half even).

    ``s_w`` is per output channel; ``bias`` is int32 at scale ``s_in * s_w``.
    """
    s_w = torch.as_tensor(np.broadcast_to(np.asarray(s_w, dtype=np.float64), (layer.cout,)).copy())
    xf = _t(x).to(torch.float64) * s_in
    wf = _t(w).to(torch.float64) * s_w.reshape(-1, 1, 1, 1)
    bf = _t(bias).to(torch.float64) * s_in * s_w
    y = F.conv2d(_padded(layer, xf)[None], wf, bf, stride=(layer.stride_h, layer.stride_w),
                 groups=layer.cin if layer.depthwise else 1)[0]
    if layer.relu:
        y = torch.relu(y)
    if layer.pool:
        y = _pool(y)
    return torch.round(y / s_out).clamp(INT8.min, INT8.max).to(torch.int64).numpy()


def im2col_shape(layer: ConvLayer) -> tuple[int, int, int]:
    """``(M, K, N)`` of the layer as an im2col GEMM."""
    oh, ow = layer.out_size
    return oh * ow, layer.taps * layer.group_cin, layer.cout


def scalesim_best(layer: ConvLayer, macs: int) -> tuple[str, int]:
    """Best SCALE-Sim dataflow and its cycles on a square array of ``macs`` MACs."""
    side = math.isqrt(macs)
    if side * side != macs:
        raise ValueError(f"macs must be a perfect square for a square array, not {macs!r}")
    m, k, n = im2col_shape(layer)
    return min(((df, scalesim_cycles(df, side, side, m, k, n)) for df in ("os", "ws", "is")),
               key=lambda t: t[1])
