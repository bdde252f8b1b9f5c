"""Channel slices, chunks and shuffles of images (:mod:`hwaccel.compiler.trace_channels`): each
a concatenation of one input with its channels in an order, taken by its readers with no data
moved (:mod:`hwaccel.compiler.fold_cat`). ShuffleNetV2's units and the other ways to write them:
the float IR equal to torch, the int8 twin close to the float model, golden equal to the twin,
and the RTL equal to golden; what else moves channels is refused by name. A CIFAR ResNet's
option-A shortcut (every other pixel, zero channels padded around them) is one conv that picks
them, at its input's scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.ir_graph import macs
from hwaccel.compiler.trace import trace


def channel_shuffle(x, groups: int):
    """ShuffleNet's shuffle as its reference code writes it."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)


def _bn(c):
    return nn.BatchNorm2d(c)


class Unit(nn.Module):
    """ShuffleNetV2's unit of stride 1: half the channels pass, the other half through a 1 x 1,
    a depthwise 3 x 3 and a 1 x 1 conv; then a shuffle of the two."""

    def __init__(self, c: int, shuffle):
        super().__init__()
        h = c // 2
        self.branch = nn.Sequential(
            nn.Conv2d(h, h, 1, bias=False), _bn(h), nn.ReLU(),
            nn.Conv2d(h, h, 3, padding=1, groups=h, bias=False), _bn(h),
            nn.Conv2d(h, h, 1, bias=False), _bn(h), nn.ReLU())
        self.shuffle = shuffle

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        return self.shuffle(torch.cat([a, self.branch(b)], 1))


class Down(nn.Module):
    """ShuffleNetV2's unit of stride 2: two branches read the whole input."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        h = cout // 2
        self.b1 = nn.Sequential(
            nn.Conv2d(cin, cin, 3, 2, 1, groups=cin, bias=False), _bn(cin),
            nn.Conv2d(cin, h, 1, bias=False), _bn(h), nn.ReLU())
        self.b2 = nn.Sequential(
            nn.Conv2d(cin, h, 1, bias=False), _bn(h), nn.ReLU(),
            nn.Conv2d(h, h, 3, 2, 1, groups=h, bias=False), _bn(h),
            nn.Conv2d(h, h, 1, bias=False), _bn(h), nn.ReLU())

    def forward(self, x):
        return channel_shuffle(torch.cat([self.b1(x), self.b2(x)], 1), 2)


class ShuffleNet(nn.Module):
    """Fits ``tiny``: a stem, a unit, a stride-2 unit, a unit shuffled by ``nn.ChannelShuffle``
    in three groups, then a max pool and a flatten of the shuffled channels into a Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), _bn(8), nn.ReLU())
        self.u1 = Unit(8, lambda x: channel_shuffle(x, 2))
        self.down = Down(8, 12)
        self.u2 = Unit(12, nn.ChannelShuffle(3))
        self.fc = nn.Linear(12 * 2 * 2, 5)

    def forward(self, x):
        x = self.u2(self.down(self.u1(self.stem(x))))
        return self.fc(torch.flatten(F.max_pool2d(x, 2), 1))


class Slices(nn.Module):
    """The other spellings: ``torch.split`` by sections, a slice ``x[:, 2:6]`` overlapping it
    (a channel read twice), a shuffle by ``permute`` and ``flatten(1, 2)`` read by a depthwise
    conv, a depthwise conv of a part, all joined and average-pooled into a Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.conv = nn.Conv2d(9, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.dw2 = nn.Conv2d(5, 5, 3, padding=1, groups=5)
        self.fc = nn.Linear(24 * 2 * 2, 5)

    def forward(self, x):
        x = F.relu(self.stem(x))
        a, b = torch.split(x, [3, 5], dim=1)
        y = F.relu(self.conv(torch.cat([b, x[:, 2:6]], 1)))
        n, c, h, w = x.shape
        z = self.dw(x.view(n, 2, c // 2, h, w).permute(0, 2, 1, 3, 4).flatten(1, 2))
        v = self.dw2(b)
        return self.fc(torch.flatten(F.avg_pool2d(torch.cat([y, z, a, v], 1), 4), 1))


class Halves(nn.Module):
    """ShuffleNetV1's residual of a shuffle (the grouped conv's outputs in the shuffle's
    order), and the sum of an image's two halves (an add reads each through an identity 1 x 1
    conv over the picked channels, :func:`.fold_cat._join`)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.gconv = nn.Conv2d(8, 8, 1, groups=2)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = F.relu(self.stem(x))
        x = F.relu(x + channel_shuffle(self.gconv(x), 2))
        a, b = x.chunk(2, dim=1)
        return self.fc(torch.flatten(F.max_pool2d(a + b, 2), 1))


