"""The accelerator's RTL: cocotb (verification path) and the C++ harness (runtime path) against
the golden interpreter, and against each other."""

from __future__ import annotations

import numpy as np

from hwaccel.generators.accel import PRESETS, Cause, Op, ProgramBuilder, Region, run_program
from hwaccel.generators.accel.cases import cnn_program, random_program, random_requant
from hwaccel.generators.accel.driver import encode, from_words
from hwaccel.generators.accel.host import address
from hwaccel.generators.accel.isa import Reg
from hwaccel.generators.conv.layer import ConvLayer, descriptor
from hwaccel.sim.host import HarnessHost
from hwaccel.sim.runner import design_for, run_bench
from hwaccel.toolchain import lint_verilog


def test_tiny_cocotb_then_harness_identical(seed):
    cfg = PRESETS["tiny"]
    design = design_for(cfg)
    lint_verilog(design.verilog, design.top)
    seeds = [seed + i for i in range(8)]
    res = run_bench(design, "sim.tb_accel", {"seeds": seeds, "commands": 8,
                                                     "seed": seed}, seed=seed)
    assert [c["mismatches"] for c in res["programs"]] == [0] * len(seeds)
    assert len(res["faults"]) >= 10 and all(c["cause"] for c in res["faults"])
    assert [c["reset_at"] for c in res["soft_reset"]] == [5, 40, 150]
    # The same programs in the C++ harness: the same scratchpad and every counter equal.
    host = HarnessHost(design, cfg)
    try:
        for s, case in zip(seeds, res["programs"]):
            prog = random_program(cfg, np.random.default_rng(s), 8)
            gold = run_program(cfg, prog.act, prog.wgt, prog.commands)
            host.load(prog)
            host.run(limit=200_000)
            assert host.counters() == case["counters"], f"seed {s}"
            got = host.read_act(0, prog.act_top)
            np.testing.assert_array_equal(got, gold.act[: prog.act_top], err_msg=f"seed {s}")
    finally:
        host.close()


def test_cnn_five_layers_as_one_program(seed):
    # The ecp5 preset (8 x 8 fabric) holds the whole CNN and builds much faster than default;
    # `hwaccel bench accel` runs it on default.
    cfg = PRESETS["ecp5"]
    cnn = cnn_program(cfg, 2, seed)
    b = cnn.builder
    gold = run_program(cfg, b.act, b.wgt, b.commands)
    design = design_for(cfg)
    lint_verilog(design.verilog, design.top)
    host = HarnessHost(design, cfg)
    try:
        host.load(b)
        host.run(limit=1_000_000)
        status, counters = host.status(), host.counters()
        got = host.read_tensor(cnn.outputs)
    finally:
        host.close()
    assert status["done"] and not status["error"], status
    np.testing.assert_array_equal(got, from_words(gold.act, cnn.outputs), err_msg=f"seed {seed}")
    assert counters["commands"] == len(b.commands) == 10  # 2 x 4 convs, 1 GEMM, DONE
    assert counters["mac_slots"] == gold.counters["mac_slots"]
    # Each layer loads its weights once for both images: every stored beat moves exactly once.
    assert counters["load_cycles"] == gold.counters["load_cycles"] == b.wgt_top


