"""Convs wider than a preset's engine (:mod:`hwaccel.compiler.split_convs`): groups of output
channels and their readers part by part, the float function unchanged, golden equal to the
twin and the RTL on ``tiny`` (8 output channels a layer) equal to golden; where a reader needs
the whole tensor the conv stays whole and lowering names the limit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, rtl_equals_golden
from torch import nn

import hwaccel
from hwaccel.compiler import LoweringError, ir
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace


class Wide(nn.Module):
    """16 output channels a conv on ``tiny``'s 8: the second conv reads the first's two groups
    and has two of its own (four convs and two adds)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 16, 3, padding=1)
        self.c2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 3 * 3, 5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c2(F.relu(self.c1(x)))), 2)
        return self.fc(torch.flatten(x, 1))


def _model(seed=0):
    torch.manual_seed(seed)
    return Wide().eval()


def test_groups_of_outputs_and_readers_part_by_part():
    model = _model()
    x = torch.randn(64, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    ops = {op.name: op for op in cm.graph.ops}
    assert [ops[f"c1.out{g}"].weight.shape for g in (0, 1)] == [(8, 3, 3, 3)] * 2
    assert [ops[f"c2.out{g}.cat{i}"].weight.shape for g in (0, 1) for i in (0, 1)] == [
        (8, 8, 3, 3)] * 4
    assert all(ops[f"c2.out{g}"].relu and isinstance(ops[f"c2.out{g}"], ir.Add) for g in (0, 1))
    assert [ops[f"fc.cat{i}"].weight.shape for i in (0, 1)] == [(5, 72)] * 2
    # the graph traced for another preset is the model's own
    assert not any(".out" in op.name for op in trace(model, x[:2]).ops)
    golden_twin_float(cm, model, x[:8], 0.1)
    with torch.no_grad():
        ref = model.double()(x[:4].double())
    torch.testing.assert_close(float_forward(cm.graph, x[:4]), ref, rtol=1e-9, atol=1e-12)


def test_the_rtl_runs_a_split_model_bit_exact():
    model = _model(seed=3)
    x = torch.randn(32, 3, 6, 6, generator=torch.Generator().manual_seed(3))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    rtl_equals_golden(cm, x[:3])


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 16, 3, padding=1), nn.Conv2d(3, 16, 1)

    def forward(self, x):
        return (self.a(x) + self.b(x)).flatten(1)


def test_a_conv_an_add_reads_whole_stays_whole_and_lowering_names_the_limit():
    x = torch.randn(8, 3, 4, 4)
    with pytest.raises(LoweringError, match=r"layer 'a' cannot run on accel_tiny: cout must be "
                                            r"at most 8"):
        hwaccel.compile(Residual().eval(), x[:2], preset="tiny", calibration=x)


def test_a_wide_pointwise_conv_stays_a_gemm():
    model = nn.Sequential(nn.Conv2d(3, 16, 1), nn.ReLU(), nn.Flatten()).eval()
    x = torch.randn(8, 3, 4, 4)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    assert [op.name for op in cm.graph.ops] == [op.name for op in trace(model, x[:2]).ops]
