"""Runtime backends: the registry, one-line unavailability, and every backend against its
reference -- xla against torch-cpu (float tolerance), torch-int8 and rtl against golden (exact).

Small on purpose: a few held-out samples per model, the ``ecp5`` preset for the RTL (it holds
the CNN and builds in a minute or two; the ``default`` preset runs in ``hwaccel compare``).
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from hwaccel.compiler.builders import Program
from hwaccel.compiler.lower import Lowered
from hwaccel.generators.accel import PRESETS
from hwaccel.generators.accel.cases import cnn_program, fault_programs
from hwaccel.runtime import backends
from hwaccel.runtime.backends import BackendUnavailable
from hwaccel.runtime.backends.programs import ProgramFault

#: xla and torch run the same float32 model; their summation orders differ, nothing else.
FLOAT_TOL = 1e-4
SAMPLES = 6


@pytest.fixture(scope="module")
def models():
    """``name -> (compiled on ecp5, held-out inputs)`` for both reference models."""
    from hwaccel.models.train import load
    from hwaccel.runtime import compile

    out = {}
    for name in ("cnn", "lstm"):
        module, split = load(name)
        cm = compile(module, split.x_train[:8], preset="ecp5" if name == "cnn" else "default",
                     calibration=split.x_train[:256])
        out[name] = (cm, split.x_test[:SAMPLES])
    return out


# --- registry and unavailability -----------------------------------------------------------------
def test_registry_names_and_lookup():
    assert {"golden", "rtl", "torch-cpu", "torch-cuda", "xla", "torch-int8",
            "torch-int8-cuda"} <= set(backends.names())
    for name in backends.names():
        b = backends.get(name)
        assert b.name == name and isinstance(b.integer, bool) and isinstance(b.hardware, bool)
    assert backends.get("rtl").hardware and backends.get("rtl").integer
    assert not backends.get("xla").integer
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'; known: golden, rtl"):
        backends.get("tpu")


@pytest.mark.parametrize("name", ["torch-cuda", "torch-int8-cuda"])
def test_cuda_backends_unavailable_in_one_line(name, monkeypatch):
    """Where there is no GPU (here: made so) the backend names what is missing, in one line."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendUnavailable) as info:
        backends.get(name).check()
    assert str(info.value) == f"{name}: no CUDA device (torch.cuda.is_available() is False)"


def test_this_machine_reports_torch_cuda_honestly():
    b = backends.get("torch-cuda")
    if torch.cuda.is_available():
        assert b.check().startswith("cuda:")
    else:
        with pytest.raises(BackendUnavailable, match=r"^torch-cuda: no CUDA device"):
            b.check()


def test_xla_without_jax_is_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "jax", None)  # `import jax` now fails as if not installed
    with pytest.raises(BackendUnavailable, match=r"^xla: jax is not installed"):
        backends.get("xla").check()


# --- faults and bounded runs ---------------------------------------------------------------------
def as_lowered(builder) -> Lowered:
    """A driver-built program as a one-program lowered batch (no outputs to read back)."""
    return Lowered(builder, (), "image", 1.0,
                   (Program(builder.commands, builder.wgt, builder.wgt_top, ()),))


@pytest.mark.parametrize("name", ["golden", "rtl"])
def test_program_fault_raises_with_cause_and_pc(name, seed):
    cfg = PRESETS["ecp5"]
    builder, cause, pc = fault_programs(cfg, np.random.default_rng(seed))["illegal_15"]
    backend = backends.get(name)
    backend.open(SimpleNamespace(config=cfg))
    try:
        with pytest.raises(ProgramFault,
                           match=rf"^{name}: batch 3 faulted: cause {cause.name} at pc {pc}$"):
            backend.execute(SimpleNamespace(config=cfg), as_lowered(builder), 3)
    finally:
        backend.close()


def test_rtl_run_past_its_limit_is_a_timeout(seed):
    from hwaccel.runtime.backends.rtl import RtlTimeout

    cfg = PRESETS["ecp5"]
    cnn = cnn_program(cfg, 1, seed)
    backend = backends.get("rtl")
    backend.limit = 500
    backend.open(SimpleNamespace(config=cfg))
    try:
        with pytest.raises(RtlTimeout, match=r"^rtl: batch 0 still busy after 500 cycles "
                                             r"\(pc \d+\)"):
            backend.execute(SimpleNamespace(config=cfg), as_lowered(cnn.builder), 0)
    finally:
        backend.close()


