"""The accelerator's RTL: cocotb (verification path) and the C++ harness (runtime path) against
the golden interpreter, and against each other."""

from __future__ import annotations

import numpy as np

from hwaccel.generators.accel import PRESETS, run_program
from hwaccel.generators.accel.cases import cnn_program, random_program
from hwaccel.generators.accel.driver import from_words
from hwaccel.generators.accel.host import HarnessHost
from hwaccel.sim.runner import design_for, run_bench
from hwaccel.toolchain import lint_verilog


def test_tiny_cocotb_then_harness_identical(seed):
    cfg = PRESETS["tiny"]
    design = design_for(cfg)
    lint_verilog(design.verilog, design.top)
    seeds = [seed + i for i in range(8)]
    res = run_bench(design, "hwaccel.sim.tb_accel", {"seeds": seeds, "commands": 8,
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
