"""LSTM engine: config checks, stream driver, golden model against torch.nn.LSTM, lint (no sim)."""

from __future__ import annotations

import numpy as np
import pytest

from hwaccel.emit import emit
from hwaccel.generators.lstm.cases import random_params, random_sequences, trained_range_params
from hwaccel.generators.lstm.config import PRESETS, LstmConfig, LstmStackConfig
from hwaccel.generators.lstm.driver import param_beats, weight_beats, x_beats
from hwaccel.generators.lstm.model import (
    H_TOLERANCE,
    H_TOLERANCE_WIDE,
    float_sequence,
    golden_sequence,
)
from hwaccel.hdl.pack import unpack
from hwaccel.numerics import CELL_FMT, GATE_FMT, INT8
from hwaccel.toolchain import lint_verilog


@pytest.mark.parametrize("changes, exc, text", [
    ({"input_size": 0}, ValueError, "input_size must be at least 1, not 0"),
    ({"hidden_size": 2.5}, TypeError, "hidden_size must be an integer, not 2.5"),
    ({"lanes": 0}, ValueError, "lanes must be at least 1, not 0"),
    ({"lanes": True}, TypeError, "lanes must be an integer, not True"),
    ({"output": "every"}, ValueError, "output must be one of 'all', 'last', not 'every'"),
    ({"acc_bits": 16}, ValueError, "acc_bits must be at least 22 to hold a sum of 64 int8"),
    ({"name": "a b"}, ValueError, "name must be an identifier-like string, not 'a b'"),
])
def test_config_errors(changes, exc, text):
    with pytest.raises(exc, match=text):
        LstmConfig(**changes)


@pytest.mark.parametrize("changes, text", [
    ({"hidden_sizes": (5,)}, r"hidden_sizes must be a sequence of at least two sizes, not \(5,\)"),
    ({"lanes": (1, 2, 3)}, r"lanes must give one lane count per layer \(2\), not \(1, 2, 3\)"),
    ({"lanes": (1, 0)}, "lanes must be at least 1, not 0"),
    ({"output": "first"}, "output must be one of 'all', 'last', not 'first'"),
])
def test_stack_config_errors(changes, text):
    with pytest.raises(ValueError, match=text):
        LstmStackConfig(**{"input_size": 6, "hidden_sizes": (5, 4), "lanes": (1, 5), **changes})


def test_derived_sizes():
    cfg = LstmConfig(input_size=7, hidden_size=5, lanes=3)
    assert (cfg.rows, cfg.slots, cfg.weight_depth) == (20, 7, 84)
    ref = PRESETS["ref_p256"]
    assert ref.macs_per_step == 32_768 and ref.ideal_cycles_per_step == 128
    stack = LstmStackConfig(input_size=6, hidden_sizes=[5, 4], lanes=[1, 5])
    assert stack.lanes == (1, 5)   # a sidecar's lists come back as tuples
    assert [c.output for c in stack.layers] == ["all", "last"]
    assert stack.layers[1].input_size == 5


def test_weight_beats_hold_each_row_where_its_lane_reads_it(seed):
    cfg = LstmConfig(input_size=4, hidden_size=3, lanes=5)   # 12 rows on 5 lanes: 3 padding
    p = random_params(cfg, np.random.default_rng(seed))
    words = weight_beats(cfg, p)
    assert len(words) == cfg.weight_depth
    w = np.concatenate([p.w_ih, p.w_hh], axis=1)
    R, P = cfg.slots, cfg.lanes
    for a, word in enumerate(words):
        lanes = unpack(word, INT8.bits, P)
        col = a // R if a < R * cfg.input_size else cfg.input_size + (a - R * cfg.input_size) // R
        for lane, value in enumerate(lanes):
            q = (a % R) * P + lane   # lane row q: gate q % 4 of hidden unit q // 4
            row = (q % 4) * cfg.hidden_size + q // 4
            assert value == (w[row, col] if q < cfg.rows else 0), (a, lane)
    params = param_beats(cfg, p)
    assert len(params) == cfg.rows
    assert unpack(params[5], GATE_FMT.bits, 1) == [p.bias[5]]
    assert (params[5] >> GATE_FMT.bits) & 0xFFFF == p.mult_x[5]


def test_x_beats_mark_each_sequence_end():
    words = x_beats([np.zeros((2, 3), int), np.ones((1, 3), int)])
    assert [(w >> 24) & 1 for w in words] == [0, 1, 1]


@pytest.mark.parametrize("gain, bound, seeds", [(1.0, H_TOLERANCE, range(5)),
                                                (3.0, H_TOLERANCE_WIDE, range(5))])
def test_golden_model_tracks_torch_lstm(gain, bound, seeds):
    """Documented tolerance (model.py): max |h_int8/128 - h_torch| over 100 steps, I = H = 64."""
    cfg = PRESETS["ref_p256"]
    worst = 0.0
    for seed in seeds:
        rng = np.random.default_rng(seed)
        p, floats = trained_range_params(cfg, rng, 1 / 127, gain)
        x = np.clip(np.rint(rng.uniform(-1, 1, (100, cfg.input_size)) * 127), -127, 127)
        h, c = golden_sequence(p, x.astype(np.int64))
        ref = float_sequence(*floats, x / 127)
        worst = max(worst, float(np.max(np.abs(h / 128 - ref))))
        assert np.abs(h).max() > 20   # h is not stuck near zero
    assert worst <= bound
    assert worst > bound / 4          # and the bound is not vacuous


def test_golden_model_stays_in_its_formats(seed):
    cfg = PRESETS["small_p6"]
    rng = np.random.default_rng(seed)
    for style in ("random", "extremes", "saturating"):
        p = random_params(cfg, rng, style)
        for x in random_sequences(cfg, rng, 3, max_len=60):
            h, c = golden_sequence(p, x)
            assert h.shape == (len(x), cfg.hidden_size)
            assert INT8.min <= h.min() and h.max() <= INT8.max
            assert CELL_FMT.min <= c.min() and c.max() <= CELL_FMT.max


@pytest.mark.parametrize("cfg", [
    PRESETS["tiny_p1"], PRESETS["small_p6"],
    LstmConfig(input_size=1, hidden_size=1, lanes=1, name="one"),
    LstmConfig(input_size=2, hidden_size=1, lanes=7, output="last", name="wide_lanes"),
])
def test_emitted_verilog_is_lint_clean(cfg, tmp_path):
    res = emit(cfg, tmp_path)
    lint_verilog(res.verilog, cfg.slug)
