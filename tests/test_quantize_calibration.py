"""Activation calibration (:mod:`hwaccel.compiler.calibrate`): the MSE clip against a brute-force
search over the real quantizer, the tensors that keep ``max|x|``, the integer path staying
what it was (golden = the integer twin) under the chosen scales; and depthwise channel
equalization (:mod:`hwaccel.compiler.equalize`) leaving the float model and the int8 weights
as they were."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import hwaccel
from hwaccel.compiler.calibrate import BINS, MIN_VALUES, _sawtooth_integral, mse_clip
from hwaccel.compiler.cases import make
from hwaccel.compiler.equalize import MAX_FACTOR, depthwise_pairs, equalize
from hwaccel.compiler.quantize import quantize, weight_scales
from hwaccel.compiler.reference import _prepare as R_prepare
from hwaccel.compiler.reference import forward, run
from hwaccel.compiler.trace import trace
from hwaccel.numerics import INT8
from hwaccel.numerics import quantize as quantize_values


def _quant_mse(v: np.ndarray, c: float) -> float:
    """The int8 quantization error of ``v`` at clip ``c``, by the quantizer itself."""
    s = c / INT8.max
    return float(((quantize_values(v, s) * s - v) ** 2).sum())


def test_sawtooth_integral_is_the_rounding_error_integrated():
    s = 0.37
    for u in (0.0, 0.1, s / 2, 0.2, s, 0.5, 1.234, 10 * s + 0.01):
        t = np.linspace(0.0, u, 400_001)
        numeric = np.trapezoid((t - s * np.round(t / s)) ** 2, t) if u else 0.0
        assert _sawtooth_integral(np.array(u), s) == pytest.approx(numeric, rel=1e-6, abs=1e-12)


@pytest.mark.parametrize("dist", ["uniform", "gaussian", "student_t", "relu_gaussian", "outlier"])
def test_mse_clip_is_as_good_as_a_brute_force_search(dist):
    """Within 2% of the best clip found by quantizing the values themselves at 400 clips.
    The error is a sum of squares, so a thin tail is clipped and a lone far outlier is not."""
    rng = np.random.default_rng(7)
    v = {"uniform": lambda: rng.uniform(-1, 1, 20_000),
         "gaussian": lambda: rng.normal(0, 1, 20_000),
         "student_t": lambda: rng.standard_t(3, 20_000),
         "relu_gaussian": lambda: np.maximum(rng.normal(0, 1, 20_000), 0),
         "outlier": lambda: np.append(rng.normal(0, 1, 20_000), 60.0)}[dist]()
    amax = float(np.abs(v).max())
    a = np.abs(v)
    hist, _ = np.histogram(a[a > 0], BINS, (0.0, amax))
    c = mse_clip(hist, amax)
    assert amax / 64 <= c <= amax
    best = min(_quant_mse(v, k) for k in np.linspace(amax / 64, amax, 400))
    assert _quant_mse(v, c) <= 1.02 * best
    assert _quant_mse(v, c) <= _quant_mse(v, amax)
    if dist == "uniform":  # no tail to cut: (nearly) the whole range
        assert c > 0.97 * amax
    if dist in ("gaussian", "relu_gaussian"):
        assert c < amax  # a thin tail: cheaper to clip than to round everything coarser
    if dist == "outlier":  # one value of 60: clipping it far costs more than a coarser step
        assert c > 0.8 * amax


def test_mse_clip_of_nothing_is_the_range():
    assert mse_clip(np.zeros(BINS), 3.0) == 3.0
    assert mse_clip(np.ones(BINS), 0.0) == 0.0


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(),
                         nn.Linear(32, 4)).eval()


def test_hidden_tensors_are_clipped_and_the_output_is_not():
    """Heavy-tailed inputs: hidden scales sit below max|x| / 127 and quantize the calibration
    activations with less error; the logits keep max|x| / 127 (nothing saturates there)."""
    model = _net()
    torch.manual_seed(1)
    cal = torch.distributions.StudentT(3.0).sample((512, 16)).float()
    cm = hwaccel.compile(model, cal[:2], calibration=cal, preset="ecp5")
    q = cm.qgraph
    with torch.no_grad():
        h1 = model[:2](cal).double().numpy()
        h2 = model[:4](cal).double().numpy()
        out = model(cal).double().numpy()
    assert q.input_scale < np.abs(cal.numpy()).max() / 127
    for op, h in ((q.ops[0], h1), (q.ops[1], h2)):
        amax = np.abs(h).max()
        assert op.s_out < amax / 127, op.name
        assert _quant_mse(h, op.s_out * 127) < _quant_mse(h, amax), op.name
    assert q.ops[2].s_out == pytest.approx(np.abs(out).max() / 127, rel=1e-6)  # float32 model
    # the integer path is the same arithmetic at the new scales: golden = the integer twin
    x = torch.distributions.StudentT(3.0).sample((6, 16)).float() * 3  # some inputs saturate
    np.testing.assert_array_equal(cm.execute("golden", x).int_logits,
                                  cm.int8_forward(cm.quantize_input(x)))


def test_few_calibration_values_keep_the_range():
    """Under MIN_VALUES non-zero values a tensor is not clipped: 8 samples of 16 inputs."""
    model = _net()
    torch.manual_seed(2)
    cal = torch.distributions.StudentT(3.0).sample((8, 16)).float()
    assert cal.numel() < MIN_VALUES
    q = quantize(trace(model, cal[:2]), cal)
    assert q.input_scale == pytest.approx(float(cal.abs().max()) / 127, rel=1e-6)


def test_equalization_keeps_the_float_model_and_the_int8_weights():
    """Every conv -> depthwise pair of a DS-CNN-like model: the float outputs are unchanged, the
    producer's channels end up spanning one range, and both layers' int8 weights are the same
    integers as without the rewrite."""
    model, inputs = make("dscnn_tiny")
    cal = inputs(64, torch.Generator().manual_seed(3))
    graph = trace(model, cal[:2])
    pairs = depthwise_pairs(graph)
    assert pairs
    eq = equalize(graph, cal)
    np.testing.assert_allclose(forward(eq, cal).numpy(), forward(graph, cal).numpy(),
                               rtol=1e-9, atol=1e-12)
    seen = {}
    run(eq, R_prepare(eq, cal), lambda op, y: seen.__setitem__(op.name, y))
    for prod, dw in pairs:
        m = seen[prod].abs().amax(dim=(0, 2, 3)).numpy()
        live = m > m.max() / MAX_FACTOR  # the channels not held back by the cap
        np.testing.assert_allclose(m[live], m.max(), rtol=1e-9)
        for name in (prod, dw):
            before, after = graph.op(name).weight, eq.op(name).weight
            q = lambda w: np.rint(w / weight_scales(w).reshape(-1, 1, 1, 1))  # noqa: E731
            np.testing.assert_array_equal(q(after), q(before))
