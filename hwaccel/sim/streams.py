"""cocotb verification components for ``amaranth.lib.stream`` ports.

A DUT stream member ``x`` appears as ports ``x__payload``, ``x__valid`` and ``x__ready``.
:class:`StreamBench` drives any number of source streams (into the DUT) and sink streams (out of
it) from one coroutine, one loop iteration per clock: that is several times faster than one
coroutine per stream, and it makes the cycle count of a transfer exact.

Each cycle, after the rising edge, sources raise ``valid`` (or idle with probability ``idle``)
and hold it until the beat transfers -- a producer never waits for ``ready`` -- and sinks drive
``ready`` (low with probability ``backpressure``). After ``ReadOnly`` the handshakes that will
happen at the next edge are sampled. Every run is bounded: ``max_cycles`` in total and
``stall_cycles`` without any transfer; either raises :class:`StreamTimeout` naming the streams
that are stuck and the seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["StreamTimeout", "StreamStats", "StreamBench", "check_ports", "reset"]


class StreamTimeout(AssertionError):
    """A stream bench exceeded its cycle budget (a hang or a lost beat)."""


@dataclass
class StreamStats:
    cycles: int = 0                 # cycles the loop ran
    first_in: int | None = None     # cycle of the first source transfer
    last_out: int | None = None     # cycle of the last sink transfer
    received: dict[str, list[int]] = field(default_factory=dict)

    @property
    def span(self) -> int:
        """Cycles from the first input transfer to the last output transfer, both included."""
        if self.first_in is None or self.last_out is None:
            return 0
        return self.last_out - self.first_in + 1


def check_ports(dut, sidecar: dict) -> list[str]:
    """Names of sidecar ports that do not resolve on ``dut`` (empty when all do)."""
    missing = []

    def walk(node):
        for member in node["members"].values():
            if member["type"] == "port":
                try:
                    handle = getattr(dut, member["name"])
                    if len(handle) != member["width"]:
                        missing.append(f"{member['name']} (width {len(handle)}, "
                                       f"sidecar {member['width']})")
                except AttributeError:
                    missing.append(member["name"])
            else:
                walk(member)

    walk(sidecar["ports"])
    return missing


async def reset(dut, cycles: int = 2) -> None:
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


class _Source:
    def __init__(self, dut, name: str, beats: list[int]):
        self.name = name
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.beats = beats
        self.index = 0
        self.driving = False
        self.fire = False


class _Sink:
    def __init__(self, dut, name: str, count: int):
        self.name = name
        self.payload = getattr(dut, f"{name}__payload")
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.count = count
        self.got: list[int] = []
        self.ready_driven = 0
        self.fire = False


class StreamBench:
    """Drive ``sources`` (name -> packed beats) and collect ``sinks`` (name -> beat count)."""

    def __init__(self, dut, sources: dict[str, list[int]], sinks: dict[str, int], *,
                 seed: int, idle: float = 0.0, backpressure: float = 0.0,
                 max_cycles: int = 1_000_000, stall_cycles: int = 10_000):
        self.dut = dut
        self.clk = dut.clk
        self.sources = [_Source(dut, n, b) for n, b in sources.items()]
        self.sinks = [_Sink(dut, n, c) for n, c in sinks.items()]
        self.rng = random.Random(seed)
        self.seed = seed
        self.idle = idle
        self.backpressure = backpressure
        self.max_cycles = max_cycles
        self.stall_cycles = stall_cycles

    def _state(self) -> str:
        parts = [f"{s.name}: {s.index}/{len(s.beats)} sent" for s in self.sources]
        parts += [f"{k.name}: {len(k.got)}/{k.count} received" for k in self.sinks]
        return "; ".join(parts)

    async def run(self) -> StreamStats:
        stats = StreamStats()
        rng, idle, bp = self.rng, self.idle, self.backpressure
        for s in self.sources:
            s.valid.value = 0
        for k in self.sinks:
            k.ready.value = 0
        cycle = 0
        last_progress = 0
        while any(len(k.got) < k.count for k in self.sinks) or any(
                s.index < len(s.beats) for s in self.sources):
            await RisingEdge(self.clk)
            cycle += 1
            # Handshakes sampled before this edge have now happened.
            for s in self.sources:
                if s.fire:
                    s.index += 1
                    s.driving = False
                    s.fire = False
                    last_progress = cycle
            for k in self.sinks:
                if k.fire:
                    k.fire = False
                    last_progress = cycle
            # Drive this cycle.
            for s in self.sources:
                if not s.driving:
                    if s.index < len(s.beats) and not (idle and rng.random() < idle):
                        s.payload.value = s.beats[s.index]
                        s.valid.value = 1
                        s.driving = True
                    else:
                        s.valid.value = 0
            for k in self.sinks:
                want = 0 if (bp and rng.random() < bp) else 1
                if want != k.ready_driven:
                    k.ready.value = want
                    k.ready_driven = want
            await ReadOnly()
            for s in self.sources:
                s.fire = s.driving and bool(int(s.ready.value))
                if s.fire and stats.first_in is None:
                    stats.first_in = cycle
            for k in self.sinks:
                if k.ready_driven and int(k.valid.value):
                    if len(k.got) >= k.count:
                        raise AssertionError(
                            f"{k.name} produced more than the {k.count} beats expected "
                            f"(cycle {cycle}, seed {self.seed}; {self._state()})")
                    k.got.append(k.payload.value.to_unsigned())
                    k.fire = True
                    stats.last_out = cycle
            if cycle - last_progress > self.stall_cycles or cycle > self.max_cycles:
                raise StreamTimeout(
                    f"no stream transfer for {cycle - last_progress} cycles (cycle {cycle}, "
                    f"seed {self.seed}): {self._state()}")
        await RisingEdge(self.clk)
        for s in self.sources:
            s.valid.value = 0
        for k in self.sinks:
            k.ready.value = 0
        stats.cycles = cycle
        stats.received = {k.name: k.got for k in self.sinks}
        return stats
