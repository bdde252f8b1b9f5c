"""The soft reset on ``tiny``'s RTL (Verilator C++ harness). Its resets are registers, so the
units are reset at the end of the cycle after the host's write; the host sees the accelerator
idle from that cycle on: STATUS reads idle, the memories take its writes and a start written
then runs the program, bit-exact with every counter equal to the model.

The datapaths' data registers have no reset (the reset clears the valid bits that mark them):
the second test starts them all ones (``rw.STALE_POISON``) and soft-resets a program of every
unit mid-run, so a run after a reset finds them holding the abandoned job's words."""

from __future__ import annotations

import re

import numpy as np

from hwaccel.generators.accel import PRESETS, ProgramBuilder, run_program
from hwaccel.generators.accel.cases import random_requant
from hwaccel.generators.accel.driver import from_words
from hwaccel.generators.accel.host import address, start_word
from hwaccel.generators.accel.isa import Region
from hwaccel.generators.accel.perf import program_perf
from hwaccel.numerics import add_params

HOST_CONFIG = CFG = PRESETS["tiny"]


def _program(rng, *, eltwise=False):
    """Two CONVs and a GEMM (and with ``eltwise`` an ADD and two AVGPOOLs), none in place: a
    rerun from the start gives the same outputs."""
    b = ProgramBuilder(CFG)
    x = b.put(rng.integers(-128, 128, (6, 6, 5)))
    y = b.conv(x, rng.integers(-128, 128, (5, 6, 3, 3)), *random_requant(rng, 5, 54))
    z = b.conv(y, rng.integers(-128, 128, (7, 5, 1, 1)), *random_requant(rng, 7, 5))
    g = b.gemm(b.put(rng.integers(-128, 128, (9, 1, 5))), rng.integers(-128, 128, (9, 6)),
               *random_requant(rng, 6, 9))
    outs = [y, z, g]
    if eltwise:
        u, v = (b.put(rng.integers(-128, 128, (6, 4, 5))) for _ in range(2))
        outs += [b.add(u, v, add_params(0.7, 1.3), relu=True), b.avgpool(u, 2, 2),
                 b.avgpool(v, 4, 5)]
    b.done()
    return b, outs


def _check(host, b, outs, gold, what):
    st = host.status()
    assert st["done"] and not st["error"], (what, st)
    assert host.counters() == program_perf(CFG, b.commands).counters, what
    for t in outs:
        np.testing.assert_array_equal(host.read_tensor(t), from_words(gold.act, t),
                                      err_msg=what)


def test_start_and_writes_in_the_cycle_after_a_soft_reset(host, seed):
    rng = np.random.default_rng(seed)
    b, outs = _program(rng)
    gold = run_program(CFG, b.act, b.wgt, b.commands)
    assert gold.done and not gold.error
    total = program_perf(CFG, b.commands).counters["cycles"]
    host.load(b)
    for at in (1, 4, total // 3, total - 3):
        # A start in the cycle after a soft reset mid-program (the processor is being reset in
        # that cycle): the program runs again from its start.
        host.write(address(CFG, Region.REG, 0), start_word(0))
        host.h.step(at)
        assert host.status()["busy"] == 1, at
        host.soft_reset()
        host.run(limit=200_000)
        _check(host, b, outs, gold, f"start after a reset at cycle {at}")
        # Writes in the cycle after a soft reset mid-program reach the memories; STATUS read
        # then is idle.
        host.write(address(CFG, Region.REG, 0), start_word(0))
        host.h.step(at)
        host.soft_reset()
        host.load(b)
        host.soft_reset()
        st = host.status()
        assert (st["busy"], st["done"], st["error"], st["pc"]) == (0, 0, 0, 0), (at, st)
        host.run(limit=200_000)
        _check(host, b, outs, gold, f"writes after a reset at cycle {at}")


def test_data_registers_without_reset_poisoned_and_after_resets(seed, tmp_path):
    from hwaccel.emit import emit
    from hwaccel.formal.props import replaced
    from hwaccel.generators.conv import rw
    from hwaccel.sim.host import HarnessHost
    from hwaccel.sim.runner import Design

    with replaced(rw, "STALE_POISON", True):   # elaborated afresh: not the cached design
        res = emit(CFG, tmp_path, cache=False)
    design = Design(res.verilog, res.sidecar, CFG.slug)
    text = design.verilog.read_text()
    for name in ("s2_a", "avg_cur", "add_w0"):
        found = re.search(rf"reg \[(\d+):0\] {name} = \d+'([hd])([0-9a-f]+);", text)
        assert found, f"{name}: no register"
        top, base, digits = found.groups()
        assert int(digits, 16 if base == "h" else 10) == (1 << int(top) + 1) - 1, \
            f"{name} does not start poisoned"
    rng = np.random.default_rng(seed)
    b, outs = _program(rng, eltwise=True)
    gold = run_program(CFG, b.act, b.wgt, b.commands)
    assert gold.done and not gold.error
    total = program_perf(CFG, b.commands).counters["cycles"]
    with HarnessHost(design, CFG) as host:
        host.load(b)
        host.run(limit=200_000)
        _check(host, b, outs, gold, "from power-up")
        for at in sorted({int(v) for v in rng.integers(5, total - 5, 6)}):
            host.write(address(CFG, Region.REG, 0), start_word(0))
            host.h.step(at)
            host.soft_reset()
            host.run(limit=200_000)
            _check(host, b, outs, gold, f"after a soft reset at cycle {at} of {total}")
