"""Spellings of the global pools and flattens that model code uses: ``x.amax((2, 3))`` (the
global max: 2 x 2 max pools in a row), ``x.sum((2, 3))`` (the global average times the pixels,
a scale folded into the Linear after it), ``F.avg_pool2d(x, x.shape[2:])`` (a kernel from the
shape), ``x.squeeze(-1).squeeze(-1)`` of a pooled image (its flatten) and an image viewed as
``(channels, pixels)`` by ``x.view(b, c, -1)`` or ``x.flatten(2)`` and reduced over them (its
global average, sum or max). Traced equal to torch; golden equal to the integer twin on
``tiny``'s RTL; what they cannot be is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import traced_equal_to_torch
from rtl_checks import compiled_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]

HEADS = {
    "amax": lambda y: y.amax((2, 3)),
    "amax_keep": lambda y: y.amax(dim=(-2, -1), keepdim=True).flatten(1),
    "sum": lambda y: y.sum((2, 3)),
    "avg_pool_shape": lambda y: F.avg_pool2d(y, y.shape[2:]).flatten(1),
    "squeeze_twice": lambda y: F.adaptive_avg_pool2d(y, 1).squeeze(-1).squeeze(-1),
    "squeeze_max_both": lambda y: F.adaptive_max_pool2d(y, 1).squeeze((2, 3)),
    "view_mean": lambda y: y.view(y.size(0), y.size(1), -1).mean(-1),
    "flatten2_sum": lambda y: torch.sum(y.flatten(2), dim=2),
    "view_amax": lambda y: y.view(y.size(0), 8, -1).amax(-1),
    "view_max": lambda y: y.reshape(y.shape[0], 8, -1).max(-1)[0],
}


class Head(nn.Module):
    def __init__(self, head: str):
        super().__init__()
        self.c, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 4)
        self.head = HEADS[head]

    def forward(self, x):
        return self.fc(self.head(torch.relu(self.c(x))))


class TwoHeads(nn.Module):
    """A ReLU'd conv read by two heads, ``a`` and ``b``, each into a Linear, summed."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b
        self.c, self.fa, self.fb = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 4), \
            nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.c(x))
        return self.fa(self.a(y)) + self.fb(self.b(y))


def _x(n, side=8):
    return torch.randn(n, 3, side, side, generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("head", list(HEADS))
def test_each_spelling_traces_to_the_pool_equal_to_torch(head):
    torch.manual_seed(4)
    graph = traced_equal_to_torch(Head(head).eval(), _x(4))
    kinds = [type(op).__name__ for op in graph.ops]
    pool = "MaxPool2d" if "max" in head else "AvgPool2d"
    assert pool in kinds and kinds[-1] == "Linear", kinds
    if "sum" in head:   # the scale by the 64 pixels is the Linear's
        assert kinds == ["Conv2d", "AvgPool2d", "Flatten", "Linear"]


def test_they_run_on_the_rtl(host):
    torch.manual_seed(5)
    model = TwoHeads(lambda y: y.amax((2, 3)), lambda y: y.sum((2, 3)) / 64).eval()
    x = _x(16)
    cm = hwaccel.compile(model, x[:1], preset="tiny", calibration=x)
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:2], "global max and sum")


@pytest.mark.parametrize("head, side, match", [
    (lambda y: F.adaptive_avg_pool2d(y, 1).amax((2, 3)), 8,
     r"amax at .*over a 1x1 map; only over more than one pixel"),
    (lambda y: y.sum(1), 8, r"sum at .*dim=1 of a \(\d+, height, width\) image without "
                            r"keepdim; keepdim=True keeps it"),
    (lambda y: y.sum(2), 8, r"sum at .*dim=2 on a \(channels, height, width\) image; only "
                            r"over its height and width"),
    (lambda y: F.adaptive_avg_pool2d(y, 1).squeeze(-1).relu(), 8,
     r"squeezed image at .*only squeezed again to a vector"),
    (lambda y: y.view(y.size(0), 8, -1).transpose(1, 2).flatten(1), 8,
     r"an image viewed as \(channels, pixels\) at .*only reduced over its pixels"),
    (lambda y: y.flatten(2).mean(-1, keepdim=True).flatten(1), 8,
     r"mean at .*keepdim=True of an image viewed as \(channels, pixels\)"),
])
def test_what_they_cannot_be_is_refused_by_name(head, side, match):
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return head(torch.relu(self.c(x)))

    with pytest.raises(UnsupportedOp, match=match):
        trace(Bad().eval(), _x(2, side))


def test_a_squeeze_of_the_batch_too_says_so():
    class AllOnes(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)

        def forward(self, x):
            return F.adaptive_avg_pool2d(self.c(x), 1).squeeze()

    with pytest.raises(UnsupportedOp, match=r"x.squeeze\(\) squeezes a batch of one too"):
        trace(AllOnes().eval(), _x(1))
    assert isinstance(trace(AllOnes().eval(), _x(2)).ops[-1], ir.Flatten)


def test_an_image_viewed_as_channels_by_pixels_runs_on_the_rtl():
    """``x.view(b, c, -1).mean(-1)`` and ``.max(-1)[0]`` of a 7 x 7 map (the max by 2 x 2
    pools and a 3 x 3 window at stride 2) on ``tiny``'s RTL, equal to golden and the twin."""
    from compile_checks import rtl_equals_golden

    torch.manual_seed(6)
    model = TwoHeads(lambda y: y.view(y.size(0), 8, -1).mean(-1),
                     lambda y: y.view(y.size(0), 8, -1).max(-1)[0]).eval()
    x = _x(16, 7)
    traced_equal_to_torch(model, x[:4])
    rtl_equals_golden(hwaccel.compile(model, x[:1], preset="tiny", calibration=x), x[:2])
