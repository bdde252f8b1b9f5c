"""Batch norms that no layer before them can take (a pre-activation ResNet's BN -> ReLU ->
conv, a BN after an add or on the input, a DenseNet layer's BN after its concatenation) as
depthwise 1 x 1 convs, the ReLU after them fused (after a concatenation, one per part): the
float IR equals torch, golden equals the integer twin and the RTL equals golden."""

from __future__ import annotations

import torch
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

from hwaccel.compiler import ir


class PreAct(nn.Module):
    """Fits ``tiny`` (8 x 8 maps): a BN on the input, a pre-activation residual block and a BN
    after its add."""

    def __init__(self):
        super().__init__()
        self.bn_in = nn.BatchNorm2d(3)
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1, self.c1 = nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn2, self.c2 = nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3, padding=1, bias=False)
        self.bn_out = nn.BatchNorm2d(8)
        self.grow = nn.Conv2d(8, 4, 3, padding=1)      # a DenseNet layer: 4 channels more
        self.bn_cat, self.c3 = nn.BatchNorm2d(12), nn.Conv2d(12, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = self.stem(self.bn_in(x))
        y = self.c1(torch.relu(self.bn1(x)))
        y = self.c2(torch.relu(self.bn2(y)))   # bn2 follows c1: folded into it
        x = torch.relu(self.bn_out(x + y))
        x = torch.cat([x, self.grow(x)], 1)
        x = self.c3(torch.relu(self.bn_cat(x)))
        return self.fc(nn.functional.max_pool2d(x, 2).flatten(1))


def _model(seed=0):
    torch.manual_seed(seed)
    model = PreAct()
    for bn in (model.bn_in, model.bn1, model.bn2, model.bn_out, model.bn_cat):   # not 0 and 1
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def test_lone_batch_norms_are_depthwise_convs_equal_to_torch():
    model = _model()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = traced_equal_to_torch(model, x)
    dw = {op.name: op for op in graph.ops if isinstance(op, ir.Conv2d) and op.groups > 1}
    assert sorted(dw) == ["bn1", "bn_cat.0", "bn_in", "bn_out"], sorted(dw)
    assert dw["bn1"].relu and dw["bn_out"].relu and not dw["bn_in"].relu
    # the concatenation's BN: a depthwise conv on the first part (8 channels), ReLU'd; on the
    # second, which grow alone writes, folded into grow (:mod:`hwaccel.compiler.fold_affine`)
    assert (dw["bn_cat.0"].groups, dw["bn_cat.0"].relu) == (8, True)
    grown = graph.op("bn_cat.1")
    assert grown.groups == 1 and grown.relu and grown.inputs == ("bn_out",)
    assert "grow" not in {op.name for op in graph.ops}
    assert all(op.weight.shape[1:] == (1, 1, 1) for op in dw.values())
    # bn2 follows c1 alone: folded into it, the ReLU after it fused there too
    assert "bn2" not in {op.name for op in graph.ops}
    assert graph.op("c2").inputs == ("c1",) and graph.op("c1").relu


def test_golden_equals_the_twin_and_the_float_model_closely():
    model_close(_model(1), seed=2)


def test_the_rtl_runs_lone_batch_norms_bit_exact():
    model_rtl_exact(_model(2), seed=3)
