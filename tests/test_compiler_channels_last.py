"""A channels-last image, ``x.permute(0, 2, 3, 1)``, read per pixel (a ConvNeXt block: a layer
norm over channels, Linears as 1 x 1 convs, GELU, a layer scale, then ``permute(0, 3, 1, 2)``
back into the residual): channels-last, an image's words are the sequence of its pixels, so it
is a :class:`~hwaccel.compiler.ir.SeqView` each way (no data moved) and the transformer ops run
over the pixels. The float IR equals torch (and on XLA), golden equals the integer twin, and the
RTL of a preset with attention units equals golden."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, rtl_equals_golden, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.trace import trace


class ConvNeXtBlock(nn.Module):
    """A depthwise conv, then per pixel a LayerNorm, Linear, GELU, Linear and layer scale, back
    to the image and added to the block's input (ConvNeXt's block, its kernel ``k``)."""

    def __init__(self, c: int = 8, k: int = 3):
        super().__init__()
        self.dw = nn.Conv2d(c, c, k, padding=k // 2, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1, self.pw2 = nn.Linear(c, 2 * c), nn.Linear(2 * c, c)
        self.gamma = nn.Parameter(torch.linspace(0.5, 1.5, c))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.gamma * self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + y.permute(0, 3, 1, 2)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 2, 2)
        self.block = ConvNeXtBlock()
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(self.block(self.stem(x)).mean((2, 3)))


def _net(seed=0):
    torch.manual_seed(seed)
    return Net().eval()


def test_the_pixels_are_a_sequence_each_way_equal_to_torch():
    graph = traced_equal_to_torch(_net(), torch.randn(4, 3, 8, 8))
    views = [op for op in graph.ops if isinstance(op, ir.SeqView)]
    assert [(v.to_line, v.hw) for v in views] == [(False, ()), (True, (4, 4))]
    shapes = graph.shapes()
    assert shapes[views[0].name] == (16, 8) and shapes[views[1].name] == (8, 4, 4)
    kinds = {type(op).__name__ for op in graph.ops}
    assert {"LayerNorm", "Gelu"} <= kinds


def test_golden_equals_the_twin_and_the_rtl_golden():
    model = _net(1)
    x = torch.randn(48, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    cm = hwaccel.compile(model, x[:2], preset="tiny_attention", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.15)
    rtl_equals_golden(cm, x[:2])


def test_a_channels_last_image_read_any_other_way_is_refused_by_name():
    class Mean(nn.Module):   # a reduction over its rows: not per pixel
        def forward(self, x):
            return x.permute(0, 2, 3, 1).mean(1)

    with pytest.raises(UnsupportedOp):
        trace(nn.Sequential(nn.Conv2d(3, 4, 1), Mean()).eval(), torch.randn(2, 3, 4, 4))


def test_a_layer_scale_of_a_sequence_folds_into_the_linear_before_it():
    w = _net(3)
    graph = trace(w, torch.randn(2, 3, 8, 8))
    pw2 = graph.op("mul")   # block.pw2 with the scale folded in
    assert "block.pw2" not in {op.name for op in graph.ops}
    gamma, weight = (t.detach().numpy() for t in (w.block.gamma, w.block.pw2.weight))
    assert isinstance(pw2, ir.Linear) and np.allclose(pw2.weight, gamma[:, None] * weight)
