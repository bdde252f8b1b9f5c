"""No read the accelerator uses meets a write to its word in the same cycle.

The activation scratchpad's two banks and the partial-sum memory are ``no_rw_check`` (as the
weight and program memories, the conv engine's line buffer and weight memory and the max-pool
rows are): Yosys adds no read-during-write logic to them (on ECP5 a delayed write, an address
compare and a multiplexer on every bit the block RAM returns, in front of each of their
readers). That is sound only if such a word is never used. This module builds ``tiny`` with
:data:`hwaccel.generators.conv.rw.RW_POISON`, where a read in the cycle its word is written
returns the word inverted, and runs on it the random DAGs of the RTL sample (every operator:
convs, depthwise, fused and stand-alone max pools, average pools, residual ADDs, GEMM and CONV
heads), a random LSTM, a layer split across weight groups, a GEMM tiled in K (its partial
sums go through the partial-sum memory and back) and random single ADDs and AVGPOOLs, in place
too: every output must stay bit-exact against golden and every counter equal to the cycle
model's. Evidence, not a proof (as ``tests/test_conv_rw.py`` for the engine's memories).

The bench sees such words when they are used: inverting every read of a bank in a cycle the
bank is written, whatever the address, makes about half the random ADDs and a few AVGPOOLs
differ (the element-wise unit reads while it writes; the other jobs here never read a bank in
a cycle a write lands in it, nor the partial sums in a cycle they are written).

The banks' writes land a cycle after they are presented, so the host's reads take a landing
word from a register: a read in the cycle after each write must return it (without that
register, the poisoned read fails the last test).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from test_accel_eltwise import _random_add, _random_avg
from test_random_dags_rtl import BATCH, RTL_SAMPLE, TINY, _compiled, _on_the_rtl, _split_bands
from torch import nn

import hwaccel
from hwaccel.compiler.random_cases import random_lstm
from hwaccel.emit import emit
from hwaccel.formal.props import replaced
from hwaccel.generators.accel import Op, ProgramBuilder, run_program
from hwaccel.generators.accel.driver import encode, from_words
from hwaccel.generators.accel.host import address
from hwaccel.generators.accel.isa import Region
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.conv import rw
from hwaccel.numerics import add_params
from hwaccel.sim.host import HarnessHost
from hwaccel.sim.runner import Design

POISONED = ("act_even_rw_hit", "act_odd_rw_hit", "psum_rw_hit", "partial_rw_hit")


@pytest.fixture(scope="module")
def poisoned(tmp_path_factory):
    """``tiny``'s accelerator with every memory's same-cycle reads poisoned (built afresh:
    the Verilog differs from the cached design's, so the harness has its own build)."""
    with replaced(rw, "RW_POISON", True):
        res = emit(TINY, tmp_path_factory.mktemp("rw"), cache=False)
    design = Design(res.verilog, res.sidecar, TINY.slug)
    text = design.verilog.read_text()
    missing = [name for name in POISONED if name not in text]
    assert not missing, f"the poisoned reads {missing} are not in the design"
    with HarnessHost(design, TINY) as host:
        yield host


@pytest.mark.parametrize("seed", RTL_SAMPLE)
def test_random_dags_stay_exact_with_poisoned_reads(poisoned, seed):
    model, cm, x_int, twin = _compiled(seed)
    _on_the_rtl(poisoned, cm, x_int, twin, f"poisoned, seed {seed}: {model.spec} {model.head}")


def test_an_lstm_stays_exact_with_poisoned_reads(poisoned):
    model, cm, x_int, twin = _compiled(0, random_lstm)
    _on_the_rtl(poisoned, cm, x_int, twin, f"poisoned, random_lstm seed 0: {model}")


def test_split_bands_stay_exact_with_poisoned_reads(poisoned):
    cm, x_int = _split_bands()
    _on_the_rtl(poisoned, cm, x_int, cm.int8_forward(x_int), "poisoned, split_bands")


def test_a_gemm_tiled_in_k_stays_exact_with_poisoned_reads(poisoned):
    # 40 inputs are 10 words: more than the engine's groups, so the GEMM runs K tiles whose
    # partial sums are stored to the partial-sum memory and read back by the next.
    assert math.ceil(40 / TINY.lanes) > TINY.conv.max_groups
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(40, 12), nn.ReLU(), nn.Linear(12, 6)).eval()
    x = torch.randn(32, 40)
    cm = hwaccel.compile(model, x[:2], preset=TINY, calibration=x)
    assert cm.refusal is None, cm.refusal
    x_int = cm.quantize_input(x[:BATCH])
    _on_the_rtl(poisoned, cm, x_int, cm.int8_forward(x_int), "poisoned, K-tiled GEMM")


def _in_place_add(b: ProgramBuilder, rng):
    """An ADD whose sum replaces its first operand (dst = src)."""
    c, h, w = (int(rng.integers(1, n)) for n in (13, 6, 6))
    tx, ty = (b.put(rng.integers(-128, 128, (c, h, w), dtype=np.int64)) for _ in range(2))
    p = add_params(float(rng.uniform(0.05, 2.0)), float(rng.uniform(0.05, 2.0)))
    fields = {"src2": ty.addr, "mult_a": p.multiplier_a, "mult_b": p.multiplier_b,
              "shift": p.shift, "relu": int(rng.random() < 0.5)}
    b.raw(encode(TINY, Op.ADD, src=tx.addr, dst=tx.addr, count=tx.words, add=fields))
    return tx, None, (c, h, w)


@pytest.mark.parametrize("kind, draw", [("add", _random_add), ("add in place", _in_place_add),
                                        ("avgpool", _random_avg)])
def test_element_wise_jobs_stay_exact_with_poisoned_reads(poisoned, kind, draw, seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        b = ProgramBuilder(TINY)
        out, _, shape = draw(b, rng)
        b.done()
        gold = run_program(TINY, b.act, b.wgt, b.commands)
        assert gold.done and not gold.error, (kind, shape, gold.cause)
        poisoned.load(b)
        poisoned.run(limit=100_000)
        why = f"poisoned {kind} {shape} (seed {seed})"
        np.testing.assert_array_equal(poisoned.read_tensor(out), from_words(gold.act, out),
                                      err_msg=why)
        assert poisoned.counters() == program_perf(TINY, b.commands).counters, why


def test_the_host_reads_an_activation_word_the_cycle_after_writing_it(poisoned, seed):
    # An activation write lands a cycle after it is presented (the banks' write registers),
    # so the host's read in the next cycle meets it at the block RAM (inverted here) and must
    # take the landing word; a read of another word then must not.
    rng = np.random.default_rng(seed)
    depth, bits = TINY.act_depth, TINY.act_bits
    for _ in range(30):
        a, other = (int(v) for v in rng.choice(depth, size=2, replace=False))
        w1, w2, w3 = (int.from_bytes(rng.bytes(bits // 8), "little") for _ in range(3))
        act = [address(TINY, Region.ACT, x) for x in (a, other)]
        poisoned.write(act[0], w1)
        assert poisoned.read(act[0]) == w1, f"word {a} read the cycle after its write"
        poisoned.write_many([(act[0], w2), (act[1], w3)])
        assert poisoned.read(act[0]) == w2, f"word {a} read while word {other} lands"
        assert poisoned.read(act[1]) == w3, f"word {other} read after it landed"
