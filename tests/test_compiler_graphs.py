"""The compiler on graphs: residual adds, branches, average pools, per-side padding, non-square
and depthwise convolutions are traced faithfully, quantized as stated, and their integer twin
equals the plain numpy reference of the integer IR exactly (and the golden program, where the
preset runs the model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwaccel
from hwaccel.compiler import LoweringError, ir
from hwaccel.compiler.calibrate import BINS, mse_clip
from hwaccel.compiler.cases import GRAPHS, make
from hwaccel.compiler.qreference import forward as qforward
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.driver import ProgramBuilder
from hwaccel.generators.accel.model import run_program
from hwaccel.numerics import INT8, add_params

#: whether the ISA has the ADD and AVGPOOL commands (the driver builds them)
HAS_ADD_AVG = hasattr(ProgramBuilder, "add") and hasattr(ProgramBuilder, "avgpool")


def golden(cm, x_int) -> np.ndarray:
    low = cm.lower(x_int)
    b = low.builder
    res = run_program(cm.config, b.act, b.wgt, b.commands)
    assert res.done and not res.error, (res.cause, res.pc)
    return low.ints(res.act)


def compiled(name: str, seed: int = 0):
    model, inputs = make(name, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    cm = hwaccel.compile(model, inputs(2, gen), calibration=inputs(64, gen), strict=False)
    return cm, inputs(5, gen)


@pytest.mark.parametrize("name", list(GRAPHS))
def test_graphs_trace_faithfully(name):
    model, inputs = make(name)
    x = inputs(3, torch.Generator().manual_seed(1))
    graph = trace(model, x)
    with torch.no_grad():
        ref = model.double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", list(GRAPHS))
def test_graph_twin_equals_reference_and_golden(name):
    cm, x = compiled(name)
    x_int = cm.quantize_input(x)
    twin = cm.int8_forward(x_int)
    np.testing.assert_array_equal(twin, qforward(cm.qgraph, x_int))
    assert np.count_nonzero(twin) > twin.size // 4, f"{name}: outputs mostly zero"
    if HAS_ADD_AVG:
        assert cm.refusal is None, cm.refusal
        np.testing.assert_array_equal(golden(cm, x_int), twin)
    else:
        assert "has no ADD command" in str(cm.refusal) or "has no AVGPOOL" in str(cm.refusal)


class _WideLstm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.fc = torch.nn.LSTM(70, 8, batch_first=True), torch.nn.Linear(8, 2)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.fc(y[:, -1])


def test_strict_compile_refuses_what_the_preset_cannot_run():
    """An LSTM of 70 inputs: default's LSTM cell runs up to 64."""
    with pytest.raises(LoweringError, match=r"layer 'lstm' has input_size 70 and the LSTM "
                                            r"cell of accel_default runs input_size up to 64"):
        hwaccel.compile(_WideLstm().eval(),
                        torch.randn(2, 5, 70, generator=torch.Generator().manual_seed(0)))


def test_residual_graph_structure():
    """Each add reads its block's input and its branch; BN folded; ReLU fused into the adds."""
    cm, _ = compiled("resnet_tiny")
    ops = {op.name: op for op in cm.graph.ops}
    assert [type(op).__name__ for op in cm.graph.ops].count("Conv2d") == 6  # BNs folded
    assert ops["add"].inputs == ("stem.0", "a1.3") and ops["add"].relu
    assert ops["add_1"].inputs == ("b1.3", "short") and ops["add_1"].relu
    assert ops["short"].inputs == ("add",) and ops["b1.0"].inputs == ("add",)
    assert ops["stem.0"].relu and ops["a1.0"].relu and not ops["a1.3"].relu
    assert ops["pool"].kernel == (6, 6)  # AdaptiveAvgPool2d(1) on the 6x6 map
    readers = cm.graph.readers()
    assert [op.name for op in readers["add"]] == ["b1.0", "short"]


def test_pad_folds_into_the_conv_per_side():
    """F.pad's (left, right, top, bottom) becomes the conv's (top, left, bottom, right)."""
    cm, _ = compiled("dscnn_tiny")
    c1, dw = cm.graph.ops[0], cm.graph.ops[1]
    assert c1.padding == (4, 1, 5, 1) and c1.kernel == (10, 4) and c1.strides == (2, 2)
    assert dw.groups == 8 and dw.depthwise and dw.padding == 1
    assert cm.qgraph.shapes()["c1"] == (8, 10, 5)
    b = make("branches")[0]
    graph = trace(b, torch.randn(2, 4, 8, 8))
    down = graph.op("down")
    assert down.padding == (0, 0, 1, 1) and down.inputs == (ir.INPUT,)
    assert graph.op("add_1").inputs == ("add", "add")


