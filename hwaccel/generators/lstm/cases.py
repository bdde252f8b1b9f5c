"""LSTM test cases, written once and used by every level (golden model, RTL, benchmarks).

Random integer parameters cover the whole format space the hardware accepts: int8 weights
(sometimes only the extremes -128/127), requantizer pairs from a wide range of real multipliers
plus the corner pairs (largest multiplier with the smallest shift, multiplier 0), and biases
anywhere in the gate format; sequences of int8 inputs (sometimes only the extremes).
"""

from __future__ import annotations

import numpy as np

from ...numerics import GATE_FMT, INT8, requant_params
from .config import LstmConfig
from .model import LstmParams, quantize_lstm

__all__ = ["random_params", "random_sequences", "trained_range_params", "LOADS_EXTREME"]

LOADS_EXTREME = ("random", "extremes", "saturating")


def _int8(rng, shape, extremes: bool) -> np.ndarray:
    if extremes:
        return rng.choice(np.array([INT8.min, INT8.max], dtype=np.int64), size=shape)
    return rng.integers(INT8.min, INT8.max + 1, size=shape, dtype=np.int64)


def random_params(cfg: LstmConfig, rng: np.random.Generator, style: str = "random") -> LstmParams:
    """Integer parameters for ``cfg``; ``style`` is one of :data:`LOADS_EXTREME`.

    ``random``: multipliers put a typical accumulator at |z| of a few units (the sigmoid's
    active range). ``extremes``: +-128/127 weights. ``saturating``: a quarter of the rows use
    the largest requantizer (M = 2**16 - 1, S = 1) or M = 0, and biases at the format's ends.
    """
    rows, i, h = cfg.rows, cfg.input_size, cfg.hidden_size
    ext = style == "extremes"
    w_ih, w_hh = _int8(rng, (rows, i), ext), _int8(rng, (rows, h), ext)

    def reqs(k):
        # ~|acc| = 75^2 sqrt(k); aim z (at 2**-12) at 0.3..30 of that.
        reals = 4096.0 * np.exp(rng.uniform(np.log(0.3), np.log(30.0), rows)) / (5625 * np.sqrt(k))
        pairs = [requant_params(float(r)) for r in reals]
        m = np.array([q.multiplier for q in pairs], dtype=np.int64)
        s = np.array([q.shift for q in pairs], dtype=np.int64)
        if style == "saturating":
            pick = rng.random(rows)
            m = np.where(pick < 0.15, (1 << cfg.mult_bits) - 1, np.where(pick < 0.25, 0, m))
            s = np.where(pick < 0.15, 1, s)
        return m, s

    mx, sx = reqs(i)
    mh, sh = reqs(h)
    bias = rng.integers(-4 * 4096, 4 * 4096, rows, dtype=np.int64)
    if style == "saturating":
        bias = np.where(rng.random(rows) < 0.2, rng.choice([GATE_FMT.min, GATE_FMT.max], rows),
                        bias)
    return LstmParams(w_ih, w_hh, mx, sx, mh, sh, bias)


def random_sequences(cfg: LstmConfig, rng: np.random.Generator, count: int, *,
                     max_len: int = 100, extremes: float = 0.2) -> list[np.ndarray]:
    """``count`` int8 sequences of length in [1, max_len]; some use only -128/127.

    The first two are the corner lengths 1 and ``max_len`` (a one-step sequence has no h part);
    the others are log-uniform, so short sequences (and so sequence boundaries) are frequent
    and the mean length is about ``max_len / ln(max_len)``.
    """
    out = []
    for n in range(count):
        t = (1, max_len)[n] if n < 2 else int(np.exp(rng.uniform(0, np.log(max_len + 1))))
        t = min(max(t, 1), max_len)
        out.append(_int8(rng, (t, cfg.input_size), bool(rng.random() < extremes)))
    return out


def trained_range_params(cfg: LstmConfig, rng: np.random.Generator, x_scale: float,
                         gain: float = 1.0) -> tuple[LstmParams, tuple]:
    """Float weights from PyTorch's init range (times ``gain``), quantized; returns both."""
    k = gain / np.sqrt(cfg.hidden_size)
    w_ih = rng.uniform(-k, k, (cfg.rows, cfg.input_size))
    w_hh = rng.uniform(-k, k, (cfg.rows, cfg.hidden_size))
    b_ih, b_hh = rng.uniform(-k, k, cfg.rows), rng.uniform(-k, k, cfg.rows)
    return quantize_lstm(w_ih, w_hh, b_ih, b_hh, x_scale), (w_ih, w_hh, b_ih, b_hh)
