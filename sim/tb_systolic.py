"""cocotb bench for the systolic array (run through :func:`hwaccel.sim.runner.run_bench`).

Parameters arrive as JSON in ``$HWACCEL_PARAMS``:

``{"mode": "random", "count": N, "seed": S, "idle": p, "backpressure": q}``
    the directed cases plus N random GEMMs; every result row must equal the golden model. Cases
    alternate between free-running streams and streams with idle cycles (probability p on each
    source) and back-pressure (probability q on the result).
``{"mode": "shapes", "shapes": {"name": [M, K, N]}, "seed": S}``
    benchmark shapes without stalls; reports the measured cycles of each.
``{"mode": "clock", "cycles": N}``
    only awaits N clock edges: the speed ceiling of any cocotb bench on this design.

The result JSON lists each case with its shape, rows compared, mismatches and cycle span.
"""

from __future__ import annotations

import time
from functools import partial

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from hwaccel.generators.systolic.config import SystolicConfig

from .bench_io import assert_ports_match_sidecar, bench_inputs, write_result
from .checks import gemm_random_cases, gemm_shape_cases
from .streams import StreamBench, reset


def _setup():
    meta, params = bench_inputs()
    return meta, SystolicConfig(**meta["config"]), params


@cocotb.test()
async def ports_match_sidecar(dut):
    meta, cfg, params = _setup()
    assert_ports_match_sidecar(dut, meta)


@cocotb.test()
async def gemm(dut):
    meta, cfg, params = _setup()
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    await reset(dut)
    seed = int(params.get("seed", 0))
    make = partial(StreamBench, dut)
    if params["mode"] == "random":
        results = await gemm_random_cases(make, cfg, params, log=dut._log.info)
    elif params["mode"] == "clock":
        # Baseline for the sim-speed benchmark: cocotb awaiting the clock and touching nothing.
        n = int(params["cycles"])
        rising = RisingEdge(dut.clk)
        t0 = time.perf_counter()
        for _ in range(n):
            await rising
        results = [{"name": "clock-only", "sim_cycles": n,
                    "sim_seconds": time.perf_counter() - t0}]
    else:
        results = await gemm_shape_cases(make, cfg, params)
    write_result({"slug": meta["slug"], "seed": seed, "cases": results})
