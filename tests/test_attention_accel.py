"""The attention commands (SOFTMAX, LAYERNORM, GELU, MATMUL) on the golden interpreter against
:mod:`hwaccel.numerics`, their faults, and the cycle model against the units' models (tiny
preset with attention units; the RTL: ``test_attention_rtl.py``, ``test_matmul_rtl.py``)."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_checks import int8 as _int8

from hwaccel.generators.accel import PRESETS, Cause, Op, ProgramBuilder, run_program
from hwaccel.generators.accel.attn_isa import ATTN_DMA, ATTN_ROWS, ATTN_STORE
from hwaccel.generators.accel.driver import encode, from_words
from hwaccel.generators.accel.isa import command_layout
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.attention import AttentionConfig
from hwaccel.generators.attention.perf import (
    gelu_cycles,
    layernorm_schedule,
    load_cycles,
    softmax_schedule,
)
from hwaccel.numerics import (
    gelu_int,
    gelu_params,
    layernorm_int,
    layernorm_params,
    requantize,
    softmax_int,
    softmax_params,
)

TINY = PRESETS["tiny"]
CFG = TINY.with_(attention=AttentionConfig(max_len=16, max_channels=24, lanes=4, name="tiny"),
                 wgt_depth=1024, name="tiny_attention")


def _run(b: ProgramBuilder):
    b.done()
    res = run_program(b.cfg, b.act, b.wgt, b.commands)
    assert res.done and not res.error, res.cause
    return res


def _seq(t):   # a C x 1 x T tensor as its T x C rows
    return t[:, 0, :].T


@pytest.mark.parametrize("causal", [False, True])
def test_softmax_equals_numerics(causal):
    rng = np.random.default_rng(1)
    p = softmax_params(0.05, CFG.attention.max_len)
    for n in (1, 3, 4, 7, 16):
        b = ProgramBuilder(CFG)
        x = _int8(rng, (n, 1, n))
        y = b.softmax(b.put(x), p, causal=causal)
        res = _run(b)
        valid = np.tril(np.ones((n, n), dtype=bool)) if causal else None
        want = softmax_int(_seq(x), p, valid)
        np.testing.assert_array_equal(_seq(from_words(res.act, y)), want)


def test_layernorm_equals_numerics():
    rng = np.random.default_rng(2)
    for c in (1, 5, 8, 24):
        gamma, beta = rng.normal(1, 0.3, c), rng.normal(0, 0.5, c)
        p = layernorm_params(0.04, 0.03, gamma, beta)
        b = ProgramBuilder(CFG)
        x = _int8(rng, (c, 1, 6))
        y = b.layernorm(b.put(x), p)
        res = _run(b)
        np.testing.assert_array_equal(_seq(from_words(res.act, y)), layernorm_int(_seq(x), p))


def test_gelu_equals_numerics():
    rng = np.random.default_rng(3)
    p = gelu_params(0.05, 0.03)
    b = ProgramBuilder(CFG)
    x = _int8(rng, (7, 3, 2))
    y = b.gelu(b.put(x), p)
    res = _run(b)
    np.testing.assert_array_equal(from_words(res.act, y), gelu_int(x, p))


@pytest.mark.parametrize("transpose", [False, True])
def test_matmul_equals_requantize(transpose):
    rng = np.random.default_rng(4)
    for m, k, n in ((1, 1, 1), (5, 7, 3), (6, 13, 9), (16, 20, 24)):
        a = _int8(rng, (k, 1, m))                                   # M rows of K
        bm = _int8(rng, (k, 1, n)) if transpose else _int8(rng, (n, 1, k))
        mult, shift = int(rng.integers(1 << 15, 1 << 16)), int(rng.integers(14, 22))
        b = ProgramBuilder(CFG)
        y = b.matmul(b.put(a), b.put(bm), mult, shift, transpose=transpose)
        res = _run(b)
        w = _seq(bm).T if transpose else _seq(bm)
        want = requantize(_seq(a) @ w, mult, shift)
        np.testing.assert_array_equal(_seq(from_words(res.act, y)), want)


def test_matmul_head_slices_in_place():
    """Two heads of Q . K^T and P . V through word offsets and strides of the joined tensors:
    each head's product lands in its own columns of the joined output, the other's untouched."""
    rng = np.random.default_rng(5)
    t, d, heads, lanes = 6, 8, 2, CFG.lanes
    q, k, v = (_int8(rng, (d * heads, 1, t)) for _ in range(3))
    b = ProgramBuilder(CFG)
    tq, tk, tv = b.put(q), b.put(k), b.put(v)
    s = [b.alloc(t, 1, t) for _ in range(heads)]
    out = b.alloc(d * heads, 1, t)
    hw = d // lanes
    for h in range(heads):
        b.matmul_raw(src=tq.addr + h * hw, sa=tq.groups, src2=tk.addr + h * hw, sb=tk.groups,
                     dst=s[h].addr, sc=s[h].groups, m=t, k=d, n=t, multiplier=40000, shift=20,
                     transpose=True)
        b.matmul_raw(src=s[h].addr, sa=s[h].groups, src2=tv.addr + h * hw, sb=tv.groups,
                     dst=out.addr + h * hw, sc=out.groups, m=t, k=t, n=d, multiplier=50000,
                     shift=17, transpose=False)
    res = _run(b)
    got = _seq(from_words(res.act, out))
    for h in range(heads):
        cols = slice(h * d, (h + 1) * d)
        sc = requantize(_seq(q)[:, cols] @ _seq(k)[:, cols].T, 40000, 20)
        np.testing.assert_array_equal(_seq(from_words(res.act, s[h])), sc)
        np.testing.assert_array_equal(got[:, cols], requantize(sc @ _seq(v)[:, cols], 50000, 17))


def _fault(b, word):
    b.raw(word)
    b.done()
    res = run_program(b.cfg, b.act, b.wgt, b.commands)
    assert res.error and res.pc == len(b.commands) - 2
    return res.cause


def test_faults():
    rng = np.random.default_rng(6)
    p = softmax_params(0.05, 16)
    attn = {"n": 4, "causal": 0, "src2": 0, "k": 0, "sa": 0, "sb": 0, "sc": 0, "transpose": 0,
            "mult": 0, "shift": 0}
    for op in (Op.SOFTMAX, Op.LAYERNORM, Op.GELU, Op.MATMUL):   # no units: illegal, as LSTM
        b = ProgramBuilder(TINY)
        b.put(_int8(rng, (4, 1, 4)))
        assert _fault(b, encode(TINY, op, count=4)) == Cause.ILLEGAL_OPCODE
        with pytest.raises(ValueError, match="no attention units"):
            b.softmax(b.put(_int8(rng, (4, 1, 4))), p)
    b = ProgramBuilder(CFG)
    x = b.put(_int8(rng, (4, 1, 4)))
    y = b.softmax(x, p)                    # stores the table at wgt 0
    cases = {   # (fields, attn) -> cause
        "row longer than max_len": ({"count": 1}, {"n": 17}, Cause.SHAPE),
        "causal with more rows than columns": ({"count": 5}, {"causal": 1}, Cause.SHAPE),
        "no rows": ({"count": 0}, {}, Cause.SHAPE),
        "dst inside src": ({"count": 4, "dst": x.addr + 1}, {}, Cause.ADDRESS),
        "src past the scratchpad": ({"count": 4, "src": CFG.act_depth - 3}, {}, Cause.ADDRESS),
        "bad table": ({"count": 4, "wgt": 700}, {}, Cause.SHAPE),   # zeros: exp(0) = 0
    }
    for what, (fields, over, cause) in cases.items():
        b2 = ProgramBuilder(CFG)
        b2.act, b2.wgt = b.act.copy(), list(b.wgt)
        f = {"src": x.addr, "dst": y.addr, **fields}
        assert _fault(b2, encode(CFG, Op.SOFTMAX, attn={**attn, **over}, **f)) == cause, what
    mm = {**attn, "k": 4, "n": 4, "sa": 1, "sb": 1, "sc": 1, "mult": 1 << 15, "shift": 16}
    for what, over, cause in (("C over A", {"dst": x.addr}, Cause.ADDRESS),
                              ("stride below a row", {"sa": 0}, Cause.SHAPE),
                              ("shift 0", {"shift": 0}, Cause.SHAPE)):
        b2 = ProgramBuilder(CFG)
        b2.act = b.act.copy()
        f = {"src": x.addr, "dst": over.pop("dst", y.addr), "count": 4}
        word = encode(CFG, Op.MATMUL, attn={**mm, "src2": x.addr, **over}, **f)
        assert _fault(b2, word) == cause, what


def test_presets_keep_their_command_word():
    for cfg in PRESETS.values():
        assert cfg.attention is None
        assert "attn" not in {name for name, _ in command_layout(cfg)}
    assert "attn" in {name for name, _ in command_layout(CFG)}


def test_cycle_model_from_the_units_models():
    """Each command's busy cycles: its loads, the DMA latency, the units' row schedules
    (:mod:`hwaccel.generators.attention.perf`), the store; golden and model agree on the
    counters both keep. SOFTMAX's and LAYERNORM's rows enter ATTN_ROWS after the load's first
    beat, the stage that reads the load starting none before it is written; GELU's rows
    after the load."""
    rng = np.random.default_rng(7)
    a = CFG.attention
    b = ProgramBuilder(CFG)
    x = b.put(_int8(rng, (16, 1, 16)))
    sm = b.softmax(x, softmax_params(0.05, 16), causal=True)
    ln = b.layernorm(x, layernorm_params(0.04, 0.03, np.ones(16), np.zeros(16)))
    ge = b.gelu(ln, gelu_params(0.03, 0.03))
    b.matmul(x, sm, 1 << 15, 20, transpose=False)
    res = _run(b)
    perf = program_perf(CFG, b.commands)
    cmds = {c.op: c for c in perf.commands}
    extra = ATTN_DMA + ATTN_STORE
    loads = {u: load_cycles(a, u, 16) for u in ("softmax", "layernorm", "gelu")}
    sm_last = softmax_schedule(a, [16] * 16, table_at=loads["softmax"] - ATTN_ROWS)
    ln_last = layernorm_schedule(a, 16, 16, params_at=loads["layernorm"] - ATTN_ROWS)
    assert cmds["SOFTMAX"].busy == ATTN_ROWS + extra + sm_last[-1].last_out + 1
    assert cmds["LAYERNORM"].busy == ATTN_ROWS + extra + ln_last[-1].last_out + 1
    # the overlap: shorter than the load and then the rows
    assert cmds["SOFTMAX"].busy < (loads["softmax"] + extra + 1
                                   + softmax_schedule(a, [16] * 16)[-1].last_out)
    assert cmds["LAYERNORM"].busy < (loads["layernorm"] + extra + 1
                                     + layernorm_schedule(a, 16, 16)[-1].last_out)
    assert cmds["GELU"].busy == loads["gelu"] + extra + gelu_cycles(ge.words)
    assert cmds["MATMUL"].mac_slots >= 16 * 16 * 16   # padding lanes are scheduled too
    for key in ("commands", "mac_slots", "load_cycles"):
        assert res.counters[key] == perf.counters[key], key
    busy = sum(cmds[o].busy for o in ("SOFTMAX", "LAYERNORM", "GELU"))
    assert perf.counters["eltwise_busy"] == busy
    assert perf.counters["conv_busy"] == cmds["MATMUL"].busy
    with pytest.raises(ValueError, match="no attention units"):
        program_perf(TINY, [encode(TINY, Op.GELU, count=1), encode(TINY, Op.DONE)])
