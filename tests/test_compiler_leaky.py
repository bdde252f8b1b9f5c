"""LeakyReLU (and a PReLU of one slope): traced as two element-wise ADDs (``relu(x)``, then
``slope * x + (1 - slope) * relu(x)``), the float IR equal to torch, the int8 twin close to the
float model, and the compiled model bit-exact on the golden interpreter and the RTL."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, model_close, model_rtl_exact, rtl_equals_golden
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.isa import Op
from hwaccel.generators.accel.model import decode


class Leaky(nn.Module):
    """Fits ``tiny`` (8 x 8 maps): the module and the function, on an image before a max pool
    and on a vector after a Linear."""

    def __init__(self, slope=0.1):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.LeakyReLU(slope)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = F.max_pool2d(self.act(self.c1(x)), 2)
        x = F.leaky_relu(self.c2(x), 0.2)
        return self.fc2(F.leaky_relu(self.fc1(torch.flatten(x, 1))))


def _model(slope=0.1, seed=0):
    torch.manual_seed(seed)
    return Leaky(slope).eval()


def test_a_leaky_relu_is_two_weighted_adds_equal_to_torch():
    model = _model()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = trace(model, x[:2])
    adds = [op for op in graph.ops if isinstance(op, ir.Add)]
    assert [(op.relu, op.weights) for op in adds] == [
        (True, (0.5, 0.5)), (False, (0.1, 0.9)),
        (True, (0.5, 0.5)), (False, (0.2, 0.8)),
        (True, (0.5, 0.5)), (False, (0.01, 0.99))]
    for pos, out in zip(adds[::2], adds[1::2]):
        assert pos.inputs[0] == pos.inputs[1] == out.inputs[0] and out.inputs[1] == pos.name
    with torch.no_grad():
        ref = model.double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)


def test_a_max_pool_that_alone_reads_it_goes_first():
    """A max commutes with a rising function: ``c1``'s pool moves before its LeakyReLU, so
    the engine pools as it stores and the ADDs run on a quarter of the words; a pool of a
    LeakyReLU that something else reads too stays after it."""
    model = _model()
    graph = trace(model, torch.randn(2, 3, 8, 8))
    names = [op.name for op in graph.ops]
    assert names[:4] == ["c1", "max_pool2d", "act.relu", "act"], names
    assert graph.op("max_pool2d").inputs == ("c1",) and graph.op("c2").inputs == ("act",)

    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(3, 8, 3, padding=1)
            self.d = nn.Conv2d(8, 8, 2, stride=2)

        def forward(self, x):
            y = F.leaky_relu(self.c(x), 0.25)
            return (F.max_pool2d(y, 2) + self.d(y)).flatten(1)

    torch.manual_seed(5)
    both = Both().eval()
    x = torch.randn(3, 3, 8, 8)
    graph = trace(both, x[:2])
    assert graph.op("max_pool2d").inputs == ("leaky_relu",)
    with torch.no_grad():
        ref = both.double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)


def test_a_slope_of_zero_is_a_fused_relu():
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.LeakyReLU(0.0), nn.Flatten()).eval()
    graph = trace(model, torch.randn(2, 2, 5, 5))
    assert not any(isinstance(op, ir.Add) for op in graph.ops)
    assert graph.op("0").relu


def test_a_prelu_of_one_slope_is_its_leaky_relu():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.PReLU(init=0.3), nn.Flatten()).eval()
    x = torch.randn(3, 2, 5, 5)
    graph = trace(model, x[:2])
    assert [op.weights for op in graph.ops if isinstance(op, ir.Add)] == [
        (0.5, 0.5), pytest.approx((0.3, 0.7))]
    with torch.no_grad():
        ref = model.double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)
    per_channel = nn.Sequential(nn.Linear(4, 4), nn.PReLU(4)).eval()
    with pytest.raises(UnsupportedOp, match=r"PReLU at .*num_parameters=4 on a per-sample "
                                            r"shape \(4,\); a slope a channel only on an image"):
        trace(per_channel, torch.randn(2, 4))


@pytest.mark.parametrize("slope", [1.0, 1.5, -0.1])
def test_other_slopes_are_refused_by_name_but_on_images(slope):
    model = nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(slope)).eval()
    with pytest.raises(UnsupportedOp, match=rf"LeakyReLU slope at .*negative_slope={slope!r}; "
                                            r"only 0 <= slope < 1 .*or any on an image"):
        trace(model, torch.randn(2, 4))


class PerChannel(nn.Module):
    """Fits ``tiny`` (8 x 8 maps): a PReLU of a slope a channel (some negative, one above 1)
    before a max pool, and a LeakyReLU of slope -0.2 on an image."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.act = nn.PReLU(8)
        with torch.no_grad():
            self.act.weight.copy_(torch.tensor([0.25, -0.5, 1.5, 0.0, 0.1, -0.1, 0.9, 2.0]))
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = F.max_pool2d(self.act(self.c1(x)), 2)
        return self.fc(F.leaky_relu(self.c2(x), -0.2).flatten(1))


def test_a_slope_a_channel_is_adds_and_depthwise_convs_equal_to_torch():
    torch.manual_seed(6)
    model = PerChannel().eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(7))
    graph = trace(model, x[:2])
    dw = [op.name for op in graph.ops if isinstance(op, ir.Conv2d) and op.groups > 1]
    assert dw == ["act.x", "act.pos", "leaky_relu.x"], dw
    # the slope -0.2's positive part, relu(x) * 1.2, is the ReLU's add with its weights scaled
    assert graph.op("leaky_relu.pos").weights == pytest.approx((0.6, 0.6))
    # a negative slope does not rise: the pool stays after the PReLU
    assert graph.op("max_pool2d").inputs == ("act",)
    with torch.no_grad():
        ref = model.double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)


def test_the_rtl_runs_a_slope_a_channel_bit_exact():
    torch.manual_seed(8)
    model = PerChannel().eval()
    model_close(model, seed=9)
    model_rtl_exact(model, seed=10)


def test_golden_equals_the_twin_and_the_float_model_closely():
    model = _model()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 3, 8, 8, generator=gen)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    # each LeakyReLU is two ADD commands: six in one sample's program
    lowered = cm.lower(cm.quantize_input(x[:1]))
    ops = [decode(cm.config, word)["op"] for p in lowered.programs for word in p.commands]
    assert ops.count(Op.ADD) == 6 and Op.MAXPOOL not in ops, ops   # c1 pools as it stores
    golden_twin_float(cm, model, x[:8], 0.1)


def test_the_rtl_runs_a_leaky_model_bit_exact():
    model = _model(seed=3)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(32, 3, 8, 8, generator=gen)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    rtl_equals_golden(cm, x[:3])
