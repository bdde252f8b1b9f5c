"""Max pools of overlapping 3 x 3 windows (:mod:`hwaccel.compiler.fold_pools`): ``MaxPool2d(3,
2, 1)`` of a ResNet's stem, ``(3, 2)`` of SqueezeNet's (ceil mode), ``(3, 1, 1)``. The float
graph equal to torch in float64; the pool's int8 output equal to torch's max pool of its int8
input, exactly, on every size and padding; a stem on the RTL bit-exact to golden with every
counter equal to the cycle model's; a pool of values that may be negative, and a ceil-mode
window the expansion does not make, refused by name."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float
from rtl_checks import compiled_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.compiler.equalize import depthwise_pairs
from hwaccel.compiler.errors import UnsupportedOp
from hwaccel.compiler.lower import LoweringError
from hwaccel.compiler.qreference import forward as int_forward
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.split_convs import split_outputs
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]


class Stem(nn.Module):
    """A conv, batch norm and ReLU, the pool (the ReLU after it with ``after``), a conv and a
    Linear."""

    def __init__(self, pool: nn.MaxPool2d, size: int, after: bool = False):
        super().__init__()
        self.c1, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.pool, self.after = pool, after
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        n = pool(torch.zeros(1, 1, size, size)).shape[-1]
        self.fc = nn.Linear(8 * n * n, 5)
        with torch.no_grad():
            self.bn.running_mean.uniform_(-0.5, 0.5)
            self.bn.running_var.uniform_(0.5, 2.0)

    def forward(self, x):
        x = self.bn(self.c1(x))
        x = F.relu(self.pool(x)) if self.after else self.pool(F.relu(x))
        return self.fc(torch.flatten(F.relu(self.c2(x)), 1))


CASES = [  # stride, padding, ceil mode, map size, ReLU after the pool
    (2, 1, False, 8, False),   # a ResNet's stem: four 2 x 2 pools of shifted copies
    (2, 1, False, 8, True),    # the ReLU after it moves before it
    (2, 1, False, 7, False),   # an odd map: the stride-1 pool's every other row and column
    (2, 1, True, 7, False),
    (2, 0, False, 7, False),   # SqueezeNet's
    (2, 0, True, 8, False),    # its ceil mode on an even map: the last window half outside
    (2, 0, False, 8, False),
    (1, 1, False, 7, False),   # stride 1, "same"
    (1, 0, False, 8, False),
]


def _stem(stride, padding, ceil, size, after, seed=0):
    torch.manual_seed(seed)
    model = Stem(nn.MaxPool2d(3, stride, padding, ceil_mode=ceil), size, after).eval()
    x = torch.randn(32, 3, size, size, generator=torch.Generator().manual_seed(seed + 1))
    return model, x


@pytest.mark.parametrize(("stride", "padding", "ceil", "size", "after"), CASES)
def test_the_pool_is_exact_in_float_and_in_int8(stride, padding, ceil, size, after):
    model, x = _stem(stride, padding, ceil, size, after)
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(trace(model, x[:2]), x), ref, rtol=1e-9,
                               atol=1e-12)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    qg = cm.qgraph
    # the int8 pool of the int8 ReLU'd map (c1 holds its ReLU), exactly
    x_int = cm.quantize_input(x[:8])
    before = int_forward(dataclasses.replace(qg, output="c1"), x_int)
    pooled = int_forward(dataclasses.replace(qg, output="pool"), x_int)
    assert before.min() >= 0 and np.count_nonzero(before) > before.size // 4
    want = F.max_pool2d(torch.tensor(before, dtype=torch.float64), 3, stride, padding,
                        ceil_mode=ceil).numpy()
    np.testing.assert_array_equal(pooled, want)
    ops = [op for op in qg.ops if op.name.startswith("pool")]
    assert all(op.s_out == qg.op("c1").s_out for op in ops if hasattr(op, "s_out"))
    golden_twin_float(cm, model, x[:8], 0.1)


class Fire(nn.Module):
    """SqueezeNet's fire module (a squeeze, two expands concatenated), then its ceil-mode pool:
    each part of the concatenation pooled at its own scale."""

    def __init__(self):
        super().__init__()
        self.sq, self.e1, self.e3 = nn.Conv2d(3, 4, 1), nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 3,
                                                                                     padding=1)
        self.pool, self.fc = nn.MaxPool2d(3, 2, ceil_mode=True), nn.Linear(8 * 3 * 3, 5)

    def forward(self, x):
        x = F.relu(self.sq(x))
        x = self.pool(torch.cat([F.relu(self.e1(x)), F.relu(self.e3(x))], 1))
        return self.fc(torch.flatten(x, 1))


def test_a_pool_of_a_concatenation_pools_each_part_at_its_scale():
    torch.manual_seed(4)
    model = Fire().eval()
    x = torch.randn(32, 3, 7, 7, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(trace(model, x[:2]), x), ref, rtol=1e-9,
                               atol=1e-12)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    x_int = cm.quantize_input(x[:8])
    for i, part in enumerate(("e1", "e3")):
        before = int_forward(dataclasses.replace(cm.qgraph, output=part), x_int)
        pooled = int_forward(dataclasses.replace(cm.qgraph, output=f"pool.part{i}"), x_int)
        want = F.max_pool2d(torch.tensor(before, dtype=torch.float64), 3, 2, ceil_mode=True)
        np.testing.assert_array_equal(pooled, want.numpy())
    golden_twin_float(cm, model, x[:8], 0.1)


@pytest.mark.parametrize("kernel", [1, 3])
def test_a_pool_of_a_conv_wider_than_the_engine_splits_with_it(host, kernel):
    """A conv of 12 outputs (tiny's engine takes 8) before the pool: a 3 x 3 splits into
    groups as any conv too wide does; a 1 x 1, a GEMM that tiles its outputs itself, splits
    because a max pool reads it beside the copies and the max-pool command takes 8 channels.
    The pool's maxes split with them, one add a part (SqueezeNet's expands on ``ecp5_128``)."""
    torch.manual_seed(6)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 12, kernel, padding=kernel // 2), nn.ReLU(),
                          nn.MaxPool2d(3, 2, 1), nn.Flatten(), nn.Linear(12 * 4 * 4, 5)).eval()
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    graph = split_outputs(trace(model, x[:2]), HOST_CONFIG)
    names = {op.name for op in graph.ops}
    assert {"2.out1", "4.max1.diff.part1", "4.part1"} <= names
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.1)
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:2], f"a {kernel} x {kernel} conv's pool")


def test_a_max_pool_over_more_channels_than_its_command_takes_is_refused_by_compile():
    """A max pool of an add's 12 channels (tiny's command takes 8; an add does not split):
    refused when the model compiles, not first when it is lowered."""

    class AddPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.fc = nn.Conv2d(3, 12, 1), nn.Conv2d(3, 12, 1), nn.Linear(192, 5)

        def forward(self, x):
            return self.fc(torch.flatten(F.max_pool2d(F.relu(self.a(x) + self.b(x)), 2), 1))

    with pytest.raises(LoweringError, match=r"maxpool channels must be at most 8, not 12"):
        hwaccel.compile(AddPool().eval(), torch.randn(4, 3, 8, 8), preset="tiny")


def test_a_resnet_stem_runs_on_the_rtl_bit_exact_with_the_cycle_models_counters(host):
    model, x = _stem(2, 1, False, 8, False, seed=3)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    kinds = [type(op).__name__ for op in cm.qgraph.ops if op.name.startswith("pool")]
    assert kinds.count("QMaxPool") == 1 and kinds.count("QAdd") == 6   # three maxes
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:2], "stem")


def test_pools_in_a_row_each_read_values_at_least_0():
    """The second pool reads the first's last max, an ADD with no ReLU of its own."""
    torch.manual_seed(8)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 1, 1),
                          nn.MaxPool2d(3, 2, 1), nn.Flatten(), nn.Linear(64, 5)).eval()
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(9))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    x_int = cm.quantize_input(x[:8])
    before = int_forward(dataclasses.replace(cm.qgraph, output="0"), x_int)
    pooled = int_forward(dataclasses.replace(cm.qgraph, output="3"), x_int)
    want = F.max_pool2d(F.max_pool2d(torch.tensor(before, dtype=torch.float64), 3, 1, 1), 3, 2, 1)
    np.testing.assert_array_equal(pooled, want.numpy())
    golden_twin_float(cm, model, x[:8], 0.1)


