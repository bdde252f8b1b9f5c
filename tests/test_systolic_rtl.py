"""The systolic array's Verilog under Verilator + cocotb, bit-exact against the golden model.

Each run streams the directed cases and ``COUNT`` random GEMMs through one simulator process;
odd cases run with random idle cycles on both inputs and random back-pressure on the result.
Three shapes x 70 GEMMs = 210 per dataflow, zero mismatches allowed.
"""

from __future__ import annotations

import pytest

from hwaccel.generators.systolic import PRESETS
from hwaccel.sim.runner import SimError, design_for, run_bench

COUNT = 65
TB = "sim.tb_systolic"


@pytest.mark.parametrize("preset", ["os_1x1", "os_3x5", "os_8x8", "ws_1x1", "ws_3x5", "ws_8x8"])
def test_random_gemms_bit_exact(preset, seed):
    cfg = PRESETS[preset]
    res = run_bench(design_for(cfg), TB, {"mode": "random", "count": COUNT, "seed": seed,
                                          "idle": 0.3, "backpressure": 0.3}, seed=seed)
    cases = res["cases"]
    assert len(cases) == COUNT + 5
    assert sum(c["mismatches"] for c in cases) == 0
    assert sum(c["rows"] for c in cases) > 0
    assert any(c["stalls"] for c in cases) and not all(c["stalls"] for c in cases)
    shapes = [c["shape"] for c in cases]
    assert [1, 1, 1] in shapes and any(k == 1 and m > 1 for m, k, n in shapes)
    assert any(m % cfg.rows and n % cfg.cols for m, k, n in shapes) or cfg.rows == cfg.cols == 1


def test_hang_is_reported_not_waited_for(seed):
    """A sink that waits for one row more than the array produces fails with a clear timeout."""
    with pytest.raises(SimError, match="no stream transfer for 1001 cycles"):
        run_bench(design_for(PRESETS["os_1x1"]), TB,
                  {"mode": "random", "count": 0, "seed": seed, "extra_results": 1}, seed=seed)


def test_back_to_back_tiles_beat_scalesim(seed):
    """Without stalls the 8x8 array streams tiles back to back (cycles below SCALE-Sim's model)."""
    from hwaccel.generators.systolic.model import scalesim_cycles

    for df in ("os", "ws"):
        cfg = PRESETS[f"{df}_8x8"]
        shapes = {"a": [40, 24, 24], "b": [8, 64, 16]}
        res = run_bench(design_for(cfg), TB, {"mode": "shapes", "shapes": shapes, "seed": seed})
        for case in res["cases"]:
            m, k, n = case["shape"]
            assert case["mismatches"] == 0
            assert case["cycles"] <= scalesim_cycles(df, 8, 8, m, k, n), (df, case)
