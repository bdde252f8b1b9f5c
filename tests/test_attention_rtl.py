"""SOFTMAX, LAYERNORM and GELU on the accelerator's RTL (``tiny_attention``, Verilator C++
harness): bit-exact with the golden interpreter and every counter equal to the cycle model, the
checks faulting as the golden interpreter's do (fields, ranges, then the parameters as they
load), a soft reset mid-job and a TIMEOUT leaving the accelerator ready for the next program.
MATMUL on the RTL: ``tests/test_matmul_rtl.py``.
"""

from __future__ import annotations

import numpy as np
from rtl_checks import int8 as _int8
from rtl_checks import run_and_check

from hwaccel.generators.accel import Cause, Op, ProgramBuilder, Region, run_program
from hwaccel.generators.accel.attn_isa import ln_setup_layout
from hwaccel.generators.accel.cases import random_requant
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.driver import encode
from hwaccel.generators.accel.driver_attention import ATTN_DEFAULTS
from hwaccel.generators.accel.host import address, start_word
from hwaccel.generators.accel.isa import Reg
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.attention.packing import LN_PARAM_BITS, ln_param_entry, pack, per_beat
from hwaccel.generators.attention.perf import load_words
from hwaccel.generators.conv.layouts import pack_struct
from hwaccel.numerics import gelu_params, layernorm_params, softmax_params

CFG = MODEL_PRESETS["tiny_attention"]
A = CFG.attention


HOST_CONFIG = CFG   # the accelerator the `host` fixture (conftest) builds


def _random_program(rng):
    """A program of every unit's command at random sizes: a softmax, a causal softmax (its own
    table), a LayerNorm and a GELU, then a second softmax on the first's table."""
    b = ProgramBuilder(CFG)
    p1 = softmax_params(float(rng.uniform(0.02, 0.2)), A.max_len)
    p2 = softmax_params(float(rng.uniform(0.02, 0.2)), A.max_len)
    n = int(rng.integers(1, A.max_len + 1))
    outs = [b.softmax(b.put(_int8(rng, (n, 1, int(rng.integers(1, 7))))), p1)]
    n = int(rng.integers(1, A.max_len + 1))
    outs.append(b.softmax(b.put(_int8(rng, (n, 1, int(rng.integers(1, n + 1))))), p2,
                          causal=True))
    c = int(rng.integers(1, A.max_channels + 1))
    lp = layernorm_params(float(rng.uniform(0.02, 0.1)), float(rng.uniform(0.02, 0.1)),
                          rng.normal(1, 0.4, c), rng.normal(0, 0.5, c))
    outs.append(b.layernorm(b.put(_int8(rng, (c, 1, int(rng.integers(1, 6))))), lp))
    gp = gelu_params(float(rng.uniform(0.02, 0.1)), float(rng.uniform(0.02, 0.1)))
    outs.append(b.gelu(b.put(_int8(rng, (int(rng.integers(1, 12)), 1,
                                          int(rng.integers(1, 6))))), gp))
    n = int(rng.integers(1, A.max_len + 1))
    outs.append(b.softmax(b.put(_int8(rng, (n, 1, int(rng.integers(1, 5))))), p1))
    b.done()
    return b, outs


def test_units_bit_exact_and_cycle_exact(host, seed):
    for s in range(seed, seed + 3):
        b, outs = _random_program(np.random.default_rng(s))
        run_and_check(host, CFG, b, outs, f"seed {s}")


def test_between_engine_commands(host, seed):
    """A 1x1 CONV's output (a sequence of rows) through SOFTMAX, LAYERNORM and GELU, then the
    same layer again: the unit jobs leave the conv engine's weights held (the second CONV
    loads none, as the model says) and every word and counter matches."""
    rng = np.random.default_rng(seed)
    k, n, m = 12, 8, 5
    w = _int8(rng, (n, k, 1, 1))
    rq = random_requant(rng, n, k)
    b = ProgramBuilder(CFG)
    y = b.conv(b.put(_int8(rng, (k, 1, m))), w, *rq)
    p = softmax_params(float(rng.uniform(0.02, 0.2)), A.max_len)
    s = b.softmax(y, p, causal=True)
    lp = layernorm_params(0.05, 0.05, rng.normal(1, 0.4, n), rng.normal(0, 0.5, n))
    z = b.gelu(b.layernorm(y, lp), gelu_params(0.05, 0.05))
    y2 = b.conv(b.put(_int8(rng, (k, 1, m))), w, *rq)
    b.done()
    perf = program_perf(CFG, b.commands)
    conv_loads = [c.load_cycles for c in perf.commands if c.op == "CONV"]
    assert conv_loads[0] > 0 and conv_loads[1] == 0
    run_and_check(host, CFG, b, [y, s, z, y2], f"seed {seed}")


