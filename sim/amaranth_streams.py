"""The stream bench and host port of ``sim/`` on Amaranth's own simulator, with no Verilog.

A second simulator for the same checks: :class:`AmaranthStreamBench` is
:class:`sim.streams.StreamBench` rewritten for ``amaranth.sim.Simulator``'s async testbenches,
and :class:`AmaranthHost` is ``sim/tb_accel.py``'s host. Both keep the cocotb versions' cycle
structure exactly, so a bench run here and on Verilator sees identical stimulus and must report
identical results and cycle counts:

* cocotb drives after ``RisingEdge`` (Verilator applies those writes after the edge's evaluation)
  and samples handshakes after ``ReadOnly``. Here the testbench drives with ``ctx.set`` right after
  ``await ctx.tick()`` and samples with ``ctx.get``: an Amaranth testbench resumes after the edge's
  flip-flop updates and every ``ctx.get`` sees the combinational logic settled on the new inputs.
* A cocotb ``FallingEdge`` falls inside the same cycle with no flip-flop update: the settled
  values after ``ctx.tick()`` are what it would read.
* Idle and back-pressure are drawn from one ``random.Random(seed)`` in the same order (sources,
  then sinks, one draw only where the cocotb bench draws one).

Ports are found by their Verilog names (``<member>__payload``, ``busy``, ...), taken from the
Component's signature, so the benches name ports exactly as the cocotb benches and the sidecar do.
"""

from __future__ import annotations

import random

from amaranth.hdl import ClockDomain, Elaboratable, Module, Value
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from .streams import StreamStats, StreamTimeout

__all__ = ["StreamStats", "StreamTimeout", "AmaranthStreamBench", "AmaranthHost", "ports_of",
           "simulate"]


def ports_of(component) -> dict[str, Value]:
    """The Component's ports by their Verilog names, as plain (unsigned, packed) values.

    A stream payload is a ``data.View``; its packed value is the integer the cocotb bench reads
    from ``<member>__payload``. A signed output is read as unsigned, as cocotb reads a port; inputs
    stay assignable.
    """
    out = {}
    for path, member, value in component.signature.flatten(component):
        v = Value.cast(value)
        if v.shape().signed and member.flow == Out:
            v = v.as_unsigned()
        out["__".join(str(p) for p in path)] = v
    return out


class _Top(Elaboratable):
    """The Component under an explicit ``sync`` domain, so the testbench can drive its reset as
    cocotb drives the ``rst`` port of the Verilog."""

    def __init__(self, dut):
        self.dut = dut
        self.domain = ClockDomain("sync")

    def elaborate(self, platform):
        m = Module()
        m.domains.sync = self.domain
        m.submodules.dut = self.dut
        return m


def simulate(component, testbench, *, reset_cycles: int = 2, vcd: str | None = None) -> None:
    """Run ``await testbench(ctx, ports)`` on ``component`` after a synchronous reset.

    The reset mirrors ``sim.streams.reset``: ``rst`` high over ``reset_cycles`` rising edges,
    then low, and the testbench starts right after the last of those edges. Exceptions from the
    testbench (mismatches, :class:`StreamTimeout`) propagate to the caller.
    """
    top = _Top(component)
    ports = ports_of(component)
    sim = Simulator(top)
    sim.add_clock(10e-9)  # the cocotb benches' 10 ns clock, so waveforms line up

    async def bench(ctx):
        ctx.set(top.domain.rst, 1)
        for _ in range(reset_cycles):
            await ctx.tick()
        ctx.set(top.domain.rst, 0)
        await testbench(ctx, ports)

    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()


class _Source:
    def __init__(self, ports, name: str, beats: list[int]):
        self.name = name
        self.payload = ports[f"{name}__payload"]
        self.valid = ports[f"{name}__valid"]
        self.ready = ports[f"{name}__ready"]
        self.beats = beats
        self.index = 0
        self.driving = False
        self.fire = False
        self.valid_level = 0


class _Sink:
    def __init__(self, ports, name: str, count: int):
        self.name = name
        self.payload = ports[f"{name}__payload"]
        self.valid = ports[f"{name}__valid"]
        self.ready = ports[f"{name}__ready"]
        self.count = count
        self.got: list[int] = []
        self.ready_driven = 0
        self.fire = False


