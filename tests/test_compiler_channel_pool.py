"""An image's mean or sum over its channels, ``x.mean(1, keepdim=True)`` and ``x.sum(1,
keepdim=True)`` (a spatial attention's channel pool, CBAM's and BAM's): a 1 x 1 conv into one
channel of weights ``1 / C`` (or 1). The float IR equals torch, golden equals the integer twin
and the RTL equals golden; without ``keepdim`` it is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.trace import trace


class ChannelPool(nn.Module):
    """A ReLU'd conv, its channels' mean and sum side by side, a 3 x 3 conv over the two, and
    a Linear."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.s = nn.Conv2d(2, 2, 3, padding=1)
        self.fc = nn.Linear(2 * 8 * 8, 4)

    def forward(self, x):
        y = F.relu(self.c(x))
        pooled = torch.cat([y.mean(1, keepdim=True), torch.sum(y, -3, keepdim=True)], 1)
        return self.fc(F.relu(self.s(pooled)).flatten(1))


def _model(seed=0):
    torch.manual_seed(seed)
    return ChannelPool().eval()


def test_a_channel_pool_is_a_one_by_one_conv_equal_to_torch():
    graph = traced_equal_to_torch(_model(), torch.randn(4, 3, 8, 8))
    pools = [op for op in graph.ops if isinstance(op, ir.Conv2d) and op.weight.shape == (
        1, 8, 1, 1)]
    assert sorted(float(op.weight[0, 0, 0, 0]) for op in pools) == [1 / 8, 1.0]


def test_golden_equals_the_twin_and_the_rtl_golden():
    model_close(_model(1), seed=2)
    model_rtl_exact(_model(3), seed=4)


def test_without_keepdim_it_is_refused_by_name():
    class NoKeep(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.fc = nn.Conv2d(3, 8, 1), nn.Linear(16, 4)

        def forward(self, x):
            return self.fc(self.c(x).mean(1).flatten(1))

    with pytest.raises(UnsupportedOp, match=r"dim=1 of a \(8, height, width\) image without "
                                            r"keepdim; keepdim=True"):
        trace(NoKeep().eval(), torch.randn(2, 3, 4, 4))