def _raw(b, op, **fields):
    attn = {k: fields.pop(k, v) for k, v in ATTN_DEFAULTS.items()}
    b.raw(encode(CFG, op, attn=attn, **fields))


def _fault(host, b, want_pc, want_cause, what, extra_loads=0):
    """Run ``b`` (ends in DONE) on golden and RTL: the same fault at the same pc, the same
    activations, and the golden counters (the RTL also counts the ``extra_loads`` beats that
    moved before a bad parameter: the golden interpreter checks the load before any moves)."""
    b.done()
    gold = run_program(CFG, b.act, b.wgt, b.commands)
    assert (gold.cause, gold.pc) == (want_cause, want_pc), (what, gold.cause, gold.pc)
    host.load(b)
    host.run(limit=100_000)
    st = host.status()
    assert (st["busy"], st["error"], st["cause"], st["pc"]) == (0, 1, want_cause, want_pc), (
        what, st)
    counters = host.counters()
    want = dict(gold.counters, load_cycles=gold.counters["load_cycles"] + extra_loads)
    assert {k: counters[k] for k in want} == want, what
    np.testing.assert_array_equal(host.read_act(0, b.act_top), gold.act[: b.act_top],
                                  err_msg=what)


def test_field_and_range_checks_fault_as_golden(host, seed):
    rng = np.random.default_rng(seed)
    ad, wd = CFG.act_depth, CFG.wgt_depth
    p = softmax_params(0.05, A.max_len)
    cases = {  # name: (op, fields, cause)
        "softmax 0 rows": (Op.SOFTMAX, {"count": 0, "n": 4}, Cause.SHAPE),
        "softmax n 0": (Op.SOFTMAX, {"count": 2, "n": 0}, Cause.SHAPE),
        "softmax n past max_len": (Op.SOFTMAX, {"count": 2, "n": A.max_len + 1}, Cause.SHAPE),
        "causal rows past n": (Op.SOFTMAX, {"count": 6, "n": 5, "causal": 1}, Cause.SHAPE),
        "layernorm C past max": (Op.LAYERNORM, {"count": 1, "n": A.max_channels + 1},
                                 Cause.SHAPE),
        "gelu 0 words": (Op.GELU, {"count": 0}, Cause.SHAPE),
        "src past the end": (Op.SOFTMAX, {"count": 3, "n": 5, "src": ad - 5}, Cause.ADDRESS),
        "dst past the end": (Op.LAYERNORM, {"count": 2, "n": 9, "dst": ad - 5}, Cause.ADDRESS),
        "dst inside src": (Op.GELU, {"count": 4, "src": 10, "dst": 12}, Cause.ADDRESS),
        "table past the end": (Op.SOFTMAX, {"count": 1, "n": 3,
                                            "wgt": wd + 1 - load_words(A, "softmax")},
                               Cause.ADDRESS),
        "layernorm words past the end": (Op.LAYERNORM, {
            "count": 1, "n": 8, "wgt": wd + 1 - load_words(A, "layernorm", 8)}, Cause.ADDRESS),
    }
    for name, (op, fields, cause) in cases.items():
        b = ProgramBuilder(CFG)
        x = b.put(_int8(rng, (8, 1, 8)))
        b.softmax(x, p)                       # a good command first: the fault is at pc 1
        fields = {"src": x.addr, "dst": 40, "wgt": 0} | fields
        _raw(b, op, **fields)
        _fault(host, b, 1, cause, name)


def _packed(entries, bits, junk=0):
    """Load beats of ``entries`` (:mod:`hwaccel.generators.attention.packing`), with ``junk``
    in the bits past the last entry of every beat (the last beat's empty entry slots
    included: not entries, so ignored by golden and RTL)."""
    k = per_beat(bits, CFG.wgt_bits)
    beats = pack(entries, bits, CFG.wgt_bits)
    return [(w | (junk << (min(k, len(entries) - i * k) * bits))) % (1 << CFG.wgt_bits)
            for i, w in enumerate(beats)]


