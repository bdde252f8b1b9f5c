"""The softmax unit in Amaranth's simulator against numerics.softmax_int bit for bit, its cycle
model against the simulated cycles exactly, and its Verilog."""

from __future__ import annotations

import gc
import warnings
from fractions import Fraction

import numpy as np
import pytest
from amaranth.hdl import UnusedElaboratable

from hwaccel.generators.attention import SIZES, AttentionConfig, SoftmaxUnit
from hwaccel.generators.attention.bench import Reload, run_streams
from hwaccel.generators.attention.common import tree_stages
from hwaccel.generators.attention.divider import DIV_LEAD
from hwaccel.generators.attention.packing import load_payloads
from hwaccel.generators.attention.perf import (
    load_cycles,
    load_taken,
    softmax_row_perf,
    softmax_schedule,
)
from hwaccel.numerics.softmax import SoftmaxParams, softmax_int, softmax_params

TINY = SIZES["tiny"]


def _rows(rng, max_len: int, count: int):
    """Random rows with random masks, then the edge cases: one element, equal rows, extremes
    (differences of 255), every position masked but the first, causal masks."""
    rows = []
    for _ in range(count):
        n = int(rng.integers(1, max_len + 1))
        kind = rng.integers(0, 3)
        if kind == 0:
            q = rng.integers(-128, 128, n)
        else:                                           # narrow spread: sums near n * 2**17
            q = 100 - rng.integers(0, int(rng.integers(1, 20)), n)
        valid = int(rng.integers(0, n + 1)) if rng.random() < 0.5 else 0
        rows.append((q, valid))
    rows += [(np.array([-128]), 0), (np.array([127]), 0),
             (np.full(max_len, 7), 0), (np.full(max_len, -128), 0),
             (np.array([127] + [-128] * (max_len - 1)), 0),
             (np.array([-128] + [127] * (max_len - 1)), 1),
             (np.where(np.arange(max_len) % 2 == 0, 127, -128), 0)]
    rows += [(rng.integers(-128, 128, max_len), i + 1) for i in range(0, max_len, 3)]  # causal
    return rows


