"""A stream testbench for the attention units in Amaranth's simulator (small configs only).

Loads go in first, one stream after another, each beat offered until it is taken; then the
data words go to ``sink`` while ``source`` is drained. With ``stall > 0`` the data words arrive
with random gaps and ``source`` is ready at random, both at that probability of a gap (seeded);
a producer's ``valid`` stays up until its beat is taken, as the stream rules require.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

__all__ = ["StreamRun", "Reload", "run_streams"]


@dataclass
class StreamRun:
    """What came out: ``accepted[k]`` is the cycle data word ``k`` entered, ``outputs[k]`` the
    ``(data, last)`` of output word ``k`` and ``out_cycles[k]`` its cycle (cycle 0 is the one
    the first data word entered); ``load_cycles`` is the cycle the first data word entered
    counted from the first load beat offered (the words are offered from the cycle after the
    last beat is taken)."""

    accepted: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    out_cycles: list = field(default_factory=list)
    load_cycles: int = 0


@dataclass
class Reload:
    """A load sent between ``sink`` words (an item of ``run_streams``' words): ``beats`` to
    ``port``, each offered until taken, the next word offered once the last is taken."""

    port: object
    beats: list
    taken: int = 0


def run_streams(dut, loads, words, *, expect: int, stall: float = 0.0, seed: int = 0,
                timeout: int = 20_000) -> StreamRun:
    """Simulate ``dut`` (a unit with ``sink`` and ``source``): ``loads`` is a list of
    ``(stream, payloads)`` sent first; ``words`` the ``sink`` payloads (and :class:`Reload`
    items between them); ``expect`` output words are collected. Raises ``TimeoutError`` (with
    the seed) if they do not all come in ``timeout`` cycles."""
    rng = random.Random(seed)
    run = StreamRun()

    async def bench(ctx):
        cycle = 0
        for port, beats in loads:
            for beat in beats:
                ctx.set(port.valid, 1)
                ctx.set(port.payload, beat)
                while True:
                    ready = ctx.get(port.ready)
                    await ctx.tick()
                    cycle += 1
                    if ready:
                        break
            ctx.set(port.valid, 0)
        nxt, offered = 0, False
        start = None
        for _ in range(timeout):
            if nxt < len(words) and isinstance(words[nxt], Reload):
                # a load between words: its beats one after another, each until taken
                item = words[nxt]
                ctx.set(item.port.valid, 1)
                ctx.set(item.port.payload, item.beats[item.taken])
                if ctx.get(item.port.ready):
                    item.taken += 1
                    if item.taken == len(item.beats):
                        nxt += 1
            elif not offered and nxt < len(words) and rng.random() >= stall:
                offered = True
                ctx.set(dut.sink.payload, words[nxt])
            ctx.set(dut.sink.valid, offered)
            ready = rng.random() >= stall
            ctx.set(dut.source.ready, ready)
            if offered and ctx.get(dut.sink.ready):
                if start is None:
                    start = cycle
                run.accepted.append(cycle)
                nxt, offered = nxt + 1, False
            if ready and ctx.get(dut.source.valid):
                pl = ctx.get(dut.source.payload)
                run.outputs.append(([int(x) for x in pl.data], int(pl.last)))
                run.out_cycles.append(cycle)
                if len(run.outputs) == expect:
                    break
            await ctx.tick()
            cycle += 1
            for item in words:
                if isinstance(item, Reload) and item.taken == len(item.beats):
                    ctx.set(item.port.valid, 0)
        else:
            raise TimeoutError(f"{len(run.outputs)} of {expect} output words in {timeout} "
                               f"cycles (seed {seed})")
        base = start or 0
        run.load_cycles = base
        run.accepted[:] = [c - base for c in run.accepted]
        run.out_cycles[:] = [c - base for c in run.out_cycles]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return run
