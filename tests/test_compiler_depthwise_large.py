"""Depthwise kernels above 3 x 3, MobileNetV3's and EfficientNet's 5 x 5 and MCUNet's 7 x 7, on
a preset whose depthwise window holds them (``ConvConfig.dw_max_kernel``: 7 on ``default``, 5
on ``tiny_attention`` for the RTL). Each is one depthwise CONV, a pixel issuing the chunks its
kernel fills; on a 3 x 3 window (``tiny``) a 5 x 5 stays the dense conv of its channels, zeros
between them, split in two (:mod:`hwaccel.compiler.split_kernels`). The float model is within
a tenth of the twin, golden equals the twin and the RTL equals golden."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compile_checks import model_close, model_rtl_exact
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.generators.accel import PRESETS
from hwaccel.generators.accel.cases import random_requant
from hwaccel.generators.accel.driver import ProgramBuilder
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.conv.layer import ConvLayer, descriptor


class Bneck(nn.Module):
    """MobileNetV3's block with a ``k x k`` depthwise conv: 1 x 1 expand, hardswish, depthwise
    (``stride``), hardswish, 1 x 1 project, then a global average and a Linear."""

    def __init__(self, stride: int = 1, k: int = 5, c: int = 4, e: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.ex = nn.Sequential(nn.Conv2d(c, e, 1), nn.BatchNorm2d(e), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(e, e, k, stride, k // 2, groups=e), nn.BatchNorm2d(e),
                                nn.Hardswish())
        self.pr, self.fc = nn.Sequential(nn.Conv2d(e, c, 1), nn.BatchNorm2d(c)), nn.Linear(c, 5)

    def forward(self, x):
        return self.fc(self.pr(self.dw(self.ex(self.stem(x)))).mean((2, 3)))


def _model(stride: int, seed: int = 0, k: int = 5) -> nn.Module:
    torch.manual_seed(seed)
    m = Bneck(stride, k)
    for mod in m.modules():   # batch norms with statistics of their own
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


def _depthwise_kernels(cm) -> list:
    """The kernels of ``cm``'s depthwise convs but the 1 x 1 ones (hardswish's clamps where no
    tables run)."""
    return [op.kernel for op in cm.qgraph.ops
            if isinstance(op, ir.QConv) and op.depthwise and op.kernel != (1, 1)]


@pytest.mark.parametrize("stride", [1, 2])
def test_a_5x5_depthwise_is_one_depthwise_conv_where_the_window_holds_it(stride):
    x = torch.randn(16, 3, 8, 8)
    kernels = {p: _depthwise_kernels(hwaccel.compile(_model(stride), x[:2], preset=p,
                                                     calibration=x))
               for p in ("tiny", "tiny_attention", "default")}
    assert kernels == {"tiny": [], "tiny_attention": [(5, 5)], "default": [(5, 5)]}
    seven = hwaccel.compile(_model(stride, k=7), x[:2], preset="default", calibration=x)
    assert _depthwise_kernels(seven) == [(7, 7)]


@pytest.mark.parametrize("stride", [1, 2])
def test_golden_equals_the_twin_and_the_rtl_golden(stride):
    model_close(_model(stride, 1), seed=2, preset="tiny_attention")
    model_rtl_exact(_model(stride, 3), seed=4, preset="tiny_attention")
    model_close(_model(stride, 1, k=7), seed=2, preset="default")


def test_a_3x3_layer_costs_no_more_on_a_5x5_window():
    """On ``default`` (16 lanes) a 3 x 3 depthwise pixel is one chunk and a group's weights one
    word on the 5 x 5 window as on a 3 x 3 one, and a 5 x 5 pixel two: the layer's busy cycles
    (its loads with them) in the accelerator's model."""
    cfg = PRESETS["default"]
    small = cfg.with_(conv=cfg.conv.with_(dw_max_kernel=3))
    assert [cfg.conv.dw_issue(k, k) for k in (1, 3, 5, 7)] == [1, 1, 2, 4]
    assert small.conv.dw_chunks == 1
    assert [descriptor(cfg.conv, ConvLayer(8, 8, 16, 16, k, 1, k // 2, depthwise=True))[
        "weight_words"] for k in (3, 5)] == [1, 2]

    def busy(c, k):
        rng = np.random.default_rng(k)
        b = ProgramBuilder(c)
        b.dwconv(b.put(rng.integers(-128, 128, (32, 24, 24))),
                 rng.integers(-128, 128, (32, 1, k, k)), *random_requant(rng, 32, k * k),
                 padding=k // 2)
        b.done()
        return program_perf(c, b.commands).counters["conv_busy"]

    assert busy(cfg, 3) == busy(small, 3)
    assert busy(cfg, 5) > busy(cfg, 3) + 2 * 24 * 24   # a chunk more a pixel, two groups
