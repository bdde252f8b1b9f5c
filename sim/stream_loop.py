"""The stream bench's cycle loop, written once for every simulator (no cocotb, no Amaranth).

:class:`StreamLoop` holds the state of the source streams (into the DUT) and sink streams (out of
it), makes the seeded random draws, decides what to drive each cycle, samples the handshakes and
enforces the cycle bounds. A simulator's bench (:class:`sim.streams.StreamBench` under cocotb,
:class:`sim.amaranth_streams.AmaranthStreamBench` on Amaranth's simulator) supplies only the ports
and the awaiting: it iterates :meth:`StreamLoop.steps`, which yields :data:`EDGE` where the bench
must wait for the next rising edge (and the point after it where writes land) and :data:`SETTLE`
where it must wait for the combinational logic to settle before sampling. Both simulators thus see
the same stimulus, drawn in the same order, and count the same cycles.

A port is any object with ``set(value)``, ``get()``, ``encode(value)``, ``set_encoded(encoded)``,
``get_raw()`` and ``decode(raw)``: the encoded and raw forms let the cocotb bench take the
cheapest GPI call (see ``sim.streams._Port``); elsewhere they are the plain ints.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

__all__ = ["EDGE", "SETTLE", "StreamTimeout", "StreamStats", "StreamLoop"]

EDGE = True     # await the next rising edge, then drive
SETTLE = False  # await settled combinational logic, then sample


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


class _Source:
    def __init__(self, port: Callable, name: str, beats: list[int], idle: float):
        self.name = name
        self.idle = idle
        self.payload = port(f"{name}__payload")
        self.valid = port(f"{name}__valid")
        self.ready = port(f"{name}__ready")
        self.beats = beats
        self.index = 0
        self.driving = False
        self.fire = False
        self.valid_level = 0
        self.encoded: list = []


class _Sink:
    def __init__(self, port: Callable, name: str, count: int):
        self.name = name
        self.payload = port(f"{name}__payload")
        self.valid = port(f"{name}__valid")
        self.ready = port(f"{name}__ready")
        self.count = count
        self.got: list = []
        self.ready_driven = 0
        self.fire = False


class StreamLoop:
    """Drive ``sources`` (name -> packed beats) and collect ``sinks`` (name -> beat count) through
    the ports ``port(verilog_name)`` returns.

    Each cycle, after the rising edge, sources raise ``valid`` (or idle with probability ``idle``:
    one for every source, or a stream name -> probability dict, 0 for the others)
    and hold it until the beat transfers -- a producer never waits for ``ready`` -- and sinks drive
    ``ready`` (low with probability ``backpressure``). Once the logic has settled, the handshakes
    that will happen at the next edge are sampled. Every run is bounded: ``max_cycles`` in total
    and ``stall_cycles`` without any transfer; either raises :class:`StreamTimeout` naming the
    streams that are stuck and the seed.
    """

    def __init__(self, port: Callable, sources: dict[str, list[int]], sinks: dict[str, int], *,
                 seed: int, idle: float | dict[str, float] = 0.0, backpressure: float = 0.0,
                 max_cycles: int = 1_000_000, stall_cycles: int = 10_000):
        idles = idle if isinstance(idle, dict) else dict.fromkeys(sources, idle)
        if unknown := set(idles) - set(sources):
            raise ValueError(f"idle names streams this bench does not drive: {sorted(unknown)}")
        self.sources = [_Source(port, n, b, idles.get(n, 0.0)) for n, b in sources.items()]
        self.sinks = [_Sink(port, n, c) for n, c in sinks.items()]
        self.rng = random.Random(seed)
        self.seed = seed
        self.backpressure = backpressure
        self.max_cycles = max_cycles
        self.stall_cycles = stall_cycles
        self.stats = StreamStats()  # final once steps() is done

    def _state(self) -> str:
        parts = [f"{s.name}: {s.index}/{len(s.beats)} sent" for s in self.sources]
        parts += [f"{k.name}: {len(k.got)}/{k.count} received" for k in self.sinks]
        return "; ".join(parts)

    def steps(self) -> Iterator[bool]:
        """Run until every source beat is sent and every sink beat received, yielding
        :data:`EDGE` or :data:`SETTLE` where the bench must wait; then :attr:`stats` is final.

        The loop is the bench's hot path (Verilator runs it every clock): its state stays in
        locals, and one generator frame costs two resumptions a cycle, not a call per port.
        """
        self.stats = stats = StreamStats()
        rng, bp = self.rng, self.backpressure
        sources, sinks = self.sources, self.sinks
        for s in sources:
            s.valid.set(0)
            s.valid_level = 0
            s.encoded = [s.payload.encode(b) for b in s.beats]
        for k in sinks:
            k.ready.set(0)
        remaining = sum(len(s.beats) for s in sources) + sum(k.count for k in sinks)
        cycle = 0
        last_progress = 0
        while remaining:
            yield EDGE
            cycle += 1
            # Drive this cycle: a source holds valid until its beat transfers.
            for s in sources:
                if s.fire:
                    s.index += 1
                    s.driving = s.fire = False
                    remaining -= 1
                    last_progress = cycle
                if not s.driving:
                    if s.index < len(s.beats) and not (s.idle and rng.random() < s.idle):
                        s.payload.set_encoded(s.encoded[s.index])
                        s.driving = True
                        if not s.valid_level:
                            s.valid.set(1)
                            s.valid_level = 1
                    elif s.valid_level:
                        s.valid.set(0)
                        s.valid_level = 0
            for k in sinks:
                if k.fire:
                    k.fire = False
                    remaining -= 1
                    last_progress = cycle
                want = 0 if (bp and rng.random() < bp) else 1
                if want != k.ready_driven:
                    k.ready.set(want)
                    k.ready_driven = want
            yield SETTLE
            # Sample the handshakes that happen at the next edge.
            for s in sources:
                if s.driving and s.ready.get():
                    s.fire = True
                    if stats.first_in is None:
                        stats.first_in = cycle
            for k in sinks:
                if k.ready_driven and k.valid.get():
                    if len(k.got) >= k.count:
                        raise AssertionError(
                            f"{k.name} produced more than the {k.count} beats expected "
                            f"(cycle {cycle}, seed {self.seed}; {self._state()})")
                    k.got.append(k.payload.get_raw())
                    k.fire = True
                    stats.last_out = cycle
            if cycle - last_progress > self.stall_cycles or cycle > self.max_cycles:
                raise StreamTimeout(
                    f"no stream transfer for {cycle - last_progress} cycles (cycle {cycle}, "
                    f"seed {self.seed}): {self._state()}")
            if remaining == sum(1 for s in sources if s.fire) + sum(1 for k in sinks if k.fire):
                break
        yield EDGE
        for s in sources:
            s.valid.set(0)
        for k in sinks:
            k.ready.set(0)
        stats.cycles = cycle
        stats.received = {k.name: [k.payload.decode(w) for w in k.got] for k in sinks}
