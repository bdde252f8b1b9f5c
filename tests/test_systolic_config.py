"""SystolicConfig validation, presets and the golden model's tiling (no simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from hwaccel.generators.systolic import PRESETS, SystolicArray, SystolicConfig, plan_gemm
from hwaccel.generators.systolic.cases import directed_cases, random_cases
from hwaccel.generators.systolic.model import gemm_reference, golden_rows, scalesim_cycles


@pytest.mark.parametrize("kwargs, exc, text", [
    ({"rows": 0}, ValueError, "rows must be at least 1, not 0"),
    ({"cols": 2.5}, TypeError, "cols must be an integer, not 2.5"),
    ({"rows": True}, TypeError, "rows must be an integer, not True"),
    ({"dataflow": "is"}, ValueError, "dataflow must be one of 'os', 'ws', not 'is'"),
    ({"in_bits": 1}, ValueError, "in_bits must be at least 2, not 1"),
    ({"acc_bits": 15}, ValueError, "acc_bits must be at least 16 to hold one product"),
    ({"dataflow": "ws", "rows": 16, "acc_bits": 19},
     ValueError, "acc_bits must be at least 20 to hold a column sum of 16 products"),
    ({"name": "bad name"}, ValueError, "name must be an identifier-like string, not 'bad name'"),
])
def test_invalid_configs_name_the_parameter(kwargs, exc, text):
    with pytest.raises(exc, match=text.replace("(", r"\(").replace(")", r"\)")):
        SystolicConfig(**kwargs)


def test_component_rejects_non_config():
    with pytest.raises(TypeError, match="config must be a SystolicConfig, not 3"):
        SystolicArray(3)


def test_presets_and_derived():
    assert {"os_1x1", "os_3x5", "os_8x8", "os_16x16", "ws_1x1", "ws_3x5", "ws_8x8",
            "ws_16x16"} <= set(PRESETS)
    cfg = PRESETS["os_3x5"]
    assert cfg.slug == "systolic_os_3x5" and cfg.macs == 15 and cfg.max_k == 131071
    assert cfg.with_(dataflow="ws").max_k == 3


def test_operand_errors():
    cfg = PRESETS["os_3x5"]
    with pytest.raises(ValueError, match="cannot multiply"):
        plan_gemm(cfg, np.zeros((2, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"A must hold 8-bit signed values in \[-128, 127\]"):
        plan_gemm(cfg, np.full((2, 2), 128), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="K must be at most 1 for a 16-bit accumulator, not 4"):
        plan_gemm(cfg.with_(acc_bits=16), np.zeros((2, 4)), np.zeros((4, 2)))


@pytest.mark.parametrize("name", ["os_1x1", "os_3x5", "ws_1x1", "ws_3x5", "ws_8x8", "os_8x8"])
def test_golden_rows_assemble_to_torch(name, seed):
    """The tiling the hardware uses, done in torch tile by tile, reassembles to A @ B exactly."""
    cfg = PRESETS[name]
    for case in directed_cases(cfg) + random_cases(cfg, 40, seed):
        plan = plan_gemm(cfg, case.a, case.b)
        rows = golden_rows(cfg, case.a, case.b)
        assert rows.shape == (plan.result_count, cfg.cols)
        np.testing.assert_array_equal(plan.assemble_rows(rows), gemm_reference(case.a, case.b),
                                      err_msg=f"{case.name} seed {seed}")
        assert len(plan.activations) == (plan.result_count if cfg.dataflow == "ws" else
                                         plan.tiles[0] * plan.tiles[2] * case.shape[1])


def test_scalesim_formulas():
    # DESIGN.md's table, and the LSTM gate product quoted in the issues (about 2,415 cycles).
    assert scalesim_cycles("os", 16, 16, 256, 256, 256) == 256 * (256 + 30)
    assert scalesim_cycles("ws", 16, 16, 676, 9, 32) == 2 * (676 + 46)
    assert min(scalesim_cycles(d, 16, 16, 1, 128, 256) for d in ("os", "ws", "is")) == 2416
