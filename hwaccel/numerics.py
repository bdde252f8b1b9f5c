"""The one definition of hwaccel's integer arithmetic.

Every generator, golden model, the compiler and the runtime import their number formats and
rounding rules from here; no width or rounding rule is written twice.

Contract
--------
* Activations and weights are signed int8, symmetric (zero point 0). Weight scales are per output
  channel, activation scales per tensor.
* Products accumulate in a signed accumulator (int32 by default) whose width is proven wide enough
  for the largest reduction length K a config allows (:func:`max_reduction`).
* Requantize: ``y = saturate((acc * M + 2**(S-1)) >> S)`` with an unsigned integer multiplier ``M``
  of :data:`MULT_BITS` bits and a shift ``S >= 1``. The arithmetic shift floors, so this rounds
  half up (towards +inf). ReLU is folded into the saturation bounds (lower bound 0).
* Bias is int32 at scale ``s_in * s_w`` and is added to the accumulator before requantizing.

The functions accept Python ints, numpy integer arrays and torch integer tensors and return the
same kind; all intermediate arithmetic is done in 64 bits, which is exact because
``|acc| < 2**31`` and ``M < 2**MULT_BITS`` keep ``acc * M`` below ``2**63``.
"""

from __future__ import annotations

import functools
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


# =================================================================================================
# Fixed-point LSTM arithmetic: gate pre-activations, cell state, sigmoid and tanh tables.
# (Used by hwaccel.generators.lstm: its golden model and its RTL both follow these definitions.)
# =================================================================================================
#
# Formats (all signed, zero point 0, ``FX_FRAC`` fractional bits, so 1.0 == 2**FX_FRAC == 4096):
#
# * gate pre-activation ``z``: :data:`GATE_FMT`, 18 bits, range [-32, 32). Sigmoid and tanh are
#   flat (to within 2**-40) beyond that, so saturating ``z`` costs nothing at the output.
# * activation outputs (sigmoid in [0, 1], tanh in [-1, 1]): :data:`ACT_FMT`, 14 bits.
# * cell state ``c``: :data:`CELL_FMT`, 20 bits, range [-128, 128). |c_t| <= |c_{t-1}| + 1, so
#   it saturates only after more than 127 steps of a forget gate pinned at 1.
# * hidden state ``h``: int8 at scale ``2**-H_FRAC`` = 1/128 (a power of two, so ``o * tanh(c)``
#   becomes int8 by a shift; +1.0 saturates to 127/128).
#
# Gate pre-activation of row ``r`` (``x`` at scale ``s_x``, ``h`` at ``2**-7``, weights at per-row
# scales ``s_wx[r]``, ``s_wh[r]``). The x and h products accumulate separately (int32) and each
# is brought to the gate format by its own requantizer, because the two scales differ (layer 1's
# x is an embedding, its h is not):
#
#     z[r] = sat_GATE( sat32(rq(acc_x, Mx[r], Sx[r])) + sat32(rq(acc_h, Mh[r], Sh[r])) + b[r] )
#
# with ``(Mx, Sx) = requant_params(s_x * s_wx[r] * 2**FX_FRAC)``, likewise ``(Mh, Sh)`` with
# ``2**-7 * s_wh[r]``, ``rq`` = round half up as in :func:`requantize`, and ``b[r]`` the bias
# ``round((b_ih + b_hh)[r] * 2**FX_FRAC)`` saturated to GATE_FMT. Cell update (round half up):
#
#     c_t = sat_CELL((f * c_{t-1} + i * g + 2**(FX_FRAC-1)) >> FX_FRAC)
#     h_t = sat_int8((o * tanh(c_t) + 2**(2*FX_FRAC-H_FRAC-1)) >> (2*FX_FRAC - H_FRAC))
#
# Sigmoid and tanh are tables of midpoint samples indexed by the magnitude of their input, using
# the odd symmetry tanh(-z) = -tanh(z) and sigmoid(-z) = 1 - sigmoid(z) to halve them:
#
#     idx = min(|z| >> shift, 511);  e = TABLE[idx] = round(2**FX_FRAC * f((idx + 0.5) * step))
#
# sigmoid: step 2**-6 over [0, 8); tanh: step 2**-7 over [0, 4). Worst-case error against float,
# derived: half a step times the largest slope (sigmoid 1/4 * 2**-7 = 2**-9; tanh 1 * 2**-8) plus
# half an output LSB (2**-13), and beyond the table the tail 1 - f(end - step/2) (sigmoid 3.4e-4,
# tanh 6.8e-4). Measured by an exhaustive sweep of every GATE_FMT and CELL_FMT input
# (tests/test_lstm_numerics.py checks these figures):
#
# =========  =========================  ==============================
# function   worst |error| (measured)   documented bound
# =========  =========================  ==============================
# sigmoid    2.0586e-3                  2**-9 + 2**-13 = 2.08e-3
# tanh       3.9875e-3                  2**-8 + 2**-13 = 4.03e-3
# =========  =========================  ==============================
#
# Both are below the 2**-7 = 7.8e-3 target over the whole input range.

__all__ += [
    "FX_FRAC", "GATE_FMT", "ACT_FMT", "CELL_FMT", "H_FRAC", "GATE_PART_FMT", "ACT_ONE",
    "ACT_TABLE_BITS", "SIGMOID_INDEX_SHIFT", "TANH_INDEX_SHIFT", "SIGMOID_TABLE", "TANH_TABLE",
    "SIGMOID_MAX_ERROR", "TANH_MAX_ERROR", "sigmoid_fx", "tanh_fx", "activation_error",
    "gate_preactivation", "cell_update",
]

