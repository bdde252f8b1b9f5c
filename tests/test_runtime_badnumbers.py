"""Bad numbers are refused, not computed: NaN and inf in calibration data, inputs (every backend,
``hwaccel compare``), weights and biases, batch-norm statistics and a layer's activations during
calibration raise :class:`NonFiniteError` naming the tensor and the layer, before any work. An
all-zero tensor gets the stated scale 1/127; values beyond the calibrated range saturate (never
wrap), and the saturation counts per layer are exact on a hand-built case."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import hwaccel
from hwaccel.compiler import NonFiniteError
from hwaccel.compiler.cases import make
from hwaccel.compiler.quantize import BIAS_MAX, ZERO_RANGE_SCALE
from hwaccel.compiler.saturation import Clipped
from hwaccel.runtime import backends

NAN, INF = float("nan"), float("inf")


def _inputs(name: str, n: int, seed: int = 1):
    model, inputs = make(name)
    return model, inputs(n, torch.Generator().manual_seed(seed))


# --- calibration data ----------------------------------------------------------------------------
def test_nonfinite_calibration_data_is_refused():
    model, cal = _inputs("sequential", 16)
    cal[2, 0, 3, 4], cal[5, 0, 1, 1] = NAN, INF
    with pytest.raises(NonFiniteError) as info:
        hwaccel.compile(model, cal[:2], calibration=cal)
    assert str(info.value) == ("calibration data must be finite, not 1 NaN and 1 +inf of 1,024 "
                               "values (the first, NaN, at [2, 0, 3, 4])")
    e = info.value
    assert (e.what, e.layer, e.count, e.total, e.index) == ("calibration data", None, 2, 1024,
                                                            (2, 0, 3, 4))
    assert hwaccel.NonFiniteError is NonFiniteError and isinstance(e, ValueError)


def test_all_nan_calibration_no_longer_compiles_to_scale_one():
    """The new user's case: data full of NaNs used to give every scale 1 and garbage logits."""
    model, _ = _inputs("mlp", 1)
    cal = torch.full((32, 20), NAN)
    with pytest.raises(NonFiniteError, match=r"^calibration data must be finite, not 640 NaN of "
                                             r"640 values \(the first, NaN, at \[0, 0\]\)$"):
        hwaccel.compile(model, cal[:1], calibration=cal)


def test_nonfinite_example_used_as_calibration_says_so():
    model, x = _inputs("mlp", 3)
    x[1, 7] = -INF
    with pytest.raises(NonFiniteError) as info:
        hwaccel.compile(model, x)  # no calibration: the example calibrates
    assert str(info.value) == ("calibration data (the example: no calibration given) must be "
                               "finite, not 1 -inf of 60 values (the first, -inf, at [1, 7])")


# --- weights, biases, statistics -----------------------------------------------------------------
WEIGHTS = [  # model, parameter, index, value, message after "<parameter> of layer "
    ("sequential", "0.weight", (1, 0, 2, 1), NAN,
     "'0' (Conv2d) must be finite, not 1 NaN of 36 values (the first, NaN, at [1, 0, 2, 1])"),
    ("sequential", "4.bias", (2,), INF,
     "'4' (Linear) must be finite, not 1 +inf of 6 values (the first, +inf, at [2])"),
    ("batchnorm", "1.running_var", (3,), NAN,
     "'1' (BatchNorm2d) must be finite, not 1 NaN of 6 values (the first, NaN, at [3])"),
    ("batchnorm", "6.running_mean", (5,), -INF,
     "'6' (BatchNorm1d) must be finite, not 1 -inf of 8 values (the first, -inf, at [5])"),
    ("stackedlstm", "emb.weight", (3, 0), INF,
     "'emb' (Embedding) must be finite, not 1 +inf of 2,560 values (the first, +inf, at [3, 0])"),
    ("stackedlstm", "rnn.weight_hh_l1", (5, 7), NAN,
     "'rnn' (LSTM) must be finite, not 1 NaN of 16,384 values (the first, NaN, at [5, 7])"),
    ("seqhead", "rnn.bias_ih_l0", (200,), NAN,
     "'rnn' (LSTM) must be finite, not 1 NaN of 256 values (the first, NaN, at [200])"),
]


@pytest.mark.parametrize("name, param, index, value, message", WEIGHTS,
                         ids=[w[1] for w in WEIGHTS])
def test_nonfinite_weights_are_refused_by_name(name, param, index, value, message):
    model, x = _inputs(name, 8)
    tensor = dict(model.named_parameters()) | dict(model.named_buffers())
    with torch.no_grad():
        tensor[param][index] = value
    with pytest.raises(NonFiniteError) as info:
        hwaccel.compile(model, x[:2], calibration=x)
    assert str(info.value) == f"{param} of layer {message}"


def test_batchnorm_that_folds_to_nan_is_refused():
    """Finite statistics can still fold into NaN: a negative running variance."""
    model, x = _inputs("batchnorm", 8)
    with torch.no_grad():
        model[1].running_var[3] = -1.0
    with pytest.raises(NonFiniteError) as info:
        hwaccel.compile(model, x[:2], calibration=x)
    assert str(info.value) == ("0.weight with 1 folded in of layer '0' (Conv2d) must be finite, "
                               "not 9 NaN of 54 values (the first, NaN, at [3, 0, 0, 0]); "
                               "1.running_var + eps must be > 0, not -0.99999")


