"""Kernels larger than the preset's conv engine takes (:mod:`hwaccel.compiler.split_kernels`): a
stack of shifted copies (a pick, 0/1 weights) and a conv of the engine's kernel over it. The
pair equal to the large conv in float64 for every kernel up to ``2 k - 1``, stride and padding;
LeNet-5's shape golden equal to the integer twin and the RTL to golden, every counter to the
cycle model; a kernel beyond ``2 k - 1`` still named by lowering."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, rtl_equals_golden
from rtl_checks import programs_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.compiler.lower import LoweringError
from hwaccel.compiler.quantize import is_pick
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.split_kernels import split_kernels
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]


CASES = [(k, s, p, d) for k, s, p, d in itertools.product(
    (4, 5, (5, 3), (2, 5)), (1, 2), (0, 1, 2), (1,)) if 2 * p < min(k if isinstance(k, tuple)
                                                                  else (k, k))]
CASES += [(3, 1, 2, 2), (3, 2, 1, 2), ((3, 1), 1, (2, 0), (2, 1))]   # dilated: 5 taps


@pytest.mark.parametrize(("kernel", "stride", "padding", "dilation"), CASES)
def test_a_large_kernel_is_a_stack_of_copies_and_a_small_conv_equal_to_it(kernel, stride,
                                                                          padding, dilation):
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 4, 1),
                          nn.Conv2d(4, 5, kernel, stride, padding, dilation)).eval()
    x = torch.randn(2, 3, 9, 10)
    graph = split_kernels(trace(model, x), HOST_CONFIG)
    stack, conv = graph.op("1.shifts"), graph.op("1")
    assert is_pick(stack) and conv.inputs == ("1.shifts",)
    assert max(conv.kernel) <= HOST_CONFIG.conv.max_kernel and stack.weight.shape[0] % 4 == 0
    with torch.no_grad():
        ref = copy.deepcopy(model).double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)


class LeNet(nn.Module):
    """LeNet-5's second conv on tiny's 8 x 8 maps: a 5 x 5 over 8 x 8 into 4 x 4, then a 3 x 3
    dilated by 2 ("same"), each a stack and a 3 x 3; a Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 6, 5)
        self.c3 = nn.Conv2d(6, 4, 3, padding=2, dilation=2)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        return self.fc(torch.flatten(F.relu(self.c3(x)), 1))


def test_lenet_runs_golden_equal_to_the_twin_and_the_rtl_to_golden(host):
    torch.manual_seed(2)
    model = LeNet().eval()
    x = torch.randn(32, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    # the stacks (wider than tiny's 8 outputs: in groups, :mod:`.split_convs`) keep their
    # input's scale, so no rounding more than the large convs had
    for name in ("c2", "c3"):
        stacks = [op for op in cm.qgraph.ops if op.name.startswith(f"{name}.shifts")
                  and isinstance(op, ir.QConv)]
        assert stacks and all(op.s_in == op.s_out for op in stacks), name
    assert not any(op.name.startswith("c1.shifts") for op in cm.qgraph.ops)
    assert max(max(op.kernel) for op in cm.qgraph.ops if isinstance(op, ir.QConv)) == 3
    golden_twin_float(cm, model, x[:8], 0.1)
    rtl_equals_golden(cm, x[:2])
    # two programs (the stacks' and the split convs' weights exceed tiny's scratchpad)
    x_int = cm.quantize_input(x[:2])
    low = cm.lower(x_int)
    assert len(low.programs) > 1
    image = programs_on_the_rtl(host, HOST_CONFIG, low, "lenet")
    np.testing.assert_array_equal(low.ints(image), cm.int8_forward(x_int))


def test_a_kernel_beyond_twice_the_engines_is_named_by_lowering():
    model = nn.Sequential(nn.Conv2d(1, 4, 1), nn.Conv2d(4, 4, 7, padding=3)).eval()
    x = torch.randn(4, 1, 8, 8)
    assert split_kernels(trace(model, x), HOST_CONFIG).op("1").kernel == (7, 7)
    with pytest.raises(LoweringError, match=r"layer '1' cannot run on accel_tiny: kernel_h "
                                            r"must be at most 3"):
        hwaccel.compile(model, x, preset="tiny")
    # on default (kernels up to 10) nothing is split
    graph = trace(model, x)
    assert split_kernels(graph, PRESETS["default"]) is graph
    np.testing.assert_array_equal(graph.op("1").weight, model[1].weight.detach().numpy())


@pytest.mark.parametrize("k", [5, 9])
def test_a_depthwise_kernel_past_the_depthwise_engine_runs_as_the_dense_conv_it_is(k):
    """A depthwise kernel past the depthwise engine's (tiny's 3 x 3, default's 7 x 7) was
    refused: it is the dense conv with zeros between its channels, as a grouped conv is. On
    default (dense kernels up to 10) a 9 x 9 runs as that, a 5 x 5 as the depthwise conv it is;
    on tiny (3 x 3) a 5 x 5 is then split as any 5 x 5 is. Golden equal to the integer twin on
    both, the RTL to golden on tiny."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 4, k, padding=k // 2, groups=4), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 8 * 8, 3)).eval()
    x = torch.randn(64, 3, 8, 8)
    graph = trace(model, x[:2])
    if k == 5:
        assert split_kernels(graph, PRESETS["default"]) is graph
        assert split_kernels(graph, HOST_CONFIG).op("2").kernel == (3, 3)   # dense, split
        presets = ("default", "tiny")
    else:
        dense = split_kernels(graph, PRESETS["default"]).op("2")
        assert dense.groups == 1 and dense.weight.shape == (4, 4, 9, 9)
        for c in range(4):   # each output channel reads its own input channel only
            np.testing.assert_array_equal(np.delete(dense.weight[c], c, axis=0), 0)
        np.testing.assert_array_equal(dense.weight[np.arange(4), np.arange(4)],
                                      model[2].weight.detach().numpy()[:, 0])
        presets = ("default",)
    for preset in presets:
        cm = hwaccel.compile(model, x[:2], preset=preset, calibration=x)
        golden_twin_float(cm, model, x[:8], 0.1)
    if k == 5:
        rtl_equals_golden(cm, x[:2])
