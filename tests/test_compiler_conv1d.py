"""1-d convolution models (``nn.Conv1d`` over ``(channels, length)``, the keyword-spotting shape):
the IR holds a line as a ``(C, 1, L)`` image (:mod:`hwaccel.compiler.trace_line`), so a Conv1d
is a Conv2d of a ``1 x k`` kernel and BatchNorm1d, ReLU, AvgPool1d, AdaptiveAvgPool1d, adds and
``x.mean(-1)`` are the image ops. Traced faithfully, golden equal to the integer twin, the RTL
equal to golden; what has no hardware (MaxPool1d) or no meaning (a Conv1d over a sequence) is
refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, rtl_equals_golden
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace


class KeywordNet(nn.Module):
    """MFCC-like (10, 40) input: a conv with batch norm, a depthwise-separable block (stride 2),
    a residual add, a 1-d average pool and the mean over the length into a Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(10, 16, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm1d(16)
        self.dw = nn.Conv1d(16, 16, 3, stride=2, padding=1, groups=16)
        self.pw = nn.Conv1d(16, 16, 1)
        self.res = nn.Conv1d(16, 16, 3, padding="same")
        self.pool = nn.AvgPool1d(2)
        self.fc = nn.Linear(16, 12)

    def forward(self, x):
        x = F.relu(self.bn(self.c1(x)))
        x = F.relu(self.pw(F.relu(self.dw(x))))
        x = F.relu(x + self.res(x))
        return self.fc(self.pool(x).mean(-1))


def _model(cls=KeywordNet, seed=0):
    torch.manual_seed(seed)
    model = cls().eval()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return model


def test_a_conv1d_model_traces_to_image_ops_of_one_row():
    model = _model()
    x = torch.randn(3, 10, 40, generator=torch.Generator().manual_seed(1))
    graph = trace(model, x)
    assert graph.input_shape == (10, 1, 40) and graph.input_view == (10, 40)
    convs = [op for op in graph.ops if isinstance(op, ir.Conv2d)]
    assert [op.weight.shape[2:] for op in convs] == [(1, 3), (1, 3), (1, 1), (1, 3)]
    assert convs[1].groups == 16 and ir.out_shape(convs[1], (16, 1, 40)) == (16, 1, 20)
    with torch.no_grad():
        ref = model.double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)


def test_golden_equals_the_twin_and_the_float_model_closely():
    model = _model()
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 10, 40, generator=gen)
    cm = hwaccel.compile(model, x[:2], preset="ecp5", calibration=x)
    # the float IR on XLA takes the (C, L) input too, and the twin the ints as (C, L)
    x_int, twin = golden_twin_float(cm, model, x[:8], 0.05)
    assert x_int.shape == (8, 10, 1, 40)
    np.testing.assert_array_equal(cm.int8_forward(x_int.reshape(8, 10, 40)), twin)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 10, 40\)"):
        cm.quantize_input(x[:2, :, :30])


class Small(nn.Module):
    """Fits ``tiny`` (8 x 8 maps): a ZeroPad1d folded into the conv, functional pools, and
    the length pooled to one."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad1d((1, 1))
        self.c = nn.Conv1d(4, 8, 3)
        self.dw = nn.Conv1d(8, 8, 3, stride=2, padding=1, groups=8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = F.avg_pool1d(F.relu(self.c(self.pad(x))), 2, 2)
        x = F.relu(self.dw(F.pad(x, (0, 0))))
        return self.fc(torch.flatten(F.adaptive_avg_pool1d(x, 1), 1))


def test_the_rtl_runs_a_conv1d_model_bit_exact():
    model = _model(Small)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(32, 4, 8, generator=gen)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    rtl_equals_golden(cm, x[:3])


class Waveform(nn.Module):
    """A raw waveform given as ``(batch, length)``, made one channel by ``x.unsqueeze(1)``."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(1, 8, 5, stride=2, padding=2)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        return self.fc(F.relu(self.c(x.unsqueeze(1))).mean(-1))


