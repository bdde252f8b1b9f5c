"""The stream bench and host port of ``sim/`` on Amaranth's own simulator, with no Verilog.

A second simulator for the same checks: :class:`AmaranthStreamBench` is
:class:`sim.streams.StreamBench` on ``amaranth.sim.Simulator``'s async testbenches,
and :class:`AmaranthHost` is ``sim/tb_accel.py``'s host. Both keep the cocotb versions' cycle
structure exactly, so a bench run here and on Verilator sees identical stimulus and must report
identical results and cycle counts:

* cocotb drives after ``RisingEdge`` (Verilator applies those writes after the edge's evaluation)
  and samples handshakes after ``ReadOnly``. Here the testbench drives with ``ctx.set`` right after
  ``await ctx.tick()`` and samples with ``ctx.get``: an Amaranth testbench resumes after the edge's
  flip-flop updates and every ``ctx.get`` sees the combinational logic settled on the new inputs.
* A cocotb ``FallingEdge`` falls inside the same cycle with no flip-flop update: the settled
  values after ``ctx.tick()`` are what it would read.
* The cycle loop itself -- stream state, the seeded idle and back-pressure draws, sampling and
  bounds -- is :class:`sim.stream_loop.StreamLoop` for both, and the host operations past one
  write or read are :class:`sim.checks.HostPort`'s for both.

Ports are found by their Verilog names (``<member>__payload``, ``busy``, ...), taken from the
Component's signature, so the benches name ports exactly as the cocotb benches and the sidecar do.
"""

from __future__ import annotations

from functools import partial

from amaranth.hdl import ClockDomain, Elaboratable, Module, Value
from amaranth.lib.wiring import Out
from amaranth.sim import Simulator

from .checks import HostPort
from .stream_loop import StreamLoop, StreamStats, StreamTimeout

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


class _CtxPort:
    """One port as :class:`sim.stream_loop.StreamLoop` uses it, read and written through the
    testbench context; its encoded and raw forms are the plain ints."""

    def __init__(self, ctx, value: Value):
        self.set = self.set_encoded = partial(ctx.set, value)
        self.get = self.get_raw = partial(ctx.get, value)

    @staticmethod
    def encode(value: int) -> int:
        return value

    @staticmethod
    def decode(raw: int) -> int:
        return raw


class AmaranthStreamBench(StreamLoop):
    """Drive ``sources`` (name -> packed beats) and collect ``sinks`` (name -> beat count).

    The arguments and the :class:`StreamStats` returned are those of
    :class:`sim.streams.StreamBench`, and so is the cycle loop
    (:class:`sim.stream_loop.StreamLoop`); ``ctx`` and ``ports`` come from :func:`simulate`.
    """

    def __init__(self, ctx, ports: dict[str, Value], sources: dict[str, list[int]],
                 sinks: dict[str, int], *, seed: int, idle: float | dict[str, float] = 0.0,
                 backpressure: float = 0.0, max_cycles: int = 1_000_000,
                 stall_cycles: int = 10_000):
        self.ctx = ctx
        super().__init__(lambda name: _CtxPort(ctx, ports[name]), sources, sinks, seed=seed,
                         idle=idle, backpressure=backpressure, max_cycles=max_cycles,
                         stall_cycles=stall_cycles)

    async def run(self) -> StreamStats:
        """Run until every source beat is sent and every sink beat received."""
        tick = self.ctx.tick
        for edge in self.steps():
            # After ctx.tick() the testbench drives (cocotb: after RisingEdge); on SETTLE there
            # is nothing to await, since ctx.get settles the combinational logic on this cycle's
            # inputs (cocotb: ReadOnly).
            if edge:
                await tick()
        return self.stats


class AmaranthHost(HostPort):
    """The accelerator's host port, one write or read per clock edge as ``sim/tb_accel.py``'s
    ``CocotbHost`` performs them (a read's data is sampled mid-cycle, where cocotb awaits
    ``FallingEdge``)."""

    def __init__(self, ctx, ports: dict[str, Value], cfg):
        super().__init__(cfg)
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

    async def idle_within(self, limit: int) -> bool:
        for i in range(limit):
            if i:
                await self.ctx.tick()
            if not self.ctx.get(self.p["busy"]):
                return True
        return False
