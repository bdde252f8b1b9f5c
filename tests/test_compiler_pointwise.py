"""Pointwise activations (sigmoid mid-model, tanh, SiLU, hardswish, hardsigmoid, softplus,
mish, ELU, CELU, SELU, log-sigmoid, softsign, a clamp not from 0) as tables on the attention
units' GELU unit: the float definitions equal torch's, each table entry is the correctly rounded
value, the traced IR equals torch, a rising one moves after a max pool, and a compiled model is
bit-exact between the golden interpreter, the integer twin and the RTL."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.reference import pointwise_torch
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.isa import Op
from hwaccel.generators.accel.model import decode
from hwaccel.numerics import (
    POINTWISE,
    gelu_int,
    gelu_params,
    pointwise_float,
    pointwise_params,
    pointwise_rising,
)

PRESET = "tiny_attention"
#: module, its function's name and parameters in the IR
MODULES = [(nn.SiLU(), "silu", ()), (nn.Tanh(), "tanh", ()), (nn.Hardswish(), "hardswish", ()),
           (nn.Softplus(2.0, 5.0), "softplus", (2.0, 5.0)),
           (nn.Mish(), "mish", ()), (nn.ELU(0.5), "elu", (0.5,)), (nn.CELU(0.7), "celu", (0.7,)),
           (nn.SELU(), "selu", ()), (nn.LogSigmoid(), "logsigmoid", ()),
           (nn.Softsign(), "softsign", ())]   # a Hardtanh is two affine maps, a Hardsigmoid
#                                               one (fold_scalar: tests/test_compiler_products)
PARAMS = {"softplus": (2.0, 5.0), "elu": (0.5,), "celu": (0.7,), "hardtanh": (-0.5, 2.0)}


@pytest.mark.parametrize("fn", list(POINTWISE))
def test_float_definitions_equal_torch(fn):
    x = torch.linspace(-30, 30, 4001, dtype=torch.float64)
    want = pointwise_torch(fn, x, PARAMS.get(fn, ()))
    got = torch.tensor([pointwise_float(fn, v, PARAMS.get(fn, ())) for v in x.tolist()],
                       dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fn", list(POINTWISE))
def test_each_entry_is_the_correctly_rounded_value(fn):
    sx, params = 0.07, PARAMS.get(fn, ())
    peak = max(abs(pointwise_float(fn, q * sx, params)) for q in range(-128, 128))
    sy = peak / 127
    table = pointwise_params(fn, sx, sy, params)
    q = np.arange(-128, 128)
    exact = np.array([pointwise_float(fn, v * sx, params) / sy for v in q])
    out = gelu_int(q, table)
    assert np.abs(out - np.clip(exact, -128, 127)).max() <= 0.5 + 1e-9
    assert np.count_nonzero(out) > 64
    if pointwise_rising(fn, params):
        assert (np.diff(out) >= 0).all()
    if fn == "gelu":   # GELU's table is the one the GELU layers had
        assert table == gelu_params(sx, sy)


def test_rising_and_bad_parameters():
    assert pointwise_rising("sigmoid") and not pointwise_rising("silu")
    assert pointwise_rising("elu", (0.5,)) and not pointwise_rising("elu", (-0.5,))
    with pytest.raises(ValueError, match="pointwise function must be one of sigmoid, tanh"):
        pointwise_params("swish", 0.1, 0.1)
    with pytest.raises(ValueError, match=r"tanh takes 0 parameters \(none\), not 1"):
        pointwise_params("tanh", 0.1, 0.1, (1.0,))
    with pytest.raises(ValueError, match="elu's alpha must be a finite number, not nan"):
        pointwise_params("elu", 0.1, 0.1, (math.nan,))
    with pytest.raises(ValueError, match="hardtanh's min_val must be below its max_val, not "
                                         "1.0 and 1.0"):
        pointwise_params("hardtanh", 0.1, 0.1, (1.0, 1.0))
    with pytest.raises(ValueError, match="softplus's beta must not be 0"):
        pointwise_params("softplus", 0.1, 0.1, (0.0,))
    with pytest.raises(ValueError, match="out_scale must be a positive finite number"):
        pointwise_params("tanh", 0.1, 0.0)


def _cnn(act, seed=0):
    """Fits ``tiny_attention`` (8 x 8 maps): ``act`` on an image before a max pool."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), act, nn.MaxPool2d(2),
                         nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                         nn.Linear(8 * 4 * 4, 10)).eval()


