"""The numerics contract: saturate, quantize, requantize, accumulator sizing."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hwaccel.numerics import (
    INT8,
    INT32,
    MULT_BITS,
    IntFormat,
    Requant,
    acc_bits_for,
    max_reduction,
    quantize,
    requant_params,
    requantize,
    saturate,
)


def test_formats():
    assert (INT8.min, INT8.max) == (-128, 127)
    assert (INT32.min, INT32.max) == (-(2**31), 2**31 - 1)
    assert IntFormat(8, signed=False).max == 255
    with pytest.raises(ValueError, match="bits must be a positive integer, not 0"):
        IntFormat(0)


def test_saturate_all_kinds():
    assert saturate(300) == 127 and saturate(-300) == -128 and saturate(-5, relu=True) == 0
    np.testing.assert_array_equal(saturate(np.array([-200, 5, 200])), [-128, 5, 127])
    got = saturate(torch.tensor([-200, -3, 200]), relu=True)
    assert torch.equal(got, torch.tensor([0, 0, 127]))


def test_requantize_examples_round_half_up():
    # M / 2**S = 1/2: 3/2 = 1.5 -> 2, -3/2 = -1.5 -> -1 (half up), 5/2 = 2.5 -> 3.
    assert [requantize(v, 1, 1) for v in (3, -3, 5, -5)] == [2, -1, 3, -2]
    assert requantize(10_000, 1, 1) == 127 and requantize(-10_000, 1, 1) == -128
    assert requantize(-10_000, 1, 1, relu=True) == 0
    assert requantize(7, 1, 1, relu=True) == 4


def test_requantize_per_channel_numpy_and_torch_agree():
    rng = np.random.default_rng(0)
    acc = rng.integers(-(2**31), 2**31, size=(64, 8), dtype=np.int64)
    mult = rng.integers(1 << (MULT_BITS - 1), 1 << MULT_BITS, size=8)
    shift = rng.integers(20, 40, size=8)
    a = requantize(acc, mult, shift)
    b = requantize(torch.from_numpy(acc), torch.from_numpy(mult), torch.from_numpy(shift)).numpy()
    c = np.array([[requantize(int(acc[i, j]), int(mult[j]), int(shift[j])) for j in range(8)]
                  for i in range(64)])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=2.0**-40, max_value=2.0**14, allow_nan=False))
def test_requant_params_precision(real):
    rq = requant_params(real)
    assert (1 << (MULT_BITS - 1)) <= rq.multiplier < (1 << MULT_BITS) or rq.shift == 63
    # 16-bit mantissa rounded to nearest: relative error at most 2**-MULT_BITS.
    assert abs(rq.scale - real) <= real * 2.0**-MULT_BITS


@settings(max_examples=500, deadline=None)
@given(st.integers(min_value=INT32.min, max_value=INT32.max),
       st.floats(min_value=2.0**-30, max_value=4.0, allow_nan=False),
       st.booleans())
def test_requantize_equals_exact_rational_rounded_half_up(acc, real, relu):
    """For every int32 input: y = clamp(floor(acc * M / 2**S + 1/2)), computed exactly."""
    rq = requant_params(real)
    exact = Fraction(acc * rq.multiplier, 1 << rq.shift)
    expect = math.floor(exact + Fraction(1, 2))
    expect = min(max(expect, 0 if relu else -128), 127)
    assert requantize(acc, rq.multiplier, rq.shift, relu=relu) == expect
    # and it is within half an output step (plus the multiplier's error) of the float formula
    if -128 <= acc * real <= 127 and not relu:
        assert abs(requantize(acc, rq.multiplier, rq.shift) - acc * real) <= 0.5 + abs(
            acc) * real * 2.0**-MULT_BITS + 1e-9


def test_requant_errors():
    with pytest.raises(ValueError, match="real_multiplier must be a positive finite number"):
        requant_params(0.0)
    with pytest.raises(ValueError, match="real_multiplier must be below 2\\*\\*15"):
        requant_params(2.0**16)
    with pytest.raises(ValueError, match="shift must be an integer in \\[1, 63\\], not 0"):
        Requant(5, 0)
    with pytest.raises(ValueError, match="multiplier must be an integer"):
        Requant(1 << MULT_BITS, 3)


def test_quantize():
    np.testing.assert_array_equal(quantize(np.array([0.5, 1.5, -1.5, 300.0]), 1.0),
                                  [0, 2, -2, 127])
    assert torch.equal(quantize(torch.tensor([0.26, -0.26]), 0.1), torch.tensor([3, -3]))
    with pytest.raises(ValueError, match="scale must be a positive finite number, not 0"):
        quantize(np.zeros(2), 0)


def test_accumulator_sizing():
    assert max_reduction(32) == (2**31 - 1) // 2**14 == 131071
    assert acc_bits_for(1) == 16  # (-128)*(-128) = 2**14 needs 16 signed bits
    assert acc_bits_for(131071) == 32 and acc_bits_for(131072) == 33
    for k in (1, 2, 3, 9, 288, 576, 1024):
        bits = acc_bits_for(k)
        assert k * 2**14 <= 2 ** (bits - 1) - 1 and max_reduction(bits) >= k
