"""The overlap between commands (:mod:`hwaccel.generators.accel.processor`) on ``tiny``'s RTL:
a command that ran a job hands the next command's word (read and checked while its job ran)
straight to its first ISSUE (FENCE, DONE or a command that fails its checks to CHECK), a
GEMM's next tile issues the cycle after the running one ends, and a conv-engine job
ends with its last store. Each command still reads what the one before it wrote, a fault still
stops at the faulting command's own pc, and every counter equals the cycle model's."""

from __future__ import annotations

import numpy as np
from rtl_checks import int8 as _int8
from rtl_checks import run_and_check

from hwaccel.generators.accel import PRESETS, Cause, Op, ProgramBuilder, run_program
from hwaccel.generators.accel.cases import random_requant
from hwaccel.generators.accel.driver import encode
from hwaccel.generators.accel.model import decode
from hwaccel.generators.accel.perf import (
    CALC_AHEAD,
    DECODED_AHEAD,
    FETCH_TO_CHECK,
    ISSUE,
    JOB_END,
    TILE,
    program_perf,
)

CFG = PRESETS["tiny"]


HOST_CONFIG = CFG   # the accelerator the `host` fixture (conftest) builds


def _gemm(b, rng, a, n):
    k = a.channels
    return b.gemm(a, _int8(rng, (k, n)), *random_requant(rng, n, k), relu=False)


def test_back_to_back_commands_read_what_the_one_before_wrote(host, seed):
    """GEMMs tiled in K, M and N, each reading the previous one's result the moment it is
    stored; a conv over one of them; a FENCE (after it the next word is fetched again)."""
    rng = np.random.default_rng(seed)
    c = CFG.conv
    k = c.max_groups * CFG.lanes + 5          # K over two tiles
    n = c.max_blocks * c.block + 3            # N over two tiles
    m = c.max_width * c.max_height + 11       # M over several tiles
    b = ProgramBuilder(CFG)
    y1 = _gemm(b, rng, b.put(_int8(rng, (k, 1, m))), n)
    y2 = _gemm(b, rng, y1, 7)                 # reads y1 at once
    y3 = _gemm(b, rng, y2, k)                 # and y2
    img = b.view(y3, 8, 4, 4)                 # y3's first 16 pixels as a 4 x 4 map
    y4 = b.conv(img, _int8(rng, (6, 8, 3, 3)), *random_requant(rng, 6, 72), padding=1)
    b.fence()
    y5 = _gemm(b, rng, y2, 5)
    b.done()
    run_and_check(host, CFG, b, [y1, y2, y3, y4, y5], f"seed {seed}")
    # What the RTL just matched, command by command: a job's command after a command with a
    # job was fetched, decoded and checked under it, its first tile too (straight to ISSUE);
    # FENCE and DONE there pay CHECK alone; the command after a FENCE pays all four states and
    # a GEMM's TILE; one ISSUE a job and the cycle in which the processor sees it end.
    perf = program_perf(CFG, b.commands)
    prev_jobs, per_job = 0, ISSUE + JOB_END
    for cmd in perf.commands:
        if prev_jobs:
            want = per_job * cmd.jobs if cmd.jobs else FETCH_TO_CHECK - DECODED_AHEAD - CALC_AHEAD
        else:
            want = FETCH_TO_CHECK + per_job * cmd.jobs + (TILE if cmd.op == "GEMM" else 0)
        assert cmd.overhead == want, cmd
        prev_jobs = cmd.jobs
    assert min(cmd.jobs for cmd in perf.commands[:3]) > 1   # the GEMMs are tiled


def _status_after(host, b):
    gold = run_program(CFG, b.act, b.wgt, b.commands)
    host.load(b)
    host.run(limit=200_000)
    st = host.status()
    return gold, (st["busy"], st["error"], st["cause"], st["pc"])


def test_a_fault_after_a_job_stops_at_its_own_pc(host, seed):
    """The command after a job is decoded from the word read ahead: an illegal opcode there,
    or a range past the scratchpad, faults at that command's pc, as golden says."""
    rng = np.random.default_rng(seed)
    for cause in (Cause.ILLEGAL_OPCODE, Cause.ADDRESS):
        b = ProgramBuilder(CFG)
        _gemm(b, rng, b.put(_int8(rng, (8, 1, 6))), 4)
        g = decode(CFG, b.commands[0])
        if cause == Cause.ILLEGAL_OPCODE:
            b.raw(encode(CFG, 0, count=1))
        else:   # the same GEMM, its C (6 words) from the scratchpad's last word on
            b.raw(encode(CFG, Op.GEMM, desc=g["desc"], count=g["count"], kw=g["kw"],
                         nb=g["nb"], src=g["src"], dst=CFG.act_depth - 1, wgt=g["wgt"]))
        b.done()
        gold, st = _status_after(host, b)
        assert (gold.cause, gold.pc) == (cause, 1), cause
        assert st == (0, 1, cause, 1), (cause, st)
        counters = host.counters()
        assert {k: counters[k] for k in gold.counters} == gold.counters, cause


def test_a_job_in_program_memorys_last_word(host, seed):
    """A job's command in the last word of program memory: its read-ahead address is past the
    end, so the processor fetches and faults PC_RANGE at ``prog_depth``, as golden does; with
    DONE in the last word instead the program ends and every counter equals the model's."""
    rng = np.random.default_rng(seed)
    last = CFG.prog_depth - 1
    for done_last in (False, True):
        b = ProgramBuilder(CFG)
        x = b.put(_int8(rng, (4, 1, 5)))
        for _ in range(last - 1 - done_last):
            b.fence()
        y = _gemm(b, rng, x, 4)
        _gemm(b, rng, y, 4)
        assert len(b.commands) == CFG.prog_depth - done_last
        if done_last:
            run_and_check(host, CFG, b, [y], f"seed {seed}")
            continue
        gold, st = _status_after(host, b)
        assert (gold.cause, gold.pc) == (Cause.PC_RANGE, CFG.prog_depth)
        assert st == (0, 1, Cause.PC_RANGE, CFG.prog_depth), st
