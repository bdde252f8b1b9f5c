"""Average pools the AVGPOOL unit does not take (a stride below the kernel, zero padding, a
``divisor_override``) as the same function, a depthwise conv of weights ``1 / (kh kw)``: the float
IR equal to torch, the int8 twin close to the float model, golden equal to the twin and the RTL
equal to golden; an average that leaves the padding out is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.trace import trace


class Pools(nn.Module):
    """Inception's 3 x 3 average at stride 1 (padded), a 2 x 2 at stride 1, a padded 3 x 3 at
    stride 2 with a divisor of 4, then the native 2 x 2 at stride 2."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.pool = nn.AvgPool2d(3, stride=1, padding=1)
        self.conv2 = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8 * 2 * 2, 5)

    def forward(self, x):
        x = F.relu(self.pool(F.relu(self.conv(x))))      # 8 x 8
        x = F.avg_pool2d(self.conv2(x), 2, stride=1)      # 7 x 7
        x = F.avg_pool2d(x, 3, 2, 1, divisor_override=4)  # 4 x 4
        return self.fc(torch.flatten(F.avg_pool2d(x, 2), 1))


def _model(seed=0):
    torch.manual_seed(seed)
    return Pools().eval()


def test_the_pools_are_depthwise_convs_and_the_float_ir_equals_torch():
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    names = {op.name: op for op in traced_equal_to_torch(_model(), x).ops}
    pool = names["pool"]
    assert isinstance(pool, ir.Conv2d) and pool.groups == 8 and pool.relu
    np.testing.assert_array_equal(pool.weight, np.full((8, 1, 3, 3), 1 / 9))
    assert pool.strides == (1, 1) and pool.pads == (1, 1, 1, 1)
    strided = names["avg_pool2d_1"]
    assert strided.strides == (2, 2) and strided.weight.max() == 0.25
    assert isinstance(names["avg_pool2d_2"], ir.AvgPool2d)


def test_the_int8_twin_is_close_and_golden_equals_it():
    model_close(_model(), 2, rel=0.1)


def test_the_rtl_equals_golden():
    model_rtl_exact(_model(3), 3)


@pytest.mark.parametrize("pool,words", [
    (nn.AvgPool2d(3, 1, 1, count_include_pad=False), "count_include_pad=False"),
    (nn.AvgPool2d(2, ceil_mode=True), "ceil_mode=True"),
])
def test_an_average_without_the_padding_or_in_ceil_mode_is_refused(pool, words):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), pool, nn.Flatten()).eval()
    with pytest.raises(UnsupportedOp, match=words):
        trace(model, torch.randn(2, 3, 8, 8))


class Line(nn.Module):
    """A Conv1d's line averaged over 3 taps at stride 1 (padded): a 1 x 3 depthwise conv."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(4, 8, 3, padding=1)
        self.pool = nn.AvgPool1d(3, stride=1, padding=1)
        self.fc = nn.Linear(8 * 8, 3)

    def forward(self, x):
        return self.fc(self.pool(F.relu(self.c(x))).flatten(1))


def test_a_line_average_at_stride_one_is_a_depthwise_conv():
    torch.manual_seed(5)
    model = Line().eval()
    graph = traced_equal_to_torch(model, torch.randn(4, 4, 8))
    pool = next(op for op in graph.ops if op.name == "pool")
    assert pool.groups == 8 and pool.kernel == (1, 3) and pool.pads == (0, 1, 0, 1)
    model_close(model, 6, shape=(4, 8))


def test_a_global_average_over_more_words_and_pixels_than_the_unit_holds_pools_bands_first():
    """20 channels (5 words of tiny's 4 lanes, past its 4 accumulator words) over a 4 x 4 map:
    one pixel a row is 16 rows, past tiny's 8, so the pool is bands of 2 x 4 (8 rows) and then
    the average of their 2 results (MobileNetV2's 8 x 8 map of 128 channels on ``ecp5_128``).
    The float IR equals torch; the RTL equals golden."""
    from hwaccel.compiler.split_pools import split_wide_means
    from hwaccel.generators.accel.config import PRESETS

    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(3, 20, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(20, 5)).eval()
    graph = split_wide_means(traced_equal_to_torch(model, torch.randn(4, 3, 4, 4)),
                             PRESETS["tiny"])
    pools = [(op.name, op.kernel) for op in graph.ops if isinstance(op, ir.AvgPool2d)]
    assert pools == [("2.bands", (2, 4)), ("2", (2, 1))]
    model_close(model, 8, shape=(3, 4, 4))
    model_rtl_exact(model, 9, shape=(3, 4, 4))
    narrow = nn.Sequential(nn.Conv2d(3, 16, 1), nn.AdaptiveAvgPool2d(1)).eval()   # 4 words
    held = trace(narrow, torch.randn(2, 3, 4, 4))
    assert split_wide_means(held, PRESETS["tiny"]) is held
