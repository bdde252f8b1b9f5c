"""Dilated convs (DeepLab's atrous convs, a temporal conv net's dilated Conv1d) as dense
kernels of ``(k - 1) d + 1`` taps with zeros between the real ones: the float IR equals torch
(padding given and ``"same"``), golden equals the integer twin and the RTL equals golden."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

from hwaccel.compiler import ir


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
