"""Adds of concatenations, one add a part (:mod:`hwaccel.compiler.fold_cat_add`): a ResNet
whose blocks are wider than the preset's conv engine splits through its residual adds (before,
the add kept the block whole and the conv was refused), golden equal to the twin, the float
graph to torch, the RTL to golden with every counter equal to the cycle model's; an add of a
``torch.cat`` and a conv's output needs no identity join; operands split at other channels
still take it."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float
from rtl_checks import compiled_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.split_convs import split_outputs
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]


class Block(nn.Module):
    """A ResNet basic block; a strided 1 x 1 shortcut where the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)
        self.c2, self.b2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout)
        self.down = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        return F.relu(y + (x if self.down is None else self.down(x)))


class Wide(nn.Module):
    """A stem, a block into 16 channels at stride 2 (twice tiny's 8 outputs a layer) and one
    more at 16: every conv of the two blocks splits, and both adds."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.blocks = nn.Sequential(Block(8, 16, 2), Block(16, 16, 1))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.blocks(F.relu(self.stem(x)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def _wide(seed: int = 0):
    torch.manual_seed(seed)
    model = Wide().eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(seed + 1))
    return model, x


def test_a_resnet_wider_than_the_engine_splits_through_its_adds():
    model, x = _wide()
    graph = split_outputs(trace(model, x[:2]), HOST_CONFIG)
    adds = [op.name for op in graph.ops if isinstance(op, ir.Add) and ".part" in op.name]
    assert {"add.part0", "add.part1", "add_1.part0", "add_1.part1"} <= set(adds)
    assert not any(".joined" in op.name for op in graph.ops)
    # the shortcut's 1 x 1 conv splits by its rows to meet the block's groups
    assert {"blocks.0.down.0.part0", "blocks.0.down.0.part1"} <= {op.name for op in graph.ops}
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.1)


def test_the_split_resnet_runs_on_the_rtl_bit_exact_with_the_cycle_models_counters(host):
    model, x = _wide(seed=2)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:2], "wide resnet")


class CatPlusConv(nn.Module):
    """``torch.cat([a, b]) + conv(x)``: split at ``a``'s channels, the conv by its rows."""

    def __init__(self, split: tuple[int, int] = (4, 4)):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, split[0], 3, padding=1), nn.Conv2d(3, split[1], 1)
        self.c = nn.Conv2d(3, sum(split), 3, padding=1)
        self.d = nn.Conv2d(sum(split), 4, 1)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x):
        y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1) + self.c(x)
        return self.fc(torch.flatten(F.relu(self.d(F.relu(y))), 1))


def test_an_add_of_a_concatenation_and_a_conv_is_one_add_a_part():
    torch.manual_seed(3)
    model = CatPlusConv().eval()
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    graph = trace(model, x[:2])
    names = {op.name for op in graph.ops}
    assert {"add.part0", "add.part1", "c.part0", "c.part1"} <= names
    assert not any(".joined" in n for n in names) and "c" not in names
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)
    golden_twin_float(hwaccel.compile(model, x[:2], preset="tiny", calibration=x), model,
                      x[:8], 0.1)


def test_an_add_that_cannot_take_parts_still_reads_the_joined_concatenation():
    """The conv's output is read by the add and by another conv, so it cannot split by rows:
    the add reads the concatenation joined (an identity 1 x 1 conv), as before."""

    class Shared(CatPlusConv):
        def forward(self, x):
            z = self.c(x)
            y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1) + z
            return self.fc(torch.flatten(F.relu(self.d(F.relu(y)) + self.d(z)), 1))

    torch.manual_seed(5)
    model = Shared().eval()
    x = torch.randn(4, 3, 8, 8)
    graph = trace(model, x)
    assert any(".joined" in op.name for op in graph.ops)
    assert not any(op.name.startswith("add.part") for op in graph.ops)
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("preset", ["ecp5_128", "default"])
def test_a_block_wider_than_the_engine_is_no_longer_refused(preset):
    """CIFAR ResNet-18's last stage, 128 channels: before, ``ecp5_128``'s 64 outputs a layer
    (and ``default``'s 256-word weight memory) refused its first conv."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), Block(64, 128, 2),
                          Block(128, 128, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(128, 10)).eval()
    x = torch.randn(4, 3, 8, 8)
    cm = hwaccel.compile(model, x[:1], preset=preset, calibration=x)
    assert any(op.name.endswith(".part1") for op in cm.qgraph.ops if isinstance(op, ir.QAdd))
    np.testing.assert_array_equal(cm.execute("golden", x[:2]).int_logits,
                                  cm.int8_forward(cm.quantize_input(x[:2])))
