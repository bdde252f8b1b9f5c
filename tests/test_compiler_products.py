"""Products of two activations on the element-wise MUL (``AccelConfig.elt_mul``): a
squeeze-and-excitation gate times its map (written with convs or with Linears, ``view`` and
``expand_as``), a spatial gate of the pixels, two branches of one shape multiplied (a gated
conv, a GLU), and hardswish as its input times an affine clamp of it where no tables run
(MobileNetV3's block on ``tiny``). The float IR equals torch, golden equals the integer twin
(and the twin the float model within a tenth of its largest output), the RTL equals golden;
a preset without the product refuses it by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import LoweringError, UnsupportedOp, ir
from hwaccel.compiler.trace import trace


class SE(nn.Module):
    """A squeeze-and-excitation gate: global average, two 1 x 1 convs, a hard sigmoid."""

    def __init__(self, c: int, r: int = 2):
        super().__init__()
        self.f1, self.f2 = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        return x * F.hardsigmoid(self.f2(F.relu(self.f1(F.adaptive_avg_pool2d(x, 1)))))


class SENet(nn.Module):
    def __init__(self, c: int = 8):
        super().__init__()
        self.c1, self.se = nn.Conv2d(3, c, 3, padding=1), SE(c)
        self.c2, self.fc = nn.Conv2d(c, c, 3, padding=1), nn.Linear(c, 5)

    def forward(self, x):
        return self.fc(F.relu(self.c2(self.se(F.relu(self.c1(x))))).mean((2, 3)))


class LinearSE(nn.Module):
    """The gate of Linears, viewed back as ``(b, c, 1, 1)`` and expanded to the map."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.c1, self.l1, self.l2 = nn.Conv2d(3, c, 3, padding=1), nn.Linear(c, 4), nn.Linear(4, c)
        self.fc = nn.Linear(c, 5)

    def forward(self, x):
        y = F.relu(self.c1(x))
        b, c = y.shape[:2]
        w = F.hardsigmoid(self.l2(F.relu(self.l1(y.mean((2, 3)))))).view(b, c, 1, 1)
        return self.fc((y * w.expand_as(y)).mean((2, 3)))


