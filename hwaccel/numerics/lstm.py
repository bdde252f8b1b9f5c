"""Fixed-point LSTM arithmetic (see the section comment below)."""

from __future__ import annotations

import math

import numpy as np

from .core import INT8, INT32, IntFormat, Requant, _is_tensor, requantize, saturate

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

__all__ = [
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
