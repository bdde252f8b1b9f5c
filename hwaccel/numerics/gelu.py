"""GELU on int8: a 256-entry table of correctly rounded outputs, built from the two scales.

``y = GELU_TABLE[q + 128]`` maps an int8 input at ``s_x`` to an int8 output at ``s_y``, with

    GELU_TABLE[q + 128] = sat8(floor(gelu(q * s_x) / s_y + 1/2))      (float64)

``gelu(x) = x * Phi(x) = x/2 * (1 + erf(x / sqrt 2))`` (``nn.GELU()``), or its tanh form
``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))`` (``nn.GELU(approximate="tanh")``). The
compiler builds the table per layer (:func:`gelu_params`) and the hardware holds it in 256 x 8
bits (a LUT RAM or a quarter of a block RAM), read once per element after the FFN's first
requantizer: no multiplier, no requantizer of its own, one cycle. Like the LSTM's sigmoid and
tanh tables (:mod:`.lstm`) it is exact by construction; unlike them it is indexed by the whole
int8 input, so it needs no symmetry and no interpolation.

Worst-case error against float GELU, measured exhaustively over all 256 inputs
(:func:`gelu_error`): at most 1/2 LSB of ``s_y`` against ``clip(gelu(q*s_x)/s_y, -128, 127)``
for every pair of scales, since each entry is the correctly rounded value (a float64 rounding
error of ~1e-13 LSB aside, the tests assert ``<= 0.5 + 1e-9``).

Why not I-BERT's i-GELU (Kim et al., "I-BERT: Integer-only BERT Quantization", ICML 2021,
Algorithm 3; ``IntGELU`` in kssteven418/I-BERT): it approximates ``erf`` by the clipped
second-order polynomial ``sign(x) * (-0.2888 * (min(|x|, 1.769) - 1.769)**2 + 1)`` evaluated on
the integer input at scale ``s_x / sqrt 2``, multiplies by the input and needs a requantizer to
reach ``s_y``: two multipliers where the table needs none, and the polynomial's error (up to
about 0.018 in erf) shows at the output. Measured exhaustively with an ideal final requantizer
(:func:`ibert_gelu_error`, its erf shift set to 0, its best on int8 inputs);
``python -m hwaccel.numerics.gelu`` prints:

=====  ========  ===========  ================  ===================
s_x    s_y       table (LSB)  tanh form (LSB)   I-BERT i-GELU (LSB)
=====  ========  ===========  ================  ===================
0.01   0.008980  0.4992       0.5000            1.7485
0.03   0.029998  0.4929       0.4915            0.9776
0.05   0.050000  0.4933       0.4865            0.8677
0.1    0.100000  0.4923       0.4942            0.7416
=====  ========  ===========  ================  ===================

(``s_y`` calibrated to the largest output, ``gelu(127 * s_x) / 127``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .core import INT8, _is_tensor

__all__ = ["GELU_TABLE_SIZE", "GeluParams", "gelu_params", "gelu_int", "gelu_float",
           "gelu_error", "ibert_gelu_error", "table_of"]

#: One entry per int8 input.
GELU_TABLE_SIZE = INT8.max - INT8.min + 1
_APPROX = ("none", "tanh")


@dataclass(frozen=True)
class GeluParams:
    """A GELU unit's table: ``table[q + 128]`` is the int8 output for int8 input ``q``."""

    table: tuple[int, ...]

    def __post_init__(self):
        t = self.table
        if not (isinstance(t, tuple) and len(t) == GELU_TABLE_SIZE
                and all(isinstance(v, int) and INT8.contains(v) for v in t)):
            raise ValueError(f"table must be a tuple of {GELU_TABLE_SIZE} int8 integers")


def _positive(name: str, v) -> float:
    ok = isinstance(v, (int, float, np.floating)) and not isinstance(v, bool)
    if not (ok and math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a positive finite number, not {v!r}")
    return float(v)


def gelu_float(x: float, approximate: str = "none") -> float:
    """Float GELU of one value (``nn.GELU``'s two forms), in float64."""
    if approximate == "none":
        return 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0)))
    if approximate == "tanh":
        return 0.5 * x * (1.0 + math.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))
    raise ValueError(f"approximate must be one of {_APPROX}, not {approximate!r}")


def gelu_params(in_scale: float, out_scale: float, approximate: str = "none") -> GeluParams:
    """The table for int8 input at ``in_scale`` and int8 output at ``out_scale``."""
    sx, sy = _positive("in_scale", in_scale), _positive("out_scale", out_scale)
    if approximate not in _APPROX:
        raise ValueError(f"approximate must be one of {_APPROX}, not {approximate!r}")
    return table_of(lambda x: gelu_float(x, approximate), sx, sy)


