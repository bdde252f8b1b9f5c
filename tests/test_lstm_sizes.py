"""LSTM commands of any size up to the preset's cell: I and H are command fields.

* Golden interpreter: random sizes on ``tiny`` and ``default`` equal the LSTM golden model run
  directly on the same parameters (the ISA's load order inverted at the command's size).
* The cell alone (Amaranth's simulator): a cell generated for I = 7, H = 5 on 6 lanes runs
  smaller sizes bit-exact under random stalls, each sequence's cycles equal to the cycle model
  of that size.
* RTL (``tiny``, Verilator harness): a fixed sample of sizes (the four corners and random ones),
  each alone and two of different widths stacked in one program, bit-exact with the golden
  interpreter and every counter equal to the cycle model; sizes above the cell's are SHAPE
  faults there as in the golden interpreter.
* Compiler: ``nn.LSTM(32, 48)`` then ``nn.LSTM(48, 20)`` (and a two-layer 24-wide LSTM behind
  it) compile on ``default`` to LSTM commands of their own sizes, and the golden interpreter
  equals the int8 twin; sizes above the cell's are refused by name with the limit.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest
import torch
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from torch import nn

import hwaccel
from hwaccel.compiler import LoweringError
from hwaccel.generators.accel import PRESETS, Cause, Op, ProgramBuilder, run_program
from hwaccel.generators.accel.driver import encode, from_words
from hwaccel.generators.accel.model import decode
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.lstm.cases import random_params
from hwaccel.generators.lstm.cell import LstmCell, param_layout, vector_layout, weight_layout
from hwaccel.generators.lstm.config import LstmConfig
from hwaccel.generators.lstm.model import golden_sequence
from hwaccel.generators.lstm.perf import STREAM_OVERHEAD, sequence_perf
from hwaccel.sim.host import HarnessHost

TINY = PRESETS["tiny"]


def _lstm_program(cfg, rng, sizes, steps):
    """One program: an LSTM per ``(I, H)`` in ``sizes``, each fed the previous one's h when
    the widths chain (a stack), else a fresh input. Returns the builder, the outputs and the
    expected h of each (golden model run directly)."""
    b = ProgramBuilder(cfg)
    outs, want, x, x_val = [], [], None, None
    for i, h in sizes:
        p = random_params(cfg.lstm.run(i, h), rng)
        if x is None or x.channels != i:
            x_val = rng.integers(-128, 128, (steps, i))
            x = b.put(x_val.T.reshape(i, 1, steps))
        y = b.lstm(x, p)
        h_val, _ = golden_sequence(p, x_val)
        outs.append(y)
        want.append(h_val)
        x, x_val = y, h_val
    b.done()
    return b, outs, want


def _as_steps(words_tensor: np.ndarray) -> np.ndarray:
    """A ``H x 1 x T`` tensor as ``T x H``."""
    return words_tensor.reshape(words_tensor.shape[0], -1).T


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_golden_runs_every_size_as_the_lstm_model(preset, seed):
    cfg = PRESETS[preset]
    lc = cfg.lstm
    rng = np.random.default_rng(seed)
    for _ in range(6):
        sizes = [(int(rng.integers(1, lc.input_size + 1)),
                  int(rng.integers(1, lc.hidden_size + 1)))]
        sizes.append((sizes[0][1], int(rng.integers(1, lc.hidden_size + 1))))   # a stack
        b, outs, want = _lstm_program(cfg, rng, sizes, int(rng.integers(1, 7)))
        gold = run_program(cfg, b.act, b.wgt, b.commands)
        assert gold.done and not gold.error, (sizes, gold.cause)
        for y, h in zip(outs, want):
            np.testing.assert_array_equal(_as_steps(from_words(gold.act, y)), h,
                                          err_msg=f"{preset} sizes {sizes} (seed {seed})")
        fields = [decode(cfg, w)["lstm"] for w in b.commands[:-1]]
        assert [(f["input_size"], f["hidden_size"]) for f in fields] == sizes


def test_sizes_above_the_cell_are_refused_by_name():
    lc = TINY.lstm
    with pytest.raises(ValueError, match=r"hidden_size 6 is more than the LSTM cell of "
                                         r"lstm_accel_tiny runs: hidden_size at most 5"):
        lc.run(3, 6)
    with pytest.raises(ValueError, match=r"input_size must be a positive integer, not 0"):
        lc.run(0, 2)
    b = ProgramBuilder(TINY)
    big = random_params(LstmConfig(input_size=7, hidden_size=2, lanes=4), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"input_size 7 is more than .* at most 6"):
        b.lstm(b.put(np.zeros((7, 1, 3), dtype=np.int64)), big)
    # Hand-made commands: a size above the cell's, or 0, is a SHAPE fault in the golden model.
    for size in ({"input_size": 7, "hidden_size": 5}, {"input_size": 6, "hidden_size": 6},
                 {"input_size": 0, "hidden_size": 5}, {"input_size": 3, "hidden_size": 0}):
        b = ProgramBuilder(TINY)
        x = b.put(np.zeros((6, 1, 2), dtype=np.int64))
        b.raw(encode(TINY, Op.LSTM, src=x.addr, dst=x.addr + 4, count=2, lstm=size))
        b.done()
        res = run_program(TINY, b.act, b.wgt, b.commands)
        assert (res.cause, res.pc) == (Cause.SHAPE, 0), size


def test_compiler_refuses_a_size_above_the_cell():
    lc = PRESETS["default"].lstm
    for i, h, what, most in ((lc.input_size + 1, 8, "input_size", lc.input_size),
                             (8, lc.hidden_size + 1, "hidden_size", lc.hidden_size)):
        model = nn.Sequential(nn.LSTM(i, h, batch_first=True)).eval()
        with pytest.raises(LoweringError, match=rf"layer '0' has {what} {max(i, h)} and the "
                                                rf"LSTM cell of accel_default runs {what} up to "
                                                rf"{most}"):
            hwaccel.compile(model, torch.randn(1, 5, i))


class _Widths(nn.Module):
    """``LSTM(32, 48)``, ``LSTM(48, 20)``, a two-layer ``LSTM(20, 24)``, read at the last step."""

    def __init__(self):
        super().__init__()
        self.a = nn.LSTM(32, 48, batch_first=True)
        self.b = nn.LSTM(48, 20, batch_first=True)
        self.c = nn.LSTM(20, 24, num_layers=2, batch_first=True)
        self.out = nn.Linear(24, 5)

    def forward(self, x):
        y, _ = self.a(x)
        y, _ = self.b(y)
        y, _ = self.c(y)
        return self.out(y[:, -1])


def test_stacked_lstms_of_other_widths_compile_and_equal_the_twin():
    torch.manual_seed(3)
    model = _Widths().eval()
    gen = torch.Generator().manual_seed(4)
    cm = hwaccel.compile(model, torch.randn(2, 7, 32, generator=gen),
                         calibration=torch.randn(64, 7, 32, generator=gen))
    x_int = cm.quantize_input(torch.randn(3, 7, 32, generator=gen))
    low = cm.lower(x_int)
    b = low.builder
    res = run_program(cm.config, b.act, b.wgt, b.commands)
    assert res.done and not res.error, (res.cause, res.pc)
    ints = low.ints(res.act)
    np.testing.assert_array_equal(ints, cm.int8_forward(x_int))
    assert np.count_nonzero(ints) > ints.size // 4
    sizes = sorted({(f["lstm"]["input_size"], f["lstm"]["hidden_size"])
                    for f in (decode(cm.config, w) for w in b.commands) if f["op"] == Op.LSTM})
    assert sizes == [(20, 24), (24, 24), (32, 48), (48, 20)]


# --- RTL ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    with HarnessHost.of(TINY) as host:
        yield host


def test_rtl_every_size_bit_exact_with_exact_cycles(tiny, seed):
    lc = TINY.lstm
    rng = np.random.default_rng(seed)
    corners = [(1, 1), (lc.input_size, lc.hidden_size), (1, lc.hidden_size), (lc.input_size, 1)]
    drawn = [(int(rng.integers(1, lc.input_size + 1)), int(rng.integers(1, lc.hidden_size + 1)))
             for _ in range(4)]
    programs = [[s] for s in corners + drawn]
    programs.append([(lc.input_size, 3), (3, lc.hidden_size), (lc.hidden_size, 2)])  # a stack
    wrong = []
    for sizes in programs:
        b, outs, want = _lstm_program(TINY, rng, sizes, int(rng.integers(1, 6)))
        gold = run_program(TINY, b.act, b.wgt, b.commands)
        tiny.load(b)
        tiny.run(limit=100_000)
        st = tiny.status()
        assert st["done"] and not st["error"], (sizes, st)
        for y, h in zip(outs, want):
            got = tiny.read_tensor(y)
            np.testing.assert_array_equal(got, from_words(gold.act, y),
                                          err_msg=f"sizes {sizes} (seed {seed})")
            np.testing.assert_array_equal(_as_steps(got), h, err_msg=f"sizes {sizes}")
        got, model = tiny.counters(), program_perf(TINY, b.commands).counters
        if got != model:
            wrong.append((sizes, {k: (got[k], model[k]) for k in got if got[k] != model[k]}))
    assert not wrong, (f"seed {seed}: {len(wrong)} of {len(programs)} differ, (sizes, "
                       f"{{counter: (RTL, model)}}): {wrong}")


def test_rtl_size_above_the_cell_is_a_shape_fault(tiny):
    lc = TINY.lstm
    for size in ({"input_size": lc.input_size + 1, "hidden_size": lc.hidden_size},
                 {"input_size": lc.input_size, "hidden_size": lc.hidden_size + 1},
                 {"input_size": 2, "hidden_size": 0}):
        b = ProgramBuilder(TINY)
        x = b.put(np.zeros((6, 1, 2), dtype=np.int64))
        b.raw(encode(TINY, Op.LSTM, src=x.addr, dst=x.addr + 4, count=2, lstm=size))
        b.done()
        gold = run_program(TINY, b.act, b.wgt, b.commands)
        tiny.load(b)
        tiny.run(limit=10_000)
        st = tiny.status()
        assert (st["error"], st["cause"], st["pc"]) == (1, Cause.SHAPE, 0), (size, st)
        counters = tiny.counters()
        assert {k: counters[k] for k in gold.counters} == gold.counters, size


# --- the cell on its own, at run sizes below its own (Amaranth's simulator) -------------------
class _SizedCell(wiring.Component):
    """A cell generated for ``most`` running ``run``'s sizes, its x and h streams narrowed to
    them (so the benches' stream code drives it as a cell of that size)."""

    def __init__(self, most: LstmConfig, run: LstmConfig):
        self.most, self.run = most, run
        super().__init__({
            "weights": In(stream.Signature(weight_layout(most))),
            "params": In(stream.Signature(param_layout(most))),
            "x": In(stream.Signature(vector_layout(run.input_size))),
            "h": Out(stream.Signature(vector_layout(run.hidden_size))),
        })

    def elaborate(self, platform):
        m = Module()
        cell = m.submodules.cell = LstmCell(self.most, runtime_size=True)
        i, h = self.run.input_size, self.run.hidden_size
        wiring.connect(m, wiring.flipped(self.weights), cell.weights)
        wiring.connect(m, wiring.flipped(self.params), cell.params)
        m.d.comb += [
            cell.size.input_size.eq(i), cell.size.hidden_size.eq(h),
            cell.x.valid.eq(self.x.valid), self.x.ready.eq(cell.x.ready),
            cell.x.payload.data.as_value()[: i * 8].eq(self.x.payload.data.as_value()),
            cell.x.payload.last.eq(self.x.payload.last),
            self.h.valid.eq(cell.h.valid), cell.h.ready.eq(self.h.ready),
            self.h.payload.data.eq(cell.h.payload.data.as_value()[: h * 8]),
            self.h.payload.last.eq(cell.h.payload.last),
        ]
        return m


def _cell_bench(dut, run: LstmConfig, params: dict) -> dict:
    from hwaccel.sim.runner import bench_root

    bench_root()  # the ``sim`` package of benches sits beside ``hwaccel`` in the checkout
    from sim.amaranth_streams import AmaranthStreamBench, simulate
    from sim.checks import lstm_cases

    result = {}

    async def testbench(ctx, ports):
        result.update(await lstm_cases(partial(AmaranthStreamBench, ctx, ports), (run,),
                                       run.slug, params))

    simulate(dut, testbench)
    return result


def test_cell_runs_smaller_sizes_bit_exact_with_exact_cycles(seed):
    most = LstmConfig(input_size=7, hidden_size=5, lanes=6, name="sizes_p6")  # 6 does not divide 4H
    rng = np.random.default_rng(seed)
    sizes = [(1, 1), (7, 1), *((int(rng.integers(1, 8)), int(rng.integers(1, 6)))
                               for _ in range(3))]
    for i, h in sizes:
        run = most.run(i, h)
        res = _cell_bench(_SizedCell(most, run), run,
                          {"mode": "random", "seed": seed, "loads": [["random", 4]],
                           "max_len": 12, "idle": 0.3, "backpressure": 0.3})
        assert all(c["mismatches"] == 0 for c in res["cases"]), (i, h)
        lengths = [1, 2, int(rng.integers(3, 15))]
        res = _cell_bench(_SizedCell(most, run), run,
                          {"mode": "timing", "seed": seed, "lengths": lengths})
        spans = {c["length"]: c["cycles"] for c in res["cases"]}
        model = {t: sequence_perf(run, t).cycles + STREAM_OVERHEAD for t in lengths}
        assert spans == model, f"I={i} H={h} (seed {seed}): RTL {spans} vs model {model}"


# --- compiled models of random LSTM sizes on tiny ------------------------------------------
def _compiled_any_size(seed: int):
    from hwaccel.compiler.random_cases import random_lstm

    model, inputs = random_lstm(seed, TINY, any_size=True)
    x = inputs(40, torch.Generator().manual_seed(seed))
    cm = hwaccel.compile(model, x[:2], preset=TINY, calibration=x)
    x_int = cm.quantize_input(x[:2])
    return model, cm, x_int, cm.int8_forward(x_int)


def test_random_size_models_golden_equals_the_twin():
    for seed in range(8):
        model, cm, x_int, twin = _compiled_any_size(seed)
        low = cm.lower(x_int)
        b = low.builder
        res = run_program(cm.config, b.act, b.wgt, b.commands)
        assert res.done and not res.error, (seed, res.cause, res.pc)
        np.testing.assert_array_equal(low.ints(res.act), twin, err_msg=f"seed {seed}: {model}")


def test_a_random_size_model_on_the_rtl(tiny):
    model, cm, x_int, twin = _compiled_any_size(5)
    low = cm.lower(x_int)
    b = low.builder
    sizes = {(f["lstm"]["input_size"], f["lstm"]["hidden_size"])
             for f in (decode(TINY, w) for w in b.commands) if f["op"] == Op.LSTM}
    assert sizes and all(s != (TINY.lstm.input_size, TINY.lstm.hidden_size) for s in sizes)
    tiny.soft_reset()
    tiny.load(b)
    tiny.run(limit=1_000_000)
    st = tiny.status()
    assert st["done"] and not st["error"], st
    assert tiny.counters() == program_perf(TINY, b.commands).counters
    first, words = low.span
    image = np.zeros((TINY.act_depth, TINY.lanes), dtype=np.int64)
    image[first:first + words] = tiny.read_act(first, words)
    np.testing.assert_array_equal(low.ints(image), twin, err_msg=f"{model}")
