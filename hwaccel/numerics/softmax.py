"""Integer softmax: an exponent table, one exact reciprocal per row, 7-bit probabilities.

Row-wise over int8 scores ``q`` at scale ``s_in`` (the Q.K^T product's int32 accumulators are first
brought to int8 by the ordinary requantizer, with 1/sqrt(d) folded into its multiplier). For each
row of ``n <= max_len`` scores (masked positions excluded, as a causal mask needs):

    d_i = max(q) - q_i                               in [0, 255]          9-bit unsigned
    e_i = EXP[d_i]                                   in [0, 2**17]        18-bit unsigned
    S   = sum_i e_i                                  in [2**17, n*2**17]  (17 + bits(n) bits)
    R   = floor(127 * 2**31 / S)                     in [0, 127*2**14]    21-bit unsigned
    p_i = (e_i * R + 2**30) >> 31                    in [0, 127]          7-bit unsigned

with ``EXP[d] = floor(2**17 * exp(-d * s_in) + 1/2)`` (float64), a 256-entry table the compiler
builds from the scale (:func:`softmax_params`) and the hardware holds in one 256 x 18 block RAM
(18 bits is an ECP5 or Xilinx block RAM port's native width; 16-bit entries, ``exp(0) = 2**15``,
would quadruple the table's share of the error below: measured 0.90 LSB at ``max_len`` 256
instead of 0.61). ``e_i * R`` is an 18 x 21-bit product (39 bits). Masked positions get
``p = 0``.

Probabilities are int8 values in [0, 127] at scale ``1/127`` (:data:`PROB_SCALE`), so P.V is an
ordinary int8 x int8 product on the existing signed MACs, and P is an ordinary int8 tensor of the
compiler (its scale is what symmetric calibration of a [0, 1] tensor gives). ``p = 1`` is exact
(127), and ``p <= 127`` holds without a clamp: ``e_i <= S`` gives ``e_i * R <= 127 * 2**31``. The
alternative, 8-bit unsigned (0..255), halves the output step but needs unsigned x signed
(9-bit) multipliers, an unsigned scratchpad format and a second P.V datapath, for an error of
1/510 instead of 1/254 on probabilities whose rounding the network tolerates.

The reciprocal is exact: ``R`` is the integer quotient, so any divider that returns the exact
floor matches bit for bit (a restoring divider of 21 quotient bits, one row's divide overlapping
the next row's exponent-and-sum pass; or a Newton reciprocal finished by the usual +-1 correction
``R*S <= 127*2**31 < (R+1)*S``). Because ``R`` misses ``127*2**31/S`` by less than 1, each ``p_i``
misses ``127*e_i/S`` by less than ``e_i / 2**31 <= 2**-14`` LSB whatever the row length.

Why a table and not I-BERT's i-exp (Kim et al., "I-BERT: Integer-only BERT Quantization", ICML
2021, Algorithm 2; ``IntSoftmax`` in kssteven418/I-BERT): i-exp writes ``x = -ln2 * z + r`` and
evaluates ``0.3585 * (r + 1.353)**2 + 0.344`` on ``r`` as an integer at the input scale, then
shifts by ``z``. At coarse scales ``floor(-ln2 / s_in)`` misstates ln 2 (at ``s_in = 1/16`` it is
0.75, at 0.5 it is 1.0) and that error grows with ``z``; the table has no such error. The table
costs 256 x 18 bits of block RAM per unit, written per layer with its scale, and no multiplier;
i-exp needs two multipliers and a barrel shifter. Measured in the same pipeline (I-BERT's
exponent mapped to the same 18-bit format, :func:`ibert_exp_table`), the polynomial's worst
error is 2-61 LSB against the table's 0.5-0.61 (below).

Worst-case error against float softmax of the same int8 scores (``127 * softmax(q * s_in)``, in
output LSBs of 1/127), measured by :func:`softmax_error` over this family of rows of every length
``n = 1..max_len``: every two-level row (one maximum and ``n-1`` elements at difference ``d``, for
every ``d`` in 0..255: the rows where the table's rounding errors add up coherently), uniform
random int8 rows, and random rows of narrow spread (16 of each per length, seed 0). Derived
bound: ``1/2`` (final rounding) ``+ 127 * (n+1) / 2**18`` (half a unit in each ``e_i`` and in
``S``, over ``S >= 2**17``) ``+ 2**-14`` (reciprocal). ``python -m hwaccel.numerics.softmax
[--max-len N]`` prints:

=======  =========  =================  ==================  =================
max_len  s_in       derived bound      table (measured)    I-BERT i-exp
=======  =========  =================  ==================  =================
16       1/64..0.5  0.5083             0.5005-0.5006       1.83-33.6
64       1/64..0.5  0.5316             0.5047-0.5161       2.16-46.6
256      1/64..0.5  0.6246             0.5047-0.6100       2.16-61.0
=======  =========  =================  ==================  =================

(scales 1/64, 1/16, 1/8, 1/4, 1/2; all figures in LSBs of 1/127.) The derived bound holds for
every row (``n`` counts its valid positions) and stays below 1 LSB up to ``n = 1030``, so every
probability of such a row is within 1 LSB of the correctly rounded float result; for rows up to
64 long the error is within :data:`SOFTMAX_MAX_ERROR_LSB`. ``tests/test_numerics_softmax.py``
re-measures it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .core import INT8, _is_tensor

__all__ = [
    "EXP_FRAC", "EXP_ONE", "EXP_TABLE_SIZE", "PROB_MAX", "PROB_SCALE", "RECIP_SHIFT",
    "SOFTMAX_MAX_LEN", "SOFTMAX_MAX_ERROR_LSB", "SoftmaxParams", "softmax_params",
    "softmax_int", "softmax_error", "softmax_error_bound", "ibert_exp_table",
]

#: Fractional bits of an exponent-table entry: ``exp(0) = 2**17``, so entries fit 18 bits unsigned
#: (the native width of an ECP5 or Xilinx block RAM port).
EXP_FRAC = 17
EXP_ONE = 1 << EXP_FRAC
#: One entry per int8 difference ``max(q) - q`` (0..255).
EXP_TABLE_SIZE = INT8.max - INT8.min + 1
#: Probabilities are integers 0..PROB_MAX at scale 1/PROB_MAX.
PROB_MAX = INT8.max
PROB_SCALE = 1.0 / PROB_MAX
#: ``R = floor(PROB_MAX * 2**RECIP_SHIFT / S)``, ``p = (e*R + 2**(RECIP_SHIFT-1)) >> RECIP_SHIFT``.
RECIP_SHIFT = 31
#: Longest row a :class:`SoftmaxParams` may allow (a row sum of at most 30 bits).
SOFTMAX_MAX_LEN = 4096
#: Documented worst error against float for rows up to 64 long (the measured worst is 0.5058).
SOFTMAX_MAX_ERROR_LSB = 0.5 + 127 * 65 / 2**18 + 2**-14


@dataclass(frozen=True)
class SoftmaxParams:
    """What a softmax unit holds for one layer: its exponent table and its longest row.

    Parameters
    ----------
    exp_table : tuple of int
        ``EXP_TABLE_SIZE`` entries in ``[0, EXP_ONE]``, indexed by ``max(q) - q``.
    max_len : int
        Longest row (positions, masked ones included) the unit accepts.
    """

    exp_table: tuple[int, ...]
    max_len: int

    def __post_init__(self):
        t = self.exp_table
        if not (isinstance(t, tuple) and len(t) == EXP_TABLE_SIZE
                and all(isinstance(v, int) and 0 <= v <= EXP_ONE for v in t)):
            raise ValueError(
                f"exp_table must be a tuple of {EXP_TABLE_SIZE} integers in [0, 2**{EXP_FRAC}]"
            )
        if t[0] < EXP_ONE // 2:  # S >= t[0] bounds the reciprocal's width
            raise ValueError(f"exp_table[0] must be at least 2**{EXP_FRAC - 1}, not {t[0]!r}")
        m = self.max_len
        if not (isinstance(m, int) and not isinstance(m, bool) and 1 <= m <= SOFTMAX_MAX_LEN):
            raise ValueError(f"max_len must be an integer in [1, {SOFTMAX_MAX_LEN}], not {m!r}")

    @property
    def sum_bits(self) -> int:
        """Width of the unsigned row sum ``S <= max_len * 2**EXP_FRAC``."""
        return (self.max_len * EXP_ONE).bit_length()

    @property
    def recip_bits(self) -> int:
        """Width of the unsigned reciprocal ``R <= PROB_MAX * 2**RECIP_SHIFT / exp_table[0]``
        (21 bits for a table of :func:`softmax_params`, whose first entry is ``2**EXP_FRAC``)."""
        return ((PROB_MAX << RECIP_SHIFT) // self.exp_table[0]).bit_length()


def _check_scale(name: str, s) -> float:
    ok = isinstance(s, (int, float, np.floating)) and not isinstance(s, bool)
    if not (ok and math.isfinite(s) and s > 0):
        raise ValueError(f"{name} must be a positive finite number, not {s!r}")
    return float(s)


def softmax_params(in_scale: float, max_len: int) -> SoftmaxParams:
    """The exponent table for int8 scores at ``in_scale``: ``floor(2**15 * exp(-d*s) + 1/2)``."""
    s = _check_scale("in_scale", in_scale)
    table = tuple(int(math.floor(EXP_ONE * math.exp(-d * s) + 0.5)) for d in range(EXP_TABLE_SIZE))
    return SoftmaxParams(table, max_len)


def ibert_exp_table(in_scale: float) -> tuple[int, ...]:
    """I-BERT's integer exponent (i-exp) at ``in_scale``, in this module's 16-bit format.

    For comparison only. i-exp of ``x = -d`` (Kim et al. 2021, Algorithm 2, with the constants of
    kssteven418/I-BERT ``IntSoftmax``: ``x0 = -0.6931``, ``n = 30``, ``a = 0.35815147``,
    ``b = 0.96963238 / a``, ``c = 1 / a``): ``x0_int = floor(x0 / s)``, ``x = max(x, n * x0_int)``,
    ``z = floor(x / x0_int)``, ``r = x - x0_int * z``,
    ``e = floor((r * (r + floor(b / s)) + floor(c / s**2)) * 2**(n - z))`` at scale
    ``a * s**2 / 2**n``; mapped here to ``floor(e * scale * 2**15 + 1/2)``.
    """
    s = _check_scale("in_scale", in_scale)
    a, n = 0.35815147, 30
    b_int, c_int = math.floor(0.96963238 / a / s), math.floor(1.0 / a / s**2)
    x0 = math.floor(-0.6931 / s)
    out = []
    for d in range(EXP_TABLE_SIZE):
        x = max(-d, n * x0)
        z = x // x0
        r = x - x0 * z
        e = math.floor((r * (r + b_int) + c_int) * 2.0 ** (n - z))
        out.append(min(EXP_ONE, max(0, math.floor(e * a * s * s / 2.0**n * EXP_ONE + 0.5))))
    return tuple(out)


def _rows(q, max_len: int):
    """Check ``q`` (integers in int8, last axis <= max_len) and return its row length."""
    if _is_tensor(q):
        is_int = not (q.is_floating_point() or q.is_complex())
    else:
        is_int = np.issubdtype(q.dtype, np.integer)
    if not is_int:
        raise ValueError(f"softmax scores must be integers (int8 values), not {q.dtype}")
    if q.ndim == 0:
        raise ValueError("softmax scores must have at least one axis (the row)")
    n = q.shape[-1]
    if not 1 <= n <= max_len:
        raise ValueError(f"softmax row length {n} is outside [1, max_len={max_len}]")
    if q.numel() if _is_tensor(q) else q.size:  # an empty batch of rows has no values to check
        lo, hi = int(q.min()), int(q.max())
        if lo < INT8.min or hi > INT8.max:
            raise ValueError(f"softmax scores must lie in int8 [-128, 127], not [{lo}, {hi}]")
    return n


def softmax_int(q, p: SoftmaxParams, valid=None):
    """Integer softmax over the last axis (see the module docstring); int64 in [0, PROB_MAX].

    ``q`` is a numpy integer array or a torch integer tensor of int8 values, the last axis one row
    of at most ``p.max_len`` positions. ``valid`` (optional, booleans broadcastable to ``q``)
    marks the positions taking part; the others get probability 0, and every row needs one.
    """
    if not _is_tensor(q):
        q = np.asarray(q)
    _rows(q, p.max_len)
    half = 1 << (RECIP_SHIFT - 1)
    if _is_tensor(q):
        import torch

        x = q.to(torch.int64)
        table = torch.tensor(p.exp_table, dtype=torch.int64, device=x.device)
        if valid is None:
            d = x.amax(-1, keepdim=True) - x
            e = table[d]
        else:
            v = torch.as_tensor(valid, dtype=torch.bool, device=x.device).expand(x.shape)
            m = torch.where(v, x, INT8.min - 1).amax(-1, keepdim=True)
            if bool((m < INT8.min).any()):
                raise ValueError("every softmax row needs at least one valid position")
            e = torch.where(v, table[torch.where(v, m - x, 0)], 0)
        total = e.sum(-1, keepdim=True)
        recip = torch.div(PROB_MAX << RECIP_SHIFT, total, rounding_mode="floor")
        return torch.bitwise_right_shift(e * recip + half, RECIP_SHIFT)
    x = np.asarray(q, dtype=np.int64)
    table = np.asarray(p.exp_table, dtype=np.int64)
    if valid is None:
        e = table[x.max(-1, keepdims=True) - x]
    else:
        v = np.broadcast_to(np.asarray(valid, dtype=bool), x.shape)
        m = np.where(v, x, INT8.min - 1).max(-1, keepdims=True)
        if np.any(m < INT8.min):
            raise ValueError("every softmax row needs at least one valid position")
        e = np.where(v, table[np.where(v, m - x, 0)], 0)
    total = e.sum(-1, keepdims=True)
    recip = (PROB_MAX << RECIP_SHIFT) // total
    return (e * recip + half) >> RECIP_SHIFT


def softmax_error_bound(max_len: int) -> float:
    """Derived worst ``|p - 127 * softmax|`` in LSBs for rows up to ``max_len`` long."""
    return 0.5 + PROB_MAX * (max_len + 1) / 2 ** (EXP_FRAC + 1) + 2.0 ** (EXP_FRAC - RECIP_SHIFT)


def _row_family(max_len: int, per_len: int, seed: int):
    """Batches ``(q, valid)`` of the measured family (module docstring), one batch per length."""
    rng = np.random.default_rng(seed)
    pos = np.arange(max_len)
    d = np.arange(EXP_TABLE_SIZE)
    for n in range(1, max_len + 1):
        two = np.where(pos == 0, INT8.max, INT8.max - d[:, None])    # every difference d
        uni = rng.integers(INT8.min, INT8.max + 1, (per_len, max_len))
        spread = rng.integers(1, EXP_TABLE_SIZE, (per_len, 1))
        narrow = INT8.max - (rng.integers(0, 1 << 30, (per_len, max_len)) % spread)
        q = np.concatenate([two, uni, narrow])
        yield q, np.broadcast_to(pos < n, q.shape)


def softmax_error(in_scale: float, max_len: int, *, per_len: int = 16, seed: int = 0,
                  table: tuple[int, ...] | None = None) -> float:
    """Worst ``|softmax_int - 127 * softmax(q * in_scale)|`` (LSBs) over the measured family.

    ``table`` replaces the exponent table (e.g. :func:`ibert_exp_table`) to measure another
    exponent in the same pipeline.
    """
    p = softmax_params(in_scale, max_len)
    if table is not None:
        p = SoftmaxParams(tuple(table), max_len)
    worst = 0.0
    for q, v in _row_family(max_len, per_len, seed):
        got = softmax_int(q, p, v)
        x = np.where(v, q * float(in_scale), -np.inf)
        ex = np.exp(x - x.max(-1, keepdims=True))
        ref = PROB_MAX * ex / ex.sum(-1, keepdims=True)
        worst = max(worst, float(np.max(np.abs(got - ref))))
    return worst


def _main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description="Measured worst error of the integer softmax")
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--scales", type=float, nargs="+", default=[1 / 64, 1 / 16, 0.125, 0.25, 0.5])
    args = ap.parse_args()
    print(f"derived bound for max_len {args.max_len}: {softmax_error_bound(args.max_len):.4f} LSB")
    print("max_len  s_in      table (LSB)  I-BERT i-exp (LSB)")
    for s in args.scales:
        err = softmax_error(s, args.max_len)
        ib = softmax_error(s, args.max_len, table=ibert_exp_table(s))
        print(f"{args.max_len:<8} {s:<9.6g} {err:<12.4f} {ib:.4f}")


if __name__ == "__main__":
    _main()