FX_FRAC = 12
GATE_FMT = IntFormat(18)
ACT_FMT = IntFormat(14)
CELL_FMT = IntFormat(20)
H_FRAC = 7
#: Partial gate sums (one per requantizer) saturate to int32 before they are added.
GATE_PART_FMT = INT32

ACT_TABLE_BITS = 9              # 512 entries per table
SIGMOID_STEP_BITS = 6           # table step 2**-6
TANH_STEP_BITS = 7              # table step 2**-7
SIGMOID_INDEX_SHIFT = FX_FRAC - SIGMOID_STEP_BITS
TANH_INDEX_SHIFT = FX_FRAC - TANH_STEP_BITS
ACT_ONE = 1 << FX_FRAC

#: Documented worst-case errors against float (derived bounds; the measured worst cases of the
#: exhaustive sweep, 2.0586e-3 and 3.9875e-3, sit just under them). Tests recompute the sweep.
SIGMOID_MAX_ERROR = 2.0 ** -9 + 2.0 ** -13
TANH_MAX_ERROR = 2.0 ** -8 + 2.0 ** -13


def _midpoint_table(fn, step_bits: int) -> tuple[int, ...]:
    step = 2.0 ** -step_bits
    return tuple(int(round(ACT_ONE * fn((k + 0.5) * step))) for k in range(1 << ACT_TABLE_BITS))


SIGMOID_TABLE = _midpoint_table(lambda v: 1.0 / (1.0 + math.exp(-v)), SIGMOID_STEP_BITS)
TANH_TABLE = _midpoint_table(math.tanh, TANH_STEP_BITS)


def _table_lookup(z, table: tuple[int, ...], shift: int, odd: bool):
    """``f(z)`` from a magnitude-indexed table; ``odd``: f(-z) = -f(z), else f(-z) = 1 - f(z)."""
    last = len(table) - 1
    if isinstance(z, (int, np.integer)):
        z = int(z)
        e = table[min(abs(z) >> shift, last)]
        if z >= 0:
            return e
        return -e if odd else ACT_ONE - e
    if _is_tensor(z):
        import torch

        zt = z.to(torch.int64)
        tab = torch.tensor(table, dtype=torch.int64, device=zt.device)
        e = tab[torch.clamp(torch.bitwise_right_shift(zt.abs(), shift), max=last)]
        return torch.where(zt >= 0, e, -e if odd else ACT_ONE - e)
    za = np.asarray(z, dtype=np.int64)
    e = np.asarray(table, dtype=np.int64)[np.minimum(np.abs(za) >> shift, last)]
    return np.where(za >= 0, e, -e if odd else ACT_ONE - e)


def sigmoid_fx(z):
    """Fixed-point sigmoid: ``z`` at ``2**-FX_FRAC`` (any integer) -> ACT_FMT at ``2**-FX_FRAC``."""
    return _table_lookup(z, SIGMOID_TABLE, SIGMOID_INDEX_SHIFT, odd=False)


def tanh_fx(z):
    """Fixed-point tanh: ``z`` at ``2**-FX_FRAC`` (any integer) -> ACT_FMT at ``2**-FX_FRAC``."""
    return _table_lookup(z, TANH_TABLE, TANH_INDEX_SHIFT, odd=True)


def activation_error(name: str, fmt: IntFormat) -> float:
    """Worst ``|f_fx(z) - f(z)|`` over every integer ``z`` of ``fmt`` (exhaustive sweep)."""
    z = np.arange(fmt.min, fmt.max + 1, dtype=np.int64)
    v = z / ACT_ONE
    if name == "sigmoid":
        ref, got = 1.0 / (1.0 + np.exp(-v)), sigmoid_fx(z)
    elif name == "tanh":
        ref, got = np.tanh(v), tanh_fx(z)
    else:
        raise ValueError(f"name must be 'sigmoid' or 'tanh', not {name!r}")
    return float(np.max(np.abs(got / ACT_ONE - ref)))


def gate_preactivation(acc_x, acc_h, req_x: Requant | tuple, req_h: Requant | tuple, bias):
    """``z`` in GATE_FMT from the two int32 partial accumulators (see the section comment).

    ``req_x``/``req_h`` are ``(multiplier, shift)`` pairs, scalar or per row (broadcast).
    """
    mx, sx = (req_x.multiplier, req_x.shift) if isinstance(req_x, Requant) else req_x
    mh, sh = (req_h.multiplier, req_h.shift) if isinstance(req_h, Requant) else req_h
    px = requantize(acc_x, mx, sx, fmt=GATE_PART_FMT)
    ph = requantize(acc_h, mh, sh, fmt=GATE_PART_FMT)
    return saturate(px + ph + bias, GATE_FMT)


def cell_update(i, f, g, o, c_prev):
    """``(c_t, h_t)`` from activated gates (ACT_FMT) and ``c_{t-1}`` (CELL_FMT); h_t is int8."""
    c = requantize(f * c_prev + i * g, 1, FX_FRAC, fmt=CELL_FMT)
    h = requantize(o * tanh_fx(c), 1, 2 * FX_FRAC - H_FRAC, fmt=INT8)
    return c, h


# =================================================================================================
# Element-wise operators: the residual ADD and average pooling.
# (Used by hwaccel.generators.accel: its golden model, its RTL and the compiler follow these.)
# =================================================================================================

__all__ += [
    "ADD_SHIFT_MAX", "AddRequant", "add_params", "add_requantize", "add_error_bound",
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
