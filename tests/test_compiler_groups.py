"""Grouped convolutions (1 < groups, not depthwise: ResNeXt's, ShuffleNet's, AlexNet's two
halves, a depthwise conv with a channel multiplier) as dense convs with zero weights between
the groups: the float IR equals torch, golden equals the integer twin and the float model
closely, and the RTL equals golden."""

from __future__ import annotations

import numpy as np
import torch
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

from hwaccel.compiler import ir
from hwaccel.compiler.trace_ops import block_diagonal


class Grouped(nn.Module):
    """Fits ``tiny`` (8 x 8 maps): a ResNeXt-style block (1x1, grouped 3x3, 1x1, a residual)
    and a conv with a channel multiplier (groups = in channels, out = 2 x in)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.reduce = nn.Conv2d(8, 8, 1)
        self.grouped = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.expand = nn.Conv2d(8, 8, 1)
        self.mult = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=8)
        self.fc = nn.Linear(16 * 4 * 4, 5)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = torch.relu(self.grouped(torch.relu(self.reduce(x))))
        x = torch.relu(x + self.expand(y))
        return self.fc(torch.relu(self.mult(x)).flatten(1))


def _model(seed=0):
    torch.manual_seed(seed)
    return Grouped().eval()


def test_block_diagonal_weights():
    w = np.arange(4 * 2 * 1 * 1, dtype=float).reshape(4, 2, 1, 1) + 1
    dense = block_diagonal(w, 2)[..., 0, 0]
    np.testing.assert_array_equal(dense, [[1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 5, 6],
                                          [0, 0, 7, 8]])


def test_grouped_convs_trace_dense_and_equal_torch():
    model = _model()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = traced_equal_to_torch(model, x)
    convs = {op.name: op for op in graph.ops if isinstance(op, ir.Conv2d)}
    assert convs["grouped"].groups == 1 and convs["grouped"].weight.shape == (8, 8, 3, 3)
    assert convs["mult"].groups == 1 and convs["mult"].weight.shape == (16, 8, 3, 3)
    # output channel 5 of the grouped conv (group 2) reads input channels 4 and 5 only
    assert np.count_nonzero(convs["grouped"].weight[5, [0, 1, 2, 3, 6, 7]]) == 0


def test_golden_equals_the_twin_and_the_float_model_closely():
    model_close(_model(1), seed=2)


def test_the_rtl_runs_grouped_convs_bit_exact():
    model_rtl_exact(_model(2), seed=3)
