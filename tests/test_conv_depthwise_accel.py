"""Depthwise CONV on the accelerator: one command, one engine job per ``dw_groups`` channel groups
(the engine walks them group after group; runs of one word, stride ``nb``, then the next word).
The golden interpreter against the conv golden model of the whole layer, then the ``tiny`` RTL
(C++ harness) against the golden interpreter and the cycle model."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_checks import int8 as _int8

from hwaccel.generators.accel import PRESETS, run_program
from hwaccel.generators.accel.cases import random_program, random_requant
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.driver import ProgramBuilder, encode, from_words
from hwaccel.generators.accel.isa import Cause, Op
from hwaccel.generators.accel.model import decode
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.conv.layer import ConvLayer
from hwaccel.generators.conv.model import conv_golden

TINY = PRESETS["tiny"]


def _dw_program(cfg, rng, c, h, w, kernel, stride, padding, relu, pool):
    b = ProgramBuilder(cfg)
    x = _int8(rng, (c, h, w))
    wt = _int8(rng, (c, 1, *kernel))
    rq = random_requant(rng, c, kernel[0] * kernel[1])
    t = b.dwconv(b.put(x), wt, *rq, stride=stride, padding=padding, relu=relu, pool=pool)
    b.done()
    layer = ConvLayer(h, w, c, c, kernel, stride, padding, relu, pool, True)
    return b, t, conv_golden(layer, x, wt, *rq)


@pytest.mark.parametrize("c, h, w, kernel, stride, padding, pool", [
    (9, 7, 6, (3, 3), 2, (0, 0, 1, 1), False),      # TensorFlow's "same" at stride 2, 3 groups
    (4, 5, 5, (3, 3), 1, 1, True),                  # one group, pooled
    (6, 4, 7, (2, 3), (1, 2), (1, 0, 0, 1), False),  # non-square, per-axis stride and sides
])
def test_golden_interpreter_equals_the_layer(c, h, w, kernel, stride, padding, pool, seed):
    rng = np.random.default_rng(seed)
    b, t, expect = _dw_program(TINY, rng, c, h, w, kernel, stride, padding, True, pool)
    res = run_program(TINY, b.act, b.wgt, b.commands)
    assert res.done and not res.error, res.cause
    np.testing.assert_array_equal(from_words(res.act, t), expect, err_msg=f"seed {seed}")
    perf = program_perf(TINY, b.commands)
    k = 1 if pool else TINY.conv.dw_groups
    groups = -(-c // TINY.lanes)
    assert perf.commands[0].jobs == -(-groups // k)
    assert perf.counters["mac_slots"] == res.counters["mac_slots"]



def test_samples_share_one_copy_of_the_weights():
    """A depthwise layer run for several images stores its weights once, as CONV's does: the
    key is the caller's weight and bias objects, not a copy made inside the call."""
    rng = np.random.default_rng(5)
    b = ProgramBuilder(TINY)
    wt, rq = _int8(rng, (6, 1, 3, 3)), random_requant(rng, 6, 9)
    xs = [b.put(_int8(rng, (6, 5, 5))) for _ in range(3)]
    outs = [b.dwconv(x, wt, *rq, padding=1) for x in xs]
    once = b.wgt_top
    b.dwconv(xs[0], wt, *rq, padding=0)       # another layer shape: its own copy
    assert once * 2 == b.wgt_top
    b.done()
    res = run_program(TINY, b.act, b.wgt, b.commands)
    assert res.done and not res.error, res.cause
    for x, t in zip(xs, outs):
        layer = ConvLayer(5, 5, 6, 6, (3, 3), 1, 1, True, False, True)
        np.testing.assert_array_equal(from_words(res.act, t),
                                      conv_golden(layer, from_words(b.act, x), wt, *rq))