# --- activations during calibration --------------------------------------------------------------
def test_overflow_inside_the_float_model_is_named_by_layer():
    """Finite data and weights; layer '2' overflows float64 on one sample in the second chunk
    of the calibration pass (256 samples each): counted over the whole set, indexed in it."""
    model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2))
        model[0].bias.zero_()
        model[2].weight.copy_(torch.tensor([[1e308, 1e308], [1.0, 0.0]], dtype=torch.float64))
        model[2].bias.zero_()
    cal = torch.full((301, 2), 0.1, dtype=torch.float64)
    cal[300] = 1.0  # 1e308 + 1e308 = inf
    with pytest.raises(NonFiniteError) as info:
        hwaccel.compile(model, cal[:2], calibration=cal)
    assert str(info.value) == ("calibration activations of layer '2' (Linear) must be finite, "
                               "not 1 +inf of 602 values (the first, +inf, at [300, 0]); the "
                               "layer's input was finite, so the float model overflows in it")


# --- inputs --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    model, x = _inputs("sequential", 64)
    return hwaccel.compile(model, x[:2], preset="ecp5", calibration=x)


INPUT_MESSAGE = ("input must be finite, not 2 NaN and 1 -inf of 192 values (the first, -inf, "
                 "at [1, 0, 0, 0])")


@pytest.mark.parametrize("backend", backends.names())
def test_nonfinite_input_is_refused_on_every_backend(small, backend):
    """Before the device is looked for, so it holds on machines without a GPU or JAX too."""
    _, x = _inputs("sequential", 3, seed=2)
    x[1, 0, 0, 0], x[1, 0, 5, 5], x[2, 0, 7, 7] = -INF, NAN, NAN
    with pytest.raises(NonFiniteError) as info:
        small.run(backend, x)
    assert str(info.value) == INPUT_MESSAGE
    with pytest.raises(NonFiniteError, match=r"^input must be finite"):
        small.quantize_input(x.numpy())  # no "x_int must hold int8 values ... -2**63" any more


def test_compare_refuses_nonfinite_held_out_inputs(capsys, monkeypatch):
    from hwaccel.cli import main
    from hwaccel.models import train

    real = train.load

    def poisoned(name):
        module, split = real(name)
        x = split.x_test.clone()
        x[3, 0, 10, 11] = NAN
        return module, type(split)(split.x_train, split.y_train, x, split.y_test)

    monkeypatch.setattr(train, "load", poisoned)
    rc = main(["compare", "--no-progress", "--model", "cnn", "--samples", "5",
               "--backends", "golden"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == ("hwaccel: error: input must be finite, not 1 NaN of 3,920 values (the "
                   "first, NaN, at [3, 0, 10, 11])\n")


# --- an all-zero calibration tensor --------------------------------------------------------------
def _zero_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2)).eval()


def test_all_zero_calibration_gets_the_stated_scale():
    assert ZERO_RANGE_SCALE == 1 / 127
    cm = hwaccel.compile(_zero_net(), torch.zeros(1, 3), preset="ecp5",
                         calibration=torch.zeros(8, 3))
    q = cm.qgraph
    assert q.input_scale == ZERO_RANGE_SCALE and q.ops[0].s_out == ZERO_RANGE_SCALE
    assert q.ops[1].s_out == _zero_net()[2].bias.detach().double().abs().max().item() / 127
    x = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.25, -3.0]])
    x_int = cm.quantize_input(x)  # 1.0 maps to 127; 63.5 rounds half to even; 2.0 saturates
    np.testing.assert_array_equal(x_int, [[64, -127, 127], [0, 32, -128]])
    np.testing.assert_array_equal(cm.execute("golden", x).int_logits, cm.int8_forward(x_int))
    assert cm.saturation(x)[0] == Clipped("input", 6, 1, 1)


def test_a_layer_silenced_on_the_calibration_data_gets_the_stated_scale():
    model = _zero_net()
    with torch.no_grad():
        model[0].weight.copy_(-model[0].weight.abs())  # positive inputs: the ReLU outputs 0
    cm = hwaccel.compile(model, torch.ones(1, 3), preset="ecp5",
                         calibration=torch.rand(16, 3, generator=torch.Generator().manual_seed(3))
                         + 0.1)
    assert cm.qgraph.ops[0].s_out == ZERO_RANGE_SCALE
    assert cm.qgraph.input_scale != ZERO_RANGE_SCALE