def table_of(f, in_scale: float, out_scale: float) -> GeluParams:
    """The table of float function ``f`` (float64 in, float64 out) for int8 input at
    ``in_scale`` and int8 output at ``out_scale``: ``sat8(floor(f(q * s_x) / s_y + 1/2))``,
    each entry the correctly rounded value (GELU's, :mod:`.pointwise`'s functions')."""
    sx, sy = _positive("in_scale", in_scale), _positive("out_scale", out_scale)
    table = []
    for q in range(INT8.min, INT8.max + 1):
        v = math.floor(f(q * sx) / sy + 0.5)
        table.append(min(max(v, INT8.min), INT8.max))
    return GeluParams(tuple(table))


def gelu_int(q, p: GeluParams):
    """``p.table[q + 128]`` elementwise: a numpy integer array or torch integer tensor of int8
    values in, the same kind (int64) out."""
    if _is_tensor(q):
        import torch

        if q.is_floating_point() or q.is_complex():
            raise ValueError(f"GELU inputs must be integers (int8 values), not {q.dtype}")
        x = q.to(torch.int64)
        table = torch.tensor(p.table, dtype=torch.int64, device=x.device)
    else:
        q = np.asarray(q)
        if not np.issubdtype(q.dtype, np.integer):
            raise ValueError(f"GELU inputs must be integers (int8 values), not {q.dtype}")
        x = np.asarray(q, dtype=np.int64)
        table = np.asarray(p.table, dtype=np.int64)
    size = x.numel() if _is_tensor(x) else x.size
    if size and (int(x.min()) < INT8.min or int(x.max()) > INT8.max):
        raise ValueError(f"GELU inputs must lie in int8 [-128, 127], not "
                         f"[{int(x.min())}, {int(x.max())}]")
    return table[x - INT8.min]


def _worst(outputs, in_scale: float, out_scale: float, approximate: str) -> float:
    q = range(INT8.min, INT8.max + 1)
    ref = [min(max(gelu_float(v * in_scale, approximate) / out_scale, INT8.min), INT8.max)
           for v in q]
    return max(abs(y - r) for y, r in zip(outputs, ref))


def gelu_error(in_scale: float, out_scale: float, approximate: str = "none") -> float:
    """Worst ``|table - clip(gelu(q*s_x)/s_y)|`` in LSBs of ``s_y`` over all 256 inputs."""
    p = gelu_params(in_scale, out_scale, approximate)
    return _worst(p.table, in_scale, out_scale, approximate)


def ibert_gelu_error(in_scale: float, out_scale: float, shift: int = 0) -> float:
    """The same sweep for I-BERT's i-GELU with an ideal (float, round-half-up) requantizer.

    For comparison only; the integer steps and constants of kssteven418/I-BERT ``IntGELU``
    (``k = 1.4142``, ``a, b, c = -0.2888, -1.769, 1``) except its shift ``n = 14`` of the erf
    value, meant for int32 inputs at a fine scale: on int8 inputs it leaves ``floor(1 / scale)``
    a handful of units (26-128 LSB of error); ``shift = 0`` is i-GELU's best on int8.
    """
    sx, sy = _positive("in_scale", in_scale), _positive("out_scale", out_scale)
    a, b, c, n = -0.2888, -1.769, 1.0 / -0.2888, shift
    se = sx / 1.4142
    b_int, c_int = math.floor(b / se), math.floor(c / se**2)
    sf = se * se * a * 2.0**n                       # erf's scale after the shift by n
    shift_int = math.floor(1.0 / sf)
    out = []
    for q in range(INT8.min, INT8.max + 1):
        m = min(abs(q), -b_int)
        erf_int = (1 if q > 0 else -1 if q < 0 else 0) * ((m + b_int) ** 2 + c_int)
        y = q * ((erf_int // 2**n) + shift_int) * (sx * sf / 2)
        out.append(min(max(math.floor(y / sy + 0.5), INT8.min), INT8.max))
    return _worst(out, sx, sy, "none")


def _main() -> None:
    print("s_x      s_y        table (LSB)  tanh form (LSB)  I-BERT i-GELU (LSB)")
    for sx in (0.01, 0.03, 0.05, 0.1):
        sy = gelu_float(INT8.max * sx) / INT8.max
        print(f"{sx:<8} {sy:<10.6f} {gelu_error(sx, sy):<12.4f} "
              f"{gelu_error(sx, sy, 'tanh'):<16.4f} {ibert_gelu_error(sx, sy):.4f}")


if __name__ == "__main__":
    _main()