@pytest.mark.parametrize("act, fn, params", MODULES, ids=[m[1] for m in MODULES])
def test_modules_trace_to_their_table_op(act, fn, params):
    """Each module is one ``Pointwise`` op; a rising one goes after the max pool."""
    model = _cnn(act)
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = traced_equal_to_torch(model, x)
    (pw,) = [op for op in graph.ops if isinstance(op, ir.Pointwise)]
    assert (pw.fn, pw.params) == (fn, params)
    names = [type(op).__name__ for op in graph.ops]
    rising = ["Conv2d", "MaxPool2d", "Pointwise"]
    assert names[:3] == (rising if pointwise_rising(fn, params) else
                         ["Conv2d", "Pointwise", "MaxPool2d"]), names


class Functional(nn.Module):
    """The functions and methods, and a sigmoid another op reads (a gate)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 16)
        self.fc3 = nn.Linear(16, 5)

    def forward(self, x):
        x = F.max_pool2d(F.silu(self.c1(x)), 2)
        x = torch.sigmoid(self.c2(x)) + F.elu(x, 0.3).clamp(-0.5, 2.0)
        x = torch.flatten(x, 1)
        x = F.softplus(self.fc1(x), beta=2)
        return self.fc3(F.hardswish(self.fc2(x.tanh())))


def test_functions_and_a_read_sigmoid_trace_to_table_ops():
    torch.manual_seed(2)
    model = Functional().eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    graph = traced_equal_to_torch(model, x)
    got = [op.label() for op in graph.ops if isinstance(op, ir.Pointwise)]
    # the sigmoid's op is made where the add reads it, after the ELU; a table that alone reads
    # another is one table of both (the clamp of the ELU, the tanh of the softplus)
    assert got == ["silu", "hardtanh(elu(x, 0.3), -0.5, 2)", "sigmoid",
                   "tanh(softplus(x, 2, 20))", "hardswish"], got
    assert graph.head == "logits"
    # the model's last sigmoid stays a host head
    last = nn.Sequential(nn.Linear(4, 3), nn.Sigmoid()).eval()
    assert trace(last, torch.randn(2, 4)).head == "sigmoid"


def test_golden_equals_the_twin_and_the_float_model_closely():
    torch.manual_seed(4)
    model = Functional().eval()
    x = torch.randn(64, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    cm = hwaccel.compile(model, x[:2], preset=PRESET, calibration=x)
    fns = [op.fn for op in cm.qgraph.ops if isinstance(op, ir.QGelu)]
    assert fns == ["silu", "hardtanh(elu(x, 0.3), -0.5, 2)", "sigmoid",
                   "tanh(softplus(x, 2, 20))", "hardswish"], fns
    # hardswish runs in fc2's result path (fused); fc1 reads a flatten (no fusing), so the
    # other four are GELU commands
    lowered = cm.lower(cm.quantize_input(x[:1]))
    ops = [decode(cm.config, word)["op"] for p in lowered.programs for word in p.commands]
    assert ops.count(Op.GELU) == 4, ops
    table = cm.describe()
    assert "silu         Silu" in table and "hardswish    Hardswish" in table, table
    golden_twin_float(cm, model, x[:8], 0.1)


def test_the_rtl_runs_table_activations_bit_exact():
    torch.manual_seed(6)
    model_rtl_exact(Functional().eval(), seed=7, preset=PRESET)


def test_a_preset_without_the_units_names_the_function_and_the_presets_with_them():
    model = _cnn(nn.SiLU())
    with pytest.raises(UnsupportedOp, match=r"layer '1' is silu \(a table on the attention "
                                            r"units' GELU unit\): no accelerator command for it "
                                            r"on accel_tiny .*presets with them: .*"
                                            r"tiny_attention"):
        hwaccel.compile(model, torch.randn(2, 3, 8, 8), preset="tiny")
    bad = nn.Sequential(nn.Linear(4, 4), nn.Softplus(beta=0.0)).eval()
    with pytest.raises(UnsupportedOp, match="softplus parameters at .*beta must not be 0"):
        trace(bad, torch.randn(2, 4))


class Written(nn.Module):
    """Activations written out as expressions of one value: MobileNetV3's ``h_swish`` and
    ``h_sigmoid``, swish, an affine map of a tanh, and a ReLU of a tanh."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = self.c1(x)
        x = F.max_pool2d(x * F.relu6(x + 3.0) / 6.0, 2)            # h_swish
        x = self.c2(x)
        x = x * torch.sigmoid(x) + F.relu6(x + 3) / 6              # swish + h_sigmoid
        x = self.fc1(torch.flatten(x, 1))
        return self.fc2(torch.relu(2 - torch.tanh(x) * 0.5))


