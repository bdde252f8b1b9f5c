"""A MATMUL whose B is gathered under the job before it (:mod:`hwaccel.generators.accel.
processor`, ``mm_early``) on ``tiny_attention``'s RTL: its first tile one weight beat, B outside
what that job's command writes, the port of the scratchpad's copy free (no fused ADD), the
gatherer idle. Bit-exact with the golden interpreter and every counter equal to the cycle model,
beside the cases that must not gather early (B written by the command before, a fused ADD
before, a first tile of several beats), which still read what the command before wrote, even
its last result: a gather after a job starts the cycle after its retirement, whose cycle stores
that result."""

from __future__ import annotations

import numpy as np
from rtl_checks import int8 as _int8
from rtl_checks import run_and_check

from hwaccel.generators.accel import ProgramBuilder
from hwaccel.generators.accel import perf as perf_module
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.perf import program_perf
from hwaccel.numerics.eltwise import add_params

CFG = MODEL_PRESETS["tiny_attention"]
L = CFG.lanes


HOST_CONFIG = CFG   # the accelerator the `host` fixture (conftest) builds


def _requant(rng, k):
    return int(rng.integers(1 << 14, 1 << 16)), int(rng.integers(15, 19)) + int(k > 16)


def _early(monkeypatch, b) -> list[int]:
    """The gather leads of the MATMULs the model gathers under the job before them."""
    leads = []

    def spy(*args):
        lead = gathered(*args)
        if lead is not None:
            leads.append(lead)
        return lead

    gathered = perf_module.gathered_ahead
    monkeypatch.setattr(perf_module, "gathered_ahead", spy)
    program_perf(CFG, b.commands)
    monkeypatch.undo()
    return leads


def test_gathered_under_the_job_before(host, seed, monkeypatch):
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(CFG)
    outs = []
    x = b.put(_int8(rng, (6, 1, 9)))
    y = b.gemm(x, _int8(rng, (6, 11)), 0, *_requant(rng, 6))   # y only, two N tiles
    for tr in (False, True):                  # K and N of one word: one weight beat
        k, n = int(rng.integers(1, L + 1)), int(rng.integers(1, L + 1))
        m_ = int(rng.integers(2, 20))         # several M tiles from time to time
        a = b.put(_int8(rng, (k, 1, m_)))
        bt = b.put(_int8(rng, (k, 1, n)) if tr else _int8(rng, (n, 1, k)))
        c1 = b.matmul(a, bt, *_requant(rng, k), transpose=tr)        # under the GEMM
        c2 = b.matmul(a, bt, *_requant(rng, k), transpose=tr)        # under the MATMUL
        outs += [c1, c2]
    # B is the GEMM's result: gathered only once it is stored.
    z = b.gemm(x, _int8(rng, (6, 3)), 0, *_requant(rng, 6))
    a = b.put(_int8(rng, (3, 1, 5)))
    outs.append(b.matmul(a, z, *_requant(rng, 3), transpose=True))
    # After a fused ADD (its residual reads hold the copy's port), and a first tile of two
    # beats (K over two words): gathered from the retirement, as before.
    r_in = b.put(_int8(rng, (7, 1, 9)))
    outs.append(b.gemm(x, _int8(rng, (6, 7)), 0, *_requant(rng, 6),
                       add=(r_in, add_params(0.7, 1.3), False)))
    bt = b.put(_int8(rng, (3, 1, 4)))
    outs.append(b.matmul(a, bt, *_requant(rng, 3), transpose=True))
    a2, bt2 = b.put(_int8(rng, (L + 2, 1, 5))), b.put(_int8(rng, (L + 2, 1, 3)))
    outs.append(b.matmul(a2, bt2, *_requant(rng, L + 2), transpose=True))
    outs.append(y)
    b.done()
    leads = _early(monkeypatch, b)
    assert len(leads) == 4, leads   # the four one-beat MATMULs after the first GEMM
    run_and_check(host, CFG, b, outs, f"seed {seed}")


def test_b_written_by_the_last_store_before(host, seed):
    """B's first rows are the command before's last results (a GEMM's last pixel): the gather
    that starts at that command's retirement reads them as stored."""
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(CFG)
    outs = []
    for tr in (False, True):
        x = b.put(_int8(rng, (6, 1, 2)))                              # two pixels: B's rows
        z = b.gemm(x, _int8(rng, (6, 3)), 0, *_requant(rng, 6))
        if tr:   # B^T's rows are z's pixels: B is 3 x 2
            a = b.put(_int8(rng, (3, 1, 4)))
            outs.append(b.matmul(a, z, *_requant(rng, 3), transpose=True))
        else:    # B's K rows are z's pixels: K = 2
            a = b.put(_int8(rng, (2, 1, 4)))
            outs.append(b.matmul(a, z, *_requant(rng, 2)))
    run_and_check(host, CFG, b, outs, f"seed {seed}")
