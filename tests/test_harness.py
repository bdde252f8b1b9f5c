"""The Verilator C++ harness (ctypes) gives the same results and cycles as the cocotb path."""

from __future__ import annotations

import numpy as np
import pytest

from hwaccel.generators.systolic import PRESETS, golden_rows, plan_gemm
from hwaccel.sim.harness import Harness, build_harness, drive_streams
from hwaccel.sim.runner import SimError, design_for, run_bench


def test_harness_matches_cocotb_and_golden(seed):
    cfg = PRESETS["ws_3x5"]
    design = design_for(cfg)
    rng = np.random.default_rng(seed)
    shapes = {f"s{i}": [int(x) for x in rng.integers(1, 12, 3)] for i in range(6)}
    cocotb = run_bench(design, "sim.tb_systolic",
                       {"mode": "shapes", "shapes": shapes, "seed": seed})["cases"]
    # Regenerate the bench's operands (same seed, same order) and run them in the harness.
    data = np.random.default_rng(seed)
    with Harness(design) as h:
        h.reset()
        for case, (name, shape) in zip(cocotb, shapes.items()):
            _, span = _gemm(h, cfg, data, shape)
            assert span == case["cycles"], (name, span, case["cycles"])


def _gemm(h, cfg, data, shape):
    """One random ``m x k x n`` GEMM through the harness: its rows (checked against golden)
    and its span in cycles."""
    m, k, n = shape
    a = data.integers(-128, 128, (m, k))
    b = data.integers(-128, 128, (k, n))
    plan = plan_gemm(cfg, a, b)
    res = drive_streams(h, {"activations": plan.activations, "weights": plan.weights},
                        {"result": plan.result_count})
    rows, _ = plan.result_rows(res["received"]["result"])
    np.testing.assert_array_equal(rows, golden_rows(cfg, a, b), err_msg=f"{shape}")
    return rows.tolist(), res["span"]


def test_harness_errors():
    with Harness(design_for(PRESETS["os_1x1"])) as h:
        h.reset()
        with pytest.raises(KeyError, match="has no port 'nope'"):
            h.get("nope")
        with pytest.raises(ValueError, match="result__valid is an output"):
            h.set("result__valid", 1)
        with pytest.raises(SimError, match="result__valid did not become 1 within 50 cycles"):
            h.run_until("result__valid", 1, 50)
        assert h.step(10) == h.cycles


def _gemms(design, cfg, seed):
    data = np.random.default_rng(seed)
    with Harness(design) as h:
        h.reset()
        return [_gemm(h, cfg, data, shape) for shape in ((1, 1, 1), (3, 4, 2), (7, 5, 6))]


def test_cxx_optimisation_changes_no_word_or_cycle(monkeypatch, seed):
    """The suite builds its models at -O0 and benchmarks at -O2: two libraries of one Verilog,
    the same words and cycles."""
    cfg = PRESETS["os_1x1"]
    design = design_for(cfg)
    runs, libs = [], []
    for opt in ("-O0", "-O2"):
        monkeypatch.setenv("HWACCEL_SIM_OPT", opt)
        libs.append(build_harness(design))
        runs.append(_gemms(design, cfg, seed))
    assert libs[0] != libs[1]
    assert runs[0] == runs[1]


def test_unknown_cxx_optimisation_is_named(monkeypatch):
    monkeypatch.setenv("HWACCEL_SIM_OPT", "-O9")
    with pytest.raises(ValueError, match=r"HWACCEL_SIM_OPT must be one of -O0, .*, not '-O9'"):
        build_harness(design_for(PRESETS["os_1x1"]))