def test_expressions_of_one_value_are_one_table_each():
    torch.manual_seed(8)
    model = Written().eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(9))
    graph = traced_equal_to_torch(model, x)
    got = [(op.label(), op.inputs) for op in graph.ops if isinstance(op, ir.Pointwise)]
    assert got == [("x*hardtanh(x+3, 0, 6)*0.166667", ("c1",)),
                   ("x*sigmoid(x)", ("c2",)), ("relu(2-(tanh(x)*0.5))", ("fc1",))], got
    # h_sigmoid alone is an affine map (:mod:`hwaccel.compiler.fold_scalar`): x / 6 + 0.5
    # under a ReLU capped at 1, a depthwise 1 x 1 conv (c2's other reader keeps it apart)
    (hs,) = [op for op in graph.ops if isinstance(op, ir.Conv2d) and op.inputs == ("c2",)]
    assert hs.groups == 8 and hs.relu and hs.cap == 1.0


def test_expressions_run_bit_exact_on_the_rtl():
    torch.manual_seed(10)
    model = Written().eval()
    model_close(model, seed=11, preset=PRESET)
    model_rtl_exact(model, seed=12, preset=PRESET)


class TwoValues(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(2, 4, 1)
        self.how = how

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        y = a * b if self.how == "mul" else a / torch.sigmoid(a) if self.how == "div" else a - b
        return y.flatten(1)


def test_a_quotient_of_two_values_is_refused_by_name_and_a_product_is_a_mul():
    with pytest.raises(UnsupportedOp, match=r"expression at .*divides only by a number other "
                                            r"than 0, not by sigmoid\(x\)"):
        trace(TwoValues("div").eval(), torch.randn(2, 2, 5, 5))
    graph = traced_equal_to_torch(TwoValues("mul").eval(), torch.randn(4, 2, 5, 5))
    assert [op.gate for op in graph.ops if isinstance(op, ir.Mul)] == [False]


class Excite(nn.Module):
    """Squeeze-excitation: a map scaled by channel weights computed from its own mean."""

    def __init__(self):
        super().__init__()
        self.c, self.fc = nn.Conv2d(2, 4, 3, padding=1), nn.Linear(4, 4)

    def forward(self, x):
        y = torch.relu(self.c(x))
        w = torch.sigmoid(self.fc(y.mean((2, 3))))
        return (y * w[:, :, None, None]).flatten(1)


def test_squeeze_excitation_with_a_sigmoid_table_runs():
    """The channel weights spread over the pixels (``w[:, :, None, None]``: the vector as a
    one-pixel image) are the gate of a MUL; the sigmoid is a table. Golden equals the twin
    and the twin the float model."""
    torch.manual_seed(3)
    graph = traced_equal_to_torch(Excite().eval(), torch.randn(4, 2, 5, 5))
    assert [op.gate for op in graph.ops if isinstance(op, ir.Mul)] == [True]
    torch.manual_seed(4)
    model_close(Excite().eval(), seed=5, preset=PRESET, shape=(2, 5, 5))