def test_bad_parameters_fault_as_they_load(host, seed):
    """A bad exponent entry (anywhere in its packed beat), a first entry below 2**16, a
    LayerNorm shift of 0 or above 40, G = -2**16 or B = -2**55 in any channel: SHAPE at the
    command, nothing stored, the beats up to the bad one counted, and the next program runs
    (the units and DMAs were reset). Bits past a beat's last entry are not checked."""
    rng = np.random.default_rng(seed)
    eb = A.exp_bits
    table = list(softmax_params(0.05, A.max_len).exp_table)
    k = int(rng.integers(1, 256))
    sm_cases = {
        f"entry {k} above 2**17": (k, table[:k] + [(1 << 17) + 1] + table[k + 1:]),
        "first entry below 2**16": (0, [(1 << 16) - 1] + table[1:]),
    }
    c = 5   # an odd C: the last parameter beat has an empty entry slot
    lp = layernorm_params(0.05, 0.05, rng.normal(1, 0.4, c), rng.normal(0, 0.5, c))
    setup = {"eps": lp.eps_term, "shift": lp.shift}
    pars = [ln_param_entry(g, bb) for g, bb in zip(lp.gamma_mult, lp.beta_add)]
    j = int(rng.integers(0, c))
    ln_cases = {
        "shift 0": (-1, dict(setup, shift=0), pars),
        "shift 41": (-1, dict(setup, shift=41), pars),
        "shift 63": (-1, dict(setup, shift=63), pars),
        f"G of channel {j} -2**16": (j, setup, pars[:j] + [ln_param_entry(-(1 << 16), 0)]
                                     + pars[j + 1:]),
        f"B of channel {j} -2**55": (j, setup, pars[:j] + [ln_param_entry(1, -(1 << 55))]
                                     + pars[j + 1:]),
    }
    gp = gelu_params(0.05, 0.05)
    for name, (at, entries) in sm_cases.items():
        b = ProgramBuilder(CFG)
        x = b.put(_int8(rng, (4, 1, 8)))
        b.gelu(x, gp)
        base = b._put_wgt(_packed(entries, eb, junk=0x3FFFF))
        _raw(b, Op.SOFTMAX, src=x.addr, dst=x.addr, wgt=base, count=8, n=4)
        _fault(host, b, 1, Cause.SHAPE, name, extra_loads=at // per_beat(eb, CFG.wgt_bits) + 1)
    for name, (at, st, ps) in ln_cases.items():
        b = ProgramBuilder(CFG)
        x = b.put(_int8(rng, (c, 1, 5)))
        b.gelu(x, gp)
        junk = ln_param_entry(-(1 << 16), -(1 << 55))   # a bad entry's bits, but no entry
        base = b._put_wgt([pack_struct(ln_setup_layout(), st)]
                          + _packed(ps, LN_PARAM_BITS, junk=junk))
        _raw(b, Op.LAYERNORM, src=x.addr, dst=x.addr, wgt=base, count=5, n=c)
        beats = 1 if at < 0 else at // per_beat(LN_PARAM_BITS, CFG.wgt_bits) + 2
        _fault(host, b, 1, Cause.SHAPE, name, extra_loads=beats)
    # the junk past the entries alone faults nothing
    b = ProgramBuilder(CFG)
    x = b.put(_int8(rng, (c, 1, 5)))
    base = b._put_wgt([pack_struct(ln_setup_layout(), setup)]
                      + _packed(pars, LN_PARAM_BITS, junk=junk))
    _raw(b, Op.LAYERNORM, src=x.addr, dst=x.addr, wgt=base, count=5, n=c)
    base = b._put_wgt(_packed(table, eb, junk=0x3FFFF))   # a bad entry's bits, but no entry
    y = b.put(_int8(rng, (7, 1, 3)))
    _raw(b, Op.SOFTMAX, src=y.addr, dst=y.addr, wgt=base, count=3, n=7)
    run_and_check(host, CFG, b, [x, y], "beats with bits past their entries")
    b, outs = _random_program(rng)
    run_and_check(host, CFG, b, outs, "after the faults")


def test_soft_reset_mid_job_and_timeout(host, seed):
    """A soft reset during a command's fetch, a table load, a row and the last store leaves
    the accelerator idle; the program then runs bit-exact with every counter equal to the
    model. A watchdog below a softmax row's silent stretch (the exponent pass and the divider:
    no word moves) faults TIMEOUT at its pc, and the next run needs no reset."""
    rng = np.random.default_rng(seed)
    b, outs = _random_program(rng)
    total = program_perf(CFG, b.commands).counters["cycles"]
    host.load(b)
    for at in (2, 100, total // 3, total // 2, total - 3):
        host.write(address(CFG, Region.REG, 0), start_word(0))
        host.h.step(at)
        host.soft_reset()
        st = host.status()
        assert (st["busy"], st["error"]) == (0, 0), (at, st)
    run_and_check(host, CFG, b, outs, "after soft resets")

    watchdog = address(CFG, Region.REG, Reg.WATCHDOG)
    host.write(watchdog, 20)
    host.run(limit=100_000)
    st = host.status()
    assert (st["busy"], st["error"], st["cause"], st["pc"]) == (0, 1, Cause.TIMEOUT, 0), st
    host.write(watchdog, 0)
    run_and_check(host, CFG, b, outs, "after TIMEOUT")
