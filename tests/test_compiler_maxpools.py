"""Max pools the 2 x 2 unit runs in a row: kernel = stride = 4, 8 ... (``nn.MaxPool2d``,
``F.max_pool2d``) and ``AdaptiveMaxPool2d`` to equal square windows (a global max of a square
map), each as 2 x 2 pools (a max of maxes; floor mode drops the same rows), and the global
max of any other map, with the same pool in ceil mode where a side is odd; those pools in ceil
mode (``MaxPool2d(2, ceil_mode=True)``: picks at stride 2 and maxes over an odd side): the float
IR equals torch, golden equals the twin and the RTL equals golden; other kernels, and a ceil
mode's zero padding of values that may be negative, are refused by name."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.trace import trace


class Pools(nn.Module):
    """Fits ``tiny`` (8 x 8 maps): a 4 x 4 max pool, then a global max of its 2 x 2 map;
    beside it an adaptive max to 2 x 2 of a 4 x 4 map."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.pool4 = nn.MaxPool2d(4)
        self.c2 = nn.Conv2d(8, 8, 1)
        self.c3 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.amax = nn.AdaptiveMaxPool2d(2)
        self.fc = nn.Linear(8 + 8 * 2 * 2, 5)

    def forward(self, x):
        a = F.adaptive_max_pool2d(self.c2(self.pool4(torch.relu(self.c1(x)))), 1).flatten(1)
        b = self.amax(torch.relu(self.c3(x))).flatten(1)
        return self.fc(torch.cat([a, b], 1))


def _model(seed=0):
    torch.manual_seed(seed)
    return Pools().eval()


def test_pools_are_chains_of_two_by_two_pools_equal_to_torch():
    model = _model()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = traced_equal_to_torch(model, x)
    pools = [op.name for op in graph.ops if isinstance(op, ir.MaxPool2d)]
    assert pools == ["pool4.1", "pool4", "adaptive_max_pool2d", "amax"], pools


@pytest.mark.parametrize("k, size", [(4, 10), (8, 19), (4, 7)])
def test_floor_mode_drops_the_same_rows(k, size):
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.MaxPool2d(k), nn.Flatten()).eval()
    x = torch.randn(3, 2, size, size)
    graph = traced_equal_to_torch(model, x)
    assert sum(isinstance(op, ir.MaxPool2d) for op in graph.ops) == k.bit_length() - 1


@pytest.mark.parametrize("pool, words", [
    (nn.MaxPool2d(5, 2, 2), "MaxPool2d attribute at .*kernel_size=\\(5, 5\\), stride=\\(2, 2\\), "
                            "padding=2; a square kernel of 2, 4, 8"),
    (nn.MaxPool2d(4, 2), "stride=\\(2, 2\\)"),
    (nn.AdaptiveMaxPool2d(3), "output_size=3 on a 8x8 map; only sizes that divide the map "
                              "into equal squares"),
    (nn.AdaptiveMaxPool2d((1, 2)), "output_size=\\(1, 2\\) on a 8x8 map"),
])
def test_other_max_pools_are_refused_by_name(pool, words):
    model = nn.Sequential(nn.Conv2d(2, 4, 1), pool, nn.Flatten()).eval()
    with pytest.raises(UnsupportedOp, match=words):
        trace(model, torch.randn(2, 2, 8, 8))


def test_golden_equals_the_twin_and_the_float_model_closely():
    model_close(_model(1), seed=2)


def test_the_rtl_runs_the_pools_bit_exact():
    model_rtl_exact(_model(2), seed=3)


class GlobalMax(nn.Module):
    """A ReLU'd conv's global max over a map of any size (``spell``: the adaptive pool
    or ``x.amax((2, 3))``) into a Linear."""

    def __init__(self, spell: str = "adaptive", relu: bool = True):
        super().__init__()
        self.spell, self.relu = spell, relu
        self.c, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.c(x)) if self.relu else self.c(x)
        y = F.adaptive_max_pool2d(y, 1).flatten(1) if self.spell == "adaptive" else \
            y.amax((2, 3))
        return self.fc(y)


@pytest.mark.parametrize("side, pools", [(7, "o22"), (6, "2o2"), (5, "oo2"), (3, "o2"),
                                         ((7, 5), "oo2"), ((4, 6), "2oo"), ((6, 1), "ooo")])
@pytest.mark.parametrize("spell", ["adaptive", "amax"])
def test_a_global_max_of_any_map_halves_it(spell, side, pools):
    """2 x 2 pools where both sides are even, the same in ceil mode where one is odd (``o``:
    the picks at stride 2 and their maxes)."""
    h, w = side if isinstance(side, tuple) else (side, side)
    torch.manual_seed(h * w)
    graph = traced_equal_to_torch(GlobalMax(spell).eval(), torch.randn(4, 3, h, w))
    base = "adaptive_max_pool2d" if spell == "adaptive" else "amax"
    stages = [op for op in graph.ops if isinstance(op, (ir.MaxPool2d, ir.Add))
              and re.fullmatch(rf"{base}(\.pool\d)?", op.name)]
    assert "".join("2" if isinstance(op, ir.MaxPool2d) else "o" for op in stages) == pools


def test_a_global_max_of_a_seven_by_five_map_runs_on_the_rtl():
    model_rtl_exact(GlobalMax().eval(), seed=4, shape=(3, 7, 5))
    with pytest.raises(UnsupportedOp, match="may be negative"):
        hwaccel.compile(GlobalMax(relu=False).eval(), torch.randn(2, 3, 7, 7), preset="tiny")


class CeilPools(nn.Module):
    """A ReLU'd conv's max pool of ``k`` in ceil mode, a 1 x 1 conv and a Linear."""

    def __init__(self, k: int = 2, relu: bool = True):
        super().__init__()
        self.relu = relu
        self.c, self.pool = nn.Conv2d(3, 8, 3, padding=1), nn.MaxPool2d(k, ceil_mode=True)
        self.c2, self.fc = nn.Conv2d(8, 8, 1), nn.LazyLinear(4)

    def forward(self, x):
        y = torch.relu(self.c(x)) if self.relu else self.c(x)
        return self.fc(torch.relu(self.c2(self.pool(y))).flatten(1))


@pytest.mark.parametrize("k, size", [(2, (7, 7)), (2, (5, 8)), (2, (8, 3)), (4, (7, 6)),
                                     (4, (9, 9)), (2, (6, 6))])
def test_ceil_mode_pools_equal_torch(k, size):
    """Over an odd side the last window reads one row (column) and the padding; an even map's
    ceil mode is its floor mode, 2 x 2 pools alone."""
    torch.manual_seed(k * size[0] * size[1])
    model = CeilPools(k)
    model(torch.zeros(1, 3, *size))   # the lazy Linear's inputs
    graph = traced_equal_to_torch(model.eval(), torch.randn(4, 3, *size))
    picks = [op for op in graph.ops if isinstance(op, ir.Conv2d) and op.name.startswith("pool.")]
    assert bool(picks) == any(n % 2 for n in size)


def test_ceil_mode_pools_run_on_the_rtl():
    torch.manual_seed(5)
    model = CeilPools()
    model(torch.zeros(1, 3, 7, 5))
    model_rtl_exact(model.eval(), seed=6, shape=(3, 7, 5))
    with pytest.raises(UnsupportedOp, match="MaxPool2d in ceil mode .* may be negative"):
        bad = CeilPools(relu=False)
        bad(torch.zeros(1, 3, 7, 7))
        hwaccel.compile(bad.eval(), torch.randn(2, 3, 7, 7), preset="tiny")