# --- backends against their references -----------------------------------------------------------
@pytest.mark.parametrize("name", ["resnet_tiny", "dscnn_tiny", "branches"])
def test_xla_runs_graphs(name):
    """Residual adds, branches, average pools, per-side padding, depthwise and non-square
    convolutions: the float IR in JAX equals the module."""
    import hwaccel
    from hwaccel.compiler.cases import make

    model, inputs = make(name)
    gen = torch.Generator().manual_seed(1)
    cm = hwaccel.compile(model, inputs(2, gen), strict=False)
    x = inputs(SAMPLES, gen)
    ref, got = cm.execute("torch-cpu", x), cm.execute("xla", x)
    np.testing.assert_allclose(got.logits, ref.logits, rtol=0, atol=FLOAT_TOL)


@pytest.mark.parametrize("model", ["cnn", "lstm"])
def test_xla_equals_torch_cpu(models, model):
    cm, x = models[model]
    ref = cm.execute("torch-cpu", x)
    got = cm.execute("xla", x)
    assert got.logits.shape == ref.logits.shape == (SAMPLES, 10)
    np.testing.assert_allclose(got.logits, ref.logits, rtol=0, atol=FLOAT_TOL)
    assert got.device.startswith(("cpu", "gpu", "cuda", "tpu"))


@pytest.mark.parametrize("model", ["cnn", "lstm"])
def test_torch_int8_equals_golden_exactly(models, model):
    cm, x = models[model]
    gold = cm.execute("golden", x)
    got = cm.execute("torch-int8", x, batch=4)  # two batches, the last one short
    assert got.int_logits.dtype == gold.int_logits.dtype == np.int64
    np.testing.assert_array_equal(got.int_logits, gold.int_logits)
    np.testing.assert_array_equal(got.logits, gold.logits)


def test_rtl_equals_golden_on_cnn_digits(models):
    from hwaccel.models.train import load

    cm, _ = models["cnn"]
    assert cm.config.slug == "accel_ecp5"
    x = load("cnn")[1].x_test[:2 * SAMPLES]
    assert cm.max_batch < len(x)   # ecp5 holds 8 samples a program: two programs here
    gold = cm.execute("golden", x)
    got = cm.execute("rtl", x)  # batches of max_batch
    np.testing.assert_array_equal(got.int_logits, gold.int_logits)
    assert got.cycles_per_sample > 0 and gold.cycles_per_sample is None


def test_rtl_runs_a_model_as_several_programs():
    """Weights beyond ecp5's weight scratchpad: three programs on one activation scratchpad,
    equal to golden; the reported cycles are the hardware's counter over each program plus the
    host's writes between them, so they exceed one program's cycles plus those writes."""
    import hwaccel

    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(256, 256), nn.ReLU()) for _ in range(3)],
                          nn.Linear(256, 10)).eval()
    x = torch.randn(48, 256, generator=torch.Generator().manual_seed(1))
    cm = hwaccel.compile(model, x[:2], calibration=x, preset="ecp5")
    low = cm.lower(cm.quantize_input(x[:4]))
    assert [p.layers for p in low.programs] == [("0.0",), ("1.0",), ("2.0", "3")]
    gold, got = cm.execute("golden", x[:4]), cm.execute("rtl", x[:4])
    np.testing.assert_array_equal(got.int_logits, gold.int_logits)
    assert got.cycles_per_sample * 4 > low.host_words > 0


@pytest.mark.gpu
def test_cuda_backends(models):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (torch.cuda.is_available() is False)")
    for model in ("cnn", "lstm"):
        cm, x = models[model]
        ref, gold = cm.execute("torch-cpu", x), cm.execute("golden", x)
        cuda = cm.execute("torch-cuda", x)
        np.testing.assert_allclose(cuda.logits, ref.logits, rtol=0, atol=FLOAT_TOL)
        int8 = cm.execute("torch-int8-cuda", x)
        np.testing.assert_array_equal(int8.int_logits, gold.int_logits)
        assert cuda.device.startswith("cuda:") and int8.device.startswith("cuda:")
        assert "TF32 off" in " ".join(cuda.notes)


def test_ieee_float32_sets_and_restores_tf32_settings():
    """The CUDA reference's float32 contractions are IEEE inside the block (TF32 is cuDNN's
    default on Ampere and later), and the caller's settings come back after it, also on error."""
    from hwaccel.runtime.backends.torch_float import ieee_float32, tf32_knobs

    def read():
        return [getattr(obj, name) for obj, name, _ in tf32_knobs()]

    before = read()
    assert before != [value for *_, value in tf32_knobs()]  # torch's default allows TF32 somewhere
    with pytest.raises(KeyError), ieee_float32():
        assert read() == [value for *_, value in tf32_knobs()]
        raise KeyError("inside")
    assert read() == before
