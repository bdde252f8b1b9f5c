"""The analytic cycle model (:mod:`hwaccel.generators.systolic.perf`) against the RTL.

One simulator run per dataflow measures 60 random shapes without stalls on the 3x5 array (rows
below the credit threshold, so the model's result-FIFO stalls are exercised too); every measured
span must equal the model exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from hwaccel.generators.systolic import PRESETS
from hwaccel.generators.systolic.cases import BENCH_SHAPES
from hwaccel.generators.systolic.model import scalesim_cycles
from hwaccel.generators.systolic.perf import gemm_cycles, gemm_perf
from hwaccel.sim.runner import design_for, run_bench

SHAPES = 60


def _random_shapes(cfg, seed: int) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    R, C = cfg.rows, cfg.cols
    shapes = {}
    for i in range(SHAPES):
        # Small K and M (below R) are where stalls live; larger ones cover the steady state.
        m = int(rng.choice([rng.integers(1, R + 1), rng.integers(1, 6 * R)]))
        k = int(rng.choice([rng.integers(1, R + 1), rng.integers(1, 6 * R)]))
        n = int(rng.integers(1, 3 * C + 1))
        shapes[f"s{i}"] = [m, k, n]
    shapes["one"] = [1, 1, 1]
    return shapes


@pytest.mark.parametrize("preset", ["os_3x5", "ws_3x5"])
def test_model_equals_rtl_cycles(preset, seed):
    cfg = PRESETS[preset]
    shapes = _random_shapes(cfg, seed)
    res = run_bench(design_for(cfg), "sim.tb_systolic",
                    {"mode": "shapes", "shapes": shapes, "seed": seed}, seed=seed)
    assert len(res["cases"]) == len(shapes)
    wrong = [(c["shape"], c["cycles"], gemm_cycles(cfg, *c["shape"])) for c in res["cases"]
             if c["cycles"] != gemm_cycles(cfg, *c["shape"])]
    assert not wrong, f"{preset} (seed {seed}): (shape, RTL cycles, model) differ: {wrong[:8]}"
    assert all(c["mismatches"] == 0 for c in res["cases"])
    stalled = [c for c in res["cases"] if gemm_perf(cfg, *c["shape"]).input_stalls > 0]
    assert stalled, "no shape exercised a stall: the comparison would be too easy"


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_breakdown_adds_up_and_beats_scalesim(dataflow):
    cfg = PRESETS[f"{dataflow}_16x16"]
    for name, (m, k, n) in BENCH_SHAPES.items():
        p = gemm_perf(cfg, m, k, n)
        assert p.cycles == p.input_beats + p.input_stalls + p.drain, name
        assert p.input_stalls >= 0 and 0 < p.utilization <= 1, name
    big = gemm_perf(cfg, 256, 256, 256)
    assert big.utilization >= 0.9
    assert big.cycles <= scalesim_cycles(dataflow, 16, 16, 256, 256, 256)


def test_os_credit_stalls_follow_the_fifo_depth():
    """K = 1 on 1x1: a pair of tiles every R + 5 + mult_latency cycles (a FIFO of two tiles)."""
    cfg = PRESETS["os_1x1"]
    gap = cfg.rows + 5 + cfg.mult_latency
    assert gemm_perf(cfg, 1, 1, 1).input_stalls == 0
    assert gemm_perf(cfg, 1, 1, 3).input_stalls == gap - 2      # tile 2 waits for tile 0
    assert gemm_perf(cfg, 1, 1, 5).input_stalls == 2 * (gap - 2)


@pytest.mark.parametrize("args, text", [
    ((0, 1, 1), "M must be a positive integer, not 0"),
    ((1, 2.0, 1), "K must be a positive integer, not 2.0"),
    ((1, 1, True), "N must be a positive integer, not True"),
])
def test_invalid_shapes_name_the_dimension(args, text):
    with pytest.raises(ValueError, match=text):
        gemm_perf(PRESETS["os_3x5"], *args)