def test_a_bias_far_beyond_its_inputs_coarsens_its_weights_and_compiles():
    """Inputs that calibrate near zero (an untrained deep network's last layers) put a bias
    beyond int32 at ``s_in * s_w``: its channel's weight scale coarsens until the bias is
    BIAS_MAX steps, and the output stays within an output step of the float model's."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    with torch.no_grad():
        model[0].weight.mul_(1e-9)
        model[0].bias.fill_(1e-9)
        model[2].bias.copy_(torch.tensor([0.5, -0.25, 0.0]))
    cal = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))
    cm = hwaccel.compile(model, cal[:1], preset="ecp5", calibration=cal)
    last = cm.qgraph.ops[-1]
    assert abs(int(last.bias[0])) == BIAS_MAX and abs(int(last.bias[1])) == BIAS_MAX
    assert int(last.bias[2]) == 0 and np.abs(last.w[2]).max() == 127  # a plain channel
    assert np.abs(last.w[:2]).max() < 127      # coarser than max|w| / 127
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(2))
    got = cm.execute("golden", x).int_logits
    np.testing.assert_array_equal(got, cm.int8_forward(cm.quantize_input(x)))
    with torch.no_grad():
        want = model(x).double().numpy()
    assert np.abs(got * last.s_out - want).max() <= last.s_out

# --- saturation ----------------------------------------------------------------------------------
def _clip_net(relu: bool):
    """y = [x0 + x1, x2, -x3] calibrated on one sample: input range 1 (scale 1/127), output
    range 0.5 (scale 0.5/127), weights exactly 127 * 1/127, so y_int = 2 * (sum of x_int)."""
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, -1]]))
        lin.bias.zero_()
    model = nn.Sequential(lin, nn.ReLU()) if relu else nn.Sequential(lin)
    return hwaccel.compile(model.eval(), torch.zeros(1, 4), preset="ecp5",
                           calibration=torch.tensor([[1.0, -1.0, 0.5, 0.25]]))


CLIP_X = torch.tensor([[2.0, 0.0, 0.1, -0.1],     # input 2 -> 254 clips; y0 = 2 * 127 clips
                       [-3.0, 0.0, -0.6, 0.6],    # input -3 clips; every y is -152 or -256
                       [0.2, 0.3, 0.25, -0.25],   # y0 = 2 * (25 + 38) = 126: in range
                       [1.0, -1.0, 0.0, 0.0]])    # inputs exactly +-127: not saturation
CLIPPED = {False: [[127, 26, 26], [-128, -128, -128], [126, 64, 64], [0, 0, 0]],
           True: [[127, 26, 26], [0, 0, 0], [126, 64, 64], [0, 0, 0]]}


@pytest.mark.parametrize("relu", [False, True], ids=["linear", "relu"])
def test_saturation_counts_are_exact(relu):
    cm = _clip_net(relu)
    np.testing.assert_array_equal(cm.quantize_input(CLIP_X)[:, 0], [127, -128, 25, 127])
    assert cm.saturation(CLIP_X) == [Clipped("input", 16, 1, 1),
                                     Clipped("0", 12, 1, 0 if relu else 3)]  # ReLU is no clip
    np.testing.assert_array_equal(cm.int8_forward(cm.quantize_input(CLIP_X)), CLIPPED[relu])


@pytest.mark.parametrize("backend", ["golden", "torch-int8", "rtl"])
def test_out_of_range_inputs_saturate_on_integer_backends(backend):
    """Clamped, never wrapped: -256 would wrap to 0 and 254 to -2 in int8."""
    cm = _clip_net(relu=False)
    np.testing.assert_array_equal(cm.execute(backend, CLIP_X).int_logits, CLIPPED[False])


def test_tally_changes_no_output_and_counts_lstm_steps():
    model, x = _inputs("stackedlstm", 6)
    cm = hwaccel.compile(model, x[:2], calibration=x)
    from hwaccel.compiler.int8 import forward

    tally: dict = {}
    x_int = cm.quantize_input(x)
    np.testing.assert_array_equal(forward(cm.qgraph, x_int, "cpu", tally), forward(cm.qgraph,
                                                                                   x_int))
    rows = cm.saturation(x)
    assert [r.layer for r in rows] == ["rnn.0", "rnn.1", "out"]  # token ids: no input row
    assert [r.values for r in rows] == [6 * 9 * 64, 6 * 9 * 64, 6 * 7]  # every step's h
    assert [[r.values, r.high, r.low] for r in rows] == [tally[r.layer] for r in rows]


def test_compare_reports_saturation_in_json_and_table(capsys):
    from hwaccel.cli import main
    from hwaccel.models.train import load

    args = ["compare", "--no-progress", "--model", "cnn", "--samples", "4", "--calibration",
            "64", "--backends", "golden"]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    sat = report["saturation"]
    assert [s["layer"] for s in sat] == ["input", "conv1", "conv2", "conv3", "fc1", "fc2"]
    module, split = load("cnn")
    cm = hwaccel.compile(module, split.x_train[:8], calibration=split.x_train[:64])
    assert sat == [c.to_json() for c in cm.saturation(split.x_test[:4])]
    assert sat[0]["values"] == 4 * 28 * 28 and all(s["saturated"] == s["high"] + s["low"]
                                                   for s in sat)
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "saturation on 4 samples (integer twin, exact)" in out
    assert any(line.split()[:2] == ["conv1", f"{4 * 32 * 26 * 26:,}"] for line in out.splitlines())
