"""Transformers lowered to the attention commands (:mod:`hwaccel.compiler.lower_attention`) on
the golden interpreter equal the integer twin exactly: random small encoders (causal or not,
mean or first-token pooling, norm first or last, 1-2 heads), on the preset with
attention units; a head that does not start on a word boundary is refused by name; the cycle
model runs the lowered programs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hwaccel
from hwaccel.compiler.lower import LoweringError
from hwaccel.generators.accel import run_program
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.perf import program_perf
from hwaccel.models.transformer import TOKENS, DigitTransformer

CFG = MODEL_PRESETS["default_attention"]


pytestmark = pytest.mark.usefixtures("one_thread")


def _model(seed, **kw):
    torch.manual_seed(seed)
    return DigitTransformer(**kw).eval()


def _data(seed, n):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, TOKENS, 4, generator=g) * 16


@pytest.mark.parametrize("seed,kw", [
    (0, {"width": 32, "heads": 2, "ffn": 32, "layers": 1}),
    (1, {"width": 32, "heads": 2, "ffn": 32, "layers": 1, "causal": True, "pool": "first"}),
    (2, {"width": 16, "heads": 1, "ffn": 32, "layers": 2, "norm_first": False}),
])
def test_golden_equals_the_integer_twin(seed, kw):
    model = _model(seed, **kw)
    cm = hwaccel.compile(model, _data(seed, 2), preset=CFG, calibration=_data(seed + 10, 64))
    x_int = cm.quantize_input(_data(seed + 20, 6))
    low = cm.lower(x_int)
    act, slots = low.builder.act, 0
    for p in low.programs:   # weights beyond the scratchpad: several programs, one image
        res = run_program(CFG, act, p.wgt, p.commands)
        assert res.done and not res.error, res.cause
        act = res.act
        perf = program_perf(CFG, p.commands)
        for key in ("commands", "mac_slots", "load_cycles"):
            assert perf.counters[key] == res.counters[key], key
        slots += perf.counters["mac_slots"]
    got = np.asarray(low.ints(act)).reshape(6, -1)
    np.testing.assert_array_equal(got, cm.int8_forward(x_int))
    assert slots >= low.builder.macs > 0
    text = cm.describe()
    assert "MATMUL per sample" in text and "no command yet" not in text


def test_head_off_a_word_boundary_is_refused_by_name():
    model = _model(3, width=24, heads=2, ffn=32, layers=1)   # heads of 12 columns, 16 lanes
    with pytest.raises(LoweringError, match=r"joins .*pv1. at column 12, not on a word boundary"):
        hwaccel.compile(model, _data(3, 2), preset=CFG, calibration=_data(4, 32))
