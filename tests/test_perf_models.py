"""The cycle models against the RTL, exactly: the conv engine and GEMM tiling (through the
accelerator's counters), the LSTM cell (its own bench and the accelerator), whole programs.

Single-command programs on the ``tiny`` accelerator in the C++ harness give one command's
counters each (DONE's 4 cycles included): 60 random convolutions, 20 layers on several images
(weight reuse), 50 GEMMs spanning tiles in M, K and N, 50 max-pools and 50 LSTM sequences;
then random multi-command programs and the reference CNN on ``ecp5``. Every counter the model
predicts must equal the hardware's.
"""

from __future__ import annotations

import numpy as np
import pytest
from rtl_checks import int8 as _int8

from hwaccel.generators.accel import PRESETS, run_program
from hwaccel.generators.accel.cases import cnn_program, random_program, random_requant
from hwaccel.generators.accel.driver import ProgramBuilder
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.conv.cases import CNN_LAYERS, random_layer
from hwaccel.generators.conv.perf import layer_perf
from hwaccel.generators.lstm.cases import random_params
from hwaccel.generators.lstm.config import PRESETS as LSTM_PRESETS
from hwaccel.generators.lstm.config import LstmConfig
from hwaccel.generators.lstm.perf import STREAM_OVERHEAD, sequence_perf
from hwaccel.sim.host import HarnessHost
from hwaccel.sim.runner import design_for, run_bench

TINY = PRESETS["tiny"]


@pytest.fixture(scope="module")
def tiny():
    with HarnessHost.of(TINY) as host:
        yield host


def _conv(b, rng, images: int = 1):
    """A random layer on ``images`` images. The driver stores its weights once, so the later
    images reuse them (with padding the writer starts on padding columns, without it waits a
    cycle for the DMA); a FENCE between two images sometimes forces a reload."""
    c = TINY.conv
    while True:
        layer = random_layer(c, rng, budget=3000)
        oh, ow = layer.out_size
        if not layer.pool or (oh >= 2 and ow >= 2):   # the accelerator pools maps of 2x2 and up
            break
    w = _int8(rng, (layer.cout, layer.cin, layer.kernel_h, layer.kernel_w))
    rq = random_requant(rng, layer.cout, layer.taps * layer.cin)
    for i in range(images):
        if i and rng.random() < 0.3:
            b.fence()
        x = b.put(_int8(rng, (layer.cin, layer.height, layer.width)))
        b.conv(x, w, *rq, stride=layer.stride, padding=layer.padding, relu=layer.relu,
               pool=layer.pool)
    return layer


def _conv_batch(b, rng):
    return _conv(b, rng, images=int(rng.integers(2, 4)))


def _gemm(b, rng):
    """M, K and N up to three engine tiles each (K tiles keep partial sums; M tiles after the
    first of an N tile reuse its weights when K fits one tile)."""
    c = TINY.conv
    k = int(rng.integers(1, 3 * c.max_groups * c.lanes + 1))
    n = int(rng.integers(1, 3 * c.max_blocks * c.block + 1))
    m = int(rng.choice([rng.integers(1, c.max_width + 1),
                        rng.integers(1, 2 * c.max_width * c.max_height + c.max_width)]))
    a = b.put(_int8(rng, (k, 1, m)))
    b.gemm(a, _int8(rng, (k, n)), *random_requant(rng, n, k), relu=bool(rng.random() < 0.5))
    return (m, k, n)



def _pool(b, rng):
    c = TINY.conv
    shape = (int(rng.integers(1, c.max_cout + 1)), int(rng.integers(2, c.max_height + 1)),
             int(rng.integers(2, c.max_width + 1)))
    b.maxpool(b.put(_int8(rng, shape)))
    return shape


def _lstm(b, rng):
    lc = TINY.lstm
    steps = int(rng.choice([1, rng.integers(1, 40)]))
    b.lstm(b.put(_int8(rng, (lc.input_size, 1, steps))), random_params(lc, rng))
    return steps