def test_watchdog_timeout_and_fence_in_the_harness(seed):
    """TIMEOUT for real: a 3x3 conv over 12 channels on the tiny fabric (4 lanes) spends 27
    cycles on each result beat (9 taps x 3 channel groups) and, once its line buffer is full,
    moves no other word meanwhile; with WATCHDOG tightened below that gap it faults at its pc
    and the engines are reset with it, so the next run needs no soft reset. Then FENCE: the same
    layer twice loads once, with a FENCE between it loads twice, exactly as the golden model
    counts, and the outputs stay bit-exact."""
    cfg = PRESETS["tiny"]
    rng = np.random.default_rng(seed)
    host = HarnessHost(design_for(cfg), cfg)
    watchdog = address(cfg, Region.REG, Reg.WATCHDOG)
    try:
        b = ProgramBuilder(cfg)
        x = b.put(rng.integers(-128, 128, (4, 8, 8)))
        b.conv(x, rng.integers(-128, 128, (4, 4, 1, 1)), *random_requant(rng, 4, 4))
        y = b.conv(b.put(rng.integers(-128, 128, (12, 8, 8))),
                   rng.integers(-128, 128, (8, 12, 3, 3)), *random_requant(rng, 8, 108))
        b.done()
        gold = run_program(cfg, b.act, b.wgt, b.commands)
        host.load(b)
        # A limit with bits set above the register's width is out of range: the default
        # (not its low bits, 26, which would time out).
        for limit, want in ((26, (0, 1, Cause.TIMEOUT, 1)), (28, (1, 0, Cause.NONE, 2)),
                            ((1 << 40) | 26, (1, 0, Cause.NONE, 2))):
            host.write(watchdog, limit)
            host.run(limit=100_000)
            st = host.status()
            assert (st["busy"], st["done"], st["error"], st["cause"], st["pc"]) == (0, *want), (
                f"WATCHDOG {limit}: status {st} (seed {seed})")
        np.testing.assert_array_equal(host.read_tensor(y), from_words(gold.act, y),
                                      err_msg=f"seed {seed}")
        host.write(watchdog, 0)

        w = rng.integers(-128, 128, (6, 5, 3, 3))
        rq = random_requant(rng, 6, 45)
        loads = []
        for fence in (False, True):
            b = ProgramBuilder(cfg)
            xs = [b.put(rng.integers(-128, 128, (5, 6, 7))) for _ in range(2)]
            ys = [b.conv(xs[0], w, *rq)]
            if fence:
                b.fence()
            ys.append(b.conv(xs[1], w, *rq))
            b.done()
            gold = run_program(cfg, b.act, b.wgt, b.commands)
            host.load(b)
            host.run(limit=100_000)
            counters = host.counters()
            assert counters["load_cycles"] == gold.counters["load_cycles"], f"seed {seed}"
            for t in ys:
                np.testing.assert_array_equal(host.read_tensor(t), from_words(gold.act, t))
            loads.append(counters["load_cycles"])
        assert loads == [loads[0], 2 * loads[0]] and loads[0] == 2 * 9 * 2 + 2
    finally:
        host.close()


def test_tiled_gemm_ranges_are_checked_whole(seed):
    """A GEMM tiled in K or N reads all of A (count x kw words), writes all of C (count x nb)
    and reads (kw + 1) x nb weight words: each of these one word past its memory is an ADDRESS
    fault at the GEMM, although its first tile alone (the template's groups and blocks) fits."""
    cfg = PRESETS["tiny"]
    c, ad, wd = cfg.conv, cfg.act_depth, cfg.wgt_depth
    mg, mb, count = c.max_groups, c.max_blocks, 2
    k_tiled = descriptor(c, ConvLayer(1, 1, mg * c.lanes, c.block, 1))    # groups mg, 1 block
    n_tiled = descriptor(c, ConvLayer(1, 1, c.lanes, mb * c.block, 1))    # 1 group, mb blocks
    cases = {  # name: (template, fields); each range ends one word past its memory
        "a": (k_tiled, {"kw": mg + 2, "nb": 1, "src": ad + 1 - count * (mg + 2), "dst": 0}),
        "c": (n_tiled, {"kw": 1, "nb": mb + 1, "src": 0, "dst": ad + 1 - count * (mb + 1)}),
        "wgt": (k_tiled, {"kw": mg + 1, "nb": 1, "src": 0, "dst": 64, "wgt": wd - mg - 1}),
    }
    rng = np.random.default_rng(seed)
    host = HarnessHost(design_for(cfg), cfg)
    try:
        for name, (desc, fields) in cases.items():
            b = ProgramBuilder(cfg)
            b.put(rng.integers(-128, 128, (c.lanes, 1, 1)))
            b.raw(encode(cfg, Op.GEMM, desc=desc, count=count, **fields))
            b.done()
            gold = run_program(cfg, b.act, b.wgt, b.commands)
            assert (gold.cause, gold.pc) == (Cause.ADDRESS, 0), name
            host.load(b)
            host.run(limit=10_000)
            st = host.status()
            assert (st["busy"], st["error"], st["cause"], st["pc"]) == (0, 1, Cause.ADDRESS, 0), (
                f"{name} range one word past its memory: status {st}")
            counters = host.counters()
            assert {k: counters[k] for k in gold.counters} == gold.counters, name
    finally:
        host.close()
