"""Random small DAG models (:func:`hwaccel.compiler.cases.random_dag`: branches, residual adds,
depthwise convs at stride 1 and 2, max and average pools, per-side padding, non-square kernels
and strides, a Linear head) on the ``tiny`` preset.

* Every drawn seed compiles for ``tiny``, the integer twin equals the numpy reference of the
  integer IR, and the golden interpreter running the lowered programs equals the twin exactly.
* A fixed sample of seeds (:data:`RTL_SAMPLE`), which together cover :data:`COVERED` (checked
  from the compiled models, so a change to the generator cannot silently drop an operator), runs
  on the accelerator's Verilog in the C++ harness at batch 2, the runtime's ``rtl`` way: the
  outputs equal golden bit for bit, and every counter of every program equals the cycle model's
  (:func:`hwaccel.generators.accel.perf.program_perf`).
* Random LSTM models (:func:`hwaccel.compiler.random_cases.random_lstm`: tokens or float
  sequences, 1 to 8 steps, a last-step or per-step head), at the sizes of tiny's LSTM cell and
  at random sizes up to them (one layer, or two of different widths): golden equals the twin,
  and three of them run on the RTL bit-exact and cycle-exact, as above.
* A layer whose bands of rows straddle two weight groups
  (:func:`hwaccel.compiler.cases.split_bands`) runs on the RTL as above.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from rtl_checks import programs_on_the_rtl

import hwaccel
from hwaccel.compiler.cases import split_bands
from hwaccel.compiler.qreference import forward as qforward
from hwaccel.compiler.random_cases import features, random_dag, random_lstm
from hwaccel.generators.accel import PRESETS
from hwaccel.generators.accel.model import run_program

TINY = PRESETS["tiny"]
BATCH = 2
#: Seeds run on the RTL; together they cover :data:`COVERED`.
RTL_SAMPLE = (0, 1, 6, 38, 75)
GOLDEN_SEEDS = sorted(set(range(12)) | set(RTL_SAMPLE))
#: LSTM models at the cell's sizes (golden; the RTL on the first) and at any sizes up to them
#: (golden; the RTL on the first two: 3 -> 4 -> 5 wide on floats, last step; 5 -> 5 -> 3 on
#: tokens, every step).
LSTM_SEEDS = (0, 1)
ANY_LSTM_SEEDS = (1, 4, 0, 5, 9)
#: What the RTL sample must exercise, as :func:`features` names it.
COVERED = {"add scales differ", "add scales differ + relu", "branch", "conv stride 1",
           "conv stride 2", "conv strides 2x1", "depthwise stride 1", "depthwise stride 2",
           "average pool", "global average pool", "per-side padding", "non-square kernel",
           "max pool (fused)", "max pool (MAXPOOL)", "linear as GEMM", "linear as CONV"}


@cache
def _compiled(seed: int, draw=random_dag):
    model, inputs = draw(seed, TINY)
    x = inputs(40, torch.Generator().manual_seed(seed))
    cm = hwaccel.compile(model, x[:2], preset=TINY, calibration=x, strict=False)
    assert cm.refusal is None, f"seed {seed}: {model}: {cm.refusal}"
    x_int = cm.quantize_input(x[:BATCH])
    return model, cm, x_int, cm.int8_forward(x_int)


def _golden(cm, lowered) -> np.ndarray:
    act = lowered.builder.act
    for k, load in enumerate(lowered.loads()):
        res = run_program(cm.config, act, load.wgt, load.commands)
        assert res.done and not res.error, f"program {k + 1}: {res.cause} at pc {res.pc}"
        act = res.act
    return lowered.ints(act)


@pytest.mark.parametrize("seed", GOLDEN_SEEDS)
def test_random_dag_golden_equals_the_integer_twin(seed):
    model, cm, x_int, twin = _compiled(seed)
    why = f"seed {seed}: {model.spec} {model.head}"
    np.testing.assert_array_equal(twin, qforward(cm.qgraph, x_int), err_msg=why)
    np.testing.assert_array_equal(_golden(cm, cm.lower(x_int)), twin, err_msg=why)


def test_the_rtl_sample_covers_the_operators():
    got = set().union(*(features(_compiled(s)[1]) for s in RTL_SAMPLE))
    assert COVERED <= got, f"the RTL sample {RTL_SAMPLE} misses {sorted(COVERED - got)}"


HOST_CONFIG = TINY   # the accelerator the `host` fixture (conftest) builds


def _on_the_rtl(host, cm, x_int, twin, why: str) -> None:
    """Every program on the harness, the runtime's rtl way; outputs against golden and the
    twin, every program's counters against the cycle model's."""
    lowered = cm.lower(x_int)
    image = programs_on_the_rtl(host, TINY, lowered, why)
    np.testing.assert_array_equal(lowered.ints(image), _golden(cm, lowered), err_msg=why)
    np.testing.assert_array_equal(lowered.ints(image), twin, err_msg=why)


@pytest.mark.parametrize("seed", RTL_SAMPLE)
def test_random_dag_on_the_rtl_equals_golden_and_the_cycle_model(host, seed):
    model, cm, x_int, twin = _compiled(seed)
    _on_the_rtl(host, cm, x_int, twin, f"seed {seed}: {model.spec} {model.head}")


def _any_size_lstm(seed: int, config):
    return random_lstm(seed, config, any_size=True)


@pytest.mark.parametrize("draw, seed", [(random_lstm, s) for s in LSTM_SEEDS] +
                         [(_any_size_lstm, s) for s in ANY_LSTM_SEEDS])
def test_random_lstm_golden_equals_the_integer_twin(draw, seed):
    model, cm, x_int, twin = _compiled(seed, draw)
    why = f"{draw.__name__} seed {seed}: {model}"
    np.testing.assert_array_equal(twin, qforward(cm.qgraph, x_int), err_msg=why)
    np.testing.assert_array_equal(_golden(cm, cm.lower(x_int)), twin, err_msg=why)


@pytest.mark.parametrize("draw, seed", [(random_lstm, LSTM_SEEDS[0])] +
                         [(_any_size_lstm, s) for s in ANY_LSTM_SEEDS[:2]])
def test_random_lstm_on_the_rtl(host, draw, seed):
    model, cm, x_int, twin = _compiled(seed, draw)
    _on_the_rtl(host, cm, x_int, twin, f"{draw.__name__} seed {seed}: {model}")


def _split_bands():
    """:func:`split_bands` compiled for ``tiny``, and a batch of its inputs as int8."""
    model, inputs = split_bands()
    x = inputs(8, torch.Generator().manual_seed(0))
    cm = hwaccel.compile(model, x[:2], preset=TINY, calibration=x)
    return cm, cm.quantize_input(x[:BATCH])


def test_a_layer_split_across_weight_groups_on_the_rtl(host):
    cm, x_int = _split_bands()
    lowered = cm.lower(x_int)
    assert [p.layers[-1] for p in lowered.programs] == ["5", "5"]  # layer 5 in both
    _on_the_rtl(host, cm, x_int, cm.int8_forward(x_int), "split_bands")
