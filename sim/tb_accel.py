"""cocotb bench for the accelerator (run through :func:`hwaccel.sim.runner.run_bench`).

Everything goes through the host port, as a host would: load memories and commands, start,
wait for STATUS.busy to drop (bounded), read STATUS, the counters and the activation scratchpad
back, and compare with the golden interpreter (:func:`hwaccel.generators.accel.run_program`).

Parameters (JSON in ``$HWACCEL_PARAMS``):

``{"seeds": [S, ...], "commands": N}``  test ``programs``: one random program per seed
``{"seed": S}``                         tests ``faults`` (each fault program, then the next one runs
                                        on the same accelerator) and ``soft_reset`` (mid-program)

The result JSON maps each test to its cases: status, counters and mismatches; the ``programs``
cases carry every counter so the C++ harness can be shown to give the very same numbers.
"""

from __future__ import annotations

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, RisingEdge

from hwaccel.generators.accel import AccelConfig, Region
from hwaccel.generators.accel.cases import fault_programs, random_program
from hwaccel.generators.accel.host import address, load_writes, start_word
from hwaccel.generators.accel.isa import CONTROL_RESET

from .bench_io import assert_ports_match_sidecar, bench_inputs, write_result
from .checks import HostPort, accel_check, accel_programs
from .streams import reset

_RESULTS: dict = {}


async def _session(dut, key: str):
    """The config, parameters and a host on a clocked, reset design -- or None when this run's
    parameters have no ``key`` (each run asks for some of the tests, the others pass idle)."""
    meta, params = bench_inputs()
    if key not in params:
        return None
    cfg = AccelConfig(**meta["config"])
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    await reset(dut)
    return cfg, params, CocotbHost(dut, cfg)


def _write(name: str, cases) -> None:
    _RESULTS[name] = cases
    write_result(_RESULTS)


class CocotbHost(HostPort):
    """The host port driven from cocotb: one write or read per clock edge."""

    def __init__(self, dut, cfg: AccelConfig):
        super().__init__(cfg)
        self.dut = dut
        dut.host__we.value = 0
        dut.host__re.value = 0

    async def write(self, addr: int, data: int) -> None:
        d = self.dut
        d.host__addr.value = addr
        d.host__wdata.value = data
        d.host__we.value = 1
        await RisingEdge(d.clk)
        d.host__we.value = 0

    async def read(self, addr: int) -> int:
        d = self.dut
        d.host__addr.value = addr
        d.host__re.value = 1
        await RisingEdge(d.clk)
        d.host__re.value = 0
        await FallingEdge(d.clk)
        value = d.host__rdata.value.to_unsigned()
        await RisingEdge(d.clk)
        return value

    async def idle_within(self, limit: int) -> bool:
        for _ in range(limit):
            await FallingEdge(self.dut.clk)
            if not int(self.dut.busy.value):
                return True
        return False


@cocotb.test()
async def ports_match_sidecar(dut):
    assert_ports_match_sidecar(dut, bench_inputs()[0])


@cocotb.test()
async def programs(dut):
    if (session := await _session(dut, "seeds")) is None:
        return
    cfg, params, host = session
    cases = await accel_programs(host, params)
    _write("programs", cases)


@cocotb.test()
async def faults(dut):
    if (session := await _session(dut, "seed")) is None:
        return
    cfg, params, host = session
    seed = int(params["seed"])
    cases = []
    for name, (prog, cause, pc) in fault_programs(cfg, np.random.default_rng(seed)).items():
        case = await accel_check(host, prog, name, seed)
        assert (case["cause"], case["pc"]) == (cause, pc), (
            f"{name} (seed {seed}): cause {case['cause']} at pc {case['pc']}, expected "
            f"{cause!r} at pc {pc}")
        cases.append(case)
    _write("faults", cases)


@cocotb.test()
async def soft_reset(dut):
    """A soft reset mid-program returns to idle; the next program then runs bit-exactly."""
    if (session := await _session(dut, "seed")) is None:
        return
    cfg, params, host = session
    seed = int(params["seed"])
    cases = []
    for i, stop_after in enumerate((5, 40, 150)):
        long = random_program(cfg, np.random.default_rng(seed + 1000 + i), 12)
        for addr, data in load_writes(cfg, long):
            await host.write(addr, data)
        await host.write(address(cfg, Region.REG, 0), start_word(0))
        for _ in range(stop_after):
            await RisingEdge(dut.clk)
        await FallingEdge(dut.clk)
        assert int(dut.busy.value) == 1, f"program ended before the reset (seed {seed})"
        await RisingEdge(dut.clk)
        await host.write(address(cfg, Region.REG, 0), CONTROL_RESET)
        st = await host.status()
        assert (st["busy"], st["done"], st["error"]) == (0, 0, 0), (
            f"after a soft reset at cycle {stop_after} (seed {seed}): status {st}")
        prog = random_program(cfg, np.random.default_rng(seed + i), 8)
        case = await accel_check(host, prog, f"after-reset-{stop_after}", seed + i)
        cases.append({**case, "reset_at": stop_after})
    _write("soft_reset", cases)
