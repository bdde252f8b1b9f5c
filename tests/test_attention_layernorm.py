"""The LayerNorm unit in Amaranth's simulator against numerics.layernorm_int bit for bit, its
cycle model against the simulated cycles exactly, and its Verilog."""

from __future__ import annotations

import gc
import warnings
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

from hwaccel.generators.attention import SIZES, AttentionConfig, LayerNormUnit
from hwaccel.generators.attention.bench import Reload, run_streams
from hwaccel.generators.attention.common import tree_stages
from hwaccel.generators.attention.layernorm import VAR_CYCLES
from hwaccel.generators.attention.ln_variance import ROOT_LEAD
from hwaccel.generators.attention.packing import load_payloads
from hwaccel.generators.attention.perf import (
    layernorm_row_perf,
    layernorm_schedule,
    load_cycles,
    load_taken,
)
from hwaccel.numerics.layernorm import (
    LN_EPS_FRAC,
    LN_FRAC,
    RSQRT_SHIFT,
    LayerNormParams,
    layernorm_int,
    layernorm_params,
    ln_rsqrt,
)

TINY = SIZES["tiny"]


def _rows(rng, c: int, count: int):
    """Random rows, then zero variance (constant rows, at both extremes), one outlier, the
    smallest variance (one step off), alternating extremes and a two-level split."""
    rows = [rng.integers(-128, 128, c) for _ in range(count)]
    rows += [100 + rng.integers(0, 3, c) for _ in range(2)]               # narrow spread
    rows += [np.full(c, v) for v in (-128, 0, 5, 127)]
    for base, out in ((-128, 127), (127, -128), (5, 6), (0, -1)):
        r = np.full(c, base)
        r[int(rng.integers(0, c))] = out
        rows.append(r)
    rows += [np.where(np.arange(c) % 2 == 0, -128, 127), np.where(np.arange(c) < c // 2, 1, 0)]
    return rows


def _params(rng, c: int, eps: float = 1e-5, s_x: float = 0.05) -> LayerNormParams:
    gamma, beta = rng.uniform(-2, 2, c), rng.uniform(-1, 1, c)
    return layernorm_params(s_x, float(rng.uniform(0.01, 0.05)), gamma, beta, eps)


def _run(cfg, p: LayerNormParams, rows, *, stall=0.0, seed=0):
    lanes, c = cfg.lanes, p.channels
    nw = -(-c // lanes)
    words, want = [], []
    for q in rows:
        padded = np.zeros(nw * lanes, dtype=np.int64)
        padded[:c] = q
        words += [[int(x) for x in padded[w * lanes:(w + 1) * lanes]] for w in range(nw)]
        out = np.zeros(nw * lanes, dtype=np.int64)
        out[:c] = layernorm_int(np.asarray(q), p)
        want += [([int(x) for x in out[w * lanes:(w + 1) * lanes]], int(w == nw - 1))
                 for w in range(nw)]
    dut = LayerNormUnit(cfg)
    setup = {"channels": c, "eps_term": p.eps_term, "shift": p.shift}
    loads = [(dut.setup, [setup]), (dut.params, load_payloads(cfg, p))]
    run = run_streams(dut, loads, words, expect=len(want), stall=stall, seed=seed)
    return run, want


@pytest.mark.parametrize("cfg,c", [(TINY, 16), (TINY, 7), (TINY, 1),
                                   (TINY.with_(bits_per_cycle=4), 4),
                                   (TINY.with_(bits_per_cycle=8), 3),
                                   (AttentionConfig(max_len=5, max_channels=5, lanes=3,
                                                    bits_per_cycle=3), 5),
                                   (AttentionConfig(max_len=24, max_channels=24, lanes=8,
                                                    load_bits=300), 21),
                                   (TINY.with_(roots=11, slots=32), 4),
                                   (TINY.with_(roots=6, slots=16, bits_per_cycle=2), 7),
                                   (TINY.with_(roots=1, slots=2), 9)],
                         ids=["c16", "c7", "c1", "c4_4bits", "c3_8bits", "c5_lanes3_3bits",
                              "c21_lanes8", "c4_11roots_32slots", "c7_6roots_16slots",
                              "c9_1root_2slots"])
def test_layernorm_unit_is_bit_exact_and_its_cycle_model_exact(cfg, c, seed):
    rng = np.random.default_rng(seed)
    p = _params(rng, c)
    rows = _rows(rng, c, 8)
    run, want = _run(cfg, p, rows, seed=seed)
    assert run.outputs == want, f"C={c} seed {seed}"
    # The rows enter the cycle after the load's last beat is taken; the output stage starts
    # none before the parameters are written, load_cycles after the setup beat.
    params_at = load_cycles(cfg, "layernorm", c) - load_taken(cfg, "layernorm", c)
    sched = layernorm_schedule(cfg, c, len(rows), params_at=params_at)
    nw = -(-c // cfg.lanes)
    assert run.accepted[::nw] == [t.start for t in sched], f"seed {seed}"
    assert run.out_cycles[nw - 1::nw] == [t.last_out for t in sched], f"seed {seed}"
    assert run.load_cycles == load_taken(cfg, "layernorm", c)


def test_layernorm_unit_extreme_parameters_and_backpressure(seed):
    """eps = 0 (a constant row has W = 0: r = 0), a large eps, the largest shifts and gammas
    of both signs at full scale; random gaps and back-pressure."""
    rng = np.random.default_rng(seed)
    c = 9
    cases = [
        _params(rng, c, eps=0.0),
        _params(rng, c, eps=4.0, s_x=0.002),
        LayerNormParams(c, 0, tuple(int(v) for v in rng.integers(-(1 << 16) + 1, 1 << 16, c)),
                        tuple(int(v) for v in rng.integers(-(1 << 40), 1 << 40, c)), 40),
        LayerNormParams(c, (1 << 50) - 1, (65535,) * c, (-(1 << 54),) * c, 1),
    ]
    for p in cases:
        run, want = _run(TINY, p, _rows(rng, c, 4), stall=0.35, seed=seed)
        assert run.outputs == want, f"{p.eps_term} {p.shift} seed {seed}"


def test_layernorm_unit_takes_a_new_layer_between_rows(seed):
    """Rows, a new layer's setup and parameters sent right after their last word (taken once
    every row is out), and rows of the new size: each row by its own layer, with
    back-pressure."""
    rng = np.random.default_rng(seed)
    p1, p2 = _params(rng, 9), _params(rng, 14)
    rows1, rows2 = _rows(rng, 9, 3), _rows(rng, 14, 3)
    dut = LayerNormUnit(TINY)
    words, want = [], []
    for p, rows in ((p1, rows1), (p2, rows2)):
        nw = -(-p.channels // TINY.lanes)
        if p is p2:
            words += [Reload(dut.setup, [{"channels": p.channels, "eps_term": p.eps_term,
                                          "shift": p.shift}]),
                      Reload(dut.params, load_payloads(TINY, p))]
        for q in rows:
            x, y = np.zeros(nw * TINY.lanes, np.int64), np.zeros(nw * TINY.lanes, np.int64)
            x[:p.channels], y[:p.channels] = q, layernorm_int(np.asarray(q), p)
            words += [[int(v) for v in x[w * TINY.lanes:(w + 1) * TINY.lanes]]
                      for w in range(nw)]
            want += [([int(v) for v in y[w * TINY.lanes:(w + 1) * TINY.lanes]], int(w == nw - 1))
                     for w in range(nw)]
    setup = {"channels": 9, "eps_term": p1.eps_term, "shift": p1.shift}
    run = run_streams(dut, [(dut.setup, [setup]), (dut.params, load_payloads(TINY, p1))], words,
                      expect=len(want), stall=0.3, seed=seed)
    assert run.outputs == want, f"seed {seed}"


@pytest.mark.parametrize("c", [2, 3, 16, 100, 768, 1024])
def test_layernorm_z_register_holds_every_z(c):
    """The unit keeps ``z`` in ``z_bits`` (from ``|x - mean| / std <= sqrt(C - 1)``): the
    largest ``|z|`` of the rows that reach that bound (one outlier, eps 0) fits, at full size."""
    cfg = AttentionConfig(max_len=c, max_channels=c, lanes=1)
    q = np.full((4, c), -128, dtype=np.int64)
    q[0, 0] = q[1, -1] = 127
    q[2, 0], q[3] = -127, np.where(np.arange(c) < c // 2, -128, 127)
    sx, sxx = q.sum(-1, keepdims=True), (q * q).sum(-1, keepdims=True)
    r, s = ln_rsqrt((c * sxx - sx * sx) << LN_EPS_FRAC)
    h = np.clip(RSQRT_SHIFT - LN_FRAC - LN_EPS_FRAC // 2 + s, 1, 62)
    z = ((c * q - sx) * r + (1 << (h - 1))) >> h
    assert np.abs(z).max() < 1 << (cfg.z_bits - 1)
    assert np.abs(z).max() >= 1 << (cfg.z_bits - 2)        # and not a bit more


def test_layernorm_cycle_formula():
    """A row alone takes 2W + rsqrt_cycles + T + 14 cycles (T the register stages of a 16-lane
    tree, one; the output stage starts the row ROOT_LEAD = 3 cycles before its root is in its
    slot); in flight rows follow each other every max(W, rsqrt_cycles / roots, (2W +
    rsqrt_cycles + T + 6) / slots) cycles: a stage's own pace (the variance stage takes a row
    a cycle, the roots take rows in turn), or a turn of the slots (a row's slot is taken from
    its first word in to its last read out)."""
    t = tree_stages(16)
    assert (SIZES["default"].slots, VAR_CYCLES, SIZES["default"].roots) == (8, 4, 4)
    assert ROOT_LEAD == 3
    for k, root in ((1, 22), (2, 11), (4, 6), (8, 3)):
        for roots, slots in ((4, 8), (11, 32), (2, 16)):
            cfg = SIZES["default"].with_(bits_per_cycle=k, roots=roots, slots=slots)
            assert cfg.rsqrt_cycles == root
            for c in (1, 16, 32, 768, 1024):
                w = -(-c // cfg.lanes)
                perf = layernorm_row_perf(cfg, c)
                want = max(w, Fraction(root, roots), Fraction(2 * w + root + t + 6, slots))
                assert perf.words == w
                assert perf.period == pytest.approx(float(want)), (k, c, roots, slots)
                assert perf.latency == 2 * w + root + t + 14
    with pytest.raises(ValueError, match=r"channels must be an integer in \[1, 1024\], not 0"):
        layernorm_row_perf(SIZES["default"], 0)


def test_layernorm_unit_wants_an_attention_config():
    with warnings.catch_warnings():   # the half-built unit is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="config must be an AttentionConfig, not None") as err:
            LayerNormUnit(None)
        del err
        gc.collect()