class AmaranthStreamBench:
    """Drive ``sources`` (name -> packed beats) and collect ``sinks`` (name -> beat count).

    The arguments and the :class:`StreamStats` returned are those of
    :class:`sim.streams.StreamBench`; ``ctx`` and ``ports`` come from :func:`simulate`.
    """

    def __init__(self, ctx, ports: dict[str, Value], sources: dict[str, list[int]],
                 sinks: dict[str, int], *, seed: int, idle: float = 0.0,
                 backpressure: float = 0.0, max_cycles: int = 1_000_000,
                 stall_cycles: int = 10_000):
        self.ctx = ctx
        self.sources = [_Source(ports, n, b) for n, b in sources.items()]
        self.sinks = [_Sink(ports, n, c) for n, c in sinks.items()]
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
        """Run until every source beat is sent and every sink beat received."""
        ctx = self.ctx
        stats = StreamStats()
        rng, idle, bp = self.rng, self.idle, self.backpressure
        sources, sinks = self.sources, self.sinks
        for s in sources:
            ctx.set(s.valid, 0)
            s.valid_level = 0
        for k in sinks:
            ctx.set(k.ready, 0)
        remaining = sum(len(s.beats) for s in sources) + sum(k.count for k in sinks)
        cycle = 0
        last_progress = 0
        while remaining:
            await ctx.tick()
            cycle += 1
            # Drive this cycle: a source holds valid until its beat transfers. The random draws
            # happen exactly where StreamBench draws, so both simulators see the same stimulus.
            for s in sources:
                if s.fire:
                    s.index += 1
                    s.driving = s.fire = False
                    remaining -= 1
                    last_progress = cycle
                if not s.driving:
                    if s.index < len(s.beats) and not (idle and rng.random() < idle):
                        ctx.set(s.payload, s.beats[s.index])
                        s.driving = True
                        if not s.valid_level:
                            ctx.set(s.valid, 1)
                            s.valid_level = 1
                    elif s.valid_level:
                        ctx.set(s.valid, 0)
                        s.valid_level = 0
            for k in sinks:
                if k.fire:
                    k.fire = False
                    remaining -= 1
                    last_progress = cycle
                want = 0 if (bp and rng.random() < bp) else 1
                if want != k.ready_driven:
                    ctx.set(k.ready, want)
                    k.ready_driven = want
            # ctx.get settles the combinational logic on this cycle's inputs (cocotb: ReadOnly):
            # these are the handshakes that happen at the next edge.
            for s in sources:
                if s.driving and ctx.get(s.ready):
                    s.fire = True
                    if stats.first_in is None:
                        stats.first_in = cycle
            for k in sinks:
                if k.ready_driven and ctx.get(k.valid):
                    if len(k.got) >= k.count:
                        raise AssertionError(
                            f"{k.name} produced more than the {k.count} beats expected "
                            f"(cycle {cycle}, seed {self.seed}; {self._state()})")
                    k.got.append(ctx.get(k.payload))
                    k.fire = True
                    stats.last_out = cycle
            if cycle - last_progress > self.stall_cycles or cycle > self.max_cycles:
                raise StreamTimeout(
                    f"no stream transfer for {cycle - last_progress} cycles (cycle {cycle}, "
                    f"seed {self.seed}): {self._state()}")
            if remaining == sum(1 for s in sources if s.fire) + sum(1 for k in sinks if k.fire):
                break
        await ctx.tick()
        for s in sources:
            ctx.set(s.valid, 0)
        for k in sinks:
            ctx.set(k.ready, 0)
        stats.cycles = cycle
        stats.received = {k.name: list(k.got) for k in sinks}
        return stats


class AmaranthHost:
    """The accelerator's host port, one write or read per clock edge as ``sim/tb_accel.py``'s
    ``CocotbHost`` performs them (a read's data is sampled mid-cycle, where cocotb awaits
    ``FallingEdge``)."""

    def __init__(self, ctx, ports: dict[str, Value]):
        self.ctx, self.p = ctx, ports
        ctx.set(ports["host__we"], 0)
        ctx.set(ports["host__re"], 0)

    async def write(self, addr: int, data: int) -> None:
        ctx, p = self.ctx, self.p
        ctx.set(p["host__addr"], addr)
        ctx.set(p["host__wdata"], data)
        ctx.set(p["host__we"], 1)
        await ctx.tick()
        ctx.set(p["host__we"], 0)

    async def read(self, addr: int) -> int:
        ctx, p = self.ctx, self.p
        ctx.set(p["host__addr"], addr)
        ctx.set(p["host__re"], 1)
        await ctx.tick()
        ctx.set(p["host__re"], 0)
        value = ctx.get(p["host__rdata"])  # cocotb: after FallingEdge of this cycle
        await ctx.tick()
        return value

    async def wait_idle(self, limit: int, seed) -> None:
        """Wait until ``busy`` is low, sampling it once per cycle (the first sample in the cycle
        of the last write), at most ``limit`` samples."""
        for i in range(limit):
            if i:
                await self.ctx.tick()
            if not self.ctx.get(self.p["busy"]):
                return
        raise AssertionError(f"program still busy after {limit} cycles (seed {seed})")
