"""MATMUL on the accelerator's RTL (``tiny_attention``, Verilator C++ harness): ``A @ B`` and
``A @ B^T`` of two activations at random M, K and N (K over several engine tiles, N over
several blocks, per-head strides and word offsets), bit-exact with the golden interpreter and
every counter equal to the cycle model, between GEMMs whose held weights it must not reuse;
its field and range checks fault as the golden interpreter's do."""

from __future__ import annotations

import math

import numpy as np
from rtl_checks import int8 as _int8
from rtl_checks import run_and_check

from hwaccel.generators.accel import Cause, Op, ProgramBuilder, Region, run_program
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.driver import encode, from_words
from hwaccel.generators.accel.driver_attention import ATTN_DEFAULTS
from hwaccel.generators.accel.host import address, start_word
from hwaccel.generators.accel.perf import program_perf
from hwaccel.numerics.eltwise import add_params

CFG = MODEL_PRESETS["tiny_attention"]
L = CFG.lanes


HOST_CONFIG = CFG   # the accelerator the `host` fixture (conftest) builds


def _requant(rng, k):
    """A multiplier and shift that keep C's values in range (not all saturated)."""
    return int(rng.integers(1 << 14, 1 << 16)), int(rng.integers(15, 19)) + int(k > 16)


def test_matmul_bit_exact_and_cycle_exact(host, seed):
    rng = np.random.default_rng(seed)
    mg = CFG.conv.max_groups * L
    for trial in range(4):
        b = ProgramBuilder(CFG)
        outs = []
        # A GEMM first: the engine holds its weights, which the MATMULs must replace.
        g_in = b.put(_int8(rng, (6, 1, 5)))
        w = _int8(rng, (6, 7))
        outs.append(b.gemm(g_in, w, 0, *_requant(rng, 6)))
        for tr in (False, True):
            # K over several K tiles in the first trials, small ones after.
            k = int(rng.integers(mg + 1, 3 * mg)) if trial < 2 else int(rng.integers(1, 9))
            m_, n = int(rng.integers(1, 20)), int(rng.integers(1, 12))
            if trial == 3:   # whole max_width x max_height tiles of M (K in one tile)
                m_ = int(rng.integers(CFG.conv.max_width * CFG.conv.max_height, 150))
            a = b.put(_int8(rng, (k, 1, m_)))
            bt = b.put(_int8(rng, (k, 1, n)) if tr else _int8(rng, (n, 1, k)))
            outs.append(b.matmul(a, bt, *_requant(rng, k), transpose=tr))
        outs.append(b.gemm(g_in, w, 0, *_requant(rng, 6)))   # the GEMM reloads its weights
        gold = run_and_check(host, CFG, b, outs, f"trial {trial}")
        assert np.abs(from_words(gold.act, outs[1])).max() > 0, "C all zero: a weak test"


def test_matmul_per_head_strides(host, seed):
    """Q . K^T and P . V per head on joined tensors, read and written in place (word offsets
    and row strides), heads back to back, as the compiler emits them."""
    rng = np.random.default_rng(seed)
    t, d, heads = int(rng.integers(3, 10)), 2 * L, 2
    b = ProgramBuilder(CFG)
    q, kk, v = (b.put(_int8(rng, (heads * d, 1, t))) for _ in range(3))
    dw, tw = d // L, math.ceil(t / L)
    srow = heads * tw
    s = b.alloc(srow * L, 1, t)   # scores, heads side by side (t columns in tw words each)
    o = b.alloc(heads * d, 1, t)
    for h in range(heads):
        b.matmul_raw(src=q.addr + h * dw, sa=heads * dw, src2=kk.addr + h * dw, sb=heads * dw,
                     dst=s.addr + h * tw, sc=srow, m=t, k=d, n=t,
                     multiplier=int(rng.integers(1 << 14, 1 << 16)), shift=17, transpose=True)
    for h in range(heads):
        b.matmul_raw(src=s.addr + h * tw, sa=srow, src2=v.addr + h * dw, sb=heads * dw,
                     dst=o.addr + h * dw, sc=heads * dw, m=t, k=t, n=d,
                     multiplier=int(rng.integers(1 << 14, 1 << 16)), shift=16, transpose=False)
    run_and_check(host, CFG, b, [o], "per head")


def test_matmul_after_fused_add(host, seed):
    """A MATMUL right after a GEMM with a fused ADD, whose residual reads share the port of the
    scratchpad's copy that the gatherer reads (from before the MATMUL's ISSUE) and whose select
    holds until the next job starts: B still comes from its own rows."""
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(CFG)
    outs = []
    for tr in (False, True):
        g_in, r_in = b.put(_int8(rng, (6, 1, 5))), b.put(_int8(rng, (7, 1, 5)))
        outs.append(b.gemm(g_in, _int8(rng, (6, 7)), 0, *_requant(rng, 6),
                           add=(r_in, add_params(0.7, 1.3), False)))
        k, m_, n = int(rng.integers(L + 1, 4 * L)), int(rng.integers(2, 9)), int(rng.integers(2, 9))
        a = b.put(_int8(rng, (k, 1, m_)))
        bt = b.put(_int8(rng, (k, 1, n)) if tr else _int8(rng, (n, 1, k)))
        outs.append(b.matmul(a, bt, *_requant(rng, k), transpose=tr))
    run_and_check(host, CFG, b, outs, "after a fused ADD")