def test_add_scales_are_calibrated_and_per_input():
    """The add's output scale is the MSE clip (calibrate.mse_clip) of relu(x + a1(x)) over the
    calibration data / 127, computed here from the module itself; its multipliers are add_params
    of each input's scale over it."""
    model, inputs = make("resnet_tiny")
    gen = torch.Generator().manual_seed(1)
    cal = inputs(64, gen)
    cm = hwaccel.compile(model, cal[:2], calibration=cal)
    with torch.no_grad():
        stem = model.stem(cal)
        summed = F.relu(stem + model.a1(stem))
    q = cm.qgraph.op("add")
    a = summed.double().abs().flatten()
    amax = float(a.max())
    s_out = mse_clip(torch.histc(a[a > 0], BINS, 0.0, amax).numpy(), amax) / INT8.max
    assert q.s_out == pytest.approx(s_out, rel=1e-5)
    assert q.s_a == cm.qgraph.op("stem.0").s_out and q.s_b == cm.qgraph.op("a1.3").s_out
    assert q.params == add_params(q.s_a / q.s_out, q.s_b / q.s_out)
    pool = cm.qgraph.op("pool")
    assert pool.s == cm.qgraph.op("add_1").s_out  # an average keeps its input's scale


def test_depthwise_weights_are_per_channel():
    cm, _ = compiled("dscnn_tiny")
    dw = cm.qgraph.op("dw")
    assert dw.w.shape == (8, 1, 3, 3) and dw.groups == 8
    assert (np.abs(dw.w).reshape(8, -1).max(axis=1) == INT8.max).all()


def test_relu_fuses_through_a_max_pool_into_an_add():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(2, 2, 3, padding=1), nn.Conv2d(2, 2, 1)

        def forward(self, x):
            return F.relu(F.max_pool2d(self.a(x) + self.b(x), 2)).flatten(1)

    graph = trace(M().eval(), torch.randn(2, 2, 6, 6))
    assert [type(op).__name__ for op in graph.ops] == ["Conv2d", "Conv2d", "Add", "MaxPool2d",
                                                       "Flatten"]
    assert graph.ops[2].relu and not graph.ops[0].relu


def test_graph_checks_its_values():
    w = np.zeros((1, 1, 1, 1))
    conv = ir.Conv2d("c", w, np.zeros(1))
    with pytest.raises(ValueError, match="op 'a' reads 'nope', which no earlier op produces"):
        ir.Graph((1, 2, 2), False, (conv, ir.Add("a", inputs=("c", "nope"))))
    with pytest.raises(ValueError, match=r"op 'a' must read 2 value\(s\)"):
        ir.Graph((1, 2, 2), False, (conv, ir.Add("a")))
    with pytest.raises(ValueError, match="unique"):
        ir.Graph((1, 2, 2), False, (conv, ir.Conv2d("c", w, np.zeros(1))))
    g = ir.Graph((1, 2, 2), False, (conv, ir.Add("a", inputs=("c", ir.INPUT))))
    assert g.ops[0].inputs == (ir.INPUT,) and g.output == "a" and not g.is_chain


@pytest.mark.parametrize("stride, pad", [(1, (1, 1, 1, 1)), (2, (0, 1, 1, 0)), (2, (1, 0, 0, 1))])
def test_a_map_taller_than_the_line_buffer_runs_in_bands(stride, pad):
    """tiny's engine holds 8 rows: a 3x3 conv on a 21-row map is several CONVs per sample, each
    over the input rows its band of output rows reads (padded only at the map's edges); their
    outputs together equal the integer twin. (After a 1x1 conv: on the model's input the host
    may write the conv's im2col patches instead, :mod:`hwaccel.compiler.im2col`.)"""
    top, left, bottom, right = pad
    model = nn.Sequential(nn.Conv2d(2, 2, 1), nn.ZeroPad2d((left, right, top, bottom)),
                          nn.Conv2d(2, 4, 3, stride=stride), nn.ReLU()).eval()
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 2, 21, 6, generator=gen)
    cm = hwaccel.compile(model, x[:2], calibration=x, preset="tiny")
    oh = (21 + top + bottom - 3) // stride + 1
    rows = (cm.config.conv.max_height - 3) // stride + 1  # output rows a band holds
    x_int = cm.quantize_input(x)
    low = cm.lower(x_int)
    assert low.layer_pcs[0].count("2") == 3 * -(-oh // rows)  # bands per sample
    np.testing.assert_array_equal(golden(cm, x_int), cm.int8_forward(x_int))


class MeanHead(nn.Module):
    """A conv, a global average written as ``mean`` (or as a pool module), a Linear."""

    def __init__(self, mean):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)
        self.mean = mean

    def forward(self, x):
        return self.fc(torch.flatten(self.mean(torch.relu(self.c(x))), 1))


