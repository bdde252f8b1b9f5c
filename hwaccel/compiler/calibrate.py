"""Activation ranges for post-training quantization: the clip of each tensor that minimizes its
int8 quantization error over the calibration data (:func:`mse_clips`).

A symmetric int8 tensor at scale ``s = c / 127`` represents ``[-c, c]``: values inside are
rounded to a step of ``s``, values beyond are clipped to ``±c``. ``c = max|x|`` clips nothing
but spends most of the 256 codes on a tail that few values reach; a smaller ``c`` halves the
rounding error of every value each time it halves the step, at the price of clipping the few
beyond it. :func:`mse_clip` picks the ``c`` that minimizes the sum of both squared errors over
the calibration values -- the MSE calibration of TensorRT, OpenVINO and Nagel et al., *A White
Paper on Neural Network Quantization* (2021), section 3.5.

The values are counted in a histogram of ``|x|`` with :data:`BINS` bins over ``[0, max|x|]``;
within a bin they are taken as uniform, and the error of a bin is integrated exactly
(:func:`_sawtooth_integral` for the rounding, a cubic for the clipping); exact zeros (a ReLU's
silenced half) are exact at every scale and count for nothing. Candidates are the bin edges,
so ``max|x|`` itself is one and the chosen clip is never above it. Only the scales change: the
integer arithmetic that uses them is the same for every choice.
"""

from __future__ import annotations

import numpy as np

from ..numerics import INT8
from . import ir

__all__ = ["mse_clip", "mse_clips", "BINS", "MIN_VALUES"]

#: Histogram bins over [0, max|x|] (about 16 per int8 step at ``c = max|x|``).
BINS = 2048
#: Below this many non-zero calibration values a tensor keeps ``max|x|``: a handful of values
#: say nothing about how heavy its tail is, and the clip would fit them, not the tensor.
MIN_VALUES = 1024


def _sawtooth_integral(u: np.ndarray, s) -> np.ndarray:
    """``∫_0^u (t - s*round(t/s))^2 dt`` for ``u >= 0``: the rounding error's square, summed.
    Each whole step ``[(j - 1/2) s, (j + 1/2) s]`` adds ``s^3 / 12``; ``d = u - j*s`` is the part
    of the last one, ``∫_0^d t^2 dt = d^3 / 3`` (negative while ``u`` is short of ``j*s``)."""
    j = np.floor(u / s + 0.5)
    d = u - j * s
    return j * s ** 3 / 12 + d ** 3 / 3


def _errors(hist: np.ndarray, edges: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The summed squared error of the histogram at each candidate clip (a bin edge index)."""
    lo, hi = edges[:-1], edges[1:]
    c = edges[candidates][:, None]
    s = c / INT8.max
    a, b = np.minimum(lo, c), np.minimum(hi, c)  # each bin's part inside [0, c] ...
    inside = _sawtooth_integral(b, s) - _sawtooth_integral(a, s)
    beyond = ((np.maximum(hi, c) - c) ** 3 - (np.maximum(lo, c) - c) ** 3) / 3  # ... and beyond
    return (hist * (inside + beyond) / (hi - lo)).sum(axis=1)


def mse_clip(hist: np.ndarray, amax: float) -> float:
    """The clip ``c`` (``amax / 64 <= c <= amax``, a bin edge) minimizing the int8 quantization
    error of the values counted in ``hist`` (bins of ``|x|`` over ``[0, amax]``, exact zeros
    left out); ``amax`` when nothing is counted. Every 16th edge is tried, then every edge
    within 15 of the best."""
    hist = np.asarray(hist, dtype=np.float64)
    if amax <= 0 or hist.sum() == 0:
        return float(amax)
    n = len(hist)
    edges = np.linspace(0.0, amax, n + 1)
    coarse = np.arange(n, n // 64 - 1, -16)[::-1]  # always holds n (amax itself)
    best = int(coarse[np.argmin(_errors(hist, edges, coarse))])
    fine = np.arange(max(best - 15, n // 64), min(best + 15, n) + 1)
    return float(edges[fine[int(np.argmin(_errors(hist, edges, fine)))]])


def mse_clips(graph: ir.Graph, x, amax: dict[str, float], names, batch: int = 256
              ) -> dict[str, float]:
    """:func:`mse_clip` of the float value of every op in ``names`` over the batch ``x`` (the
    calibration data, already checked finite by :func:`.reference.ranges`, which gave
    ``amax``), or ``amax`` where fewer than :data:`MIN_VALUES` values are non-zero;
    ``"input"`` (:data:`.ir.INPUT`) in ``names`` covers the input too. All-zero values are left
    out (they keep their ``amax`` of 0)."""
    import torch

    from .reference import _prepare, run

    names = [n for n in names if amax.get(n, 0) > 0]
    hists = {n: np.zeros(BINS) for n in names}

    def count(name: str, y) -> None:
        a = y.abs().flatten()
        a = a[a > 0].clamp(max=amax[name])  # float rounding may pass amax by an ulp
        hists[name] += torch.histc(a, BINS, 0.0, amax[name]).double().numpy()

    def visit(op, y):
        if op.name in hists:
            count(op.name, y)

    x = _prepare(graph, x)
    with torch.no_grad():
        for i in range(0, len(x), batch):
            if ir.INPUT in hists:
                count(ir.INPUT, x[i:i + batch])
            run(graph, x[i:i + batch], visit)
    return {n: mse_clip(h, amax[n]) if h.sum() >= MIN_VALUES else amax[n]
            for n, h in hists.items()}
