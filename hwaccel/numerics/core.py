"""Integer formats, saturation, quantization and the requantizer: the contract every
datapath follows (see :mod:`hwaccel.numerics`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "IntFormat", "INT8", "INT32", "MULT_BITS", "SHIFT_MAX", "Requant",
    "saturate", "quantize", "requant_params", "requantize", "max_reduction", "acc_bits_for",
]


@dataclass(frozen=True)
class IntFormat:
    """A two's-complement (or unsigned) integer format.

    Parameters
    ----------
    bits : int
        Total width in bits.
    signed : bool
        Two's complement when true.
    """

    bits: int
    signed: bool = True

    def __post_init__(self):
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) or self.bits < 1:
            raise ValueError(f"bits must be a positive integer, not {self.bits!r}")

    @property
    def min(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def contains(self, value: int) -> bool:
        return self.min <= value <= self.max


INT8 = IntFormat(8)
INT32 = IntFormat(32)

#: Width of the requantization multiplier ``M`` (unsigned; ``2**(MULT_BITS-1) <= M < 2**MULT_BITS``
#: after normalisation). 16 bits keep the relative error of the scale below 2**-15, far under half
#: an int8 step, and let one 18x18 DSP multiply against the accumulator's upper half.
MULT_BITS = 16
#: Largest shift a requantizer implements. ``M / 2**S`` then reaches down to ``2**-47``.
SHIFT_MAX = 63


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def saturate(x, fmt: IntFormat = INT8, *, relu: bool = False):
    """Clamp ``x`` into ``fmt`` (and into ``[0, max]`` when ``relu``)."""
    lo = 0 if relu else fmt.min
    hi = fmt.max
    if isinstance(x, (int, np.integer)):
        return int(min(max(int(x), lo), hi))
    if _is_tensor(x):
        return x.clamp(lo, hi)
    return np.clip(x, lo, hi)


def quantize(x, scale: float, fmt: IntFormat = INT8):
    """Float to integer: ``saturate(round_half_even(x / scale))`` (torch or numpy, float input)."""
    if not (isinstance(scale, (int, float)) and scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite number, not {scale!r}")
    if _is_tensor(x):
        import torch

        return torch.round(x / scale).clamp(fmt.min, fmt.max).to(torch.int64)
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) / scale), fmt.min, fmt.max).astype(
        np.int64
    )


@dataclass(frozen=True)
class Requant:
    """An integer requantizer: ``y = saturate((acc * multiplier + 2**(shift-1)) >> shift)``."""

    multiplier: int
    shift: int

    def __post_init__(self):
        if not (isinstance(self.multiplier, int) and 0 <= self.multiplier < (1 << MULT_BITS)):
            raise ValueError(
                f"multiplier must be an integer in [0, 2**{MULT_BITS}), not {self.multiplier!r}"
            )
        if not (isinstance(self.shift, int) and 1 <= self.shift <= SHIFT_MAX):
            raise ValueError(f"shift must be an integer in [1, {SHIFT_MAX}], not {self.shift!r}")

    @property
    def scale(self) -> float:
        """The real multiplier this pair stands for."""
        return self.multiplier / (1 << self.shift)


def requant_params(real_multiplier: float) -> Requant:
    """Integer ``(M, S)`` with ``M / 2**S`` closest to ``real_multiplier`` at MULT_BITS precision.

    ``real_multiplier`` is ``s_in * s_w / s_out``. It must be positive and below 2**(MULT_BITS-1)
    (a requantizer that amplifies more than that would saturate every non-zero input).
    """
    m = float(real_multiplier)
    if not (m > 0 and math.isfinite(m)):
        raise ValueError(
            f"real_multiplier must be a positive finite number, not {real_multiplier!r}"
        )
    mant, exp = math.frexp(m)  # m = mant * 2**exp, 0.5 <= mant < 1
    shift = MULT_BITS - exp
    mult = round(mant * (1 << MULT_BITS))
    if mult == 1 << MULT_BITS:  # rounding carried into a new bit
        mult >>= 1
        shift -= 1
    if shift > SHIFT_MAX:  # tiny scale: lose mantissa bits rather than exceed the shifter
        mult = round(mult / (1 << (shift - SHIFT_MAX)))
        shift = SHIFT_MAX
    if shift < 1:
        raise ValueError(
            f"real_multiplier must be below 2**{MULT_BITS - 1}, not {real_multiplier!r}"
        )
    return Requant(int(mult), int(shift))


def requantize(acc, multiplier, shift, *, relu: bool = False, fmt: IntFormat = INT8):
    """``saturate((acc * M + 2**(S-1)) >> S)``; ``M``/``S`` scalar or broadcastable per channel.

    ``acc`` is an integer (Python int, numpy int array or torch int tensor). The arithmetic right
    shift floors, so ties round towards +inf (round half up).
    """
    if isinstance(acc, (int, np.integer)) and np.ndim(multiplier) == 0 and np.ndim(shift) == 0:
        m, s = int(multiplier), int(shift)
        return saturate((int(acc) * m + (1 << (s - 1))) >> s, fmt, relu=relu)
    if _is_tensor(acc):
        import torch

        a = acc.to(torch.int64)
        m = torch.as_tensor(multiplier, dtype=torch.int64, device=a.device)
        s = torch.as_tensor(shift, dtype=torch.int64, device=a.device)
        half = torch.bitwise_left_shift(torch.ones_like(s), s - 1)
        y = torch.bitwise_right_shift(a * m + half, s)
        return saturate(y, fmt, relu=relu)
    a = np.asarray(acc, dtype=np.int64)
    m = np.asarray(multiplier, dtype=np.int64)
    s = np.asarray(shift, dtype=np.int64)
    y = (a * m + (np.int64(1) << (s - 1))) >> s
    return saturate(y, fmt, relu=relu)


def max_reduction(acc_bits: int, in_fmt: IntFormat = INT8, w_fmt: IntFormat = INT8) -> int:
    """Largest K for which a sum of K products of ``in_fmt`` x ``w_fmt`` fits ``acc_bits`` signed.

    The worst product is ``min * min`` (e.g. (-128)*(-128) = 2**14 for int8), so K products stay
    within ``K * 2**14``; the accumulator holds up to ``2**(acc_bits-1) - 1``.
    """
    worst = max(abs(in_fmt.min), in_fmt.max) * max(abs(w_fmt.min), w_fmt.max)
    return ((1 << (acc_bits - 1)) - 1) // worst


def acc_bits_for(k: int, in_fmt: IntFormat = INT8, w_fmt: IntFormat = INT8) -> int:
    """Smallest signed accumulator width that holds any sum of ``k`` products."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, not {k!r}")
    worst = max(abs(in_fmt.min), in_fmt.max) * max(abs(w_fmt.min), w_fmt.max)
    return (k * worst).bit_length() + 1
