"""The energy counters (``act_reads``, ``act_writes``, ``weight_reads``; :mod:`hwaccel.
generators.accel.counters`) on the accelerator's RTL (Verilator C++ harness): every command kind
on ``tiny`` and the attention commands on ``tiny_attention``, each program bit-exact with the
golden interpreter and every counter equal to the cycle model's (:func:`tests.rtl_checks.
run_and_check`), and single commands against counts worked out by hand from the hardware."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rtl_checks import int8 as _int8
from rtl_checks import run_and_check

from hwaccel.generators.accel import ProgramBuilder
from hwaccel.generators.accel.cases import random_requant
from hwaccel.generators.accel.config import MODEL_PRESETS, PRESETS
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.lstm.cases import random_params
from hwaccel.numerics import add_params, gelu_params, layernorm_params, softmax_params
from hwaccel.sim.host import HarnessHost

TINY, ATTN = PRESETS["tiny"], MODEL_PRESETS["tiny_attention"]
ENERGY = ("act_reads", "act_writes", "weight_reads")


def _energy(counters: dict) -> dict:
    return {k: counters[k] for k in ENERGY}


def _one(host, cfg, b, outs, what) -> dict:
    """Run ``b`` (checked as run_and_check checks it); its energy counters, the RTL's (equal
    to the model's)."""
    run_and_check(host, cfg, b, outs, what)
    got = _energy(host.counters())
    assert got == _energy(program_perf(cfg, b.commands).counters), what
    return got


@pytest.fixture(scope="module")
def tiny():
    with HarnessHost.of(TINY) as host:
        yield host


@pytest.fixture(scope="module")
def attn():
    with HarnessHost.of(ATTN) as host:
        yield host


def test_tiny_commands(tiny, seed):
    """CONV (pooled, depthwise), GEMM (K and N over several tiles, weights reused by a second
    M tile), MAXPOOL, ADD (an odd count), AVGPOOL and LSTM in one program."""
    rng = np.random.default_rng(seed)
    L = TINY.lanes
    b = ProgramBuilder(TINY)
    x = b.put(_int8(rng, (5, 7, 6)))
    w = _int8(rng, (6, 5, 3, 3))
    y = b.conv(x, w, *random_requant(rng, 6, 45), padding=1, pool=True)
    d = b.dwconv(x, _int8(rng, (5, 1, 3, 3)), *random_requant(rng, 5, 9), padding=1)
    p = b.maxpool(d)
    k, n = 4 * L * TINY.conv.max_groups // 3 + 5, 3 * L * TINY.conv.max_blocks // 2 + 1
    g_in = b.put(_int8(rng, (k, 1, 70)))
    g = b.gemm(g_in, _int8(rng, (k, n)), *random_requant(rng, n, k))
    a1, a2 = b.put(_int8(rng, (L, 1, 7))), b.put(_int8(rng, (L, 1, 7)))   # 7 words: odd
    s = b.add(a1, a2, add_params(0.6, 0.9), relu=True)
    v = b.avgpool(y, 2, 3)
    lc = TINY.lstm.run(6, 5)
    h = b.lstm(b.put(_int8(rng, (6, 1, 4))), random_params(lc, rng))
    got = _one(tiny, TINY, b, [y, d, p, g, s, v, h], f"seed {seed}")
    assert min(got.values()) > 0


