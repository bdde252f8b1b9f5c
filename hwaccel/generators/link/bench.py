"""Testbenches for the link and the arbiter in Amaranth's simulator (small configs only).

Both drive the Components from the same :class:`~hwaccel.parallel.traffic.Transfer` lists and
:class:`~hwaccel.parallel.traffic.Receiver` patterns the cycle models take: a sender offers
beat ``k`` from ``max(at, cycle its previous beat went + 1)`` and holds ``valid`` until it is
taken; the receiver's ``ready`` at cycle ``c`` is ``receiver.ready(c)``. They record what the
hardware did, cycle by cycle, for the tests to compare with the models.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from amaranth.sim import Simulator

from ...parallel.traffic import Receiver, Transfer, beats_of

__all__ = ["LinkRun", "run_link", "ArbiterRun", "run_arbiter", "random_payloads"]


def random_payloads(beats, width: int, seed: int) -> list[dict]:
    """A payload per beat of ``beats_of(...)``: random bytes, its count and ``last``."""
    rng = random.Random(seed)
    return [{"data": [rng.randrange(256) for _ in range(width)], "count": count, "last": last}
            for _, _, count, last in beats]


def _as_dict(payload) -> dict:
    return {"data": [int(x) for x in payload.data], "count": int(payload.count),
            "last": int(payload.last)}


@dataclass
class LinkRun:
    """Per beat (in order): ``sent``, ``head`` (first cycle on ``source``), ``left``;
    ``received`` the payloads that left; ``credits[c]`` the ``credits`` output at cycle ``c``;
    ``stalled_at`` the first cycle ``stalled`` was high (``None``: never)."""

    sent: list = field(default_factory=list)
    head: list = field(default_factory=list)
    left: list = field(default_factory=list)
    received: list = field(default_factory=list)
    credits: list = field(default_factory=list)
    stalled_at: int | None = None


def run_link(dut, transfers: list[Transfer], receiver: Receiver, *, cycles: int,
             seed: int = 0) -> tuple[LinkRun, list[dict]]:
    """Simulate ``dut`` (a :class:`~.link.Link`) for ``cycles`` cycles, or until every beat
    has left; returns what it did and the payloads sent."""
    beats = beats_of(transfers, dut.config.width)
    payloads = random_payloads(beats, dut.config.width, seed)
    run = LinkRun()

    async def bench(ctx):
        k, prev_sent = 0, -1
        for c in range(cycles):
            offer = k < len(beats) and c >= max(beats[k][1], prev_sent + 1)
            ctx.set(dut.sink.valid, offer)
            if offer:
                ctx.set(dut.sink.payload, payloads[k])
            ready = receiver.ready(c)
            ctx.set(dut.source.ready, ready)
            run.credits.append(ctx.get(dut.credits))
            if run.stalled_at is None and ctx.get(dut.stalled):
                run.stalled_at = c
            if offer and ctx.get(dut.sink.ready):
                run.sent.append(c)
                k, prev_sent = k + 1, c
            if ctx.get(dut.source.valid):
                if len(run.head) == len(run.left):
                    run.head.append(c)
                if ready:
                    run.left.append(c)
                    run.received.append(_as_dict(ctx.get(dut.source.payload)))
            if len(run.left) == len(beats):
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return run, payloads


@dataclass
class ArbiterRun:
    """Every beat that crossed, in order: ``(cycle, port, payload)``."""

    crossed: list = field(default_factory=list)


def run_arbiter(dut, traffic: list[list[Transfer]], port: Receiver, *, cycles: int,
                seed: int = 0) -> tuple[ArbiterRun, list[list[dict]]]:
    """Simulate ``dut`` (a :class:`~.arbiter.HostPortArbiter`) for ``cycles`` cycles or until
    every beat has crossed; returns what crossed and each port's payloads."""
    width, n = dut.config.width, dut.config.ports
    queues = [beats_of(t, width) for t in traffic]
    payloads = [random_payloads(q, width, seed * 1000 + i) for i, q in enumerate(queues)]
    run = ArbiterRun()
    total = sum(map(len, queues))

    async def bench(ctx):
        nxt, free = [0] * n, [0] * n
        for c in range(cycles):
            offers = []
            for i in range(n):
                offer = nxt[i] < len(queues[i]) and c >= max(queues[i][nxt[i]][1], free[i])
                offers.append(offer)
                ctx.set(dut.sinks[i].valid, offer)
                if offer:
                    ctx.set(dut.sinks[i].payload, payloads[i][nxt[i]])
            ready = port.ready(c)
            ctx.set(dut.source.ready, ready)
            if ready and ctx.get(dut.source.valid):
                pl = ctx.get(dut.source.payload)
                run.crossed.append((c, int(pl.port), _as_dict(pl.beat)))
            for i in range(n):
                if offers[i] and ctx.get(dut.sinks[i].ready):
                    nxt[i], free[i] = nxt[i] + 1, c + 1
            if len(run.crossed) == total:
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return run, payloads
