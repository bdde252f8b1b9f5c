"""The integer LayerNorm: numpy and torch agree exactly, the documented error bound holds, edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hwaccel.numerics import (
    LN_EPS_FRAC,
    LN_MAX_CHANNELS,
    MULT_BITS,
    LayerNormParams,
    isqrt_newton,
    layernorm_error,
    layernorm_error_bound,
    layernorm_int,
    layernorm_params,
    ln_rsqrt,
)


def _exact(row: list[int], p: LayerNormParams) -> list[int]:
    """The module docstring's definition in Python integers (math.isqrt, no float at all)."""
    c, sx, sxx = len(row), sum(row), sum(v * v for v in row)
    w_full = ((c * sxx - sx * sx) << LN_EPS_FRAC) + p.eps_term
    s = (w_full.bit_length() - 21) // 2
    w = w_full >> (2 * s) if s > 0 else w_full << (-2 * s)
    r = math.isqrt((1 << 62) // w) if w else 0
    h = min(max(9 + s, 1), 62)
    out = []
    for v, g, b in zip(row, p.gamma_mult, p.beta_add):
        z = ((c * v - sx) * r + (1 << (h - 1))) >> h
        out.append(min(max((z * g + b + (1 << (p.shift - 1))) >> p.shift, -128), 127))
    return out


def _params(rng, c, sx=0.05, sy=0.03, zero_gamma=False):
    g = rng.uniform(-2, 2, c)
    if zero_gamma:
        g[::3] = 0.0
    return layernorm_params(sx, sy, g, rng.uniform(-1, 1, c), 1e-5)


def test_numpy_torch_and_exact_integers_agree_on_wide_random_inputs():
    rng = np.random.default_rng(3)
    for c in (1, 2, 3, 17, 32, 64, 256, LN_MAX_CHANNELS):
        for sx, sy in ((0.002, 0.5), (0.05, 0.03), (0.3, 0.004)):
            p = _params(rng, c, sx, sy, zero_gamma=c % 2 == 1)
            q = rng.integers(-128, 128, (2, 40, c))
            q[0, :10] = rng.integers(-3, 3, (10, 1)) + rng.integers(0, 2, (10, c))  # tiny variance
            q[0, 10:12] = rng.integers(-128, 128, (2, 1))                           # constant
            got = layernorm_int(q, p)
            assert got.dtype == np.int64 and got.shape == q.shape
            np.testing.assert_array_equal(got, layernorm_int(torch.as_tensor(q), p).numpy())
            for i in (0, 5, 10, 11, 12, 39):
                assert got[0, i].tolist() == _exact(q[0, i].tolist(), p), (c, sx, sy, i)


def test_rsqrt_is_the_exact_floor_and_equals_ibert_newton():
    rng = np.random.default_rng(4)
    w = np.concatenate([np.arange(1, 300), 2 ** np.arange(0, 51), 2 ** np.arange(1, 51) - 1,
                        rng.integers(1, 1 << 50, 3000)]).astype(np.int64)
    r, s = ln_rsqrt(w)
    rt, st = ln_rsqrt(torch.as_tensor(w))
    np.testing.assert_array_equal(r, rt.numpy())
    np.testing.assert_array_equal(s, st.numpy())
    for wv, rv, sv in zip(w.tolist(), r.tolist(), s.tolist()):
        m = wv >> (2 * sv) if sv > 0 else wv << (-2 * sv)
        assert (1 << 20) <= m < (1 << 22)
        assert rv * rv * m <= 1 << 62 < (rv + 1) * (rv + 1) * m    # the floor, exactly
        assert rv == isqrt_newton((1 << 62) // m)
    assert ln_rsqrt(np.array([0]))[0].tolist() == [0]
    for n in list(range(200)) + [(1 << 62) - 1, 1 << 62, 10**15 + 7]:
        assert isqrt_newton(n) == math.isqrt(n)


@pytest.mark.parametrize("channels", [2, 3, 32, 64])
def test_documented_error_bound_holds(channels):
    for sx in (0.002, 0.25):
        err, bound = layernorm_error(channels, sx, rows=500)
        assert 0.3 < err <= bound < 0.51, (channels, sx, err, bound)


def test_zero_variance_rows_give_beta():
    rng = np.random.default_rng(5)
    c, sy = 32, 0.02
    beta = rng.uniform(-1, 1, c)
    for eps in (0.0, 1e-5):  # with eps 0, W = 0 on a constant row: r is defined as 0
        p = layernorm_params(0.05, sy, rng.uniform(-2, 2, c), beta, eps)
        q = np.repeat(np.arange(-128, 128)[:, None], c, axis=1)
        want = np.floor(np.asarray(p.beta_add) / 2.0**p.shift + 0.5)
        got = layernorm_int(q, p)
        assert (got == want).all() and np.abs(want - beta / sy).max() <= 0.5 + 1e-9
        np.testing.assert_array_equal(got, layernorm_int(torch.as_tensor(q), p).numpy())
    one = layernorm_params(0.1, 0.01, [3.0], [0.5])  # one channel: always beta
    assert layernorm_int(np.arange(-128, 128)[:, None], one).ravel().tolist() == [50] * 256
    three = layernorm_params(0.1, 0.1, [1.0] * 3, [0.0] * 3)
    assert layernorm_int([1, 2, 3], three).tolist() == [-12, 0, 12]  # +-sqrt(1.5) / 0.1


def test_saturating_output_scale_clamps_like_float():
    rng = np.random.default_rng(6)
    c = 16
    g, b = rng.uniform(0.5, 2, c), rng.uniform(-1, 1, c)
    p = layernorm_params(0.05, 0.001, g, b)                 # |y| / s_y reaches thousands
    q = rng.integers(-128, 128, (200, c))
    x = q * 0.05
    ref = g * (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) + b
    got = layernorm_int(q, p)
    assert (got == 127).any() and (got == -128).any()
    # the bound holds through the clamp (clamping never moves two values further apart)
    assert np.abs(got - np.clip(ref / 0.001, -128, 127)).max() <= layernorm_error_bound(p) < 1


def test_params_derivation():
    p = layernorm_params(0.05, 0.02, [1.0, -0.5, 0.0], [0.1, 0.0, -0.2], eps=1e-5)
    assert (1 << (MULT_BITS - 1)) <= max(abs(g) for g in p.gamma_mult) < (1 << MULT_BITS)
    assert p.gamma_mult[1] == -p.gamma_mult[0] // 2 and p.gamma_mult[2] == 0
    assert p.eps_term == round(9 * 1e-5 / 0.05**2 * 2**LN_EPS_FRAC)
    assert abs(p.beta_add[0] / 2**p.shift - 5.0) < 2.0**-p.shift


def test_bad_input_is_refused_by_name():
    g, b = [1.0] * 4, [0.0] * 4
    for bad in (math.nan, 0.0, -1.0, math.inf, None):
        with pytest.raises(ValueError, match="in_scale must be a positive finite number"):
            layernorm_params(bad, 0.1, g, b)
        with pytest.raises(ValueError, match="out_scale must be a positive finite number"):
            layernorm_params(0.1, bad, g, b)
    with pytest.raises(ValueError, match="one value per channel, not 4 and 3"):
        layernorm_params(0.1, 0.1, g, b[:3])
    with pytest.raises(ValueError, match="gamma and beta must be finite"):
        layernorm_params(0.1, 0.1, [1.0, math.nan, 1.0, 1.0], b)
    with pytest.raises(ValueError, match="eps must be a non-negative finite number"):
        layernorm_params(0.1, 0.1, g, b, eps=math.nan)
    with pytest.raises(ValueError, match="too large for 4 channels"):
        layernorm_params(1e-9, 0.1, g, b, eps=1.0)
    with pytest.raises(ValueError, match="\\|gamma\\| / out_scale must be below 2\\*\\*15"):
        layernorm_params(0.1, 1e-6, g, b)
    with pytest.raises(ValueError, match="channels must be an integer in \\[1, 1024\\]"):
        layernorm_params(0.1, 0.1, [1.0] * 1025, [0.0] * 1025)
    p = layernorm_params(0.1, 0.1, g, b)
    with pytest.raises(ValueError, match="must have 4 channels, not shape \\(2, 5\\)"):
        layernorm_int(np.zeros((2, 5), dtype=np.int64), p)
    with pytest.raises(ValueError, match="must have 4 channels"):
        layernorm_int(torch.zeros(5, dtype=torch.int64), p)
    with pytest.raises(ValueError, match="must lie in int8 \\[-128, 127\\], not \\[-129, 0\\]"):
        layernorm_int(np.array([-129, 0, 0, 0]), p)
    with pytest.raises(ValueError, match="must be integers"):
        layernorm_int(np.zeros(4), p)
    with pytest.raises(ValueError, match="must be integers"):
        layernorm_int(torch.zeros(4), p)
    with pytest.raises(ValueError, match="shift must be an integer in \\[1, 40\\]"):
        LayerNormParams(4, 0, (1,) * 4, (0,) * 4, 0)
    with pytest.raises(ValueError, match="gamma_mult must be a tuple of 4 integers"):
        LayerNormParams(4, 0, (1 << MULT_BITS,) * 4, (0,) * 4, 3)
