"""The element-wise unit's last three stages (:func:`hwaccel.generators.accel.eltwise.
_round_then_clamp`) in Amaranth's simulator, at the clamp's edges: the rounded value is compared
with the bounds shifted up (beside the shift, not after it), so every shift is driven with values
one either side of ``(hi + 1) << s`` and ``lo << s`` (before the rounding term), and with shifts
past the value's width, against ``clip(floor((v + 2**s / 2) / 2**s), lo, hi)``."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.sim import Simulator

from hwaccel.generators.accel.eltwise import _round_then_clamp

WIDTH = 14   # the values' bits (signed)


def _want(v: int, s: int, lo: int | None, hi: int, unbias: bool) -> int:
    y = 0 if s >= WIDTH else (v + ((1 << s) >> 1)) >> s
    if s < WIDTH:
        y = min(y, hi) if lo is None else min(max(y, lo), hi)
    y &= 0xFF
    return y ^ 0x80 if unbias else y


def _cases(lo, hi, rng):
    vmax, vmin = (1 << (WIDTH - 1)) - 1, -(1 << (WIDTH - 1))
    for s in range(WIDTH + 2):
        half = (1 << s) >> 1
        edges = [((hi + 1) << s) - half] + ([(lo << s) - half] if lo is not None else [])
        for e in edges:
            for d in (-2, -1, 0, 1, 2):
                yield e + d, s
        for v in rng.integers(vmin if lo is not None else 0, vmax + 1, 4):
            yield int(v), s


@pytest.mark.parametrize("relu, unsigned", [(False, False), (True, False), (False, True)])
def test_the_clamp_at_its_edges(relu, unsigned, seed):
    """ADD (lo -128 or, with ReLU, 0; hi 127) and AVGPOOL (values not negative, hi 255, its top
    bit flipped), every shift from 0 to past the width."""
    rng = np.random.default_rng(seed)
    m = Module()
    value, shift, take = Signal(signed(WIDTH)), Signal(5), Signal()
    res, res_valid = Signal(8), Signal()
    relu_s = Signal()
    lo, hi = ((None, 255) if unsigned else (Mux(relu_s, 0, -128), 127))
    _round_then_clamp(m, [value], shift, take, (lo, hi), res, res_valid, "t", unbias=unsigned)
    lo_int = None if unsigned else (0 if relu else -128)
    vmax = (1 << (WIDTH - 1)) - 1
    cases = [(v, s) for v, s in _cases(lo_int, hi, rng)
             if -(1 << (WIDTH - 1)) <= v <= vmax and (v >= 0 or not unsigned)]
    bad = []

    async def bench(ctx):
        ctx.set(relu_s, int(relu))
        for v, s in cases:
            ctx.set(shift, s)
            await ctx.tick()          # the bounds follow the shift a cycle later
            ctx.set(value, v)
            ctx.set(take, 1)
            await ctx.tick()
            ctx.set(take, 0)
            await ctx.tick()          # the rounding register, then the shift and compares
            await ctx.tick()
            got, want = ctx.get(res), _want(v, s, lo_int, hi, unsigned)
            if got != want:
                bad.append((v, s, got, want))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert len(cases) > 80
    assert not bad, f"(value, shift, got, want): {bad[:8]}"
