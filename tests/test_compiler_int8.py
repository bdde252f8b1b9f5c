"""The integer path: a compiled model's program on the golden interpreter equals the integer
twin in torch exactly, and int8 accuracy stays within a point of float."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch

import hwaccel
from hwaccel.compiler.cases import MODELS, make
from hwaccel.generators.accel.model import run_program
from hwaccel.models import load


def golden(cm, x_int):
    """The lowered program on the golden interpreter: ``(int outputs, Lowered, activations)``."""
    low = cm.lower(x_int)
    b = low.builder
    res = run_program(cm.config, b.act, b.wgt, b.commands)
    assert res.done and not res.error, (res.cause, res.pc)
    return low.ints(res.act), low, res.act


@functools.cache
def compiled(name: str):
    model, data = load(name)
    return hwaccel.compile(model, data.x_test[:2], calibration=data.x_train[:256]), data


@pytest.fixture(params=["cnn", "lstm"])
def reference(request):
    return (request.param, *compiled(request.param))


def test_golden_equals_int8_on_held_out(reference):
    """24 held-out samples as one program: every int8 logit equal, and so every argmax."""
    name, cm, data = reference
    x_int = cm.quantize_input(data.x_test[:24])
    ints, low, act = golden(cm, x_int)
    twin = cm.int8_forward(x_int)
    assert ints.shape == twin.shape == (24, 10)
    np.testing.assert_array_equal(ints, twin)
    np.testing.assert_array_equal(ints.argmax(1), twin.argmax(1))
    # logits() reads the same words and scales them by the output scale, nothing else
    np.testing.assert_array_equal(low.logits(act), twin * cm.qgraph.output_scale)
    # the words outside the outputs' span do not matter to the readback
    start, count = low.span
    only = np.zeros_like(act)
    only[start:start + count] = act[start:start + count]
    np.testing.assert_array_equal(low.ints(only), ints)
    # and the integer outputs are not trivially equal: they spread over the int8 range
    assert len(np.unique(ints)) > 50, name


def test_int8_accuracy_within_a_point_of_float(reference):
    """The CNN on its whole held-out split; the LSTM on its first 400 held-out sequences (the
    integer twin's per-step loop costs seconds on the full 1,000 on this machine)."""
    name, cm, data = reference
    n = len(data.y_test) if name == "cnn" else 400
    x, y = data.x_test[:n], data.y_test[:n].numpy()
    with torch.no_grad():
        float_acc = float((cm.module(x).argmax(1).numpy() == y).mean())
    int8_acc = float((cm.int8_forward(cm.quantize_input(x)).argmax(1) == y).mean())
    print(f"{name}: {n} held-out samples, float {float_acc:.4f}, int8 {int8_acc:.4f}")
    assert abs(int8_acc - float_acc) <= 0.01, (float_acc, int8_acc)
    assert float_acc > 0.8  # a trained model, so the comparison means something


@pytest.mark.parametrize("name", list(MODELS))
def test_golden_equals_int8_on_general_models(name):
    """Every lowering path (fused and stand-alone pools, a Linear as a CONV or as a GEMM over a
    flattened map, stacked and every-step LSTMs, stride 2, padding), seeded random weights."""
    model, inputs = make(name)
    gen = torch.Generator().manual_seed(2)
    cm = hwaccel.compile(model, inputs(2, gen), calibration=inputs(64, gen))
    x_int = cm.quantize_input(inputs(5, gen))
    ints, _, _ = golden(cm, x_int)
    np.testing.assert_array_equal(ints, cm.int8_forward(x_int))
    assert ints.shape == (5, *cm.qgraph.output_shape)
    assert np.count_nonzero(ints) > ints.size // 4, f"{name}: outputs mostly zero"


def test_batches_beyond_one_program_cover_every_sample():
    """``lower_batches`` splits at ``max_batch``; the last, partial program equals the twin."""
    cm, data = compiled("lstm")
    x_int = cm.quantize_input(data.x_test[: cm.max_batch + 3])
    parts = list(cm.lower_batches(x_int))
    assert [p.stop - p.start for p, _ in parts] == [cm.max_batch, 3]
    tail = parts[-1][1]
    b = tail.builder
    act = run_program(cm.config, b.act, b.wgt, b.commands).act
    np.testing.assert_array_equal(tail.ints(act), cm.int8_forward(x_int[parts[-1][0]]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_int8_on_cuda_equals_cpu(reference):
    _, cm, data = reference
    x_int = cm.quantize_input(data.x_test[:64])
    np.testing.assert_array_equal(cm.int8_forward(x_int, "cuda"), cm.int8_forward(x_int))


CONV_CASES = ["dscnn_tiny", "resnet_tiny", "branches", "sequential", "dscnn"]


def _conv_case(name: str):
    """``(compiled, int8 inputs)``: 8 inputs of a conv model (depthwise, per-side padding,
    residual adds, plain)."""
    if name == "dscnn":
        model, data = load(name)
        x = torch.as_tensor(data.x_test[:8])
    else:
        model, inputs = make(name)
        x = inputs(8, torch.Generator().manual_seed(2))
    cm = hwaccel.compile(model, x[:2], calibration=x)
    return cm, cm.quantize_input(x)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("name", CONV_CASES)
def test_conv_models_int8_on_cuda_equal_cpu(name):
    cm, x_int = _conv_case(name)
    for n in (1, 3, 8):
        np.testing.assert_array_equal(cm.int8_forward(x_int[:n], "cuda"),
                                      cm.int8_forward(x_int[:n]))


@pytest.mark.parametrize("name", CONV_CASES)
def test_unfold_convolutions_equal_the_cpu_path(monkeypatch, name):
    """The convolutions' ``unfold`` + matmul path (every device but the CPU, so CUDA's) equals
    the CPU's ``conv2d`` exactly, grouped ones included, here on the CPU (CI has no GPU). At
    batch 8 a depthwise conv of 8 channels once broadcast its kernels over the batch and got
    the right shape with the wrong values; at other batches it raised (first seen on an H200)."""
    from hwaccel.compiler import int8

    cm, x_int = _conv_case(name)
    want = {n: int8.forward(cm.qgraph, x_int[:n]) for n in (1, 3, 8)}
    monkeypatch.setattr(int8, "unfold_convs", lambda dev: True)
    for n, ints in want.items():
        np.testing.assert_array_equal(int8.forward(cm.qgraph, x_int[:n]), ints)