def _model(cls, seed=0):
    torch.manual_seed(seed)
    m = cls()
    for bn in (m for m in m.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    return m.eval()


def _x(n=4, seed=1):
    return torch.randn(n, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", [ShuffleNet, Slices, Halves])
def test_the_float_ir_equals_torch_with_no_concatenation_left(cls):
    graph = traced_equal_to_torch(_model(cls), _x())
    assert not any(type(op).__name__ == "Cat" for op in graph.ops)


def test_a_dense_reader_takes_the_picked_channels_as_its_weights_columns():
    model = _model(ShuffleNet)
    names = {op.name: op for op in trace(model, _x(2)).ops}
    # the stem's halves go to different readers: the stem is a conv per half (its weights'
    # rows), and u1's branch reads chunk 1, the stem's channels 4..7, as the whole second
    assert "stem.0" not in names
    assert [names[f"stem.0.to{k}"].weight.shape for k in (0, 1)] == [(4, 3, 3, 3)] * 2
    first = names["u1.branch.0"]
    assert first.inputs == ("stem.0.to1",) and first.weight.shape == (4, 4, 1, 1)
    # down's 1 x 1 convs read u1's shuffle [a0, b0, a1, b1 ...]: the stem's first half at
    # the even positions, the branch's channels at the odd ones, one conv per source and
    # their add
    b2 = names["down.b2.0"]
    assert isinstance(b2, ir.Add) and b2.relu
    parts = {names[v].inputs[0]: names[v].weight for v in b2.inputs}
    assert set(parts) == {"stem.0.to0", "u1.branch.5"}
    w = model.down.b2[0].weight.detach().numpy()[:, :, 0, 0]
    scale = (model.down.b2[1].weight / torch.sqrt(model.down.b2[1].running_var + 1e-5)
             ).detach().numpy()
    np.testing.assert_allclose(parts["stem.0.to0"][:, :, 0, 0], scale[:, None] * w[:, 0::2])
    np.testing.assert_allclose(parts["u1.branch.5"][:, :, 0, 0], scale[:, None] * w[:, 1::2])


class Units(nn.Module):
    """A stem and three ShuffleNetV2 units of stride 1: each unit's passing half draws on
    every earlier unit's branch."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), _bn(16), nn.ReLU())
        self.units = nn.Sequential(*(Unit(16, lambda x: channel_shuffle(x, 2)) for _ in "abc"))
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.units(self.stem(x)), 1).flatten(1))


def test_each_reader_reads_only_the_channels_it_picks():
    """Every source split by the readers of its channels: the traced MACs are the model's
    (with each branch reading every earlier source whole, 1.37 times them)."""
    model, x = _model(Units), _x(2)
    graph = trace(model, x)
    shapes = graph.shapes()
    traced = sum(macs(op, shapes[op.inputs[0]]) for op in graph.ops
                 if isinstance(op, (ir.Conv2d, ir.Linear)))
    counted = []
    hooks = [m.register_forward_hook(lambda m, i, o: counted.append(
        o[0].numel() * m.weight[0].numel())) for m in model.modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(x[:1])
    for h in hooks:
        h.remove()
    assert traced == sum(counted)
    traced_equal_to_torch(model, _x())


def test_a_shuffle_of_a_conv_is_its_rows_and_an_add_reads_a_joined_half():
    model = _model(Halves)
    names = {op.name: op for op in trace(model, _x(2)).ops}
    w = model.gconv.weight.detach().numpy()   # groups of 4 outputs over 4 inputs each
    gconv = names["gconv"]
    np.testing.assert_array_equal(gconv.weight[0::2, :4], w[:4])   # order 0, 4, 1, 5 ...
    np.testing.assert_array_equal(gconv.weight[1::2, 4:], w[4:])
    assert not gconv.weight[0::2, 4:].any() and not gconv.weight[1::2, :4].any()
    assert names["add"].inputs == ("stem", "gconv")
    halves = [names[v] for v in names["add_1"].inputs]
    assert [h.inputs for h in halves] == [("add",), ("add",)]
    np.testing.assert_array_equal(halves[0].weight[:, :, 0, 0], np.eye(8)[:4])
    np.testing.assert_array_equal(halves[1].weight[:, :, 0, 0], np.eye(8)[4:])


def test_a_depthwise_conv_of_a_part_runs_on_the_whole_input():
    names = {op.name: op for op in trace(_model(Slices), _x(2)).ops}
    dw2 = names["dw2.0"]
    assert dw2.inputs == ("stem",) and dw2.groups == 8
    assert not dw2.weight[:3].any() and dw2.weight[3:].all()
    dw = names["dw.0"]   # the shuffle's depthwise conv: its weights back in channel order
    w = _model(Slices).dw.weight.detach().numpy()
    np.testing.assert_array_equal(dw.weight, w[[0, 2, 4, 6, 1, 3, 5, 7]])


@pytest.mark.parametrize("cls,seed", [(ShuffleNet, 3), (Slices, 4), (Halves, 6)])
def test_the_int8_twin_is_close_and_golden_equals_it(cls, seed):
    model_close(_model(cls), seed, rel=0.1)


@pytest.mark.parametrize("cls", [ShuffleNet, Halves])
def test_the_rtl_equals_golden(cls):
    model_rtl_exact(_model(cls), 5)


class Refused(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.how = how

    def forward(self, x):
        x = self.conv(x)
        n, c, h, w = x.shape
        if self.how == "groups":
            return x.view(n, 2, 4, h, w).transpose(1, 2).reshape(n, 8, h * w)
        if self.how == "dim":
            return x.chunk(2, dim=2)[0].flatten(1)
        return x[:, 0].flatten(1)


@pytest.mark.parametrize("how,words", [
    ("groups", "a view of an image's channel groups"),
    ("dim", "dim=2 of an image"),
    ("index", "only a slice of its channels"),
])
def test_other_channel_moves_are_refused_by_name(how, words):
    with pytest.raises(UnsupportedOp, match=words):
        trace(Refused(how).eval(), _x(2))


class OptionA(nn.Module):
    """A CIFAR ResNet's downsampling block with the option-A shortcut: the input's every other
    pixel, its channels padded with zeros on both sides (``offset``: from the second pixel)."""

    def __init__(self, offset: int = 0):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), _bn(4), nn.ReLU())
        self.c1 = nn.Sequential(nn.Conv2d(4, 8, 3, 2, 1, bias=False), _bn(8), nn.ReLU())
        self.c2 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1, bias=False), _bn(8))
        self.fc, self.offset = nn.Linear(8, 5), offset

    def forward(self, x):
        x = self.stem(x)
        o = self.offset
        short = F.pad(x[:, :, o::2, o::2], (0, 0, 0, 0, 2, 2), "constant", 0)
        y = F.relu(self.c2(self.c1(x)) + short)
        return self.fc(F.adaptive_avg_pool2d(y, 1).flatten(1))


@pytest.mark.parametrize("offset", [0, 1])
def test_an_option_a_shortcut_is_one_conv_that_picks_pixels_and_pads_channels(offset):
    """``F.pad(x[:, :, o::2, o::2], (0, 0, 0, 0, 2, 2))``: one stride-2 conv whose window ends
    on the kept pixel, its weights the identity between two zero rows a side; quantized at its
    input's scale, so its requantizer returns each int8 value unchanged."""
    from hwaccel.numerics import requantize

    model = _model(lambda: OptionA(offset))
    graph = traced_equal_to_torch(model, _x())
    pick = graph.op("getitem")
    assert pick.stride == 2 and pick.weight.shape == (8, 4, offset + 1, offset + 1)
    np.testing.assert_array_equal(pick.weight[2:6, :, offset, offset], np.eye(4))
    assert np.count_nonzero(pick.weight) == 4 and "pad" not in {op.name for op in graph.ops}
    x = _x(64, seed=7)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    q = cm.qgraph.op("getitem")
    assert q.s_in == q.s_out
    v = np.arange(-128, 128)
    for c in range(2, 6):
        tap = q.w[c, c - 2, offset, offset]
        np.testing.assert_array_equal(
            requantize(v * tap + q.bias[c], q.multiplier[c], q.shift[c]), v)


@pytest.mark.parametrize("preset", ["tiny", "ecp5_128"])
def test_option_a_blocks_run_close_to_torch_and_golden_equals_the_twin(preset):
    model_close(_model(OptionA), 8, preset=preset, rel=0.1)
    model_close(_model(lambda: OptionA(1)), 9, preset=preset, rel=0.1)


def test_option_a_blocks_run_on_the_rtl_equal_to_golden():
    model_rtl_exact(_model(OptionA), 10)


class _Sliced(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.conv, self.how = nn.Conv2d(3, 4, 1), how

    def forward(self, x):
        x = self.conv(x)
        if self.how == "step":
            return x[:, :, ::3, ::3].flatten(1)
        return F.pad(x, (1, 1, 0, 0, 2, 2)).flatten(1)


@pytest.mark.parametrize("how,words", [
    ("step", r"slice\(None, None, 3\).*and of its rows and columns at a step of 1 or 2"),
    ("both", r"pad=\(1, 1, 0, 0, 2, 2\).*or of the channels alone"),
])
def test_other_pixel_picks_and_paddings_are_refused_by_name(how, words):
    with pytest.raises(UnsupportedOp, match=words):
        trace(_Sliced(how).eval(), _x(2))


class _LineSlice(nn.Module):
    def __init__(self):
        super().__init__()
        self.c, self.d = nn.Conv1d(2, 4, 3, padding=1), nn.Conv1d(4, 4, 1)

    def forward(self, x):
        return self.d(self.c(x)[:, :, 1::2]).flatten(1)


def test_a_lines_strided_slice_picks_along_its_length():
    """A Conv1d's ``(C, L)`` is held as ``(C, 1, L)``: its ``[:, :, 1::2]`` picks columns."""
    torch.manual_seed(4)
    graph = traced_equal_to_torch(_LineSlice().eval(), torch.randn(3, 2, 12))
    pick = graph.op("getitem")
    assert pick.strides == (1, 2) and pick.weight.shape == (4, 4, 1, 2)


class KerasFlatten(nn.Module):
    """A Keras-ordered flatten before the Linear, as a port of a Keras model writes it: the
    image channels-last (``permute(0, 2, 3, 1)``), then flattened pixel by pixel."""

    def __init__(self, how: str):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, padding=1)
        self.fc, self.flat = nn.Linear(4 * 4 * 4, 5), nn.Flatten()
        self.how = how

    def forward(self, x):
        y = F.max_pool2d(torch.relu(self.c(x)), 2).permute(0, 2, 3, 1)
        if self.how == "view":
            y = y.contiguous().view(y.size(0), -1)
        elif self.how == "module":
            y = self.flat(y)
        else:
            y = torch.flatten(y, 1)
        return self.fc(y)


@pytest.mark.parametrize("how", ["flatten", "view", "module"])
def test_a_keras_ordered_flatten_is_the_linears_columns_picked(how):
    torch.manual_seed(11)
    model = KerasFlatten(how).eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(12))
    graph = traced_equal_to_torch(model, x)
    # no op moves data: the flatten, then the Linear over its columns in the pixels' order
    assert [type(op).__name__ for op in graph.ops] == ["Conv2d", "MaxPool2d", "Flatten",
                                                       "Linear"]
    fc = graph.ops[-1].weight
    order = [k * 16 + p for p in range(16) for k in range(4)]   # pixel by pixel
    np.testing.assert_array_equal(fc[:, order], model.fc.weight.detach().double())


def test_a_keras_ordered_flatten_runs_on_the_rtl():
    torch.manual_seed(13)
    model_rtl_exact(KerasFlatten("flatten").eval(), seed=14)


def test_a_channels_last_image_is_read_per_pixel_or_flattened():
    """As the model's output it would be a sequence of pixels (tests/test_compiler_channels_last
    .py runs one read per pixel and permuted back)."""
    class Last(nn.Module):
        def forward(self, x):
            return torch.relu(x.permute(0, 2, 3, 1))

    with pytest.raises(UnsupportedOp, match=r"channels-last image at output: x.permute\(0, 2, "
                                            r"3, 1\) read per pixel only .* or flattened"):
        trace(Last().eval(), torch.randn(2, 3, 4, 4))
