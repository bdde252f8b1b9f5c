"""The element-wise maximum and minimum of two tensors (``torch.maximum``, ``torch.max(a,
b)``, LightCNN's max-feature-map over a conv's channel halves): ``b + relu(a - b)`` and ``a -
relu(a - b)``, a negation, an ADD with its ReLU and an ADD. Traced equal to torch; golden equal
to the integer twin and close to the float model; on the RTL (``tiny``) bit-exact, every
counter equal to the cycle model's. A reduction is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, traced_equal_to_torch
from rtl_checks import compiled_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]


class MaxFeatureMap(nn.Module):
    """LightCNN in small: max-feature-maps of a conv's two channel halves, then the minimum of
    two branches on vectors."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(4, 8, 3, padding=1)
        self.fa, self.fb = nn.Linear(4, 6), nn.Linear(4, 6)

    def forward(self, x):
        a, b = torch.split(self.c1(x), 4, 1)
        x = F.max_pool2d(torch.max(a, b), 2)
        a, b = self.c2(x).chunk(2, 1)
        v = torch.maximum(a, b).mean((2, 3))
        return torch.minimum(self.fa(v), self.fb(v))


def _x(n):
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(2))


def test_a_maximum_is_a_difference_its_relu_and_an_add():
    torch.manual_seed(1)
    graph = traced_equal_to_torch(MaxFeatureMap().eval(), _x(4))
    adds = [op for op in graph.ops if isinstance(op, ir.Add)]
    assert [a.relu for a in adds] == [True, False] * 3   # each: the gap's ReLU, then the sum
    with pytest.raises(UnsupportedOp, match=r"function max at .*only the element-wise maximum "
                                            r"or minimum of two tensors, no reduction"):
        trace(_Reduce().eval(), torch.randn(2, 4, 3))


class _Reduce(nn.Module):
    def forward(self, x):
        return torch.max(x, 1).values


def test_it_runs_on_the_rtl(host):
    torch.manual_seed(3)
    model, x = MaxFeatureMap().eval(), _x(16)
    cm = hwaccel.compile(model, x[:1], preset="tiny", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.1)
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:2], "maximum")