class Gated(nn.Module):
    """Two branches multiplied: a ReLU'd conv times a ReLU6'd one, then the gate's map times a
    Linear's input (a vector product too)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(3, 8, 3, padding=1)
        self.l, self.fc = nn.Linear(8, 8), nn.Linear(8, 5)

    def forward(self, x):
        v = (F.relu(self.a(x)) * F.relu6(self.b(x))).mean((2, 3))
        return self.fc(v * torch.relu(self.l(v)))


class Bneck(nn.Module):
    """MobileNetV3's block: 1 x 1 expand, hardswish, depthwise 3 x 3, hardswish, the gate,
    1 x 1 project, the residual."""

    def __init__(self, c: int = 4, e: int = 8):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c),
                                  nn.Hardswish())
        self.ex = nn.Sequential(nn.Conv2d(c, e, 1), nn.BatchNorm2d(e), nn.Hardswish())
        self.dw = nn.Sequential(nn.Conv2d(e, e, 3, padding=1, groups=e), nn.BatchNorm2d(e),
                                nn.Hardswish())
        self.se, self.pr = SE(e), nn.Sequential(nn.Conv2d(e, c, 1), nn.BatchNorm2d(c))
        self.fc = nn.Linear(c, 5)

    def forward(self, x):
        x = self.stem(x)
        return self.fc((self.pr(self.se(self.dw(self.ex(x)))) + x).mean((2, 3)))


def _model(cls, seed=0):
    torch.manual_seed(seed)
    m = cls()
    for mod in m.modules():   # batch norms with statistics of their own
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.uniform_(-0.3, 0.3)
            mod.running_var.uniform_(0.5, 2.0)
    return m.eval()


@pytest.mark.parametrize("cls", [SENet, LinearSE])
def test_a_gate_is_a_mul_of_the_map_and_one_pixel(cls):
    graph = traced_equal_to_torch(_model(cls), torch.randn(4, 3, 8, 8))
    muls = [op for op in graph.ops if isinstance(op, ir.Mul)]
    assert [op.gate for op in muls] == [True]
    assert not any(isinstance(op, ir.Pointwise) for op in graph.ops)   # the hard sigmoid is
    #                                                                    a clamp in the conv


@pytest.mark.parametrize("cls", [SENet, LinearSE, Gated, Bneck])
def test_golden_equals_the_twin_and_the_rtl_golden(cls):
    model_close(_model(cls, 1), seed=2)
    model_rtl_exact(_model(cls, 3), seed=4)


def test_hardswish_is_a_mul_without_tables_and_a_table_with_them():
    x = torch.randn(16, 3, 8, 8)
    kinds = {}
    for preset in ("tiny", "tiny_attention"):
        cm = hwaccel.compile(_model(Bneck), x[:2], preset=preset, calibration=x)
        kinds[preset] = sorted({type(op).__name__ for op in cm.graph.ops
                                if isinstance(op, (ir.Mul, ir.Pointwise))})
        assert "MUL" in cm.describe()
    assert kinds == {"tiny": ["Mul"], "tiny_attention": ["Mul", "Pointwise"]}


class PixelGate(nn.Module):
    """A spatial gate (1, H, W) from the channels' mean (a spatial attention's, CBAM's second
    half with its channel mean)."""

    def __init__(self):
        super().__init__()
        self.c, self.s, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(1, 1, 3, padding=1), \
            nn.Linear(8, 5)

    def forward(self, x):
        y = F.relu(self.c(x))
        return self.fc((y * F.hardsigmoid(self.s(y.mean(1, keepdim=True)))).mean((2, 3)))


def test_a_gate_of_the_pixels_is_spread_over_the_channels_by_a_pick():
    graph = traced_equal_to_torch(PixelGate().eval(), torch.randn(4, 3, 8, 8))
    (spread,) = [op for op in graph.ops if op.name.endswith(".spread")]
    assert spread.weight.shape == (8, 1, 1, 1) and (spread.weight == 1).all()
    torch.manual_seed(5)
    model_close(PixelGate().eval(), seed=6)
    torch.manual_seed(7)
    model_rtl_exact(PixelGate().eval(), seed=8)


def test_a_preset_without_the_product_refuses_it_by_name():
    x = torch.randn(8, 3, 8, 8)
    with pytest.raises(LoweringError, match=r"layer 'mul' is a product of two activations "
                                            r"\(Mul\) and accel_ecp5_128 has no element-wise "
                                            r"product \(AccelConfig.elt_mul"):
        hwaccel.compile(_model(SENet), x[:2], preset="ecp5_128", calibration=x)


class CBAM(nn.Module):
    """A convolutional block attention module: a channel gate from the average and the max
    pool through one shared pair of 1 x 1 convs, then a spatial gate from the channels' mean
    and max (``x.amax(1, keepdim=True)``) through a conv; hard sigmoids, so it runs on
    ``tiny`` (with sigmoids it takes tables: presets with attention units)."""

    def __init__(self, c: int = 8):
        super().__init__()
        self.c, self.f1, self.f2 = nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, 4, 1), \
            nn.Conv2d(4, c, 1)
        self.s, self.fc = nn.Conv2d(2, 1, 3, padding=1), nn.Linear(c, 5)

    def forward(self, x):
        y = F.relu(self.c(x))
        mlp = lambda v: self.f2(F.relu(self.f1(v)))  # noqa: E731
        y = y * F.hardsigmoid(mlp(F.adaptive_avg_pool2d(y, 1)) + mlp(y.amax((2, 3), True)))
        pooled = torch.cat([y.mean(1, keepdim=True), y.amax(1, keepdim=True)], 1)
        return self.fc((y * F.hardsigmoid(self.s(pooled))).mean((2, 3)))


def test_cbam_channel_max_is_halvings_of_picks_and_maxes():
    graph = traced_equal_to_torch(_model(CBAM), torch.randn(4, 3, 8, 8))
    picks = [op.weight.shape[:2] for op in graph.ops if op.name.startswith("amax")
             and op.name.endswith((".a", ".b"))]
    assert picks == [(4, 8), (4, 8), (2, 4), (2, 4), (1, 2), (1, 2)]
    model_close(_model(CBAM, 1), seed=2)
    model_rtl_exact(_model(CBAM, 3), seed=4)


def test_a_channel_max_of_a_signed_map_or_a_concatenation_is_refused_by_name():
    class Signed(nn.Module):
        def __init__(self):
            super().__init__()
            self.c, self.fc = nn.Conv2d(3, 4, 3, padding=1), nn.Linear(16, 5)

        def forward(self, x):
            return self.fc(self.c(x).amax(1, keepdim=True).flatten(1))

    with pytest.raises(UnsupportedOp, match=r"amax at .*dim=1 over 'c', which may be negative"):
        trace(Signed().eval(), torch.randn(2, 3, 4, 4))

    class OfCat(nn.Module):   # the parts of a concatenation keep their own scales
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            y = torch.cat([F.relu(self.a(x)), F.relu(self.b(x))], 1)
            return y.amax(1, keepdim=True).flatten(1)

    with pytest.raises(UnsupportedOp, match=r"amax at .*dim=1 over 'cat', a concatenation"):
        trace(OfCat().eval(), torch.randn(2, 3, 4, 4))


class Square(nn.Module):
    """``x * x`` and ``x * (x + 1)`` of a conv's output: tables with attention units, MULs
    without."""

    def __init__(self):
        super().__init__()
        self.c, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 5)

    def forward(self, x):
        y = self.c(x)
        return self.fc((y * y + y * (y + 1)).mean((2, 3)))


def test_a_square_is_a_mul_of_a_value_and_itself_where_no_tables_run():
    x = torch.randn(16, 3, 8, 8)
    cm = hwaccel.compile(_model(Square), x[:2], preset="tiny", calibration=x)
    muls = [op.inputs for op in cm.graph.ops if isinstance(op, ir.Mul)]
    assert len(muls) == 2 and muls[0] == ("c", "c") and muls[1][0] == "c"
    model_close(_model(Square, 1), seed=2)
    model_rtl_exact(_model(Square, 3), seed=4)


class ConformerConv(nn.Module):
    """A Conformer's convolution module on a (channels, length) line, and GLU on a vector: a
    pointwise Conv1d into twice the channels, GLU over them, a depthwise Conv1d, a batch norm,
    SiLU, a pointwise Conv1d, the residual; then a Linear, GLU and a Linear."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.pw1, self.dw = nn.Conv1d(c, 2 * c, 1), nn.Conv1d(c, c, 3, padding=1, groups=c)
        self.bn, self.pw2 = nn.BatchNorm1d(c), nn.Conv1d(c, c, 1)
        self.l1, self.glu, self.l2 = nn.Linear(c * 8, 16), nn.GLU(), nn.Linear(8, 5)

    def forward(self, x):
        y = self.pw2(F.silu(self.bn(self.dw(F.glu(self.pw1(x), dim=1))))) + x
        return self.l2(self.glu(self.l1(y.flatten(1))))


def test_glu_is_two_picks_a_sigmoid_table_and_a_mul():
    graph = traced_equal_to_torch(_model(ConformerConv), torch.randn(4, 4, 8))
    assert [op.gate for op in graph.ops if isinstance(op, ir.Mul)] == [False, False]
    model_close(_model(ConformerConv, 1), seed=2, preset="tiny_attention", shape=(4, 8))
    model_rtl_exact(_model(ConformerConv, 3), seed=4, preset="tiny_attention", shape=(4, 8))
    with pytest.raises(UnsupportedOp, match=r"glu at .*dim=-1 of a \(8, 1, 8\) value; only "
                                            r"over an image's channels"):
        trace(nn.Sequential(nn.Conv1d(4, 8, 1), nn.GLU()).eval(), torch.randn(2, 4, 8))
