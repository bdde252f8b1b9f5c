"""The systolic array's result FIFO behaves cycle for cycle like amaranth's SyncFIFO.

:class:`ResultFIFO` registers its "not empty" flag (for clock speed); the array's cycle counts
are only unchanged if every output matches ``SyncFIFO``'s in every cycle. Both FIFOs get the
same random writes (never into a full FIFO: the array's credits forbid that) and reads, and are
compared each cycle in Amaranth's simulator.
"""

from __future__ import annotations

import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFO
from amaranth.sim import Simulator

from hwaccel.generators.systolic.array import ResultFIFO


@pytest.mark.parametrize("depth", [2, 3, 16])
def test_result_fifo_matches_syncfifo_every_cycle(depth):
    m = Module()
    ours = m.submodules.ours = ResultFIFO(8, depth)
    ref = m.submodules.ref = SyncFIFO(width=8, depth=depth)
    rng = random.Random(depth)
    seen = {"reads": 0, "full": 0}

    async def bench(ctx):
        for _ in range(600):
            # Bursty read and write probabilities reach both empty and full.
            phase = rng.random()
            full = ctx.get(ref.level) == depth
            w_en = (not full) and rng.random() < phase
            r_en = rng.random() < 1 - phase
            data = rng.randrange(256)
            for f in (ours, ref):
                ctx.set(f.w_en, w_en)
                ctx.set(f.w_data, data)
                ctx.set(f.r_en, r_en)
            assert ctx.get(ours.r_rdy) == ctx.get(ref.r_rdy)
            if ctx.get(ref.r_rdy):
                assert ctx.get(ours.r_data) == ctx.get(ref.r_data)
                seen["reads"] += r_en
            seen["full"] += full
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["reads"] > 50 and seen["full"] > 0, f"the stimulus was too tame: {seen}"