def test_soft_reset_mid_gather(host, seed):
    """A soft reset while B is gathered (the gatherer owns the read port), while A streams and
    near the end leaves the accelerator idle; the program then runs bit-exact and cycle-exact."""
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(CFG)
    k = 3 * CFG.conv.max_groups * L - 1
    a, bt = b.put(_int8(rng, (k, 1, 9))), b.put(_int8(rng, (k, 1, 7)))
    out = b.matmul(a, bt, *_requant(rng, k), transpose=True)
    b.done()
    total = program_perf(CFG, b.commands).counters["cycles"]
    host.load(b)
    for at in (7, 12, 30, total // 2, total - 3):
        host.write(address(CFG, Region.REG, 0), start_word(0))
        host.h.step(at)
        host.soft_reset()
        st = host.status()
        assert (st["busy"], st["error"]) == (0, 0), (at, st)
    b.commands.pop()   # _run appends DONE
    run_and_check(host, CFG, b, [out], "after soft resets")


def _raw(b, **fields):
    attn = {k: fields.pop(k, v) for k, v in ATTN_DEFAULTS.items()}
    b.raw(encode(CFG, Op.MATMUL, attn=attn, **fields))


def test_matmul_checks_fault_as_golden(host, seed):
    rng = np.random.default_rng(seed)
    ad = CFG.act_depth
    # A: 3 rows of K = 9 (3 words) at 0; B: 9 rows of N = 6 (2 words) at 16; C at 64.
    good = {"src": 0, "dst": 100, "count": 3, "k": 9, "n": 6, "src2": 16, "sa": 3, "sb": 2,
            "sc": 2, "mult": 1 << 15, "shift": 16, "transpose": 0}
    cases = {
        "M 0": ({"count": 0}, Cause.SHAPE),
        "K 0": ({"k": 0}, Cause.SHAPE),
        "N 0": ({"n": 0}, Cause.SHAPE),
        "shift 0": ({"shift": 0}, Cause.SHAPE),
        "A stride below its row": ({"sa": 2}, Cause.SHAPE),
        "B stride below its row": ({"sb": 1}, Cause.SHAPE),
        "B^T stride below its row": ({"transpose": 1, "n": 5, "sb": 2}, Cause.SHAPE),
        "C stride below its row": ({"sc": 1}, Cause.SHAPE),
        "A past the end": ({"src": ad - 8, "sa": 3}, Cause.ADDRESS),
        "B past the end": ({"src2": ad - 17}, Cause.ADDRESS),
        "B^T past the end": ({"transpose": 1, "n": 5, "sb": 3, "src2": ad - 14},
                             Cause.ADDRESS),
        "C past the end": ({"dst": ad - 5}, Cause.ADDRESS),
        "C over A": ({"dst": 8}, Cause.ADDRESS),
        "C over B's last row": ({"dst": 33}, Cause.ADDRESS),
        "C ends where B starts": ({"dst": 10}, None),
        "wgt at its memory's end (unused)": ({"wgt": CFG.wgt_depth - 1}, None),
    }
    for name, (change, cause) in cases.items():
        b = ProgramBuilder(CFG)
        b.put(_int8(rng, (L, 1, 60)))
        g_in = b.put(_int8(rng, (5, 1, 3)))
        b.gemm(g_in, _int8(rng, (5, 4)), 0, 1 << 15, 14)   # a good command at pc 0
        _raw(b, **(good | change))
        b.done()
        gold = run_program(CFG, b.act, b.wgt, b.commands)
        assert (gold.cause, gold.pc) == ((cause, 1) if cause else (Cause.NONE, 2)), (
            name, gold.cause, gold.pc)
        host.load(b)
        host.run(limit=100_000)
        st = host.status()
        want = (0, 1, cause, 1) if cause else (0, 0, Cause.NONE, 2)
        assert (st["busy"], st["error"], st["cause"], st["pc"]) == want, (name, st)
        counters = host.counters()   # on a fault the model gives those it defines exactly
        assert {k: counters[k] for k in gold.counters} == gold.counters, name
        if not cause:
            assert counters == program_perf(CFG, b.commands).counters, name
        # (the scratchpad past act_top keeps earlier programs' words: C's are compared when
        # the MATMUL ran)
        f = good | change
        spans = [(0, b.act_top)] + ([] if cause else [(f["dst"], f["dst"] + 6)])
        for lo, hi in spans:
            np.testing.assert_array_equal(host.read_act(lo, hi - lo), gold.act[lo:hi],
                                          err_msg=name)
