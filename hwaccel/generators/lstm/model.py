"""Golden models of the LSTM cell engine.

* :class:`LstmParams` -- the integer parameters the engine holds: int8 weights, one requantizer
  per gate row for each of the x and h products, a gate-format bias.
* :func:`quantize_lstm` -- float weights (e.g. a ``torch.nn.LSTM``'s) to :class:`LstmParams`.
* :func:`golden_sequence` -- the bit-exact integer model (torch int64, built on
  :mod:`hwaccel.numerics`): RTL outputs must equal it exactly.
* :func:`float_sequence` -- ``torch.nn.LSTM`` in float64, the float reference.

Tolerance between the two (documented, and tested in ``tests/test_lstm_model.py``): I = H = 64,
T = 100, inputs uniform in [-1, 1) quantized at ``s_x = 1/127``, the float model fed the same
(dequantized) inputs, error = max over all steps and units of |h_int8 / 128 - h_float|:

=======================================  ======  ===============  ==========================
weights and biases                       max|h|  measured error   documented bound
=======================================  ======  ===============  ==========================
U(-1/sqrt(H), 1/sqrt(H)) (torch's init)  0.40    0.0078 - 0.0090  :data:`H_TOLERANCE` 0.02
U(-3/sqrt(H), 3/sqrt(H))                 0.85    0.0147 - 0.0196  :data:`H_TOLERANCE_WIDE` 0.04
=======================================  ======  ===============  ==========================

Seeds 0-4 of ``cases.trained_range_params``; the test reruns exactly these. The bounds carry a
2x margin over the worst measured seed. Where the error comes from: h's int8 step is 2**-7 (up to
0.0039 of rounding each step), each activation adds at most
:data:`~hwaccel.numerics.TANH_MAX_ERROR` (0.0040), and weights are rounded to int8 per row. The
recurrence does not amplify these (|f| < 1 and the recurrent weights are small), so the error
stays at a few h LSBs over 100 steps instead of growing with T; larger weights amplify more.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...numerics import (
    ACT_ONE,
    CELL_FMT,
    FX_FRAC,
    GATE_FMT,
    H_FRAC,
    INT8,
    cell_update,
    gate_preactivation,
    quantize,
    requant_params,
    saturate,
    sigmoid_fx,
    tanh_fx,
)
from .config import LstmConfig

__all__ = ["GateShapes", "LstmParams", "quantize_lstm", "golden_sequence", "golden_outputs",
           "float_sequence", "H_TOLERANCE", "H_TOLERANCE_WIDE", "H_SCALE", "int8_input"]

#: Scale of the int8 hidden state (and so of a stacked layer's x): 2**-7.
H_SCALE = 2.0 ** -H_FRAC
#: Documented max |h_golden - h_torch| over 100 steps (see the module docstring).
H_TOLERANCE = 0.02
H_TOLERANCE_WIDE = 0.04


class GateShapes:
    """``input_size`` and ``hidden_size`` of a layer whose ``w_ih`` is ``4H x I`` and ``w_hh``
    is ``4H x H`` (PyTorch's layout; shared by float and integer weights)."""

    w_ih: np.ndarray
    w_hh: np.ndarray

    @property
    def input_size(self) -> int:
        return self.w_ih.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.w_hh.shape[1]


@dataclass(frozen=True)
class LstmParams(GateShapes):
    """Integer parameters of one layer (rows in PyTorch gate order i, f, g, o).

    Attributes
    ----------
    w_ih : (4H, I) int64 in int8 range
    w_hh : (4H, H) int64 in int8 range
    mult_x, shift_x, mult_h, shift_h : (4H,) int64
        Requantizers of the x and h partial accumulators into the gate format.
    bias : (4H,) int64 in GATE_FMT
    """

    w_ih: np.ndarray
    w_hh: np.ndarray
    mult_x: np.ndarray
    shift_x: np.ndarray
    mult_h: np.ndarray
    shift_h: np.ndarray
    bias: np.ndarray

    def check(self, cfg: LstmConfig) -> None:
        """Raise ``ValueError`` unless the shapes and ranges fit ``cfg``."""
        rows, i, h = cfg.rows, cfg.input_size, cfg.hidden_size
        if self.w_ih.shape != (rows, i) or self.w_hh.shape != (rows, h):
            raise ValueError(f"weights must have shapes {(rows, i)} and {(rows, h)}, not "
                             f"{self.w_ih.shape} and {self.w_hh.shape}")
        for name in ("w_ih", "w_hh"):
            w = getattr(self, name)
            if w.min() < INT8.min or w.max() > INT8.max:
                raise ValueError(f"{name} must hold int8 values")
        for name in ("mult_x", "shift_x", "mult_h", "shift_h", "bias"):
            if getattr(self, name).shape != (rows,):
                raise ValueError(f"{name} must have shape {(rows,)}")
        mults = np.concatenate([self.mult_x, self.mult_h])
        if mults.min() < 0 or mults.max() >= 1 << cfg.mult_bits:
            raise ValueError(f"mult_x and mult_h must be in [0, 2**{cfg.mult_bits})")
        if min(self.shift_x.min(), self.shift_h.min()) < 1 or max(
                self.shift_x.max(), self.shift_h.max()) >= 1 << cfg.shift_bits:
            raise ValueError(f"shift_x and shift_h must be in [1, 2**{cfg.shift_bits})")
        if self.bias.min() < GATE_FMT.min or self.bias.max() > GATE_FMT.max:
            raise ValueError("bias must hold GATE_FMT values")


def _row_scales(w: np.ndarray) -> np.ndarray:
    """Per-row symmetric int8 scales; an all-zero row gets scale 1 (any scale is exact)."""
    amax = np.abs(w).max(axis=1)
    return np.where(amax > 0, amax / INT8.max, 1.0)


def quantize_lstm(w_ih, w_hh, b_ih, b_hh, x_scale: float) -> LstmParams:
    """Integer parameters for float weights; ``x_scale`` is the scale of the int8 input."""
    w_ih, w_hh = (np.asarray(w, dtype=np.float64) for w in (w_ih, w_hh))
    bias = np.asarray(b_ih, dtype=np.float64) + np.asarray(b_hh, dtype=np.float64)
    s_ih, s_hh = _row_scales(w_ih), _row_scales(w_hh)
    q_ih = np.rint(w_ih / s_ih[:, None]).astype(np.int64)
    q_hh = np.rint(w_hh / s_hh[:, None]).astype(np.int64)
    rx = [requant_params(x_scale * s * ACT_ONE) for s in s_ih]
    rh = [requant_params(H_SCALE * s * ACT_ONE) for s in s_hh]
    return LstmParams(
        w_ih=q_ih, w_hh=q_hh,
        mult_x=np.array([r.multiplier for r in rx], dtype=np.int64),
        shift_x=np.array([r.shift for r in rx], dtype=np.int64),
        mult_h=np.array([r.multiplier for r in rh], dtype=np.int64),
        shift_h=np.array([r.shift for r in rh], dtype=np.int64),
        bias=quantize(bias, 2.0 ** -FX_FRAC, GATE_FMT),
    )


def golden_sequence(p: LstmParams, x) -> tuple[np.ndarray, np.ndarray]:
    """``(h, c)`` of every step for one sequence ``x`` (T x I int8), from zero state.

    ``h`` is (T, H) int8 at scale 2**-7, ``c`` (T, H) in CELL_FMT. Bit-exact model of the engine.
    """
    xt = torch.as_tensor(np.asarray(x, dtype=np.int64))
    w_ih, w_hh = torch.as_tensor(p.w_ih), torch.as_tensor(p.w_hh)
    rq_x = (torch.as_tensor(p.mult_x), torch.as_tensor(p.shift_x))
    rq_h = (torch.as_tensor(p.mult_h), torch.as_tensor(p.shift_h))
    bias = torch.as_tensor(p.bias)
    hsz = p.hidden_size
    h = torch.zeros(hsz, dtype=torch.int64)
    c = torch.zeros(hsz, dtype=torch.int64)
    hs, cs = [], []
    for t in range(xt.shape[0]):
        z = gate_preactivation(w_ih @ xt[t], w_hh @ h, rq_x, rq_h, bias)
        zi, zf, zg, zo = z.split(hsz)
        c, h = cell_update(sigmoid_fx(zi), sigmoid_fx(zf), tanh_fx(zg), sigmoid_fx(zo), c)
        hs.append(h)
        cs.append(c)
    assert all(int(v.min()) >= CELL_FMT.min and int(v.max()) <= CELL_FMT.max for v in cs)
    return torch.stack(hs).numpy(), torch.stack(cs).numpy()


def golden_outputs(cfg: LstmConfig, p: LstmParams, sequences) -> list[np.ndarray]:
    """The h vectors the engine emits for ``sequences``, in order (``cfg.output`` decides which)."""
    out = []
    for x in sequences:
        h, _ = golden_sequence(p, x)
        out.extend(list(h) if cfg.output == "all" else [h[-1]])
    return out


def float_sequence(w_ih, w_hh, b_ih, b_hh, x) -> np.ndarray:
    """``torch.nn.LSTM`` (float64) hidden states of every step for ``x`` (T x I floats)."""
    w_ih = torch.as_tensor(np.asarray(w_ih), dtype=torch.float64)
    hsz = w_ih.shape[0] // 4
    lstm = torch.nn.LSTM(w_ih.shape[1], hsz, dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(w_ih)
        lstm.weight_hh_l0.copy_(torch.as_tensor(np.asarray(w_hh), dtype=torch.float64))
        lstm.bias_ih_l0.copy_(torch.as_tensor(np.asarray(b_ih), dtype=torch.float64))
        lstm.bias_hh_l0.copy_(torch.as_tensor(np.asarray(b_hh), dtype=torch.float64))
        out, _ = lstm(torch.as_tensor(np.asarray(x), dtype=torch.float64)[:, None, :])
    return out[:, 0, :].numpy()


def int8_input(x_float, x_scale: float) -> np.ndarray:
    """Float inputs to the engine's int8 x (round half even, saturating)."""
    return saturate(quantize(np.asarray(x_float, dtype=np.float64), x_scale, INT8), INT8)
