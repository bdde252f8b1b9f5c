"""Expressions of a tensor and numbers that are affine maps (``x * 0.5``, ``(a + b) / 2``,
``relu6(x + 3) / 6``, a clamp between any two numbers) run on every preset: each is an affine
map (:mod:`hwaccel.compiler.fold_scalar`), folded into the op next to it where that is exact,
else a depthwise 1 x 1 conv, not a table on the attention units. Traced equal to torch; golden
equal to the integer twin and close to the float model; on the RTL (``tiny``, which has no
attention units) bit-exact, every counter equal to the cycle model's. On a sequence such an
expression stays a table."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, traced_equal_to_torch
from rtl_checks import compiled_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.compiler.fold_scalar import affine_of
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]
X, C = ("x",), lambda v: ("c", float(v))


@pytest.mark.parametrize("tree, form", [
    (("mul", X, C(0.5)), ("lin", 0.5, 0.0)),
    (("sub", ("mul", C(2), X), C(1)), ("lin", 2.0, -1.0)),
    (("div", ("add", X, C(3)), C(4)), ("lin", 0.25, 0.75)),
    (("div", ("fn", "hardtanh", (0.0, 6.0), ("add", X, C(3))), C(6)),
     ("clamp", (1.0, 3.0, 0.0, 6.0), (1 / 6, 0.0))),
    (("sub", C(1), ("fn", "relu", (), ("mul", X, C(-2)))), ("clamp", (-2.0, 0.0, 0.0, np.inf),
                                                            (-1.0, 1.0))),
    (("mul", X, X), None),                                        # a product: not affine
    (("mul", X, ("fn", "sigmoid", (), X)), None),                 # SiLU: a table
    (("fn", "relu", (), ("fn", "relu", (), X)), None),            # two clamps: a table
    (("fn", "tanh", (), X), None),
])
def test_the_affine_form_of_an_expression(tree, form):
    assert affine_of(tree) == form


class Scalars(nn.Module):
    """Numbers on images: a scale after a ReLU, a hard sigmoid written out, a mean of two
    branches, a clamp from -1 and an affine map before the pool; on vectors, a scale and a
    shift between two Linears."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 8, 1)
        self.fc1, self.fc2 = nn.Linear(8, 16), nn.Linear(16, 5)

    def forward(self, x):
        a = F.relu(self.c1(x)) * 0.5
        b = F.relu6(self.c2(a) + 3) / 6
        c = (a + self.c3(b)) / 2
        d = torch.clamp(c, -1, 1) * 2 - 0.5
        v = F.relu(self.fc1(d.mean((2, 3)))) * 3 - 1
        return self.fc2(v)


def _model():
    torch.manual_seed(3)
    return Scalars().eval()


def _x(n):
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(4))


def test_numbers_on_tensors_are_affine_maps_folded_into_their_neighbours():
    model, x = _model(), _x(8)
    graph = traced_equal_to_torch(model, x)
    kinds = {op.name: type(op).__name__ for op in graph.ops}
    assert not any(isinstance(op, ir.Pointwise) for op in graph.ops), kinds
    ops = {op.name: op for op in graph.ops}
    # a scale after a ReLU into the conv before it; relu6(z + 3) / 6 into c2: z / 6 + 0.5
    # under a ReLU capped at 1
    assert ops["mul"].inputs == (ir.INPUT,) and ops["mul"].relu and ops["mul"].cap is None
    assert ops["truediv"].relu and ops["truediv"].cap == pytest.approx(1.0)
    np.testing.assert_allclose(ops["truediv"].bias, model.c2.bias.detach() / 6 + 0.5)
    # the mean of the branches into the clamp's first map, x / 2 + 1 capped at 2, and the
    # second map its shift back and the * 2 - 0.5
    first, second = ops["sub.clamp"], ops["sub"]
    assert isinstance(ops[first.inputs[0]], ir.Add) and first.relu and first.cap == 2.0
    np.testing.assert_allclose(first.weight.ravel(), 0.5)
    np.testing.assert_allclose(first.bias, 1.0)
    assert second.inputs == ("sub.clamp",) and not second.relu
    np.testing.assert_allclose(second.weight.ravel(), 2.0)
    np.testing.assert_allclose(second.bias, -2.5)
    # relu(fc1) * 3 - 1: a shift, so not through fc1's ReLU but into fc2 that reads it
    assert ops["fc2"].inputs == ("fc1",) and ops["fc1"].relu
    np.testing.assert_allclose(ops["fc2"].weight, 3 * model.fc2.weight.detach().double())
    assert len(graph.ops) == 10, kinds


def test_a_hardtanh_is_two_maps():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Hardtanh(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(64, 3)).eval()
    graph = traced_equal_to_torch(model, _x(4))
    clamp = graph.op("1.clamp")
    # after the max pool (a clamp rises): x + 1 under a ReLU capped at 2; the - 1 after it
    # is in the Linear's bias, through the flatten
    assert clamp.inputs == ("2",) and clamp.relu and clamp.cap == 2.0 and clamp.groups == 4
    np.testing.assert_allclose(clamp.bias, 1.0)
    assert [op.name for op in graph.ops] == ["0", "2", "1.clamp", "3", "4"]


def test_a_mean_of_two_branches_is_the_adds_weights():
    class Mean2(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1)

        def forward(self, x):
            return ((F.relu(self.a(x)) + F.relu(self.b(x))) / 2).mean((2, 3))

    graph = traced_equal_to_torch(Mean2().eval(), _x(4))
    (add,) = [op for op in graph.ops if isinstance(op, ir.Add)]
    assert add.weights == pytest.approx((0.5, 0.5)) and add.name == "truediv"
    assert len(graph.ops) == 5   # a, b, the add, the pool and its flatten


def test_they_run_on_a_preset_without_attention_units_and_on_the_rtl(host):
    model, x = _model(), _x(16)
    cm = hwaccel.compile(model, x[:1], preset="tiny", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.1)
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:2], "affine maps")


def test_on_a_sequence_an_expression_stays_a_table():
    class Tokens(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(8, 8)

        def forward(self, x):
            return self.fc(x) * 0.5

    graph = trace(Tokens().eval(), torch.randn(2, 4, 8))
    assert [type(op).__name__ for op in graph.ops] == ["Linear", "Pointwise"]
