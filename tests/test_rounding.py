"""The requantizers' rounding shift at the value's width (hwaccel.generators.rounding) equals
``(v + (2**s >> 1)) >> s`` for every value and shift of small widths: shifts past the value's
width (the result 0), up to it, and shift ranges that never reach it."""

from __future__ import annotations

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hwaccel.generators.rounding import round_shift, rounding_terms, saturate_int8


def _formula(v: int, s: int) -> int:
    return (v + ((1 << s) >> 1)) >> s


@pytest.mark.parametrize("vshape, sbits", [(signed(6), 4), (unsigned(5), 3), (signed(4), 2),
                                           (unsigned(1), 2), (signed(7), 3)])
def test_round_shift_equals_the_formula_everywhere(vshape, sbits):
    v, s = Signal(vshape), Signal(sbits)
    y = round_shift(v, s)
    assert len(y) == len(v) + (1 if vshape.signed else 2)
    out = Signal(y.shape())
    m = Module()
    m.d.comb += out.eq(y)
    lo, hi = (-(1 << (len(v) - 1)), 1 << (len(v) - 1)) if vshape.signed else (0, 1 << len(v))
    bad = []

    async def bench(ctx):
        for a in range(lo, hi):
            for b in range(1 << sbits):
                ctx.set(v, a)
                ctx.set(s, b)
                if ctx.get(out) != _formula(a, b):
                    bad.append((a, b, ctx.get(out), _formula(a, b)))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]


def test_widths_and_bad_shapes():
    t = rounding_terms(Signal(signed(50)), Signal(6))
    assert len(t.total) == 51 and len(t.shift) == 6
    t = rounding_terms(Signal(signed(26)), Signal(5))
    assert len(t.total) == 27 and len(t.shift) == 5
    with pytest.raises(TypeError, match="shift must be unsigned"):
        rounding_terms(Signal(8), Signal(signed(4)))


@pytest.mark.parametrize("vshape", [signed(12), signed(9), signed(8), signed(5), unsigned(10)])
def test_saturate_int8_equals_the_clamp_everywhere(vshape):
    """``saturate_int8`` against ``min(max(v, lo), 127)`` for every value of the width, with and
    without ReLU (``lo`` 0 or -128), read back as int8."""
    v, relu = Signal(vshape), Signal()
    out = Signal(signed(8))
    m = Module()
    m.d.comb += out.eq(saturate_int8(v, relu))
    lo, hi = (-(1 << (len(v) - 1)), 1 << (len(v) - 1)) if vshape.signed else (0, 1 << len(v))
    bad = []

    async def bench(ctx):
        for r in (0, 1):
            ctx.set(relu, r)
            for a in range(lo, hi):
                ctx.set(v, a)
                want = min(max(a, 0 if r else -128), 127)
                if ctx.get(out) != want:
                    bad.append((a, r, ctx.get(out), want))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]
