"""The split product: registered halves joined again equal the product, at its shape."""

import itertools
import random

import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hwaccel.generators.split_product import join_product, split_product


def _values(shape):
    if shape.signed:
        return range(-(1 << (shape.width - 1)), 1 << (shape.width - 1))
    return range(1 << shape.width)


def _products(a_shape, b_shape, pairs, cut):
    """Run the halves through a register each, as the conv engine does; return the joins."""
    m = Module()
    a, b = Signal(a_shape), Signal(b_shape)
    s = split_product(a, b, cut)
    low, high = Signal(s.low.shape()), Signal(s.high.shape())
    m.d.sync += [low.eq(s.low), high.eq(s.high)]
    joined = Signal(s.shape)
    m.d.comb += joined.eq(join_product(low, high, s))
    assert joined.shape() == (a * b).shape()
    return _clocked(m, a, b, joined, pairs, 1)


def _clocked(m, a, b, out, pairs, latency: int) -> list:
    """Simulate ``m`` with ``pairs`` on ``a``, ``b``, one a cycle; ``out`` for each pair,
    ``latency`` clock edges after it was set."""
    got = []

    async def bench(ctx):
        for i in range(len(pairs) + latency - 1):
            if i < len(pairs):
                ctx.set(a, pairs[i][0])
                ctx.set(b, pairs[i][1])
            await ctx.tick()
            got.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got[latency - 1:]


@pytest.mark.parametrize("a_shape, b_shape, cut", [
    (signed(7), unsigned(3), 3), (signed(6), signed(3), 2), (unsigned(6), unsigned(3), 4),
    (unsigned(5), signed(3), 1),
])
def test_every_value_of_small_widths(a_shape, b_shape, cut):
    pairs = list(itertools.product(_values(a_shape), _values(b_shape)))
    assert _products(a_shape, b_shape, pairs, cut) == [x * y for x, y in pairs]


def test_conv_requantizer_widths():
    # The conv accumulator (33 bits, signed) times the requantizer's 16-bit multiplier, with
    # the extremes of both and random values between.
    a_lo, a_hi = -(1 << 32), (1 << 32) - 1
    rng = random.Random(7)
    ends = [(a, b) for a in (a_lo, a_hi, -1, 0, 1, (1 << 17) - 1, 1 << 17)
            for b in (0, 1, 0xFFFF)]
    pairs = ends + [(rng.randint(a_lo, a_hi), rng.randint(0, 0xFFFF)) for _ in range(500)]
    a_shape, b_shape = signed(33), unsigned(16)
    assert _products(a_shape, b_shape, pairs, 17) == [x * y for x, y in pairs]


def test_refuses_a_value_that_needs_no_split():
    with pytest.raises(ValueError, match="needs no split"):
        split_product(Signal(signed(17)), Signal(16), 17)
    with pytest.raises(ValueError, match="cut must be"):
        split_product(Signal(signed(33)), Signal(16), 0)


def test_staged_lut_product_is_the_product_three_cycles_later():
    """The element-wise ADD's staged second-word product (``add_product_stage``): the byte's
    halves' partial products registered, then joined, equal ``a * byte`` for every byte and
    the extremes of an 18-bit signed ``a``, :data:`STAGED_LATENCY` cycles after the operands."""
    from hwaccel.generators.accel.elt_products import STAGED_LATENCY, staged_product

    m = Module()
    a, byte = Signal(signed(18)), Signal(signed(8))
    product = staged_product(m, a, byte, name="t")
    rng = random.Random(3)
    values = [-(1 << 17), (1 << 17) - 1, -1, 0, 1] + [rng.randrange(-(1 << 17), 1 << 17)
                                                      for _ in range(5)]
    pairs = [(x, y) for x in values for y in range(-128, 128)]
    assert STAGED_LATENCY == 3
    assert _clocked(m, a, byte, product, pairs, STAGED_LATENCY) == [x * y for x, y in pairs]
    with pytest.raises(ValueError, match="byte must be 8 bits wide, not 9"):
        staged_product(m, a, Signal(signed(9)), name="u")   # (m: no unused Module)