def test_tiny_by_hand(tiny, seed):
    """Single commands whose counts follow from the hardware alone (a fresh program holds no
    weights):

    * GEMM, M rows of K words, N blocks, K and N within one engine tile: the DMA reads each row's
      K words once (``M x K``), the store writes ``M x N``, and the weight DMA reads the K x N
      weight beats and a requantizer beat per block (``(K + 1) x N``);
    * ADD of ``c`` words: reads of two words (``x``, ``x + 1``: both banks) alternate between
      ``a`` and ``b``, ``ceil(c / 2)`` of each, so ``4 x ceil(c / 2)`` bank reads; ``c`` writes;
    * MAXPOOL of a ``W x H`` map of ``B`` blocks: every word once, a quarter of the pixels out."""
    rng = np.random.default_rng(seed)
    L, mg, mb = TINY.lanes, TINY.conv.max_groups, TINY.conv.max_blocks
    m, kw, nb = 37, mg, mb
    b = ProgramBuilder(TINY)
    a = b.put(_int8(rng, (kw * L, 1, m)))
    c = b.gemm(a, _int8(rng, (kw * L, nb * L)), *random_requant(rng, nb * L, kw * L))
    assert _one(tiny, TINY, b, [c], "gemm") == {
        "act_reads": m * kw, "act_writes": m * nb, "weight_reads": (kw + 1) * nb}

    for words in (7, 8):
        b = ProgramBuilder(TINY)
        a1, a2 = b.put(_int8(rng, (L, 1, words))), b.put(_int8(rng, (L, 1, words)))
        s = b.add(a1, a2, add_params(0.7, 0.8))
        assert _one(tiny, TINY, b, [s], f"add of {words}") == {
            "act_reads": 4 * math.ceil(words / 2), "act_writes": words, "weight_reads": 0}

    b = ProgramBuilder(TINY)
    wd, ht, ch = 7, 6, 2 * L
    p = b.maxpool(b.put(_int8(rng, (ch, ht, wd))))
    assert _one(tiny, TINY, b, [p], "maxpool") == {
        "act_reads": wd * ht * 2, "act_writes": (wd // 2) * (ht // 2) * 2, "weight_reads": 0}


def test_attention_commands(attn, seed):
    """MATMUL (B and B^T, K over several engine tiles, N past a block), SOFTMAX (causal),
    LAYERNORM, GELU and a GEMM with the GELU and the residual ADD fused, in one program."""
    rng = np.random.default_rng(seed)
    mg = ATTN.conv.max_groups * ATTN.lanes
    a = ATTN.attention
    b = ProgramBuilder(ATTN)
    outs = []
    for tr in (False, True):
        k, m_, n = mg + 5, 9, 11
        x = b.put(_int8(rng, (k, 1, m_)))
        y = b.put(_int8(rng, (k, 1, n)) if tr else _int8(rng, (n, 1, k)))
        outs.append(b.matmul(x, y, int(rng.integers(1 << 14, 1 << 16)), 18, transpose=tr))
    t = min(a.max_len, 6)
    sm = b.softmax(b.put(_int8(rng, (t, 1, t))), softmax_params(0.1, a.max_len), causal=True)
    ch = min(a.max_channels, 7)
    ln = b.layernorm(b.put(_int8(rng, (ch, 1, 5))),
                     layernorm_params(0.05, 0.05, rng.normal(1, 0.4, ch), rng.normal(0, 0.5, ch)))
    ge = b.gelu(ln, gelu_params(0.05, 0.05))
    g_in = b.put(_int8(rng, (6, 1, 5)))
    res = b.put(_int8(rng, (7, 1, 5)))
    fz = b.gemm(g_in, _int8(rng, (6, 7)), *random_requant(rng, 7, 6),
                gelu=gelu_params(0.05, 0.05), add=(res, add_params(0.5, 0.5), False))
    outs += [sm, ln, ge, fz]
    got = _one(attn, ATTN, b, outs, f"seed {seed}")
    assert min(got.values()) > 0


def test_matmul_by_hand(attn, seed):
    """MATMUL ``A @ B`` (M x K by K x N, K and N within one engine tile): A's DMA reads ``M x
    ceil(K / lanes)`` words, the gatherer reads every row of B below K once per N block
    (``ceil(N / lanes) x K``), the store writes ``M x ceil(N / lanes)``; B^T (N rows of K): a
    beat's rows are N rows, read once per K word (``ceil(K / lanes) x N``). No weight reads."""
    rng = np.random.default_rng(seed)
    L = ATTN.lanes
    m_, k, n = 6, 2 * L + 1, L + 2
    kw, nw = math.ceil(k / L), math.ceil(n / L)
    for tr, gathered in ((False, nw * k), (True, kw * n)):
        b = ProgramBuilder(ATTN)
        x = b.put(_int8(rng, (k, 1, m_)))
        y = b.put(_int8(rng, (k, 1, n)) if tr else _int8(rng, (n, 1, k)))
        c = b.matmul(x, y, int(rng.integers(1 << 14, 1 << 16)), 17, transpose=tr)
        assert _one(attn, ATTN, b, [c], f"transpose={tr}") == {
            "act_reads": m_ * kw + gathered, "act_writes": m_ * nw, "weight_reads": 0}


def test_bench_rows_carry_every_counter(tiny):
    """``hwaccel bench accel --workload``'s whole row: ``model_counters`` (the cycle model's,
    summed over the programs; also in ``--model-only`` rows) equal to the RTL's ``counters``
    summed, the energy counters among them."""
    import torch
    from torch import nn

    from hwaccel.bench.workloads import model_rows
    from hwaccel.generators.accel import COUNTERS

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 4 * 4, 10)).eval()
    cal = torch.randn(16, 1, 8, 8)
    whole = model_rows("m", model, cal, cal[:2], "tiny", host=tiny, layers=False)[0]
    assert whole["mismatches"] == 0
    summed = {k: sum(c[k] for c in whole["counters"]) for k in COUNTERS}
    assert whole["model_counters"] == summed
    assert min(summed[k] for k in ENERGY) > 0
    only = model_rows("m", model, cal, cal[:2], "tiny", layers=False, rtl=False)[0]
    assert only["model_counters"] == summed
