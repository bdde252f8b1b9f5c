"""Dilated convs (DeepLab's atrous convs, a temporal conv net's dilated Conv1d) as dense
kernels of ``(k - 1) d + 1`` taps with zeros between the real ones: the float IR equals torch
(padding given and ``"same"``), golden equals the integer twin and the RTL equals golden. A
dilated Conv1d runs as a ``k x 1`` conv down its line laid out as rows of ``d``
(:mod:`hwaccel.compiler.line_view`): its real taps' MACs only, and past the engine's kernel
(a temporal conv net's dilations 1, 2, 4 on ``tiny``'s 3-tap engine)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from rtl_checks import compiled_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.compiler.line_view import line_dilation
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]


class Atrous(nn.Module):
    """Fits ``tiny`` (8 x 8 maps, kernels up to 3 x 3): a 2 x 2 conv at dilation 2 (a 3 x 3
    kernel), a 3 x 2 one at dilation (1, 2) with ``"same"`` padding, then a Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 2, padding=1, dilation=2)
        self.c2 = nn.Conv2d(8, 8, (3, 2), padding="same", dilation=(1, 2))
        self.fc = nn.Linear(8 * 8 * 8, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.c2(torch.relu(self.c1(x)))).flatten(1))


def _model(seed=0):
    torch.manual_seed(seed)
    return Atrous().eval()


def test_dilated_kernels_are_dense_with_zeros_and_equal_torch():
    model = _model()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = traced_equal_to_torch(model, x)
    c1, c2 = (graph.op(n) for n in ("c1", "c2"))
    assert c1.weight.shape[2:] == (3, 3) and c2.weight.shape[2:] == (3, 3)
    np.testing.assert_array_equal(c1.weight[:, :, ::2, ::2], model.c1.weight.detach().double())
    assert np.count_nonzero(c1.weight[:, :, 1]) == np.count_nonzero(c1.weight[:, :, :, 1]) == 0
    assert c2.pads == (1, 1, 1, 1)


@pytest.mark.parametrize("dilation, padding", [(2, 0), (3, 3), (4, "same")])
def test_a_dilated_conv1d_equals_torch(dilation, padding):
    model = nn.Sequential(nn.Conv1d(4, 8, 3, dilation=dilation, padding=padding),
                          nn.ReLU(), nn.Flatten()).eval()
    x = torch.randn(3, 4, 16)
    graph = traced_equal_to_torch(model, x)
    assert [op.weight.shape[-1] for op in graph.ops if isinstance(op, ir.Conv2d)] == [
        2 * dilation + 1]


def test_golden_equals_the_twin_and_the_float_model_closely():
    model_close(_model(1), seed=2)


def test_the_rtl_runs_dilated_convs_bit_exact():
    model_rtl_exact(_model(2), seed=3)


def _line_conv(k=3, d=4, padding="same", stride=1, length=16):
    model = nn.Sequential(nn.Conv1d(4, 8, k, dilation=d, padding=padding, stride=stride)).eval()
    graph = trace(model, torch.randn(2, 4, length))
    return graph.ops[0], (4, 1, length)


@pytest.mark.parametrize("kw, d", [
    ({}, 4), ({"d": 2}, 2), ({"d": 3, "length": 15}, 3), ({"padding": 0}, 4),
    ({"stride": 2, "padding": 4}, 1),        # stride 2: the rows would not line up
    ({"length": 18}, 1),                     # not rows of 4; rows of 2 take 5 taps
    ({"length": 18, "d": 2}, 2),
    ({"padding": 3}, 1),                     # 3 is no whole row of 4 (nor of 2)
    ({"k": 5, "d": 2}, 1),                   # a 5 x 1 kernel: past tiny's 3
    ({"d": 1}, 1),
])
def test_the_dilation_a_line_conv_runs_at(kw, d):
    op, shape = _line_conv(**kw)
    assert line_dilation(op, shape, HOST_CONFIG) == d


class Tcn(nn.Module):
    """A temporal conv net in small: dilations 1, 2 and 4 over 32 values ("same"), the
    global average, a Linear."""

    def __init__(self):
        super().__init__()
        self.c = nn.ModuleList(nn.Conv1d(4 if d == 1 else 8, 8, 3, padding=d, dilation=d)
                               for d in (1, 2, 4))
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        for c in self.c:
            x = torch.relu(c(x))
        return self.fc(x.mean(-1))


def test_a_temporal_conv_net_runs_down_its_rows_on_the_rtl(host):
    torch.manual_seed(5)
    model, x = Tcn().eval(), torch.randn(16, 4, 32, generator=torch.Generator().manual_seed(6))
    cm = hwaccel.compile(model, x[:1], preset="tiny", calibration=x)
    # the real taps' MACs: 32 outputs x 8 x (4 + 8 + 8) x 3, and the Linear's 24
    assert cm.macs_per_sample == 32 * 8 * 20 * 3 + 24
    # before line_view the dilation-4 conv (9 taps) was past tiny's kernel and refused
    assert [ir.macs(op, (8, 1, 32)) for op in cm.qgraph.ops[1:3]] == [32 * 64 * 3] * 2
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:2], "dilated rows")
