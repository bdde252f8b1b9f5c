"""Element-wise operators: the residual ADD's requantizer, the product MUL's and the exact int8
average."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from .core import INT8, MULT_BITS, IntFormat, _is_tensor, saturate

# =================================================================================================
# Element-wise operators: the residual ADD and average pooling.
# (Used by hwaccel.generators.accel: its golden model, its RTL and the compiler follow these.)
# =================================================================================================

__all__ = [
    "ADD_SHIFT_MAX", "AddRequant", "add_params", "add_requantize", "add_error_bound",
    "MUL_SHIFT_MAX", "mul_shift", "mul_requantize",
    "AVG_MAX_WINDOW", "AVG_MULT_BITS", "AVG_SHIFT_MAX", "avg_params", "average",
    "average_with",
]

#: Largest shift of an :class:`AddRequant`. ``|a*Ma + b*Mb| < 2**24`` for int8 inputs, so every
#: shift from 25 up gives 0; 31 keeps a 5-bit command field and costs no precision that matters.
ADD_SHIFT_MAX = 31


@dataclass(frozen=True)
class AddRequant:
    """Two int8 tensors at scales ``s_a``, ``s_b`` summed into one at ``s_y``.

    ``y = saturate((a * multiplier_a + b * multiplier_b + 2**(shift-1)) >> shift)``: both
    multipliers are unsigned :data:`MULT_BITS`-bit integers sharing one shift, so
    ``multiplier_a / 2**shift ~ s_a / s_y`` and ``multiplier_b / 2**shift ~ s_b / s_y``.
    """

    multiplier_a: int
    multiplier_b: int
    shift: int

    def __post_init__(self):
        for name in ("multiplier_a", "multiplier_b"):
            m = getattr(self, name)
            if not (isinstance(m, int) and not isinstance(m, bool) and 0 <= m < (1 << MULT_BITS)):
                raise ValueError(f"{name} must be an integer in [0, 2**{MULT_BITS}), not {m!r}")
        if not (isinstance(self.shift, int) and 1 <= self.shift <= ADD_SHIFT_MAX):
            raise ValueError(
                f"shift must be an integer in [1, {ADD_SHIFT_MAX}], not {self.shift!r}"
            )


def add_params(ratio_a: float, ratio_b: float) -> AddRequant:
    """The :class:`AddRequant` for ``ratio_a = s_a / s_y`` and ``ratio_b = s_b / s_y``.

    The shift is chosen so the larger ratio's multiplier uses the full MULT_BITS range
    (``2**(MULT_BITS-1) <= M_max < 2**MULT_BITS``) unless that would exceed ADD_SHIFT_MAX; each
    multiplier is then ``round(ratio * 2**shift)``, off by at most ``2**-(shift+1)`` from its ratio.
    Both ratios must be positive and finite, the larger below ``2**(MULT_BITS-1)``.
    """
    ratios = []
    for name, r in (("ratio_a", ratio_a), ("ratio_b", ratio_b)):
        r = float(r)
        if not (r > 0 and math.isfinite(r)):
            raise ValueError(f"{name} must be a positive finite number, not {r!r}")
        ratios.append(r)
    _, exp = math.frexp(max(ratios))  # r_max = mant * 2**exp, 0.5 <= mant < 1
    shift = min(MULT_BITS - exp, ADD_SHIFT_MAX)
    mults = [round(r * 2.0**shift) for r in ratios]  # exact: a power-of-two scaling of a float
    if max(mults) == 1 << MULT_BITS:  # rounding carried into a new bit
        shift -= 1
        mults = [round(r * 2.0**shift) for r in ratios]
    if shift < 1:
        raise ValueError(
            f"the larger ratio must be below 2**{MULT_BITS - 1}, not {max(ratios)!r}"
        )
    return AddRequant(int(mults[0]), int(mults[1]), int(shift))


def add_error_bound(p: AddRequant, ratio_a: float, ratio_b: float, a: int = 128, b: int = 128):
    """Worst ``|add_requantize(a, b, p) - (a*ratio_a + b*ratio_b)|`` before saturation.

    Rounding half up costs at most 1/2; each multiplier misstates its ratio by
    ``|M/2**S - ratio|`` (at most ``2**-(S+1)``, which is ``<= max(ratio) * 2**-MULT_BITS`` when
    the shift is not capped), scaled by ``|a|`` or ``|b|`` (at most 128 for int8).
    """
    scale = 2.0**-p.shift
    return (0.5 + abs(a) * abs(p.multiplier_a * scale - ratio_a)
            + abs(b) * abs(p.multiplier_b * scale - ratio_b))


def add_requantize(a, b, p: AddRequant, *, relu: bool = False, fmt: IntFormat = INT8):
    """``saturate((a*Ma + b*Mb + 2**(S-1)) >> S)``: the residual ADD, rounded half up.

    ``a`` and ``b`` are int8 values of the same kind and shape (Python ints, numpy arrays or torch
    tensors); ReLU is folded into the saturation bounds. Against the exact rational
    ``a*ratio_a + b*ratio_b`` the unsaturated result is off by at most :func:`add_error_bound`:
    ``1/2 + (|a| + |b|) * 2**-(S+1)``, i.e. ``<= 1/2 + max(ratio) / 256`` for int8 when
    ``add_params`` did not cap the shift.
    """
    ma, mb, s = p.multiplier_a, p.multiplier_b, p.shift
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return saturate((int(a) * ma + int(b) * mb + (1 << (s - 1))) >> s, fmt, relu=relu)
    if _is_tensor(a):
        import torch

        y = a.to(torch.int64) * ma + b.to(torch.int64) * mb + (1 << (s - 1))
        return saturate(torch.bitwise_right_shift(y, s), fmt, relu=relu)
    y = np.asarray(a, dtype=np.int64) * ma + np.asarray(b, dtype=np.int64) * mb
    return saturate((y + (1 << (s - 1))) >> s, fmt, relu=relu)


# The element-wise product MUL. Two int8 tensors at scales ``s_a``, ``s_b`` multiply into one at
# ``s_y = s_a * s_b * 2**S``: ``y = saturate((a * b + 2**(S-1)) >> S)``, rounded half up. The
# requantizer is a shift alone, so the product needs one multiply a lane (``a x b``, on the
# ADD's multipliers) and no second one in series; the cost is that ``s_y`` is a power-of-two
# multiple of ``s_a * s_b``, at most twice the scale a free multiplier would give (one bit of
# the output's range). Where the product's range is its operands' -- a gate in [0, 1] times a
# map (squeeze-and-excitation, GLU), or ``x * x`` -- ``S = 7`` fits it to within 1/127.

#: Largest shift of a MUL: the ADD's (one command field). ``|a * b| <= 2**14``, so a shift
#: past 15 gives 0 and :func:`mul_shift` stays below 16.
MUL_SHIFT_MAX = ADD_SHIFT_MAX


def mul_shift(ratio: float) -> int:
    """The MUL's shift ``S`` for ``ratio = s_y / (s_a * s_b)`` (the scale the output needs over
    the operands' product): the least ``S >= 1`` with ``2**S >= ratio`` (so the output's scale
    covers its range), at most 15."""
    r = float(ratio)
    if not (r > 0 and math.isfinite(r)):
        raise ValueError(f"ratio must be a positive finite number, not {ratio!r}")
    return min(max(1, math.ceil(math.log2(r) - 1e-12)), 15)


def mul_requantize(a, b, shift: int, *, relu: bool = False, fmt: IntFormat = INT8):
    """``saturate((a * b + 2**(S-1)) >> S)``: the element-wise product, rounded half up (ReLU
    folded into the saturation bounds). ``a`` and ``b`` are int8 values of the same kind and
    shape (Python ints, numpy arrays or torch tensors)."""
    if not (isinstance(shift, int) and not isinstance(shift, bool) and 1 <= shift <= MUL_SHIFT_MAX):
        raise ValueError(f"shift must be an integer in [1, {MUL_SHIFT_MAX}], not {shift!r}")
    r = 1 << (shift - 1)
    if isinstance(a, (int, np.integer)) and isinstance(b, (int, np.integer)):
        return saturate((int(a) * int(b) + r) >> shift, fmt, relu=relu)
    if _is_tensor(a):
        import torch

        y = a.to(torch.int64) * b.to(torch.int64) + r
        return saturate(torch.bitwise_right_shift(y, shift), fmt, relu=relu)
    y = np.asarray(a, dtype=np.int64) * np.asarray(b, dtype=np.int64)
    return saturate((y + r) >> shift, fmt, relu=relu)


# Average pooling. ``average(total, n)`` is the int8 mean of ``n`` int8 values whose sum is
# ``total``, rounded half up: ``floor((2*total + n) / (2*n))``, exactly, with no divider.
#
# The hardware biases each input by +128 (flipping its sign bit makes it an unsigned byte), so the
# biased total ``t = total + 128*n`` lies in ``[0, 255*n]``, then computes
#
#     y = ((t * M + 2**(S-1)) >> S) - 128,     M = ceil(2**S / n),  r = n*M - 2**S in [0, n)
#
# Proof of exactness: ``t*M / 2**S = t/n + t*r / (n * 2**S)``; the error term is ``>= 0`` and at
# most ``255*r / 2**S``. ``t/n + 1/2`` is a multiple of ``1/(2n)``, so adding an error below
# ``1/(2n)`` never crosses an integer: exact whenever ``2**S > 510 * n * r``. ``avg_params`` takes
# the smallest shift meeting that. A power-of-two ``n`` has ``r = 0``: ``M = 1`` and the average
# is a pure (rounding) shift. Over ``n <= AVG_MAX_WINDOW`` (64x64) the multiplier needs at most
# AVG_MULT_BITS bits and the shift at most AVG_SHIFT_MAX.

#: Largest window (number of averaged values) :func:`avg_params` supports: a 64x64 global pool.
AVG_MAX_WINDOW = 4096
AVG_MULT_BITS = 22
AVG_SHIFT_MAX = 33


@functools.cache
def avg_params(n: int) -> tuple[int, int]:
    """``(multiplier, shift)`` of the exact divide-by-``n`` (see the section comment)."""
    if not (isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= AVG_MAX_WINDOW):
        raise ValueError(f"window size must be an integer in [1, {AVG_MAX_WINDOW}], not {n!r}")
    shift = 1
    while True:
        mult = -(-(1 << shift) // n)
        if (1 << shift) > 510 * n * (n * mult - (1 << shift)):
            break
        shift += 1
    assert mult < (1 << AVG_MULT_BITS) and shift <= AVG_SHIFT_MAX, (n, mult, shift)
    return mult, shift


def average(total, n: int):
    """The int8 average of ``n`` int8 values summing to ``total``: ``floor((2*total+n) / (2n))``.

    Ties round towards +inf, as in :func:`requantize`. Exact for every reachable total
    (``-128*n <= total <= 127*n``) and every ``1 <= n <= AVG_MAX_WINDOW``; computed as the
    hardware does, by a multiply and a shift of the biased total (:func:`average_with`).
    ``total`` is a Python int, a numpy integer array or a torch integer tensor.
    """
    return average_with(total, n, *avg_params(n))


def average_with(total, n: int, multiplier: int, shift: int):
    """``saturate(((total + 128*n) * multiplier + 2**(shift-1)) >> shift) - 128)``.

    What the AVGPOOL hardware computes with the multiplier and shift of its command; with
    ``avg_params(n)`` it is :func:`average`. (The saturation is a no-op on reachable totals with
    those parameters; it makes any other multiplier well defined.)
    """
    m, s, bias = int(multiplier), int(shift), 128 * n
    half = 1 << (s - 1)
    if isinstance(total, (int, np.integer)):
        return saturate((((int(total) + bias) * m + half) >> s) - 128)
    if _is_tensor(total):
        import torch

        t = total.to(torch.int64) + bias
        return saturate(torch.bitwise_right_shift(t * m + half, s) - 128)
    t = np.asarray(total, dtype=np.int64) + bias
    return saturate(((t * m + half) >> s) - 128)
