"""The integer softmax: numpy and torch agree exactly, the documented error bound holds, edges."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch

from hwaccel.numerics import (
    EXP_ONE,
    PROB_MAX,
    SOFTMAX_MAX_ERROR_LSB,
    SOFTMAX_MAX_LEN,
    SoftmaxParams,
    ibert_exp_table,
    softmax_error,
    softmax_error_bound,
    softmax_int,
    softmax_params,
)

SCALES = (1 / 64, 0.07, 0.25, 0.5)


def _exact(q, table):
    """The definition with Python integers (exact rationals), one row at a time."""
    e = [table[max(q) - v] for v in q]
    r = (PROB_MAX << 31) // sum(e)
    return [(x * r + (1 << 30)) >> 31 for x in e]


def test_numpy_torch_and_exact_integers_agree_on_wide_random_rows():
    rng = np.random.default_rng(1)
    for s in (0.003, *SCALES, 1.7):
        p = softmax_params(s, 64)
        for n in (1, 2, 7, 64):
            q = rng.integers(-128, 128, (200, n))
            q[:50] = np.clip(127 - rng.integers(0, 8, (50, n)), -128, 127)  # near the max
            got = softmax_int(q, p)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, softmax_int(torch.as_tensor(q), p).numpy())
            for i in range(0, 200, 37):
                assert got[i].tolist() == _exact(q[i].tolist(), p.exp_table), (s, n, i)


def test_masked_rows_equal_the_shorter_row_in_numpy_and_torch():
    rng = np.random.default_rng(2)
    p = softmax_params(0.1, 16)
    q = rng.integers(-128, 128, (300, 16))
    lengths = rng.integers(1, 17, 300)
    valid = np.arange(16) < lengths[:, None]
    got = softmax_int(q, p, valid)
    np.testing.assert_array_equal(got, softmax_int(torch.as_tensor(q), p,
                                                   torch.as_tensor(valid)).numpy())
    for i in range(300):
        n = lengths[i]
        assert got[i, :n].tolist() == softmax_int(q[i, :n], p).tolist()
        assert not got[i, n:].any()
    # a causal mask broadcast over a (query, key) score matrix
    causal = np.tril(np.ones((16, 16), dtype=bool))
    sc = rng.integers(-128, 128, (3, 16, 16))
    np.testing.assert_array_equal(softmax_int(sc, p, causal),
                                  softmax_int(torch.as_tensor(sc), p, causal).numpy())


def test_table_and_widths():
    p = softmax_params(0.25, 256)
    assert p.exp_table[0] == EXP_ONE
    assert all(a >= b for a, b in zip(p.exp_table, p.exp_table[1:]))
    for d in (1, 5, 40):
        assert p.exp_table[d] == math.floor(EXP_ONE * math.exp(-d * 0.25) + 0.5)
    assert p.sum_bits == 26 and p.recip_bits == 21
    assert softmax_params(0.1, SOFTMAX_MAX_LEN).sum_bits == 30
    # the documented reach of the derived bound: below 1 LSB for rows up to 1030 positions
    assert softmax_error_bound(1030) < 1 < softmax_error_bound(1031)


@pytest.mark.parametrize("scale", SCALES)
def test_documented_error_bound_holds(scale):
    err = softmax_error(scale, 64)
    assert 0.5 <= err <= SOFTMAX_MAX_ERROR_LSB == softmax_error_bound(64) < 1, (scale, err)
    err16 = softmax_error(scale, 16)
    assert err16 <= softmax_error_bound(16), (scale, err16)


def test_ibert_exponent_is_measurably_worse_at_coarse_scales():
    """The measurement behind choosing the table (module docstring)."""
    for s in (1 / 16, 0.25):
        assert softmax_error(s, 16, table=ibert_exp_table(s)) > 5 * softmax_error(s, 16)


def test_edge_rows():
    for s in (1e-4, 0.1, 4.0):  # fine, medium and saturating scales
        p = softmax_params(s, 32)
        assert softmax_int(np.array([5]), p).tolist() == [PROB_MAX]  # one element: p = 1 exactly
        assert softmax_int([3, -7, 3], p).tolist() == softmax_int(np.array([3, -7, 3]), p).tolist()
        for n in (1, 2, 3, 32):
            flat = softmax_int(np.full((2, n), -128), p)
            want = int(Fraction(PROB_MAX, n) + Fraction(1, 2))  # 127/n rounded half up
            assert (flat == want).all(), (s, n, flat)
    # a saturating scale: every non-maximum element's exponent is 0
    big = softmax_params(4.0, 8)
    assert big.exp_table[3] == 1 and not any(big.exp_table[4:])
    assert softmax_int(np.array([127, -128, 126, 0]), big).tolist()[1] == 0
    assert softmax_int(np.array([[127, 127, -128]]), big).tolist() == [[64, 64, 0]]
    # a tiny scale: everything near uniform, the sum of probabilities close to 127
    tiny = softmax_int(np.arange(-128, 128).reshape(8, 32), softmax_params(1e-6, 32))
    assert (tiny == 4).all()


def test_bad_input_is_refused_by_name():
    p = softmax_params(0.1, 8)
    for bad in (math.nan, 0.0, -1.0, math.inf, "0.1", None):
        with pytest.raises(ValueError, match="in_scale must be a positive finite number"):
            softmax_params(bad, 8)
    for bad in (0, SOFTMAX_MAX_LEN + 1, 2.0, True):
        with pytest.raises(ValueError, match="max_len must be an integer"):
            softmax_params(0.1, bad)
    with pytest.raises(ValueError, match="row length 9 is outside \\[1, max_len=8\\]"):
        softmax_int(np.zeros((2, 9), dtype=np.int64), p)
    with pytest.raises(ValueError, match="row length 9 is outside"):
        softmax_int(torch.zeros(2, 9, dtype=torch.int64), p)
    with pytest.raises(ValueError, match="must lie in int8 \\[-128, 127\\], not \\[0, 128\\]"):
        softmax_int(np.array([0, 128]), p)
    with pytest.raises(ValueError, match="must be integers"):
        softmax_int(np.array([0.5, 1.0]), p)
    with pytest.raises(ValueError, match="must be integers"):
        softmax_int(torch.tensor([0.5, 1.0]), p)
    with pytest.raises(ValueError, match="at least one valid position"):
        softmax_int(np.zeros((2, 4), dtype=np.int64), p, np.array([[1, 0, 0, 0], [0] * 4], bool))
    with pytest.raises(ValueError, match="at least one valid position"):
        softmax_int(torch.zeros(1, 4, dtype=torch.int64), p, torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="exp_table must be a tuple of 256 integers"):
        SoftmaxParams((1,) * 10, 8)
    with pytest.raises(ValueError, match="exp_table\\[0\\] must be at least"):
        SoftmaxParams((5,) * 256, 8)
