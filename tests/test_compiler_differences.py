"""``a - b`` of two tensors that are not functions of one value (:meth:`hwaccel.compiler.
trace_pointwise.PointwiseReaders.difference`): ``b`` negated by an affine map, which joins the
conv or Linear that makes ``b`` where only it reads ``b``, then an ADD. The float graph equal to
torch in float64, golden equal to the twin, the RTL to golden with the cycle model's counters
(PoolFormer's token mixer, ``pool(x) - x``); other shapes refused by name."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float
from rtl_checks import compiled_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.compiler.errors import UnsupportedOp
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]


class Convs(nn.Module):
    """The difference of two convs' outputs, and of two Linears'."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 1)
        self.f, self.g, self.out = nn.Linear(128, 8), nn.Linear(128, 8), nn.Linear(8, 5)

    def forward(self, x):
        y = torch.flatten(F.max_pool2d(F.relu(self.a(x) - self.b(x)), 2), 1)
        return self.out(F.relu(self.f(y) - self.g(y)))


class PoolMixer(nn.Module):
    """PoolFormer's token mixer, ``pool(x) - x``, in a residual."""

    def __init__(self):
        super().__init__()
        self.a, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8 * 8 * 8, 5)

    def forward(self, x):
        y = F.relu(self.a(x))
        y = y + (F.avg_pool2d(y, 3, 1, 1) - y)
        return self.fc(torch.flatten(F.relu(y), 1))


def _checked(model, seed):
    torch.manual_seed(seed)
    model = model.eval()
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
    graph = trace(model, x[:2])
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.1)
    return graph, cm, x


def test_the_negation_joins_the_conv_or_linear_that_makes_b():
    graph, _, _ = _checked(Convs(), 0)
    kinds = [type(op).__name__ for op in graph.ops]
    # no op more than the model's own and the two adds: b's and g's weights are negated
    assert kinds.count("Conv2d") == 2 and kinds.count("Linear") == 3 and kinds.count("Add") == 2
    negated = next(op for op in graph.ops if op.name == "sub.neg")
    assert isinstance(negated, ir.Conv2d) and negated.kernel == (1, 1)


def test_a_pool_mixer_runs_on_the_rtl_bit_exact(host):
    graph, cm, x = _checked(PoolMixer(), 2)
    neg = next(op for op in graph.ops if op.name.endswith(".neg"))
    assert neg.groups == 8 and float(neg.weight.max()) == -1.0   # y has other readers
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:2], "pool mixer")


def test_a_difference_of_other_shapes_is_refused_by_name():
    class Broadcast(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(3, 8, 1)

        def forward(self, x):
            y = self.a(x)
            return y - F.adaptive_avg_pool2d(y, 1)

    with pytest.raises(UnsupportedOp, match=r"sub of two tensors at .*per-sample shapes "
                                            r"\(8, 8, 8\) and \(8, 1, 1\)"):
        trace(Broadcast().eval(), torch.randn(2, 3, 8, 8))
