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

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from hwaccel.generators.systolic.cases import GemmCase, directed_cases, random_cases
from hwaccel.generators.systolic.config import SystolicConfig
from hwaccel.generators.systolic.model import gemm_reference, golden_rows
from hwaccel.generators.systolic.tiling import plan_gemm

from .bench_io import assert_ports_match_sidecar, bench_inputs, write_result
from .streams import StreamBench, reset


def _setup():
    meta, params = bench_inputs()
    return meta, SystolicConfig(**meta["config"]), params


async def _run_case(dut, cfg, case: GemmCase, *, seed, idle, backpressure, extra=0) -> dict:
    plan = plan_gemm(cfg, case.a, case.b)
    bench = StreamBench(dut, {"activations": plan.activations, "weights": plan.weights},
                        {"result": plan.result_count + extra}, seed=seed, idle=idle,
                        backpressure=backpressure, stall_cycles=1000,
                        max_cycles=50 * (len(plan.activations) + plan.result_count) + 1000)
    t0 = time.perf_counter()
    stats = await bench.run()
    seconds = time.perf_counter() - t0
    words = stats.received["result"]
    rows, lasts = plan.result_rows(words)
    expect = golden_rows(cfg, case.a, case.b)
    bad_rows = int(np.any(rows != expect, axis=1).sum())
    assert bad_rows == 0, (
        f"{case.name} {case.shape} (seed {seed}): {bad_rows} of {len(rows)} result rows differ "
        f"from the golden model; first: got {rows[np.any(rows != expect, axis=1)][0].tolist()}")
    assert lasts == plan.expected_lasts(), f"{case.name} (seed {seed}): wrong result.last flags"
    full = plan.assemble_rows(rows)
    assert np.array_equal(full, gemm_reference(case.a, case.b)), (
        f"{case.name} {case.shape} (seed {seed}): assembled product differs from torch")
    m, k, n = case.shape
    return {"name": case.name, "shape": [m, k, n], "rows": len(rows), "mismatches": bad_rows,
            "cycles": stats.span, "sim_cycles": stats.cycles, "sim_seconds": seconds,
            "stalls": bool(idle or backpressure)}


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
    results = []
    if params["mode"] == "random":
        cases = directed_cases(cfg) + random_cases(cfg, int(params["count"]), seed)
        idle, bp = float(params.get("idle", 0.0)), float(params.get("backpressure", 0.0))
        dut._log.info(f"{len(cases)} GEMMs, seed {seed}, idle {idle}, backpressure {bp}")
        extra = int(params.get("extra_results", 0))  # > 0 proves that a hang is caught
        for i, case in enumerate(cases):
            stall = i % 2 == 1
            results.append(await _run_case(dut, cfg, case, seed=seed * 1000 + i,
                                           idle=idle if stall else 0.0,
                                           backpressure=bp if stall else 0.0, extra=extra))
    elif params["mode"] == "clock":
        # Baseline for the sim-speed benchmark: cocotb awaiting the clock and touching nothing.
        n = int(params["cycles"])
        rising = RisingEdge(dut.clk)
        t0 = time.perf_counter()
        for _ in range(n):
            await rising
        results.append({"name": "clock-only", "sim_cycles": n,
                        "sim_seconds": time.perf_counter() - t0})
    else:
        rng = np.random.default_rng(seed)
        lo, hi = cfg.operand.min, cfg.operand.max
        for name, (m, k, n) in params["shapes"].items():
            a, b = rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, (k, n))
            case = GemmCase(name, a, b)
            results.append(await _run_case(dut, cfg, case, seed=seed, idle=0.0, backpressure=0.0))
    write_result({"slug": meta["slug"], "seed": seed, "cases": results})