def _words(rows, lanes: int):
    out = []
    for q, valid in rows:
        n = len(q)
        padded = np.zeros(-(-n // lanes) * lanes, dtype=np.int64)
        padded[:n] = q
        for w in range(len(padded) // lanes):
            out.append({"data": [int(x) for x in padded[w * lanes:(w + 1) * lanes]],
                        "length": n, "valid": valid})
    return out


def _expected(rows, p: SoftmaxParams, lanes: int):
    words = []
    for q, valid in rows:
        n = len(q)
        mask = np.arange(n) < (valid if valid else n)
        probs = np.zeros(-(-n // lanes) * lanes, dtype=np.int64)
        probs[:n] = softmax_int(q, p, mask)
        nw = len(probs) // lanes
        words += [([int(x) for x in probs[w * lanes:(w + 1) * lanes]], int(w == nw - 1))
                  for w in range(nw)]
    return words


def _run(cfg, p, rows, *, stall=0.0, seed=0):
    words = _words(rows, cfg.lanes)
    want = _expected(rows, p, cfg.lanes)
    dut = SoftmaxUnit(cfg)
    run = run_streams(dut, [(dut.table, load_payloads(cfg, p))], words, expect=len(want),
                      stall=stall, seed=seed)
    return run, want


@pytest.mark.parametrize("cfg", [TINY, TINY.with_(bits_per_cycle=8, load_bits=100),
                                 AttentionConfig(max_len=7, max_channels=7, lanes=3,
                                                 bits_per_cycle=3),
                                 AttentionConfig(max_len=20, max_channels=20, lanes=8,
                                                 bits_per_cycle=2, load_bits=90),
                                 TINY.with_(dividers=11, slots=32, table_row=256),
                                 TINY.with_(dividers=1, slots=2, table_row=1, load_bits=80)],
                         ids=["tiny", "tiny_8bits", "len7_lanes3_3bits", "len20_lanes8_trees",
                              "tiny_11div_32slots_row256", "tiny_1div_2slots_row1"])
def test_softmax_unit_is_bit_exact_and_its_cycle_model_exact(cfg, seed):
    rng = np.random.default_rng(seed)
    p = softmax_params(float(rng.choice([1 / 64, 1 / 16, 0.25])), cfg.max_len)
    rows = _rows(rng, cfg.max_len, 24)
    run, want = _run(cfg, p, rows, seed=seed)
    assert run.outputs == want, f"seed {seed}"
    _assert_schedule(cfg, rows, run, seed)
    # The packed table load: its beats, then the first row word the cycle after the last is
    # taken (the exponent stage waits for the table: _assert_schedule).
    assert run.load_cycles == load_taken(cfg, "softmax")


def _assert_schedule(cfg, rows, run, seed):
    """Cycle for cycle: every row's first word and last output where the model puts them (the
    rows enter after the load's last beat is taken, the table written ``load_cycles`` after
    its first)."""
    table_at = load_cycles(cfg, "softmax") - load_taken(cfg, "softmax")
    sched = softmax_schedule(cfg, [len(q) for q, _ in rows], table_at=table_at)
    firsts, lasts, k = [], [], 0
    for q, _ in rows:
        w = -(-len(q) // cfg.lanes)
        firsts.append(run.accepted[k])
        lasts.append(run.out_cycles[k + w - 1])
        k += w
    assert firsts == [t.start for t in sched], f"seed {seed}"
    assert lasts == [t.last_out for t in sched], f"seed {seed}"


@pytest.mark.parametrize("bits,dividers,slots", [(1, 4, 8), (8, 4, 8), (2, 11, 32), (1, 3, 4)])
def test_softmax_back_to_back_rows_in_flight(bits, dividers, slots, seed):
    """Runs of one-word rows (the dividers or the slots set the pace), full-length rows, and
    the two mixed: each row where the model puts it."""
    cfg = TINY.with_(bits_per_cycle=bits, dividers=dividers, slots=slots)
    rng = np.random.default_rng(seed)
    p = softmax_params(1 / 16, cfg.max_len)
    lengths = [3] * 10 + [16] * 5 + [1, 16, 2, 13, 4, 5] * 2
    rows = [(rng.integers(-128, 128, n), int(rng.integers(0, n + 1))) for n in lengths]
    run, want = _run(cfg, p, rows, seed=seed)
    assert run.outputs == want, f"seed {seed}"
    _assert_schedule(cfg, rows, run, seed)


def test_softmax_unit_under_backpressure_and_gaps(seed):
    rng = np.random.default_rng(seed)
    p = softmax_params(1 / 16, TINY.max_len)
    rows = _rows(rng, TINY.max_len, 16)
    run, want = _run(TINY, p, rows, stall=0.4, seed=seed)
    assert run.outputs == want, f"seed {seed}"


def test_softmax_unit_takes_a_new_table_between_rows(seed):
    """A second load replaces every entry (I-BERT's exponent table as a different table)."""
    from hwaccel.numerics.softmax import ibert_exp_table

    rng = np.random.default_rng(seed)
    p1 = softmax_params(0.5, TINY.max_len)
    p2 = SoftmaxParams(ibert_exp_table(1 / 16), TINY.max_len)
    rows = _rows(rng, TINY.max_len, 6)
    dut = SoftmaxUnit(TINY)
    want = _expected(rows, p2, TINY.lanes)
    run = run_streams(dut, [(dut.table, load_payloads(TINY, p1)),
                            (dut.table, load_payloads(TINY, p2))],
                      _words(rows, TINY.lanes), expect=len(want))
    assert run.outputs == want


def test_softmax_unit_reloads_its_table_between_commands(seed):
    """Rows, a new table sent right after their last word (taken once every row is out), and
    rows under it: every probability from its own table, with back-pressure."""
    rng = np.random.default_rng(seed)
    p1, p2 = softmax_params(1 / 16, TINY.max_len), softmax_params(0.25, TINY.max_len)
    rows1, rows2 = _rows(rng, TINY.max_len, 5), _rows(rng, TINY.max_len, 5)
    dut = SoftmaxUnit(TINY)
    words = (_words(rows1, TINY.lanes) + [Reload(dut.table, load_payloads(TINY, p2))]
             + _words(rows2, TINY.lanes))
    want = _expected(rows1, p1, TINY.lanes) + _expected(rows2, p2, TINY.lanes)
    run = run_streams(dut, [(dut.table, load_payloads(TINY, p1))], words, expect=len(want),
                      stall=0.3, seed=seed)
    assert run.outputs == want, f"seed {seed}"


def test_softmax_cycle_formula():
    """Rows of W words alone take 3W + div_cycles + 2T + 10 cycles (T the register stages of a
    16-lane tree, one; the output stage starts a row DIV_LEAD = 2 cycles before its quotient
    is in its slot); in flight they follow each other every max(W, div_cycles / dividers,
    (2W + div_cycles + T + 5) / slots, (2W + T + 2) / slots) cycles: a stage's own pace (the
    dividers take rows in turn), or a turn of the slots (a row's e-buffer slot is taken from
    its exponent stage to its last output read)."""
    t = tree_stages(16)
    assert t == 1 and tree_stages(4) == 0 and tree_stages(32) == 2
    assert (SIZES["default"].slots, SIZES["default"].dividers, DIV_LEAD) == (8, 4, 2)
    for k, div in ((1, 22), (2, 11), (3, 8), (4, 6), (8, 3)):
        for dividers, slots in ((4, 8), (11, 32), (2, 16)):
            cfg = SIZES["default"].with_(bits_per_cycle=k, dividers=dividers, slots=slots)
            assert (cfg.recip_bits, cfg.div_cycles) == (22, div)
            for n in (1, 16, 17, 64, 65, 128):
                w = -(-n // cfg.lanes)
                perf = softmax_row_perf(cfg, n)
                assert perf.words == w
                want = max(w, Fraction(div, dividers), Fraction(2 * w + div + t + 5, slots),
                           Fraction(2 * w + t + 2, slots))
                assert perf.period == pytest.approx(float(want)), (k, n, dividers, slots)
                assert perf.latency == 3 * w + div + 2 * t + 10
    with pytest.raises(ValueError, match=r"softmax row length must be an integer in \[1, 128\]"
                                         r", not 129"):
        softmax_row_perf(cfg, 129)


def test_softmax_unit_wants_an_attention_config():
    with warnings.catch_warnings():   # the half-built unit is never elaborated, by design
        warnings.simplefilter("ignore", UnusedElaboratable)
        with pytest.raises(TypeError, match="config must be an AttentionConfig, not 3") as err:
            SoftmaxUnit(3)
        del err
        gc.collect()