@pytest.mark.parametrize("kind, make, count", [
    ("conv", _conv, 60), ("conv_batch", _conv_batch, 20), ("gemm", _gemm, 50),
    ("maxpool", _pool, 50), ("lstm", _lstm, 50)])
def test_single_commands_equal_the_rtl(tiny, kind, make, count, seed):
    rng = np.random.default_rng(seed)
    wrong = []
    for _ in range(count):
        b = ProgramBuilder(TINY)
        shape = make(b, rng)
        b.done()
        tiny.load(b)
        tiny.run(limit=1_000_000)
        got, model = tiny.counters(), program_perf(TINY, b.commands).counters
        if got != model:
            wrong.append((shape, {k: (got[k], model[k]) for k in got if got[k] != model[k]}))
    assert not wrong, (f"{kind} (seed {seed}): {len(wrong)} of {count} differ, (shape, "
                       f"{{counter: (RTL, model)}}): {wrong[:5]}")


def test_random_programs_equal_the_rtl(tiny, seed):
    for s in range(seed, seed + 12):
        prog = random_program(TINY, np.random.default_rng(s), 8)
        if not run_program(TINY, prog.act, prog.wgt, prog.commands).done:
            continue   # a program that faults is outside the model
        tiny.load(prog)
        tiny.run(limit=1_000_000)
        got, model = tiny.counters(), program_perf(TINY, prog.commands).counters
        assert got == model, f"program seed {s}: RTL {got} vs model {model}"


def test_reference_cnn_program_on_ecp5(seed):
    """The whole CNN as one program, batch 2 (the ecp5 preset's design is built for the
    accelerator's own tests already)."""
    cfg = PRESETS["ecp5"]
    prog = cnn_program(cfg, 2, seed).builder
    host = HarnessHost(design_for(cfg), cfg)
    try:
        host.load(prog)
        host.run(limit=2_000_000)
        got = host.counters()
    finally:
        host.close()
    perf = program_perf(cfg, prog.commands)
    assert got == perf.counters
    assert sum(c.cycles for c in perf.commands) == got["cycles"]


def test_lstm_cell_sequences_equal_its_bench(seed):
    """The cell on its own, I = 1 on 4 lanes (3 slots): each step's h phase waits for the gate
    unit (the accelerator's cells never do), sequences of random length. The bench's span (first
    x accepted to last h out) is the model's cycles plus the x hand-over and the output FIFO."""
    cfg = LstmConfig(input_size=1, hidden_size=3, lanes=4, name="perf_i1h3p4")
    rng = np.random.default_rng(seed)
    lengths = sorted({1, 2, *(int(t) for t in rng.integers(1, 60, 10))})
    res = run_bench(design_for(cfg), "sim.tb_lstm",
                    {"mode": "timing", "seed": seed, "lengths": lengths}, seed=seed)
    spans = {c["length"]: c["cycles"] for c in res["cases"]}
    model = {t: sequence_perf(cfg, t).cycles + STREAM_OVERHEAD for t in lengths}
    assert spans == model, f"seed {seed}: RTL {spans} vs model {model}"
    assert sequence_perf(cfg, max(lengths)).h_waits > 0


def test_breakdowns_add_up():
    cfg = PRESETS["default"].conv
    for name, layer in CNN_LAYERS.items():
        p = layer_perf(cfg, layer)
        assert p.cycles == p.load + p.issue + p.window_stalls + p.tail, name
        assert p.tail > 0 and p.window_stalls >= 0 and 0 < p.utilization <= 1, name
    lc = LSTM_PRESETS["ref_p256"]
    s = sequence_perf(lc, 50)
    assert s.cycles == s.issue + s.h_waits + s.drains + s.tail
    with pytest.raises(ValueError, match="steps must be a positive integer, not 0"):
        sequence_perf(lc, 0)
