"""GELU fused into a GEMM's result path (:mod:`hwaccel.generators.accel.fuse`) on
``tiny_attention``: the fused GEMM stores exactly what the GEMM followed by a GELU command
stores (golden), the RTL equals golden bit for bit with every counter equal to the cycle model
(K, N and M tiled GEMMs, the same fused command twice, an unfused GEMM on the same weights
between fused ones), and a table that would start below weight word 0 faults as golden does.
"""

from __future__ import annotations

import numpy as np
import pytest
from rtl_checks import int8 as _int8
from rtl_checks import run_and_check

from hwaccel.generators.accel import Cause, Op, ProgramBuilder, run_program
from hwaccel.generators.accel.cases import random_requant
from hwaccel.generators.accel.config import MODEL_PRESETS, PRESETS
from hwaccel.generators.accel.driver import encode
from hwaccel.generators.accel.fuse_model import gelu_beats
from hwaccel.generators.accel.isa import command_layout
from hwaccel.generators.accel.perf import program_perf
from hwaccel.numerics import gelu_params

CFG = MODEL_PRESETS["tiny_attention"]
FUSE_BIT = command_layout(CFG)["fuse"].offset   # fuse.gelu is the field's bit 0


def _gemm_args(rng, k, n, m):
    x = _int8(rng, (k, 1, m))
    w = rng.integers(-128, 128, size=(k, n), dtype=np.int64)
    bias, mult, shift = random_requant(rng, n, k)
    return x, w, bias, mult, shift


def _shapes(rng):
    """K within and beyond a K tile (3 words of 4), N within and beyond an N tile (2 blocks),
    M within a row, several rows and several 8 x 8 tiles."""
    return [(int(rng.integers(1, 12)), int(rng.integers(1, 8)), int(rng.integers(1, 8))),
            (int(rng.integers(13, 30)), int(rng.integers(9, 20)), int(rng.integers(9, 30))),
            (int(rng.integers(1, 12)), int(rng.integers(1, 9)), int(rng.integers(65, 140)))]


def test_fused_equals_gemm_then_gelu(seed):
    """Golden: the fused GEMM's words equal the unfused pair's, and it saves cycles."""
    rng = np.random.default_rng(seed)
    for k, n, m in _shapes(rng):
        x, w, bias, mult, shift = _gemm_args(rng, k, n, m)
        relu = bool(rng.integers(0, 2))
        gp = gelu_params(float(rng.uniform(0.02, 0.1)), float(rng.uniform(0.02, 0.1)))
        fused, pair = ProgramBuilder(CFG), ProgramBuilder(CFG)
        y_f = fused.gemm(fused.put(x), w, bias, mult, shift, relu=relu, gelu=gp)
        y_p = pair.gelu(pair.gemm(pair.put(x), w, bias, mult, shift, relu=relu), gp)
        outs = []
        for b, y in ((fused, y_f), (pair, y_p)):
            b.done()
            gold = run_program(CFG, b.act, b.wgt, b.commands)
            assert gold.done and not gold.error, (k, n, m, gold.cause)
            words = gold.act[y.addr:y.addr + y.words]
            outs.append(words)
        np.testing.assert_array_equal(outs[0], outs[1], err_msg=f"K {k} N {n} M {m}")
        cyc_f = program_perf(CFG, fused.commands).cycles
        cyc_p = program_perf(CFG, pair.commands).cycles
        assert cyc_f < cyc_p, (k, n, m, cyc_f, cyc_p)


def test_no_fuse_field_without_attention():
    with pytest.raises(ValueError, match="no attention units"):
        encode(PRESETS["tiny"], Op.GEMM, fuse={"gelu": 1})
    b = ProgramBuilder(PRESETS["tiny"])
    with pytest.raises(ValueError, match="no attention units"):
        b.gemm(b.put(np.zeros((4, 1, 2), dtype=np.int64)), np.zeros((4, 4)), 0, 1 << 15, 16,
               gelu=gelu_params(0.05, 0.05))


HOST_CONFIG = CFG   # the accelerator the `host` fixture (conftest) builds


def test_fused_gelu_rtl_bit_exact_and_cycle_exact(host, seed):
    rng = np.random.default_rng(seed)
    b, outs = ProgramBuilder(CFG), []
    for i, (k, n, m) in enumerate(_shapes(rng)):
        x, w, bias, mult, shift = _gemm_args(rng, k, n, m)
        gp = gelu_params(float(rng.uniform(0.02, 0.1)), float(rng.uniform(0.02, 0.1)))
        outs.append(b.gemm(b.put(x), w, bias, mult, shift, relu=bool(i % 2), gelu=gp))
        if i == 0:
            fused = b.commands[-1]
            b.raw(fused)                       # again: its first tile reloads (table first)
            b.raw(fused & ~(1 << FUSE_BIT))    # unfused on the same weights: reuses them
            b.raw(fused)                       # fused again after it: the table reloads
            outs.append(b.gelu(b.gemm(b.put(x), w, bias, mult, shift, relu=False, gelu=gp),
                               gp))            # a fused GEMM's words through GELU again
    run_and_check(host, CFG, b, outs, f"seed {seed}")


def test_table_below_word_0_faults(host, seed):
    rng = np.random.default_rng(seed)
    t = gelu_beats(CFG)
    b = ProgramBuilder(CFG)
    x, w, bias, mult, shift = _gemm_args(rng, 6, 5, 3)
    b.gemm(b.put(x), w, bias, mult, shift, gelu=gelu_params(0.05, 0.05))
    good = b.commands[-1]
    wgt_f = command_layout(CFG)["wgt"]
    mask = ((1 << wgt_f.width) - 1) << wgt_f.offset
    bad = (good & ~mask) | ((t - 1) << wgt_f.offset)   # its table would start at word -1
    b.raw(bad)
    b.done()
    gold = run_program(CFG, b.act, b.wgt, b.commands)
    assert (gold.cause, gold.pc) == (Cause.SHAPE, 1)
    host.load(b)
    host.run(limit=100_000)
    st = host.status()
    assert (st["busy"], st["error"], st["cause"], st["pc"]) == (0, 1, Cause.SHAPE, 1), st
    np.testing.assert_array_equal(host.read_act(0, b.act_top), gold.act[: b.act_top])
