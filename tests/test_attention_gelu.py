"""The GELU unit in Amaranth's simulator against numerics.gelu_int bit for bit (every input, in
every lane), one word a cycle, its Verilog; and the attention config's checks."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

from hwaccel.generators.attention import SIZES, AttentionConfig, GeluUnit
from hwaccel.generators.attention.bench import run_streams
from hwaccel.generators.attention.perf import gelu_cycles
from hwaccel.numerics.gelu import GeluParams, gelu_int, gelu_params

TINY = SIZES["tiny"]


def _words(x: np.ndarray, lanes: int, p: GeluParams):
    words, want = [], []
    for k, row in enumerate(x.reshape(-1, lanes)):
        last = int(k % 5 == 4)
        words.append({"data": [int(v) for v in row], "last": last})
        want.append(([int(v) for v in gelu_int(row, p)], last))
    return words, want


@pytest.mark.parametrize("cfg", [TINY, AttentionConfig(max_len=3, max_channels=3, lanes=3)],
                         ids=["tiny", "lanes3"])
def test_gelu_unit_every_input_in_every_lane_one_word_a_cycle(cfg, seed):
    rng = np.random.default_rng(seed)
    p = gelu_params(0.05, 0.04)
    # Every int8 input in every lane (rotated per lane), then random words.
    every = np.arange(-128, 128)
    x = np.stack([np.roll(every, 7 * i) for i in range(cfg.lanes)], axis=1).reshape(-1)
    x = np.concatenate([x, rng.integers(-128, 128, 40 * cfg.lanes)])
    words, want = _words(x, cfg.lanes, p)
    dut = GeluUnit(cfg)
    run = run_streams(dut, [(dut.table, list(p.table))], words, expect=len(want), seed=seed)
    assert run.outputs == want, f"seed {seed}"
    assert run.accepted == list(range(len(words)))
    assert run.out_cycles[-1] + 1 == gelu_cycles(len(words))


def test_gelu_unit_reload_and_backpressure(seed):
    rng = np.random.default_rng(seed)
    p1, p2 = gelu_params(0.1, 0.1), gelu_params(0.02, 0.01, "tanh")
    words, want = _words(rng.integers(-128, 128, 60 * TINY.lanes), TINY.lanes, p2)
    dut = GeluUnit(TINY)
    run = run_streams(dut, [(dut.table, list(p1.table)), (dut.table, list(p2.table))], words,
                      expect=len(want), stall=0.4, seed=seed)
    assert run.outputs == want, f"seed {seed}"


def test_gelu_unit_wants_an_attention_config():
    with warnings.catch_warnings():   # the half-built unit is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="config must be an AttentionConfig, not 'tiny'") as err:
            GeluUnit("tiny")
        del err
        gc.collect()


def test_attention_config_checks():
    for kwargs, exc, msg in (
        ({"max_len": 0}, ValueError, "max_len must be at least 1, not 0"),
        ({"max_len": 4097}, ValueError, "max_len must be at most 4096, not 4097"),
        ({"max_channels": 1025}, ValueError, "max_channels must be at most 1024, not 1025"),
        ({"lanes": 0}, ValueError, "lanes must be at least 1, not 0"),
        ({"lanes": 2.0}, TypeError, "lanes must be an integer, not 2.0"),
        ({"max_len": 8, "lanes": 16}, ValueError, r"lanes must be at most max_len \(8\), not 16"),
        ({"max_channels": 4, "lanes": 8}, ValueError,
         r"lanes must be at most max_channels \(4\), not 8"),
        ({"bits_per_cycle": 9}, ValueError, "bits_per_cycle must be at most 8, not 9"),
        ({"name": "a b"}, ValueError, "name must be an identifier-like string, not 'a b'"),
    ):
        with pytest.raises(exc, match=msg):
            AttentionConfig(**kwargs)
    cfg = SIZES["default"]
    assert (cfg.len_words, cfg.ch_words, cfg.recip_bits) == (8, 64, 22)
    assert cfg.with_(lanes=4).len_words == 32
    with pytest.raises(ValueError, match="words must be a positive integer, not 0"):
        gelu_cycles(0)
