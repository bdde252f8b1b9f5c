"""Integer LayerNorm: exact sums, a normalized integer reciprocal square root, per-channel affine.

Over the last axis of ``C <= 1024`` int8 values ``q`` at scale ``s_x`` (one token's channels), to
int8 at ``s_y``, following float ``gamma * (x - mean) / sqrt(var + eps) + beta`` (population
variance, as ``nn.LayerNorm``). Widths for ``C = 1024``:

    Sx  = sum q                       |Sx| <= 2**17                   18-bit signed
    Sxx = sum q*q                     Sxx <= 2**24                    25-bit unsigned
    W   = (C*Sxx - Sx*Sx) * 2**16 + E = C**2 * (var_q + eps_q) * 2**16    51-bit unsigned
    D_c = C*q_c - Sx                  = C * (q_c - mean_q)            19-bit signed
    s   = ceil((bits(W) - 22) / 2)                                    in [-10, 15]
    w   = W >> 2s  (s > 0)  or  W << -2s  (s <= 0)                    w in [2**20, 2**22)
    r   = floor(2**31 / sqrt(w))  = isqrt(2**62 // w)                 22-bit unsigned, > 2**20
    z_c = (D_c*r + 2**(h-1)) >> h,    h = 9 + s  (31 - Z - 8 + s)     20-bit signed, Z = 14
    y_c = sat8((z_c*G_c + B_c + 2**(S-1)) >> S)

``var_q = var / s_x**2`` and ``eps_q = eps / s_x**2`` are in input units; ``E = round(C**2 * eps /
s_x**2 * 2**16)`` (:data:`LN_EPS_FRAC` = 16 fractional bits, so a small eps is not rounded
away), so ``z_c / 2**Z`` approximates the normalized value ``D_c * 2**8 / sqrt(W) = (x_c - mean)
/ sqrt(var + eps)``. ``G_c = round(gamma_c / s_y * 2**(S-Z))`` (17-bit signed: gamma's sign is in
it) and ``B_c = round(beta_c / s_y * 2**S)`` share one shift ``S`` (:func:`layernorm_params`),
chosen as in :func:`~hwaccel.numerics.add_params` so the largest ``|G_c|`` fills 16 bits. Every
shift floors, so every rounding is half up, as in :func:`~hwaccel.numerics.requantize`. A row
that is not constant has ``C*Sxx - Sx*Sx >= C - 1``, so ``W >= 2**16`` and ``h >= 7``. A
constant row has every ``D_c = 0``, so ``z_c = 0`` and ``y_c = sat8(round(B_c / 2**S))``
(beta) whatever ``r`` and ``h`` are (defined as ``r = 0`` when ``W = 0``, ``h`` clamped to 1).

Hardware: one pass accumulates ``Sx`` and ``Sxx`` (an 8 x 8 squarer), then per row ``W``, a
leading-one detector and an even shift give the 22-bit mantissa ``w``, and one reciprocal square
root of ``w``; a second pass computes ``D_c`` (a shift and subtract when ``C`` is a power of two),
``D_c * r`` (19 x 22 bits), a barrel shift by ``h``, and the affine ``z_c * G_c + B_c``
(20 x 17 bits). ``r`` is exact (the floor), so any method that returns it matches: the bitwise
restoring form (the largest ``r`` with ``r*r*w <= 2**62``, one bit per cycle), or a divide
followed by I-BERT's integer square root (Kim et al., "I-BERT: Integer-only BERT Quantization",
ICML 2021, Algorithm 4: Newton ``x <- floor((x + floor(n/x)) / 2)`` from ``2**ceil(bits(n)/2)``
until it stops decreasing, :func:`isqrt_newton`). I-BERT itself takes ``floor(sqrt)`` of the
un-normalized variance sum and divides ``2**31`` by it, which loses precision at small variances;
normalizing to a 22-bit ``w`` keeps ``r`` within ``2**-20`` relative whatever the variance.

Error against float LayerNorm of the same int8 inputs, before saturation, in LSBs of ``s_y``
(:func:`layernorm_error_bound`): ``1/2`` (final rounding) ``+ g * (2**-(Z+1) + sqrt(C) * 5.5 *
2**-20)`` (``z``: its rounding, and its relative error from ``r``'s floor, ``2**-20``, the
truncation of ``W``, ``2**-21``, and eps's rounding in ``E``, ``2**-18``) ``+ sqrt(C) *
2**-(S-Z+1) + 2**-(S+1)`` (``G``, ``B``), with ``g = max|G| / 2**(S-Z)`` and ``sqrt(C)``
bounding ``|z|``. Measured by :func:`layernorm_error`: gamma uniform in [-2, 2], beta in [-1, 1],
eps 1e-5, ``s_y`` calibrated to the rows' largest float output, over 2,000 uniform random rows,
2,000 narrow-spread rows (values within 1-4 of each other) and every adversarial row: all 256
constant rows (zero variance), one outlier at either extreme or one step off, alternating
extremes, and two-level rows (extremes, and the smallest steps) of every split.
``python -m hwaccel.numerics.layernorm`` prints:

========  ===================  ===================
channels  worst error (LSB)    derived bound (LSB)
========  ===================  ===================
1         0 (output = beta)    0.5074
2         0.3946-0.5003        0.5030
3         0.5009-0.5020        0.5044
16        0.5005-0.5006        0.5025
32        0.5004-0.5006        0.5027
64        0.5004-0.5015        0.5032
768       0.5001-0.5016        0.5025
1024      0.5002-0.5006        0.5027-0.5028
========  ===================  ===================

(each row over ``s_x`` = 0.002, 0.01, 0.05, 0.25.)

The derived bound holds for every row. As ``max|G| >= 2**15`` makes ``2**-(S-Z+1) <= g *
2**-16``, it stays below 1 LSB (every output within 1 LSB of the correctly rounded float result)
while ``g * (2**-15 + sqrt(C) * 21.5 * 2**-20) < 1/2`` (``B``'s term aside, at most
``2**-(S+1)``): up to ``g`` = 720 at ``C`` = 1024 and 3,400 at ``C`` = 32, where an output scale
calibrated to the largest output puts ``g`` near ``127 / max|z|``, a few tens.
``tests/test_numerics_layernorm.py`` re-measures it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .core import INT8, MULT_BITS, _is_tensor

__all__ = [
    "LN_MAX_CHANNELS", "LN_FRAC", "LN_EPS_FRAC", "LN_EPS_MAX", "LN_SHIFT_MAX", "RSQRT_BITS",
    "RSQRT_SHIFT",
    "LayerNormParams", "layernorm_params", "layernorm_int", "ln_rsqrt", "isqrt_newton",
    "layernorm_error", "layernorm_error_bound",
]

#: Most channels one LayerNorm row may have (sums of 18 and 24 bits, W of 51 bits).
LN_MAX_CHANNELS = 1024
#: Fractional bits of the normalized value ``z``.
LN_FRAC = 14
#: Fractional bits of the integer variance ``W`` (where eps lands: see the module docstring).
LN_EPS_FRAC = 16
#: ``E = round(C**2 * eps / s_x**2 * 2**LN_EPS_FRAC)`` must stay below this (W then fits 51 bits,
#: and the float64 leading-one count of the reference implementation is exact).
LN_EPS_MAX = 1 << 50
#: Largest shared shift of the affine requantizer (``|B_c| < 2**(15 + S)`` stays within 56 bits).
LN_SHIFT_MAX = 40
#: Width of the normalized variance ``w`` fed to the reciprocal square root.
RSQRT_BITS = 22
#: ``r = floor(2**RSQRT_SHIFT / sqrt(w))``; ``r*r*w <= 2**62`` keeps the check within int64.
RSQRT_SHIFT = 31


@dataclass(frozen=True)
class LayerNormParams:
    """One LayerNorm's integers: channel count, eps term, per-channel affine, shared shift.

    Parameters
    ----------
    channels : int
        ``C``, the length of a row.
    eps_term : int
        ``E = round(C**2 * eps / s_x**2)`` in ``[0, LN_EPS_MAX)``.
    gamma_mult, beta_add : tuple of int
        ``G_c`` (``|G_c| < 2**MULT_BITS``) and ``B_c``, one per channel.
    shift : int
        ``S`` in ``[1, LN_SHIFT_MAX]``.
    """

    channels: int
    eps_term: int
    gamma_mult: tuple[int, ...]
    beta_add: tuple[int, ...]
    shift: int

    def __post_init__(self):
        c = self.channels
        if not (isinstance(c, int) and not isinstance(c, bool) and 1 <= c <= LN_MAX_CHANNELS):
            raise ValueError(f"channels must be an integer in [1, {LN_MAX_CHANNELS}], not {c!r}")
        if not (isinstance(self.eps_term, int) and 0 <= self.eps_term < LN_EPS_MAX):
            raise ValueError(f"eps_term must be an integer in [0, 2**50), not {self.eps_term!r}")
        for name, vals, lim in (("gamma_mult", self.gamma_mult, 1 << MULT_BITS),
                                ("beta_add", self.beta_add, 1 << 55)):
            if not (isinstance(vals, tuple) and len(vals) == c
                    and all(isinstance(v, int) and -lim < v < lim for v in vals)):
                raise ValueError(f"{name} must be a tuple of {c} integers in (-{lim}, {lim})")
        if not (isinstance(self.shift, int) and 1 <= self.shift <= LN_SHIFT_MAX):
            raise ValueError(f"shift must be an integer in [1, {LN_SHIFT_MAX}], not {self.shift!r}")


def _positive(name: str, v) -> float:
    ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
    if not (ok and math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, not {v!r}")
    return float(v)


def layernorm_params(in_scale: float, out_scale: float, gamma, beta, eps: float = 1e-5
                     ) -> LayerNormParams:
    """The integers of a LayerNorm from its float scales, gamma, beta and eps (module docstring).

    ``gamma`` and ``beta`` are sequences of ``C`` finite floats (``nn.LayerNorm``'s weight and
    bias; ones and zeros without an affine). ``|gamma| / out_scale`` and ``|beta| / out_scale``
    must stay below ``2**15``: beyond that every output saturates.
    """
    sx, sy = _positive("in_scale", in_scale), _positive("out_scale", out_scale)
    g = np.asarray(gamma, dtype=np.float64).reshape(-1)
    b = np.asarray(beta, dtype=np.float64).reshape(-1)
    c = g.size
    if b.size != c:
        raise ValueError(f"gamma and beta must have one value per channel, not {c} and {b.size}")
    if not (np.all(np.isfinite(g)) and np.all(np.isfinite(b))):
        raise ValueError("gamma and beta must be finite")
    if not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps >= 0):
        raise ValueError(f"eps must be a non-negative finite number, not {eps!r}")
    e = c * c * float(eps) / (sx * sx) * 2.0**LN_EPS_FRAC
    if not e < LN_EPS_MAX:
        raise ValueError(f"eps / in_scale**2 = {eps / sx**2!r} is too large for {c} channels")
    gr, br = g / sy, b / sy
    for name, r in (("gamma", gr), ("beta", br)):
        if c and np.max(np.abs(r)) >= 1 << (MULT_BITS - 1):
            raise ValueError(f"|{name}| / out_scale must be below 2**{MULT_BITS - 1}")
    gmax = float(np.max(np.abs(gr))) if c else 0.0
    shift = LN_FRAC + MULT_BITS - (math.frexp(gmax)[1] if gmax > 0 else 1)
    shift = min(shift, LN_SHIFT_MAX)
    if gmax > 0 and round(gmax * 2.0 ** (shift - LN_FRAC)) == 1 << MULT_BITS:
        shift -= 1  # rounding carried into a new bit
    gm = tuple(int(round(v * 2.0 ** (shift - LN_FRAC))) for v in gr)
    ba = tuple(int(round(v * 2.0**shift)) for v in br)
    return LayerNormParams(c, int(round(e)), gm, ba, shift)


def isqrt_newton(n: int) -> int:
    """``floor(sqrt(n))`` by I-BERT's integer Newton iteration (Kim et al. 2021, Algorithm 4)."""
    if n < 0:
        raise ValueError(f"n must be non-negative, not {n!r}")
    if n == 0:
        return 0
    x = 1 << -(-n.bit_length() // 2)
    while True:
        y = (x + n // x) >> 1
        if y >= x:
            return x
        x = y


def _np_ops():
    return dict(sum=lambda a: a.sum(-1, keepdims=True), where=np.where,
                bits=lambda a: np.frexp(a.astype(np.float64))[1].astype(np.int64),
                sqrt_floor=lambda a: np.floor(np.sqrt(a.astype(np.float64))).astype(np.int64),
                clip=lambda a, lo, hi: np.clip(a, lo, hi))


def _torch_ops():
    import torch

    return dict(sum=lambda a: a.sum(-1, keepdim=True), where=torch.where,
                bits=lambda a: torch.frexp(a.to(torch.float64))[1].to(torch.int64),
                sqrt_floor=lambda a: torch.floor(torch.sqrt(a.to(torch.float64))).to(torch.int64),
                clip=lambda a, lo, hi: a.clamp(lo, hi))


def _rsqrt(wv, o):
    """``(r, s)`` of the module docstring for ``W >= 0`` (any shape; ``r = 0`` where ``W = 0``).

    ``bits`` comes from frexp of a float64, exact for ``W < 2**53``.
    """
    s = (o["bits"](wv) - RSQRT_BITS + 1) // 2
    w = o["where"](s > 0, wv >> o["clip"](s, 0, 63) * 2, wv << o["clip"](-s, 0, 63) * 2)
    q = (1 << 62) // o["where"](w > 0, w, 1)
    r = o["sqrt_floor"](q)                           # off by at most one: correct it exactly
    r = o["where"](r * r > q, r - 1, r)
    r = o["where"]((r + 1) * (r + 1) <= q, r + 1, r)
    return o["where"](wv > 0, r, 0), s


def ln_rsqrt(w):
    """``(r, s)``: ``r = floor(2**31 / sqrt(w'))`` of the normalized ``w' = W * 4**-s``.

    ``W`` is a non-negative integer array (numpy or torch) below ``2**53``. ``r`` is 0 where ``W``
    is 0. Equal to ``isqrt(2**62 // w')`` (``isqrt_newton``) for every ``W > 0``.
    """
    if _is_tensor(w):
        import torch

        return _rsqrt(w.to(torch.int64), _torch_ops())
    return _rsqrt(np.asarray(w, dtype=np.int64), _np_ops())


def layernorm_int(q, p: LayerNormParams):
    """Integer LayerNorm over the last axis (``p.channels`` int8 values); int64 int8 outputs.

    ``q`` is a numpy integer array or a torch integer tensor; the result is the same kind.
    """
    torch_in = _is_tensor(q)
    if torch_in:
        import torch

        if q.is_floating_point() or q.is_complex():
            raise ValueError(f"LayerNorm inputs must be integers (int8 values), not {q.dtype}")
        x, o = q.to(torch.int64), _torch_ops()
        dev = dict(dtype=torch.int64, device=x.device)
        g, b = torch.tensor(p.gamma_mult, **dev), torch.tensor(p.beta_add, **dev)
    else:
        q = np.asarray(q)
        if not np.issubdtype(q.dtype, np.integer):
            raise ValueError(f"LayerNorm inputs must be integers (int8 values), not {q.dtype}")
        x, o = np.asarray(q, dtype=np.int64), _np_ops()
        g, b = np.asarray(p.gamma_mult, np.int64), np.asarray(p.beta_add, np.int64)
    if x.ndim == 0 or x.shape[-1] != p.channels:
        raise ValueError(f"LayerNorm rows must have {p.channels} channels, not shape "
                         f"{tuple(x.shape)}")
    if (x.numel() if torch_in else x.size) and (int(x.min()) < INT8.min or int(x.max()) > INT8.max):
        raise ValueError(f"LayerNorm inputs must lie in int8 [-128, 127], not "
                         f"[{int(x.min())}, {int(x.max())}]")
    c = p.channels
    sx = o["sum"](x)
    wv = ((c * o["sum"](x * x) - sx * sx) << LN_EPS_FRAC) + p.eps_term
    r, s = _rsqrt(wv, o)
    # h >= 7 on every row that is not constant (W >= 2**16); a constant row has D = 0, z = 0
    h = o["clip"](RSQRT_SHIFT - LN_FRAC - LN_EPS_FRAC // 2 + s, 1, 62)
    z = (((c * x - sx) * r) + (1 << (h - 1))) >> h
    y = (z * g + b + (1 << (p.shift - 1))) >> p.shift
    return o["clip"](y, INT8.min, INT8.max)


def layernorm_error_bound(p: LayerNormParams) -> float:
    """Derived worst error (LSBs of the output scale) before saturation (module docstring)."""
    rc = math.sqrt(p.channels)
    g = max((abs(v) for v in p.gamma_mult), default=0) / 2.0 ** (p.shift - LN_FRAC)
    return (0.5 + g * (2.0 ** -(LN_FRAC + 1) + rc * 5.5 * 2.0**-20)
            + rc * 2.0 ** -(p.shift - LN_FRAC + 1) + 2.0 ** -(p.shift + 1))


def _adversarial_rows(c: int, rng) -> np.ndarray:
    """Constant rows, single outliers, minimal variance, alternating extremes, every split."""
    lo, hi = INT8.min, INT8.max
    rows = [np.full((256, c), np.arange(lo, hi + 1)[:, None])]          # zero variance
    k = np.arange(c + 1)[:, None] > np.arange(c)                         # k leading elements
    for a, b in ((lo, hi), (hi, lo), (0, 1), (-1, 0), (lo, lo + 1), (hi - 1, hi)):
        rows.append(np.where(k, a, b))                                   # every split of two levels
    alt = np.where(np.arange(c) % 2 == 0, lo, hi)
    rows += [alt[None], -1 - alt[None]]
    pos = rng.integers(0, c, 64)
    for base, out in ((lo, hi), (hi, lo), (0, hi), (0, lo), (5, 6), (5, 4)):
        r = np.full((64, c), base)
        r[np.arange(64), pos] = out                                      # one outlier
        rows.append(r)
    return np.concatenate(rows)


def layernorm_error(channels: int, in_scale: float, *, rows: int = 2000, seed: int = 0,
                    eps: float = 1e-5) -> tuple[float, float]:
    """``(measured, derived)`` worst error in LSBs of the output scale (module docstring).

    gamma uniform in [-2, 2] and beta in [-1, 1] (seeded), the output scale calibrated to the
    largest float output over the rows, so nothing saturates; the float reference is LayerNorm of
    the same int8 inputs in float64.
    """
    rng = np.random.default_rng(seed)
    gamma, beta = rng.uniform(-2, 2, channels), rng.uniform(-1, 1, channels)
    spread = rng.integers(1, 5, (rows, 1))
    q = np.concatenate([
        _adversarial_rows(channels, rng),
        rng.integers(INT8.min, INT8.max + 1, (rows, channels)),
        rng.integers(-100, 100, (rows, 1)) + rng.integers(0, 1 << 30, (rows, channels)) % spread,
    ])
    x = q * float(in_scale)
    mu = x.mean(-1, keepdims=True)
    ref = gamma * (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) + beta
    out_scale = float(np.max(np.abs(ref))) / INT8.max
    p = layernorm_params(in_scale, out_scale, gamma, beta, eps)
    err = np.abs(layernorm_int(q, p) - np.clip(ref / out_scale, INT8.min, INT8.max))
    return float(err.max()), layernorm_error_bound(p)


def _main() -> None:
    print("channels  s_x     worst error (LSB)  derived bound (LSB)")
    for c in (1, 2, 3, 16, 32, 64, 768, 1024):
        for sx in (0.002, 0.01, 0.05, 0.25):
            err, bound = layernorm_error(c, sx)
            print(f"{c:<9} {sx:<7} {err:<18.4f} {bound:.4f}")


if __name__ == "__main__":
    _main()