def test_a_waveform_unsqueezed_to_one_channel_is_the_line_input():
    model = _model(Waveform)
    x = torch.randn(16, 16, generator=torch.Generator().manual_seed(5))
    graph = trace(model, x[:2])
    assert graph.input_shape == (1, 1, 16) and graph.input_view == (16,)
    torch.testing.assert_close(float_forward(graph, x.double()),
                               model.double()(x.double()), rtol=1e-9, atol=1e-12)
    cm = hwaccel.compile(model.float(), x[:2], preset="tiny", calibration=x)
    rtl_equals_golden(cm, x[:2])


class Long(nn.Module):
    """A line three times as long as ``tiny``'s rows (8): its convs run in bands of columns and
    its global pool, once refused (``avgpool width must be at most 8``), as rows of 8 that
    hold each window whole (:func:`hwaccel.generators.accel.avg_view.avg_parts`)."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(F.relu(self.c(x)).mean(-1))


def test_a_long_lines_global_pool_runs_in_rows_the_unit_holds():
    model = _model(Long)
    x = torch.randn(32, 4, 24, generator=torch.Generator().manual_seed(4))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.1)
    rtl_equals_golden(cm, x[:2])


def test_a_prime_lines_global_pool_halves_until_the_unit_holds_it():
    """A line of 13 (prime, past tiny's 8 columns and 8 rows): a depthwise 1 x 2 conv at stride
    2 (a zero padded on the left) of weights 7 / 13 makes 7 values, whose average is the
    line's; so on default 101 MFCC frames (its rows hold 96) halve once to 51."""
    from hwaccel.compiler.split_pools import split_line_means
    from hwaccel.generators.accel.config import PRESETS

    model = _model(Long)
    x = torch.randn(32, 4, 13, generator=torch.Generator().manual_seed(6))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    half = {op.name: op for op in cm.graph.ops}["mean.pool.half0"]
    assert half.stride == (1, 2) and half.padding == (0, 1, 0, 0) and half.groups == 8
    np.testing.assert_allclose(half.weight, 7 / 13)
    torch.testing.assert_close(float_forward(cm.graph, x.double()),
                               model.double()(x.double()), rtol=1e-9, atol=1e-12)
    model.float()
    golden_twin_float(cm, model, x[:8], 0.1)
    rtl_equals_golden(cm, x[:2])
    default = PRESETS["default"]
    pools = [op for op in split_line_means(trace(model, torch.randn(2, 4, 101)), default).ops
             if isinstance(op, (ir.AvgPool2d, ir.Conv2d)) and op.name.startswith("mean")]
    assert [op.name for op in pools] == ["mean.pool.half0", "mean.pool"]
    assert pools[1].kernel == (1, 51)
    held = trace(model, torch.randn(2, 4, 96))   # 96 = one row of 96: left as it is
    assert split_line_means(held, default) is held


class Parts(nn.Module):
    """A line's channels in parts, each read by a Conv1d: ``chunk``, ``torch.split`` and a
    slice, then joined by ``torch.cat`` into a flatten and a Linear."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(4, 12, 3, padding=1)
        self.a = nn.Conv1d(6, 6, 3, padding=1)
        self.b = nn.Conv1d(4, 4, 1)
        self.s = nn.Conv1d(5, 4, 3, padding=1)
        self.fc = nn.Linear(20 * 8, 5)

    def forward(self, x):
        y = F.relu(self.c(x))
        p, q = y.chunk(2, 1)
        r = torch.split(q, [4, 2], dim=1)[0]
        z = [F.relu(self.a(p)), self.b(r), F.relu(self.s(y[:, 3:8])), r, q[:, 4:]]
        return self.fc(torch.flatten(torch.cat(z, 1), 1))


def test_a_lines_parts_are_lines_each_conv1d_reads():
    model = _model(Parts)
    x = torch.randn(32, 4, 8, generator=torch.Generator().manual_seed(4))
    graph = trace(model, x[:3])
    convs = {op.name: op for op in graph.ops if isinstance(op, ir.Conv2d)}
    assert convs["a"].inputs == ("c",) and convs["a"].weight.shape == (6, 12, 1, 3)
    assert not convs["a"].weight[:, 6:].any()   # chunk 0: the first six of c's channels
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    rtl_equals_golden(cm, x[:3])
    with torch.no_grad():
        ref = model.double()(x[:3].double())
    torch.testing.assert_close(float_forward(graph, x[:3]), ref, rtol=1e-9, atol=1e-12)


class Pooled(nn.Module):
    def __init__(self, pool):
        super().__init__()
        self.c = nn.Conv1d(4, 8, 3, padding=1, dilation=1)
        self.pool = pool

    def forward(self, x):
        return self.pool(self.c(x))


class Recurrent(nn.Module):
    """An LSTM's every step (a sequence, not a line) into a Conv1d."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.c = nn.Conv1d(6, 6, 3)

    def forward(self, x):
        return self.c(self.lstm(x)[0])


class ConvThenLstm(nn.Module):
    """A Conv1d's (channels, length) straight into an LSTM (which reads it as (steps, features):
    channels as steps)."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(4, 6, 3, padding=1)
        self.lstm = nn.LSTM(8, 8, batch_first=True)

    def forward(self, x):
        return self.lstm(self.c(x))[0][:, -1]


class Padded(nn.Module):
    """A Conv1d's line padded by ``F.pad``: its last axis is the length, the one before it the
    channels (not a height), then the batch."""

    def __init__(self, pad):
        super().__init__()
        self.pad, self.a = pad, nn.Conv1d(4, 4, 1)
        self.b = nn.Conv1d(4 + sum(pad[2:4]), 4, 3)

    def forward(self, x):
        return self.b(F.pad(F.relu(self.a(x)), self.pad)).flatten(1)


def test_a_lines_pad_of_its_length_alone_folds_into_the_conv():
    model = Padded((1, 1, 0, 0)).eval()
    x = torch.randn(4, 4, 8)
    graph = trace(model, x[:2])
    assert graph.op("b").pads == (0, 1, 0, 1)
    torch.testing.assert_close(float_forward(graph, x.double()),
                               model.double()(x.double()), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("model, shape, match", [
    (Pooled(nn.MaxPool1d(2)), (4, 8), r"MaxPool1d at .*kernel_size=2, stride=2 over 'c', "
                                      r"which may be negative"),
    (Pooled(nn.AvgPool1d(2, ceil_mode=True)), (4, 7), r"AvgPool1d attribute .*ceil_mode="),
    (nn.Sequential(nn.Conv1d(4, 4, 1), nn.Conv1d(4, 8, 3, stride=3)), (4, 8),
     r"Conv1d attribute .*stride=\(1, 3\)"),
    (Recurrent(), (6, 4), r"Conv1d at .*per-sample shape \(6, 8\); it takes \(channels, "
                          r"length\)"),
    (ConvThenLstm(), (4, 8), r"LSTM at .*over a Conv1d's \(channels, length\) output"),
    (Padded((1, 1, 2, 2)), (4, 8), r"F.pad of a line's channels"),
    (Padded((0, 0, 0, 0, 1, 0)), (4, 8), r"F.pad of a line's batch at .*pad=\(0, 0, 0, 0, 1, "
                                         r"0\)"),
], ids=["maxpool1d-negative", "avgpool1d-ceil", "stride-3", "over-a-sequence", "into-an-lstm",
        "channel-pad", "batch-pad"])
def test_what_has_no_hardware_is_named(model, shape, match):
    with pytest.raises(UnsupportedOp, match=match):
        hwaccel.compile(model.eval(), torch.randn(2, *shape), preset="tiny")
