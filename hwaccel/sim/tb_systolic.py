"""cocotb bench for the systolic array (run through :func:`hwaccel.sim.runner.run_bench`).

Parameters arrive as JSON in ``$HWACCEL_PARAMS``:

``{"mode": "random", "count": N, "seed": S, "idle": p, "backpressure": q}``
    the directed cases plus N random GEMMs; every result row must equal the golden model.
``{"mode": "shapes", "shapes": {"name": [M, K, N]}, "seed": S}``
    benchmark shapes without stalls; reports the measured cycles of each.

The result JSON lists each case with its shape, rows compared, mismatches and cycle span.
"""

from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwaccel.emit import read_sidecar
from hwaccel.generators.systolic.cases import GemmCase, directed_cases, random_cases
from hwaccel.generators.systolic.config import SystolicConfig
from hwaccel.generators.systolic.model import gemm_reference, golden_rows
from hwaccel.generators.systolic.tiling import plan_gemm
from hwaccel.sim.streams import StreamBench, check_ports, reset


def _setup():
    meta = read_sidecar(os.environ["HWACCEL_SIDECAR"])
    params = json.loads(os.environ["HWACCEL_PARAMS"])
    return meta, SystolicConfig(**meta["config"]), params


async def _run_case(dut, cfg, case: GemmCase, *, seed, idle, backpressure) -> dict:
    plan = plan_gemm(cfg, case.a, case.b)
    bench = StreamBench(dut, {"activations": plan.activations, "weights": plan.weights},
                        {"result": plan.result_count}, seed=seed, idle=idle,
                        backpressure=backpressure,
                        max_cycles=50 * (len(plan.activations) + plan.result_count) + 1000)
    stats = await bench.run()
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
            "cycles": stats.span}


def _write(result: dict) -> None:
    with open(os.environ["HWACCEL_RESULT"], "w") as f:
        json.dump(result, f)


@cocotb.test()
async def ports_match_sidecar(dut):
    meta, cfg, params = _setup()
    missing = check_ports(dut, meta)
    assert not missing, f"ports in {meta['slug']}.json that do not resolve: {missing}"


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
        for i, case in enumerate(cases):
            results.append(await _run_case(dut, cfg, case, seed=seed * 1000 + i, idle=idle,
                                           backpressure=bp))
    else:
        rng = np.random.default_rng(seed)
        lo, hi = cfg.operand.min, cfg.operand.max
        for name, (m, k, n) in params["shapes"].items():
            case = GemmCase(name, rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, (k, n)))
            results.append(await _run_case(dut, cfg, case, seed=seed, idle=0.0, backpressure=0.0))
    _write({"slug": meta["slug"], "seed": seed, "cases": results})
