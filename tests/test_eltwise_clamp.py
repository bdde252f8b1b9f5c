"""The element-wise unit's last three stages (:func:`hwaccel.generators.accel.elt_tail.
round_then_clamp`) in Amaranth's simulator, at the clamp's edges: the rounded value is compared
with the bounds shifted up (beside the shift, not after it), so every shift is driven with values
one either side of ``(hi + 1) << s`` and ``lo << s`` (before the rounding term), and with shifts
past the value's width, against ``clip(floor((v + 2**s / 2) / 2**s), lo, hi)``; each datapath's
own tail, and the one both share under ``lut_multipliers`` (:class:`~hwaccel.generators.accel.
elt_tail.Tails`), its inputs chosen by the job's kind."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.sim import Simulator

from hwaccel.generators.accel.elt_tail import Tails, round_then_clamp

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


@pytest.mark.parametrize("shared", [False, True], ids=["own", "shared"])
@pytest.mark.parametrize("relu, unsigned", [(False, False), (True, False), (False, True)])
def test_the_clamp_at_its_edges(relu, unsigned, shared, seed):
    """ADD (lo -128 or, with ReLU, 0; hi 127) and AVGPOOL (values not negative, hi 255, its top
    bit flipped), every shift from 0 to past the width; shared: the other datapath's shift
    differs and its value is held at its largest."""
    rng = np.random.default_rng(seed)
    m = Module()
    shift, other_shift, take = Signal(5), Signal(5), Signal()
    res, res_valid = Signal(8), Signal()
    relu_s = Signal()
    add_lo, hi = Mux(relu_s, 0, -128), (255 if unsigned else 127)
    if not shared:
        value = Signal(signed(WIDTH))
        lo = None if unsigned else add_lo
        round_then_clamp(m, [value], shift, take, (lo, hi), res, res_valid, "t", unbias=unsigned)
        other = None
    else:   # as the unit calls it: the ADD first, AVGPOOL second (mode 1), values unsigned
        mode = Signal(init=int(unsigned))
        add_v, avg_v = Signal(signed(WIDTH)), Signal(WIDTH - 1)
        tails = Tails(m, res, res_valid, mode)
        tails("a", [add_v], other_shift if unsigned else shift, take & ~mode, (add_lo, 127))
        tails("v", [avg_v], shift if unsigned else other_shift, take & mode, (None, 255),
              unbias=True)
        tails.shared("t")
        value, other = (avg_v, add_v) if unsigned else (add_v, avg_v)
    lo_int = None if unsigned else (0 if relu else -128)
    vmax = (1 << (WIDTH - 1)) - 1
    cases = [(v, s) for v, s in _cases(lo_int, hi, rng)
             if -(1 << (WIDTH - 1)) <= v <= vmax and (v >= 0 or not unsigned)]
    bad = []

    async def bench(ctx):
        ctx.set(relu_s, int(relu))
        if other is not None:
            ctx.set(other, (1 << (len(other) - 1)) - 1)
        for v, s in cases:
            ctx.set(shift, s)
            ctx.set(other_shift, (s + 3) % 16)
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