def test_depthwise_gemm_faults():
    """A depthwise descriptor on a GEMM is a SHAPE fault."""
    from hwaccel.generators.conv.layer import descriptor

    d = descriptor(TINY.conv, ConvLayer(1, 1, 4, 4, 1, 1, 0, True, False))
    act, done = np.zeros((TINY.act_depth, TINY.lanes)), encode(TINY, Op.DONE)
    ok = run_program(TINY, act, [], [encode(TINY, Op.GEMM, desc=d, count=1, kw=1, nb=1), done])
    assert ok.done and not ok.error
    cmd = encode(TINY, Op.GEMM, desc={**d, "depthwise": 1}, count=1, kw=1, nb=1)
    res = run_program(TINY, act, [], [cmd, done])
    assert res.error and res.cause == Cause.SHAPE


@pytest.mark.parametrize("preset", ["tiny", "tiny_attention"])
def test_tiny_rtl_equals_golden_and_cycle_model(preset, seed):
    """Depthwise layers alone (1-3 groups, stride 1/2 per axis, padding per side, pool) and
    random programs that mix them with every other command, in the C++ harness. On
    ``tiny_attention`` the kernels reach 5 x 5 (``dw_max_kernel``), a pixel issuing only the
    chunks its kernel fills (ring by ring, ``dw_taps``): 7 for a 5 x 5, 3 for a 3 x 3."""
    from hwaccel.sim.host import HarnessHost
    from hwaccel.sim.runner import design_for

    cfg = MODEL_PRESETS.get(preset) or PRESETS[preset]
    dk, pad = cfg.conv.dw_kernel, cfg.conv.max_pad
    assert [cfg.conv.dw_issue(k, k) for k in (3, 5) if k <= dk] == ([3] if dk == 3 else [3, 7])
    rng = np.random.default_rng(seed)
    programs, kernels = [], set()
    for _ in range(10):
        c = int(rng.integers(1, 3 * cfg.lanes + 1))
        h, w = int(rng.integers(3, 8)), int(rng.integers(3, 8))
        kernel = (int(rng.integers(1, dk + 1)), int(rng.integers(1, dk + 1)))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = (min(int(rng.integers(0, kernel[0])), pad),
                   min(int(rng.integers(0, kernel[1])), pad), 0, 0)
        if h + padding[0] < kernel[0] or w + padding[1] < kernel[1]:
            continue
        layer = ConvLayer(h, w, c, c, kernel, stride, padding, True, False, True)
        kernels.add(max(kernel))
        pool = bool(min(layer.out_size) >= 2 and rng.random() < 0.3)
        programs.append(_dw_program(cfg, rng, c, h, w, kernel, stride, padding,
                                    bool(rng.random() < 0.5), pool)[0])
    assert dk == 3 or max(kernels) >= 4, kernels
    programs += [random_program(cfg, np.random.default_rng(seed + i), 8) for i in range(4)]
    host = HarnessHost(design_for(cfg), cfg)
    try:
        for i, b in enumerate(programs):
            gold = run_program(cfg, b.act, b.wgt, b.commands)
            assert gold.done, (i, gold.cause)
            host.load(b)
            host.run(limit=1_000_000)
            np.testing.assert_array_equal(host.read_act(0, b.act_top), gold.act[:b.act_top],
                                          err_msg=f"program {i} (seed {seed})")
            assert host.counters() == program_perf(cfg, b.commands).counters, (i, seed)
        if cfg.conv.dw_trim:   # a group's weight words other than its kernel's: SHAPE
            for words in (cfg.conv.dw_words, cfg.conv.dw_issue(3, 3) - 1):
                b = _dw_program(cfg, rng, 4, 5, 5, (3, 3), 1, 1, True, False)[0]
                c = decode(cfg, b.commands[0])
                b.commands[0] = encode(cfg, Op.CONV, desc=c["desc"] | {"weight_words": words},
                                       src=c["src"], dst=c["dst"], wgt=c["wgt"], nb=c["nb"])
                gold = run_program(cfg, b.act, b.wgt, b.commands)
                assert (gold.error, gold.cause, gold.pc) == (True, Cause.SHAPE, 0), words
                host.load(b)
                host.run(limit=100_000)
                st = host.status()
                assert (st["error"], st["cause"], st["pc"]) == (1, Cause.SHAPE, 0), (words, st)
    finally:
        host.close()


