"""The element-wise numerics: the residual ADD's requantizer and the exact average."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaccel.numerics import (
    ADD_SHIFT_MAX,
    AVG_MAX_WINDOW,
    AVG_MULT_BITS,
    AVG_SHIFT_MAX,
    MULT_BITS,
    AddRequant,
    add_error_bound,
    add_params,
    add_requantize,
    average,
    avg_params,
)

RATIOS = st.floats(min_value=2.0**-12, max_value=64.0, allow_nan=False)
I8 = np.arange(-128, 128, dtype=np.int64)


def test_add_params_full_range_and_shared_shift():
    p = add_params(0.75, 0.2)
    assert (1 << (MULT_BITS - 1)) <= p.multiplier_a < (1 << MULT_BITS)
    assert p.multiplier_a == round(0.75 * 2**p.shift) and p.multiplier_b == round(0.2 * 2**p.shift)
    q = add_params(0.2, 0.75)  # the larger ratio sets the shift whichever side it is on
    assert (q.multiplier_a, q.multiplier_b, q.shift) == (p.multiplier_b, p.multiplier_a, p.shift)
    # a ratio just under a power of two rounds up into the next bit: one shift less
    r = add_params(1 - 2.0**-20, 0.5)
    assert r.multiplier_a == 1 << (MULT_BITS - 1) and r.shift == MULT_BITS - 1


@settings(max_examples=300, deadline=None)
@given(RATIOS, RATIOS)
def test_add_params_precision(ra, rb):
    p = add_params(ra, rb)
    big = max(p.multiplier_a, p.multiplier_b)
    assert (1 << (MULT_BITS - 1)) <= big < (1 << MULT_BITS) or p.shift == ADD_SHIFT_MAX
    for m, r in ((p.multiplier_a, ra), (p.multiplier_b, rb)):
        assert abs(Fraction(m, 1 << p.shift) - Fraction(r)) <= Fraction(1, 1 << (p.shift + 1))
    if p.shift < ADD_SHIFT_MAX:
        assert add_error_bound(p, ra, rb) <= 0.5 + max(ra, rb) / 256


def test_add_params_errors():
    for bad in (0.0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError, match="ratio_b must be a positive finite number"):
            add_params(1.0, bad)
    with pytest.raises(ValueError, match="ratio_a must be a positive finite number, not 0.0"):
        add_params(0, 1.0)
    with pytest.raises(ValueError, match="the larger ratio must be below 2\\*\\*15"):
        add_params(2.0**15, 1.0)
    with pytest.raises(ValueError, match="shift must be an integer in \\[1, 31\\], not 0"):
        AddRequant(1, 1, 0)
    with pytest.raises(ValueError, match="multiplier_b must be an integer in \\[0, 2\\*\\*16\\)"):
        AddRequant(1, 1 << MULT_BITS, 3)


@settings(max_examples=40, deadline=None)
@given(RATIOS, RATIOS, st.booleans())
def test_add_requantize_exhaustive_against_exact_rational(ra, rb, relu):
    """Every int8 pair: the exact rounded-half-up value, and within the documented bound."""
    p = add_params(ra, rb)
    a, b = np.meshgrid(I8, I8, indexing="ij")
    got = add_requantize(a, b, p, relu=relu)
    # exact integer reference: floor(a*Ma/2**S + b*Mb/2**S + 1/2), clamped
    num = a * p.multiplier_a + b * p.multiplier_b
    exact = np.floor_divide(2 * num + (1 << p.shift), 1 << (p.shift + 1))
    np.testing.assert_array_equal(got, np.clip(exact, 0 if relu else -128, 127),
                                  err_msg=f"ratios {ra!r}, {rb!r}")
    # against the real-valued sum: within the bound wherever it does not saturate
    real = a * ra + b * rb
    inside = (real >= -127.5) & (real <= 126.5)
    if not relu:
        err = np.abs(got - real)[inside]
        bound = 0.5 + (np.abs(a) * abs(p.multiplier_a * 2.0**-p.shift - ra)
                       + np.abs(b) * abs(p.multiplier_b * 2.0**-p.shift - rb))[inside]
        assert np.all(err <= bound + 1e-9)
        assert np.all(err <= add_error_bound(p, ra, rb) + 1e-9)


def test_add_requantize_kinds_agree_and_round_half_up():
    p = AddRequant(1, 1, 1)  # (a + b) / 2
    assert [add_requantize(a, b, p) for a, b in ((1, 2), (-1, -2), (2, 3), (-2, -3))] == [
        2, -1, 3, -2]
    assert add_requantize(-100, -100, AddRequant(2, 2, 1)) == -128
    assert add_requantize(-3, 0, p, relu=True) == 0
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, size=(5, 7))
    b = rng.integers(-128, 128, size=(5, 7))
    q = add_params(0.8, 1.7)
    n = add_requantize(a, b, q, relu=True)
    t = add_requantize(torch.from_numpy(a), torch.from_numpy(b), q, relu=True).numpy()
    s = np.array([[add_requantize(int(x), int(y), q, relu=True) for x, y in zip(ra, rb)]
                  for ra, rb in zip(a, b)])
    np.testing.assert_array_equal(n, t)
    np.testing.assert_array_equal(n, s)


def _check_average_exhaustive(n: int):
    total = np.arange(-128 * n, 127 * n + 1, dtype=np.int64)
    want = np.floor_divide(2 * total + n, 2 * n)  # round half up, exactly
    np.testing.assert_array_equal(average(total, n), want, err_msg=f"n={n}")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 9, 25, 49, 64, 125, 127, 255, 1000, 1023, 2953, 4096])
def test_average_exact_for_every_reachable_total(n):
    _check_average_exhaustive(n)


def test_average_exact_on_a_sample_of_window_sizes():
    rng = np.random.default_rng(12)
    for n in sorted(set(rng.integers(1, AVG_MAX_WINDOW + 1, size=24).tolist()) | set(range(5, 40))):
        _check_average_exhaustive(n)


def test_avg_params_widths_and_pure_shifts():
    assert avg_params(1) == (2, 1)  # (2t + 1) >> 1 == t
    assert all(avg_params(1 << k) == (1, k) for k in range(1, 13))
    assert avg_params(64) == (1, 6)  # /64 is a shift
    for n in (9, 125, 49):
        m, s = avg_params(n)
        assert m * n != 1 << s  # not a power of two: a real multiply
    widest = max(avg_params(n)[0] for n in range(1, AVG_MAX_WINDOW + 1)).bit_length()
    assert widest == AVG_MULT_BITS
    assert max(avg_params(n)[1] for n in range(1, AVG_MAX_WINDOW + 1)) == AVG_SHIFT_MAX


def test_average_kinds_and_errors():
    tot = np.array([-7, -6, -5, 5, 6, 7, 127 * 4, -128 * 4])
    want = [-2, -1, -1, 1, 2, 2, 127, -128]  # -6/4 = -1.5 -> -1 (half up), 6/4 = 1.5 -> 2
    np.testing.assert_array_equal(average(tot, 4), want)
    assert torch.equal(average(torch.from_numpy(tot), 4), torch.tensor(want))
    assert [average(int(t), 4) for t in tot] == want
    for bad in (0, AVG_MAX_WINDOW + 1, 2.0, True):
        with pytest.raises(ValueError, match="window size must be an integer in \\[1, 4096\\]"):
            avg_params(bad)
