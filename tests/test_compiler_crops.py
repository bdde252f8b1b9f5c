"""Rows and columns sliced short of the end (a U-Net's crop of its skip connection,
``x[:, :, 2:-2, 2:-2]``; ``x[:, :, 1:5, ::2]``): a pick conv whose window covers the rows the
slice drops, its tap the kept pixel; a crop of every channel at a step of 1 is depthwise picks of
windows of at most 3, exact at the input's scale. The float IR equals torch, golden equals the
integer twin and the RTL equals golden."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

from hwaccel.compiler import ir


class Crop(nn.Module):
    """A ReLU'd conv, a slice ``idx`` of its rows and columns, a conv and a Linear."""

    def __init__(self, idx, cells: int):
        super().__init__()
        self.idx = idx
        self.c1, self.c2 = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(4 * cells, 3)

    def forward(self, x):
        return self.fc(F.relu(self.c2(F.relu(self.c1(x))[self.idx])).flatten(1))


CROPS = [   # the slice, the cells it keeps of an 8 x 8 map, its depthwise picks (0: dense)
    ((slice(None), slice(None), slice(2, -2), slice(2, -2)), 16, 2),
    ((slice(None), slice(None), slice(1, 6), slice(0, 7)), 35, 2),
    ((slice(None), slice(None), slice(0, -1), slice(3, None)), 35, 2),
    ((slice(None), slice(None), slice(1, 5), slice(None, None, 2)), 16, 0),
]


@pytest.mark.parametrize("idx, cells, picks", CROPS)
def test_a_crop_is_a_pick_equal_to_torch(idx, cells, picks):
    torch.manual_seed(cells)
    graph = traced_equal_to_torch(Crop(idx, cells).eval(), torch.randn(4, 3, 8, 8))
    convs = [op for op in graph.ops if isinstance(op, ir.Conv2d) and op.name.startswith("getitem")]
    assert len(convs) == max(picks, 1)
    for op in convs:
        assert op.weight.shape[-2:] <= (3, 3) or not picks
        assert (op.groups == 4 and op.exact) if picks else op.groups == 1


def test_crops_run_close_to_torch_and_on_the_rtl():
    idx, cells, _ = CROPS[0]
    torch.manual_seed(1)
    model = Crop(idx, cells).eval()
    model_close(model, seed=2)
    model_rtl_exact(model, seed=3)