def test_a_pool_of_values_that_may_be_negative_is_refused_by_name():
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.MaxPool2d(3, 2, 1)).eval()
    x = torch.randn(8, 3, 8, 8)
    with pytest.raises(UnsupportedOp, match=r"MaxPool2d of overlapping windows at _1 .*"
                                            r"over '0', which may be negative.*ReLU"):
        hwaccel.compile(model, x, preset="tiny")


def test_a_ceil_mode_window_the_expansion_does_not_make_is_refused_by_name():
    # 8 rows at padding 1, ceil mode: 5 windows, the last over row 7 and the padding
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                          nn.MaxPool2d(3, 2, 1, ceil_mode=True)).eval()
    with pytest.raises(UnsupportedOp, match=r"kernel_size=3, stride=2, ceil_mode=True from 8x8: "
                                            r"5x5 windows.*4x4"):
        trace(model, torch.randn(2, 3, 8, 8))


def test_other_overlapping_pools_are_still_refused_by_name():
    for pool in (nn.MaxPool2d(5, 2, 2), nn.MaxPool2d(2, 1), nn.MaxPool2d(3, 2, dilation=2)):
        model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), pool).eval()
        with pytest.raises(UnsupportedOp, match=r"MaxPool2d attribute"):
            trace(model, torch.randn(2, 3, 8, 8))


def test_exact_convs_are_left_out_of_equalization():
    """Equalization rescales a depthwise conv's channels and its producer's: an exact copy or
    negation must keep weights of 1 and -1 at its input's scale."""
    c = 4
    conv = ir.Conv2d("c", np.ones((c, 3, 3, 3)), np.zeros(c), padding=1, relu=True,
                     inputs=(ir.INPUT,))
    dw = ir.Conv2d("d", np.ones((c, 1, 1, 1)), np.zeros(c), groups=c, inputs=("c",))
    graph = ir.Graph((3, 8, 8), False, (conv, dw), output="d")
    assert depthwise_pairs(graph) == [("c", "d")]
    exact = dataclasses.replace(graph, ops=(conv, dataclasses.replace(dw, exact=True)))
    assert depthwise_pairs(exact) == []