def test_layer_perf_is_the_accelerators_jobs(seed):
    """conv.perf.layer_perf of a depthwise layer (its 4 channel groups in one job) equals the
    accelerator cycle model's conv_busy for the same CONV (DS-CNN's 25x5x64 layer on default),
    and its utilization stays under the mapping's bound (9 taps on 16 lanes)."""
    from hwaccel.generators.conv.cases import DEPTHWISE_LAYERS
    from hwaccel.generators.conv.perf import layer_perf

    cfg = PRESETS["default"]
    layer = DEPTHWISE_LAYERS["dscnn_dw"]
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(cfg)
    b.dwconv(b.put(_int8(rng, (64, 25, 5))), _int8(rng, (64, 1, 3, 3)),
             *random_requant(rng, 64, 9), padding=1)
    b.done()
    perf = program_perf(cfg, b.commands)
    lp = layer_perf(cfg.conv, layer)
    assert perf.commands[0].jobs == 1
    assert lp.cycles == perf.counters["conv_busy"]
    assert lp.macs == 25 * 5 * 64 * 9
    assert 0 < lp.utilization < 9 / 16


_GROUP_CASES = [
    (12, 1, 1, (3, 3), 1, 1),             # a pixel a group: the weights only just in time
    (12, 2, 3, (3, 3), 1, 1),             # the writer finishes a group's image before its pixels
    (8, 8, 5, (3, 3), 1, 1),              # taller than the ring: the writer runs a group ahead
    (12, 8, 7, (3, 3), 2, (0, 0, 1, 1)),  # the last row dropped: stored after the group's pixels
    (7, 6, 3, (1, 3), (2, 1), (0, 1, 0, 1)),
]


@pytest.mark.parametrize("preset, c, h, w, kernel, stride, padding", [
    *(("tiny", *case) for case in _GROUP_CASES),
    *(("tiny_attention", *case) for case in _GROUP_CASES),
    ("tiny_attention", 12, 6, 6, (5, 5), 1, 2),              # 7 chunks a pixel, 7 words a group
    ("tiny_attention", 12, 7, 5, (5, 3), 2, (2, 1, 1, 1)),   # the side's 7, not 5 x 3's
])
def test_tiny_rtl_several_groups_a_job(preset, c, h, w, kernel, stride, padding, seed):
    """A job walking several channel groups (dw_groups = 2: 12 channels are a job of two groups
    and one of one), then the same command again (the engine keeps its weights: no load beats):
    bit-exact on the RTL and every counter equal to the cycle model's; on ``tiny_attention``
    each group loads only its kernel's weight words (``dw_issue``)."""
    from hwaccel.sim.host import HarnessHost
    from hwaccel.sim.runner import design_for

    cfg = MODEL_PRESETS.get(preset) or PRESETS[preset]
    assert cfg.conv.dw_groups == 2
    rng = np.random.default_rng(seed)
    b, t, expect = _dw_program(cfg, rng, c, h, w, kernel, stride, padding, False, False)
    b.commands.insert(1, b.commands[0])   # the same CONV twice: the second reuses the weights
    gold = run_program(cfg, b.act, b.wgt, b.commands)
    assert gold.done and not gold.error, gold.cause
    np.testing.assert_array_equal(from_words(gold.act, t), expect, err_msg=f"seed {seed}")
    perf = program_perf(cfg, b.commands)
    nb = -(-c // cfg.lanes)
    assert [cmd.jobs for cmd in perf.commands[:2]] == [-(-nb // 2)] * 2
    assert perf.commands[0].load_cycles == nb * (cfg.conv.dw_issue(*kernel) + 1)
    # Only a one-job command keeps its weights (a second job replaced the first one's).
    assert perf.commands[1].load_cycles == (0 if nb <= 2 else perf.commands[0].load_cycles)
    host = HarnessHost(design_for(cfg), cfg)
    try:
        host.load(b)
        host.run(limit=100_000)
        np.testing.assert_array_equal(host.read_act(0, b.act_top), gold.act[:b.act_top],
                                      err_msg=f"seed {seed}")
        assert host.counters() == perf.counters, seed
    finally:
        host.close()