@pytest.mark.parametrize("mean", [lambda y: y.mean((2, 3)),
                                  lambda y: torch.mean(y, dim=[-1, -2], keepdim=True),
                                  lambda y: y.mean(dim=(-2, 3))],
                         ids=["method", "keepdim", "mixed-signs"])
def test_a_mean_over_height_and_width_is_the_global_average_pool(mean):
    """The same weights with ``nn.AdaptiveAvgPool2d(1)`` give the same integer graph and
    outputs; the golden program equals them."""
    x = torch.randn(16, 3, 6, 6, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(0)
    model = MeanHead(mean).eval()
    pooled = MeanHead(nn.AdaptiveAvgPool2d(1)).eval()
    pooled.load_state_dict(model.state_dict())
    cms = [hwaccel.compile(m, x[:2], preset="tiny", calibration=x) for m in (model, pooled)]
    assert [[type(op).__name__ for op in cm.qgraph.ops] for cm in cms] == \
        [["QConv", "QAvgPool", "QFlatten", "QLinear"]] * 2
    assert cms[0].graph.ops[1].kernel == (6, 6)
    x_int = cms[0].quantize_input(x[:4])
    ints = cms[0].int8_forward(x_int)
    np.testing.assert_array_equal(ints, cms[1].int8_forward(x_int))
    np.testing.assert_array_equal(golden(cms[0], x_int), ints)


class MeanOfRows(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 8, 3, padding=1)

    def forward(self, x):
        return self.c(x).mean(2)


def test_a_mean_over_one_image_axis_is_named():
    model = MeanOfRows()
    with pytest.raises(hwaccel.compiler.UnsupportedOp,
                       match=r"dim=2 on a \(channels, height, width\) image; only the mean "
                             r"over height and width"):
        hwaccel.compile(model.eval(), torch.randn(2, 3, 6, 6), preset="tiny")


def test_an_average_over_more_than_the_unit_takes_runs_as_two_pools():
    """A global average over 16 x 16 = 256 values on ``ecp5`` (AVGPOOL averages at most 128):
    the rows' pool then the columns' (:mod:`hwaccel.compiler.split_pools`), the same float
    function, golden equal to the twin; ``default`` (1,024) keeps one pool, and a window with a
    side over the limit stays whole for lowering to name."""
    from hwaccel.compiler.split_pools import split_averages

    torch.manual_seed(0)
    model = MeanHead(nn.AdaptiveAvgPool2d(1)).eval()
    x = torch.randn(32, 3, 16, 16, generator=torch.Generator().manual_seed(6))
    cm = hwaccel.compile(model, x[:2], preset="ecp5", calibration=x)
    pools = [op for op in cm.graph.ops if isinstance(op, ir.AvgPool2d)]
    assert [(op.name, op.kernel) for op in pools] == [("mean.rows", (1, 16)), ("mean", (16, 1))]
    one = hwaccel.compile(model, x[:2], preset="default", calibration=x)
    with torch.no_grad():
        ref = model.double()(x[:4].double())
    torch.testing.assert_close(float_forward(cm.graph, x[:4]), ref, rtol=1e-9, atol=1e-12)
    x_int = cm.quantize_input(x[:4])
    np.testing.assert_array_equal(golden(cm, x_int), cm.int8_forward(x_int))
    assert [op.kernel for op in one.graph.ops if isinstance(op, ir.AvgPool2d)] == [(16, 16)]
    tall = ir.Graph((3, 200, 2), False, (ir.AvgPool2d("p", (200, 2)),))
    assert split_averages(tall, 128) is tall
