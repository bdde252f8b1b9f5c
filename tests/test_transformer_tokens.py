"""The token task's transformer (``transformer_tokens``) against the LSTM on one split: it is
scored on the LSTM's data, its int8 integer twin is within a point of float on every held-out
sequence, and compiled onto ``default_attention`` (token ids gathered on the host, as the LSTM's)
the golden interpreter equals the twin exactly, its cycle model counting what the interpreter
counts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hwaccel
from hwaccel.generators.accel import run_program
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.perf import program_perf
from hwaccel.models import WORKLOADS, load, macs
from hwaccel.models.transformer import TOKEN_MACS, TokenTransformer

CFG = MODEL_PRESETS["default_attention"]
#: The issue's target: int8 top-1 within one point of float on the held-out split.
MAX_GAP = 0.01

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def compiled():
    model, split = load("transformer_tokens")
    # as `hwaccel compare` calibrates: the first 512 training sequences
    cm = hwaccel.compile(model, split.x_train[:2], preset=CFG, calibration=split.x_train[:512])
    return model, split, cm


def test_it_runs_the_lstms_task_and_split():
    w, lstm = WORKLOADS["transformer_tokens"], WORKLOADS["lstm"]
    assert w.data is lstm.data and w.input_shape == lstm.input_shape
    assert w.input_dtype == lstm.input_dtype
    a, b = w.data(), lstm.data()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        assert getattr(a, name).equal(getattr(b, name)), name
    assert macs(TokenTransformer(), w.input_shape, dtype=torch.int64) == TOKEN_MACS


def test_int8_is_within_a_point_of_float(compiled):
    model, split, cm = compiled
    y = split.y_test.numpy()
    with torch.no_grad():
        acc_float = float((model(split.x_test).argmax(1).numpy() == y).mean())
    logits = cm.int8_forward(cm.quantize_input(split.x_test))
    acc_int8 = float((logits.argmax(1) == y).mean())
    print(f"transformer_tokens: float top-1 {acc_float:.4f}, int8 {acc_int8:.4f} on {len(y)} "
          f"held-out sequences")
    assert acc_float >= 0.85   # the LSTM scores 0.852 on this split
    assert acc_float - acc_int8 <= MAX_GAP


def test_golden_equals_the_integer_twin(compiled):
    _, split, cm = compiled
    assert cm.refusal is None
    x_int = cm.quantize_input(split.x_test[:6])
    low = cm.lower(x_int)
    act = low.builder.act
    for p in low.programs:
        res = run_program(CFG, act, p.wgt, p.commands)
        assert res.done and not res.error, res.cause
        act = res.act
        perf = program_perf(CFG, p.commands)
        for key in ("commands", "mac_slots", "load_cycles"):
            assert perf.counters[key] == res.counters[key], key
    got = np.asarray(low.ints(act)).reshape(6, -1)
    np.testing.assert_array_equal(got, cm.int8_forward(x_int))
    assert low.builder.macs == 6 * TOKEN_MACS
