"""The residual ADD fused into a GEMM's result path (:mod:`hwaccel.generators.accel.fuse`) on
``tiny_attention``: the fused GEMM leaves exactly what the GEMM followed by an ADD of its output
and the residual leaves (golden; with and without the fused GELU and ReLUs), and the RTL equals
golden bit for bit with every counter equal to the cycle model (K, N and M tiled GEMMs)."""

from __future__ import annotations

import numpy as np
from rtl_checks import int8 as _int8
from rtl_checks import run_and_check

from hwaccel.generators.accel import ProgramBuilder, run_program
from hwaccel.generators.accel.cases import random_requant
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.driver import from_words
from hwaccel.generators.accel.perf import program_perf
from hwaccel.numerics import add_params, gelu_params

CFG = MODEL_PRESETS["tiny_attention"]
SHAPES = ((5, 3, 4), (11, 8, 7), (20, 13, 17), (7, 6, 70))   # K, N, M: within and across tiles


def _case(rng, k, n, m):
    x, r = _int8(rng, (k, 1, m)), _int8(rng, (n, 1, m))
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int64)
    rq = random_requant(rng, n, k)
    p = add_params(float(rng.uniform(0.3, 2)), float(rng.uniform(0.3, 2)))
    gp = gelu_params(0.05, 0.05) if rng.integers(0, 2) else None
    return x, r, w, rq, p, gp, bool(rng.integers(0, 2)), bool(rng.integers(0, 2))


def _fused(b, case):
    x, r, w, rq, p, gp, relu, add_relu = case
    return b.gemm(b.put(x), w, *rq, relu=relu, gelu=gp, add=(b.put(r), p, add_relu))


def test_fused_add_equals_gemm_then_add(seed):
    rng = np.random.default_rng(seed)
    for k, n, m in SHAPES:
        case = _case(rng, k, n, m)
        x, r, w, rq, p, gp, relu, add_relu = case
        fused, pair = ProgramBuilder(CFG), ProgramBuilder(CFG)
        y_f = _fused(fused, case)
        g = pair.gemm(pair.put(x), w, *rq, relu=relu, gelu=gp)
        y_p = pair.add(g, pair.put(r), p, relu=add_relu)
        words = []
        for b, y in ((fused, y_f), (pair, y_p)):
            b.done()
            gold = run_program(CFG, b.act, b.wgt, b.commands)
            assert gold.done and not gold.error, (k, n, m, gold.cause)
            words.append(from_words(gold.act, y))
        np.testing.assert_array_equal(words[0], words[1], err_msg=f"K {k} N {n} M {m}")
        assert program_perf(CFG, fused.commands).cycles < program_perf(CFG, pair.commands).cycles


HOST_CONFIG = CFG   # the accelerator the `host` fixture (conftest) builds


def test_fused_add_rtl_bit_exact_and_cycle_exact(host, seed):
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(CFG)
    outs = [_fused(b, _case(rng, k, n, m)) for k, n, m in SHAPES]
    run_and_check(host, CFG, b, outs, f"seed {seed}")
