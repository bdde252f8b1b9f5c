"""The int8 GELU table: numpy and torch agree exactly, correctly rounded over every input, edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hwaccel.numerics import (
    GELU_TABLE_SIZE,
    GeluParams,
    gelu_error,
    gelu_float,
    gelu_int,
    gelu_params,
    ibert_gelu_error,
)

I8 = np.arange(-128, 128, dtype=np.int64)
SCALE_PAIRS = ((0.01, 0.00898), (0.05, 0.05), (0.1, 0.02), (0.003, 0.2), (1.0, 0.05))


def test_float_reference_is_torch_gelu():
    x = torch.linspace(-8, 8, 401, dtype=torch.float64)
    for approx in ("none", "tanh"):
        ref = torch.nn.functional.gelu(x, approximate=approx)
        ours = torch.tensor([gelu_float(float(v), approx) for v in x], dtype=torch.float64)
        torch.testing.assert_close(ours, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("approx", ["none", "tanh"])
def test_every_input_is_correctly_rounded_and_torch_agrees(approx):
    rng = np.random.default_rng(8)
    for sx, sy in SCALE_PAIRS:
        p = gelu_params(sx, sy, approx)
        got = gelu_int(I8, p)
        want = [min(max(math.floor(gelu_float(int(q) * sx, approx) / sy + 0.5), -128), 127)
                for q in I8]
        assert got.tolist() == want
        assert gelu_error(sx, sy, approx) <= 0.5 + 1e-9
        q = rng.integers(-128, 128, (3, 7, 50))
        np.testing.assert_array_equal(gelu_int(q, p), gelu_int(torch.as_tensor(q), p).numpy())
        assert gelu_int(torch.as_tensor(q, dtype=torch.int8), p).dtype == torch.int64


def test_table_is_the_documented_improvement_over_ibert():
    for sx in (0.01, 0.05, 0.1):
        sy = gelu_float(127 * sx) / 127
        assert gelu_error(sx, sy) <= 0.5 + 1e-9 < 0.7 < ibert_gelu_error(sx, sy)
    assert ibert_gelu_error(0.01, 0.00898, shift=14) > 20  # I-BERT's own shift, on int8 inputs


def test_edges():
    p = gelu_params(0.1, 1e-4)  # saturating output scale
    y = gelu_int(I8, p)
    assert y[-1] == 127 and y[128] == 0 and y.min() >= -128
    assert (y[I8 > 0] == 127).all()  # every positive input saturates
    fine = gelu_params(1e-6, 1.0)  # inputs far below one output step: all zero
    assert not any(fine.table)
    assert gelu_int(np.array(5), gelu_params(0.1, 0.1)) == 3  # gelu(0.5) = 0.3457: 3.457 LSB
    assert gelu_int(np.zeros(0, dtype=np.int64), p).shape == (0,)
    assert gelu_int([5, -5], p).tolist() == gelu_int(np.array([5, -5]), p).tolist()


def test_bad_input_is_refused_by_name():
    for bad in (math.nan, 0.0, -2.0, math.inf, None, "1"):
        with pytest.raises(ValueError, match="in_scale must be a positive finite number"):
            gelu_params(bad, 0.1)
        with pytest.raises(ValueError, match="out_scale must be a positive finite number"):
            gelu_params(0.1, bad)
    with pytest.raises(ValueError, match="approximate must be one of \\('none', 'tanh'\\)"):
        gelu_params(0.1, 0.1, "erf")
    p = gelu_params(0.1, 0.1)
    with pytest.raises(ValueError, match="must lie in int8 \\[-128, 127\\], not \\[0, 200\\]"):
        gelu_int(np.array([0, 200]), p)
    with pytest.raises(ValueError, match="must lie in int8"):
        gelu_int(torch.tensor([-300, 0]), p)
    with pytest.raises(ValueError, match="must be integers"):
        gelu_int(np.array([0.5]), p)
    with pytest.raises(ValueError, match="must be integers"):
        gelu_int(torch.tensor([0.5]), p)
    with pytest.raises(ValueError, match=f"table must be a tuple of {GELU_TABLE_SIZE} int8"):
        GeluParams((0,) * 255 + (128,))
