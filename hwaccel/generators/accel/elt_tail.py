"""The element-wise unit's last stages (rounding, shift, clamp), one a datapath or one shared.

Both datapaths end in the same three stages (:func:`round_then_clamp`): the value plus its
rounding term, then the shift beside the compares with the shifted bounds, then the clamp into
the result register. Each datapath has its own, or, under ``lut_multipliers``
(:func:`.elt_products.shares_lane_products`: the LUT-starved FPGA builds), one shared by both:
the unit runs one job at a time, so a choice by the job's kind in front of the rounding
registers (the lanes' values, the shift, the bounds, AVGPOOL's un-bias) gives every result the
same integer in the same cycle. On ``ecp5_144``'s unit alone (Yosys, the ``lut_multipliers``
prelude) that is 1,338 LUT4 slots and 411 flip-flops fewer (docs/ecp5-dsp.md).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Mux, Signal, signed

from ..conv.rw import data_register
from ..rounding import rounding_terms, shift_terms

__all__ = ["Tails", "round_then_clamp"]


class Tails:
    """The datapaths' last stages. Without ``mode`` each call builds a datapath's own
    :func:`round_then_clamp` and returns its busy bits; with ``mode`` (the job's kind: 1 for the
    datapath that calls second) the calls only record their inputs, and :meth:`shared` builds
    the one tail of both."""

    def __init__(self, m, res, res_valid, mode=None):
        self._m, self._res, self._res_valid, self._mode = m, res, res_valid, mode
        self._taken = []

    def __call__(self, name, values, shift, take, bounds, *, unbias=False):
        if self._mode is None:
            return round_then_clamp(self._m, values, shift, take, bounds, self._res,
                                    self._res_valid, name, unbias=unbias)
        self._taken.append(SimpleNamespace(values=values, shift=shift, take=take,
                                           bounds=bounds, unbias=unbias))
        return Const(0)

    def shared(self, name):
        """The one tail of the two recorded datapaths; its busy bits."""
        first, second = self._taken

        def pick(b, a):          # the second datapath's in its jobs, else the first's
            return Mux(self._mode, b, a)

        # A ``lo`` of None means the values are never negative: a bound of 0 never clamps them.
        los = [0 if t.bounds[0] is None else t.bounds[0] for t in (first, second)]
        lo = None if first.bounds[0] is None and second.bounds[0] is None else pick(los[1], los[0])
        return round_then_clamp(
            self._m, [pick(b, a) for a, b in zip(first.values, second.values)],
            pick(second.shift, first.shift), first.take | second.take,
            (lo, pick(second.bounds[1], first.bounds[1])), self._res, self._res_valid, name,
            unbias=pick(int(second.unbias), int(first.unbias)))


def round_then_clamp(m, values, shift, take, bounds, res, res_valid, name, *, unbias=False):
    """The last three stages of both datapaths: ``values`` (one a lane) plus their rounding term
    ``2**(shift-1)`` registered when ``take``; then shifted, and compared with the bounds; then
    each lane clamped to ``bounds`` (``lo``, ``hi``; ``lo`` ``None``: the values are not
    negative) and taken as a byte (AVGPOOL's ``unbias``-ed: its top bit flipped) into the result
    register. ``hi``, ``lo`` and ``unbias`` are constants, or values that hold while a job runs
    (a shared tail's, chosen by the job's kind). Returns the valid bits of the rounding and
    shift registers (for ``busy``).

    No path adds, shifts and compares in one cycle, and the clamp does not wait for the shift:
    with ``t`` the rounded value and ``s`` the shift, ``floor(t / 2**s) > hi`` exactly when
    ``t >= (hi + 1) << s``, and ``< lo`` when ``t < lo << s``, so the rounded value is compared
    with the bounds shifted up (registers that follow the job's shift, set long before its first
    result, as the rounding term is) beside the shift. A value inside the bounds is a byte, so
    the shift keeps 8 bits. A shift past the value's width gives 0, as before. The shift and
    the clamp were one stage until the ADD's multiplies were registered (the netlist
    estimate's second path then, 13.9 ns: the compare and the barrel shift into the result's
    multiplexers)."""
    lo, hi = bounds
    # The rounding term a register too, following the job's shift as the bounds do: its
    # decode in front of the adder was a placed path at 60c88e2 (12.6 ns, AVGPOOL's shift
    # into 259 bits of the rounding registers).
    decoded = rounding_terms(values[0], shift).half
    half = Signal(len(decoded), name=f"{name}_half")
    m.d.sync += half.eq(decoded)
    terms = [rounding_terms(v, shift, half) for v in values]
    s, big = terms[0].shift, terms[0].big   # the same for every lane
    # (hi + 1) << s fits T + 9 bits for any s below the value's width T (else ``big``).
    hi_b = Signal(signed(len(terms[0].total) + 9), name=f"{name}_hi")
    m.d.sync += hi_b.eq((Const(hi + 1, signed(10)) if isinstance(hi, int) else hi + 1) << s)
    if lo is not None:
        lo_b = Signal.like(hi_b, name=f"{name}_lo")
        m.d.sync += lo_b.eq(lo << s)
    rounded = [data_register(t.total.shape(), f"{name}{i}") for i, t in enumerate(terms)]
    rounded_v, shifted_v = Signal(name=f"{name}_v"), Signal(name=f"{name}_sv")
    shifted = [data_register(8, f"{name}_s{i}") for i in range(len(values))]
    over = [Signal(name=f"{name}_over{i}") for i in range(len(values))]
    under = [Signal(name=f"{name}_under{i}") for i in range(len(values))]
    m.d.sync += [rounded_v.eq(take), shifted_v.eq(rounded_v)]
    with m.If(take):
        m.d.sync += [r.eq(t.total) for r, t in zip(rounded, terms)]
    with m.If(rounded_v):
        m.d.sync += [x.eq(shift_terms(r, s, 0)[:8]) for x, r in zip(shifted, rounded)]
        m.d.sync += [o.eq(r >= hi_b) for o, r in zip(over, rounded)]
        if lo is not None:
            m.d.sync += [u.eq(r < lo_b) for u, r in zip(under, rounded)]
    with m.If(shifted_v):
        out = []
        for x, o, u in zip(shifted, over, under):
            x = Mux(o, hi, x)
            if lo is not None:
                x = Mux(u, lo, x)
            x = Mux(big, 0, x)[:8]
            if isinstance(unbias, bool):
                out.append(x ^ 0x80 if unbias else x)
            else:
                out.append(x ^ Cat(Const(0, 7), unbias))
        m.d.sync += [res.eq(Cat(*out)), res_valid.eq(1)]
    return rounded_v | shifted_v
