"""A tensor and a constant of one value a channel (an input normalization written in
``forward``, a layer scale, a learned per-channel bias) as depthwise 1 x 1 convs, joined where
they follow each other or fold into a conv or Linear: the float IR equals
torch, golden equals the twin and the RTL equals golden; other constants are refused by name."""

from __future__ import annotations

import pytest
import torch
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir


class Normalized(nn.Module):
    """Fits ``tiny`` (8 x 8 maps): ``(x - mean) / std`` of buffers, a conv, a layer scale and
    a per-channel bias, then a Linear whose output a one-value buffer scales."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.register_buffer("temperature", torch.tensor(0.5))
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.gamma = nn.Parameter(torch.linspace(0.5, 1.5, 8).view(8, 1, 1))
        self.beta = nn.Parameter(torch.linspace(-0.2, 0.2, 8).view(8, 1, 1))
        self.fc = nn.Linear(8 * 8 * 8, 5)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = torch.relu(self.gamma * self.conv(x) + self.beta)
        return self.fc(x.flatten(1)) * self.temperature


def _model(seed=0):
    torch.manual_seed(seed)
    return Normalized().eval()


def test_per_channel_constants_are_one_depthwise_conv_each_run():
    model = _model()
    x = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = traced_equal_to_torch(model, x)
    dw = [(op.name, op.inputs, op.relu) for op in graph.ops
          if isinstance(op, ir.Conv2d) and op.groups > 1]
    # the normalization's sub and div are one conv (the padded conv after it reads zeros
    # around the image, not their map); the scale and bias fold into that conv, with the ReLU,
    # and the one-value scale of the output into the Linear's rows
    assert dw == [("truediv", ("input",), False)], dw
    names = {op.name: op for op in graph.ops}
    assert names["add"].inputs == ("truediv",) and names["add"].relu and names["add"].groups == 1
    assert isinstance(names["mul_1"], ir.Linear) and names["mul_1"].inputs == ("flatten",)
    assert not any(isinstance(op, ir.Pointwise) for op in graph.ops)


def test_golden_twin_and_rtl():
    model = _model(1)
    model_close(model, seed=2)
    model_rtl_exact(model, seed=3)


class Other(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.register_buffer("per_pixel", torch.randn(4, 8, 8))
        self.register_buffer("c", torch.ones(4, 1, 1))
        self.how = how

    def forward(self, x):
        y = self.conv(x)
        y = y * self.per_pixel if self.how == "pixel" else self.c / y
        return y.flatten(1)


@pytest.mark.parametrize("how, match", [
    ("pixel", r"a constant operand at .*mul of a tensor of per-sample shape \(4, 8, 8\) and a "
              r"constant of shape \(4, 8, 8\); only one value a channel of an image"),
    ("over", r"a constant operand at .*a constant divided by a tensor"),
])
def test_other_constants_are_refused_by_name(how, match):
    with pytest.raises(UnsupportedOp, match=match):
        hwaccel.compile(Other(how).eval(), torch.randn(2, 3, 8, 8), preset="tiny")
