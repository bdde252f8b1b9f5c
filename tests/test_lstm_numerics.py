"""Fixed-point sigmoid/tanh and the LSTM cell arithmetic of hwaccel.numerics (exhaustive sweeps)."""

from __future__ import annotations

import numpy as np
import torch

from hwaccel.numerics import (
    ACT_FMT,
    ACT_ONE,
    CELL_FMT,
    GATE_FMT,
    INT8,
    SIGMOID_MAX_ERROR,
    TANH_MAX_ERROR,
    activation_error,
    cell_update,
    gate_preactivation,
    sigmoid_fx,
    tanh_fx,
)

TARGET = 2.0 ** -7


def test_sigmoid_worst_error_over_every_gate_input():
    err = activation_error("sigmoid", GATE_FMT)
    assert err <= SIGMOID_MAX_ERROR <= TARGET
    assert err > 0.9 * SIGMOID_MAX_ERROR   # the documented bound is tight, not a loose guess


def test_tanh_worst_error_over_every_gate_and_cell_input():
    for fmt in (GATE_FMT, CELL_FMT):
        err = activation_error("tanh", fmt)
        assert err <= TANH_MAX_ERROR <= TARGET
        assert err > 0.9 * TANH_MAX_ERROR


def test_activation_outputs_fit_their_format_and_are_monotone():
    z = np.arange(CELL_FMT.min, CELL_FMT.max + 1, dtype=np.int64)
    for fn, lo in ((sigmoid_fx, 0), (tanh_fx, -ACT_ONE)):
        y = fn(z)
        assert y.min() >= lo and y.max() <= ACT_ONE
        assert ACT_FMT.contains(int(y.min())) and ACT_FMT.contains(int(y.max()))
        assert np.all(np.diff(y) >= 0)


def test_scalar_numpy_and_torch_agree():
    rng = np.random.default_rng(7)
    z = rng.integers(CELL_FMT.min, CELL_FMT.max + 1, 500)
    for fn in (sigmoid_fx, tanh_fx):
        vec = fn(z)
        assert [fn(int(v)) for v in z] == vec.tolist()
        assert fn(torch.as_tensor(z)).tolist() == vec.tolist()


def test_gate_preactivation_matches_its_definition():
    """z = sat_gate(sat32(rq(acc_x)) + sat32(rq(acc_h)) + bias), checked on hand-picked values."""
    one = ACT_ONE
    # 1000 * 0.5 + 300 * 0.25 + 7 = 582
    assert gate_preactivation(1000, 300, (1 << 15, 16), (1 << 14, 16), 7) == 582
    # Round half up on each part separately: 3 * 0.5 = 1.5 -> 2, -3 * 0.5 = -1.5 -> -1.
    assert gate_preactivation(3, -3, (1 << 15, 16), (1 << 15, 16), 0) == 1
    # Saturation of the sum to the gate format.
    assert gate_preactivation(1 << 20, 0, (65535, 1), (0, 1), 0) == GATE_FMT.max
    assert gate_preactivation(-(1 << 20), 0, (65535, 1), (0, 1), GATE_FMT.min) == GATE_FMT.min
    assert gate_preactivation(0, 0, (1, 1), (1, 1), one) == one


def test_cell_update_against_float():
    rng = np.random.default_rng(3)
    i, f, o = (rng.integers(0, ACT_ONE + 1, 1000) for _ in range(3))
    g = rng.integers(-ACT_ONE, ACT_ONE + 1, 1000)
    c_prev = rng.integers(-8 * ACT_ONE, 8 * ACT_ONE, 1000)
    c, h = cell_update(i, f, g, o, c_prev)
    c_float = (f * c_prev + i * g) / ACT_ONE ** 2
    assert np.max(np.abs(c / ACT_ONE - c_float)) <= 0.5 / ACT_ONE
    h_float = o / ACT_ONE * np.tanh(c / ACT_ONE)
    # h: int8 rounding (2**-8) plus tanh's error scaled by |o| <= 1; +1.0 saturates to 127/128.
    assert np.max(np.abs(h / 128 - h_float)) <= 2.0 ** -8 + TANH_MAX_ERROR + 1e-12
    assert h.min() >= INT8.min and h.max() <= INT8.max


def test_cell_state_saturates():
    c, _ = cell_update(ACT_ONE, ACT_ONE, ACT_ONE, ACT_ONE, CELL_FMT.max)
    assert c == CELL_FMT.max
