"""The GELU unit in Amaranth's simulator against numerics.gelu_int bit for bit (every input, in
every lane), one word a cycle; LayerNorm wired into GELU by streams alone; the attention
config's checks."""

from __future__ import annotations

import gc
import warnings

import numpy as np
import pytest
from amaranth.hdl import Module, UnusedElaboratable, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwaccel.generators.attention import SIZES, AttentionConfig, GeluUnit, LayerNormUnit
from hwaccel.generators.attention.bench import Reload, run_streams
from hwaccel.generators.attention.common import out_layout, word_layout
from hwaccel.generators.attention.layernorm import ln_setup_layout
from hwaccel.generators.attention.packing import load_payloads
from hwaccel.generators.attention.perf import gelu_cycles, load_cycles
from hwaccel.numerics.gelu import GeluParams, gelu_int, gelu_params
from hwaccel.numerics.layernorm import layernorm_int, layernorm_params

TINY = SIZES["tiny"]


def _words(x: np.ndarray, lanes: int, p: GeluParams):
    words, want = [], []
    for k, row in enumerate(x.reshape(-1, lanes)):
        last = int(k % 5 == 4)
        words.append({"data": [int(v) for v in row], "last": last})
        want.append(([int(v) for v in gelu_int(row, p)], last))
    return words, want


@pytest.mark.parametrize("cfg", [TINY, AttentionConfig(max_len=3, max_channels=3, lanes=3,
                                                       load_bits=100),
                                 TINY.with_(table_row=256, load_bits=2048),
                                 TINY.with_(table_row=64)],
                         ids=["tiny", "lanes3", "row256", "row64"])
def test_gelu_unit_every_input_in_every_lane_one_word_a_cycle(cfg, seed):
    rng = np.random.default_rng(seed)
    p = gelu_params(0.05, 0.04)
    # Every int8 input in every lane (rotated per lane), then random words.
    every = np.arange(-128, 128)
    x = np.stack([np.roll(every, 7 * i) for i in range(cfg.lanes)], axis=1).reshape(-1)
    x = np.concatenate([x, rng.integers(-128, 128, 40 * cfg.lanes)])
    words, want = _words(x, cfg.lanes, p)
    dut = GeluUnit(cfg)
    run = run_streams(dut, [(dut.table, load_payloads(cfg, p))], words, expect=len(want),
                      seed=seed)
    assert run.outputs == want, f"seed {seed}"
    assert run.load_cycles == load_cycles(cfg, "gelu")
    assert run.accepted == list(range(len(words)))
    assert run.out_cycles[-1] + 1 == gelu_cycles(len(words))


def test_gelu_unit_reload_and_backpressure(seed):
    rng = np.random.default_rng(seed)
    p1, p2 = gelu_params(0.1, 0.1), gelu_params(0.02, 0.01, "tanh")
    words, want = _words(rng.integers(-128, 128, 60 * TINY.lanes), TINY.lanes, p2)
    dut = GeluUnit(TINY)
    run = run_streams(dut, [(dut.table, load_payloads(TINY, p1)),
                            (dut.table, load_payloads(TINY, p2))], words,
                      expect=len(want), stall=0.4, seed=seed)
    assert run.outputs == want, f"seed {seed}"


def test_gelu_unit_reloads_between_words(seed):
    """Words, a new table sent right after the last of them, and words under it: the words
    already taken keep the old table's values, with back-pressure."""
    rng = np.random.default_rng(seed)
    p1, p2 = gelu_params(0.1, 0.1), gelu_params(0.02, 0.01, "tanh")
    w1, want1 = _words(rng.integers(-128, 128, 20 * TINY.lanes), TINY.lanes, p1)
    w2, want2 = _words(rng.integers(-128, 128, 20 * TINY.lanes), TINY.lanes, p2)
    dut = GeluUnit(TINY)
    run = run_streams(dut, [(dut.table, load_payloads(TINY, p1))],
                      w1 + [Reload(dut.table, load_payloads(TINY, p2))] + w2,
                      expect=len(want1) + len(want2), stall=0.4, seed=seed)
    assert run.outputs == want1 + want2, f"seed {seed}"


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
        ({"dividers": 0}, ValueError, "dividers must be at least 1, not 0"),
        ({"roots": 33}, ValueError, "roots must be at most 32, not 33"),
        ({"slots": 12}, ValueError, "slots must be a power of two, not 12"),
        ({"slots": 1}, ValueError, "slots must be at least 2, not 1"),
        ({"table_row": 48}, ValueError, "table_row must be a power of two, not 48"),
        ({"table_row": 512}, ValueError, "table_row must be at most 256, not 512"),
    ):
        with pytest.raises(exc, match=msg):
            AttentionConfig(**kwargs)
    cfg = SIZES["default"]
    assert (cfg.len_words, cfg.ch_words, cfg.recip_bits) == (8, 64, 22)
    assert cfg.with_(lanes=4).len_words == 32
    with pytest.raises(ValueError, match="words must be a positive integer, not 0"):
        gelu_cycles(0)


class _LayerNormThenGelu(wiring.Component):
    """LayerNorm's source wired straight into GELU's sink: the two layouts are one."""

    def __init__(self, cfg):
        self.ln, self.gelu = LayerNormUnit(cfg), GeluUnit(cfg)
        super().__init__({
            "setup": In(stream.Signature(ln_setup_layout(cfg))),
            "params": In(stream.Signature(unsigned(cfg.load_bits))),
            "sink": In(stream.Signature(word_layout(cfg.lanes))),
            "table": In(stream.Signature(unsigned(cfg.load_bits))),
            "source": Out(stream.Signature(out_layout(cfg.lanes))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.ln, m.submodules.gelu = self.ln, self.gelu
        for name in ("setup", "params", "sink"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(self.ln, name))
        wiring.connect(m, wiring.flipped(self.table), self.gelu.table)
        wiring.connect(m, self.ln.source, self.gelu.sink)
        wiring.connect(m, self.gelu.source, wiring.flipped(self.source))
        return m


def test_layernorm_into_gelu_by_wiring_streams(seed):
    rng = np.random.default_rng(seed)
    c = 6
    p_ln = layernorm_params(0.05, 0.03, rng.uniform(-2, 2, c), rng.uniform(-1, 1, c))
    p_gelu = gelu_params(0.03, 0.02)
    rows = rng.integers(-128, 128, (5, c))
    nw = -(-c // TINY.lanes)
    words, want = [], []
    for q in rows:
        x, y = np.zeros(nw * TINY.lanes, np.int64), np.zeros(nw * TINY.lanes, np.int64)
        x[:c] = q
        y[:c] = layernorm_int(q, p_ln)
        y = gelu_int(y, p_gelu)                          # GELU of the padding lanes' 0 too
        words += [[int(v) for v in x[w * TINY.lanes:(w + 1) * TINY.lanes]] for w in range(nw)]
        want += [([int(v) for v in y[w * TINY.lanes:(w + 1) * TINY.lanes]], int(w == nw - 1))
                 for w in range(nw)]
    dut = _LayerNormThenGelu(TINY)
    loads = [(dut.table, load_payloads(TINY, p_gelu)),
             (dut.setup, [{"channels": c, "eps_term": p_ln.eps_term, "shift": p_ln.shift}]),
             (dut.params, load_payloads(TINY, p_ln))]
    run = run_streams(dut, loads, words, expect=len(want), stall=0.3, seed=seed)
    assert run.outputs == want, f"seed {seed}"
