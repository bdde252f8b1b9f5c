"""A first conv at a stride the engine does not take (a patchify stem, ``Conv2d(3, C, 4, 4)``; a
raw-waveform ``Conv1d(1, C, 16, stride=8)``) runs over the im2col patches the host writes
(:mod:`hwaccel.compiler.im2col`), a 1x1 conv over them (a GEMM of its pixels where ``K`` is past
the engine's ``max_cin``): traced equal to torch, golden equal to the twin, the RTL equal to
golden on ``tiny``. Elsewhere such a stride is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, rtl_equals_golden, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp
from hwaccel.compiler.lower import LoweringError
from hwaccel.compiler.trace import trace


class Patchify(nn.Module):
    """ConvMixer's shape: a 4 x 4 patch stem at stride 4, a depthwise conv with a residual
    add, a pointwise conv, the global average."""

    def __init__(self):
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 16, 4, 4), nn.BatchNorm2d(16)
        self.dw = nn.Conv2d(16, 16, 3, padding=1, groups=16)
        self.pw, self.fc = nn.Conv2d(16, 16, 1), nn.Linear(16, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = x + F.relu(self.dw(x))
        return self.fc(F.relu(self.pw(x)).mean((2, 3)))


class Waveform(nn.Module):
    """M5's shape: a long Conv1d at a large stride on the raw waveform."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv1d(1, 8, 16, stride=8), nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(F.relu(self.c2(F.relu(self.c1(x)))).mean(-1))


def _x(shape, n=64, seed=1):
    return torch.randn(n, *shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("preset", "how"), [("tiny", "GEMM of its pixels over im2col patches"),
                                             ("ecp5_128", "1x1 CONV over im2col patches")])
def test_a_patchify_stem_runs_over_its_patches(preset, how):
    torch.manual_seed(0)
    model, x = Patchify().eval(), _x((3, 16, 16))
    traced_equal_to_torch(model, x[:4])
    cm = hwaccel.compile(model, x[:2], preset=preset, calibration=x)
    assert f"{how} the host writes (K=48" in cm.describe()
    golden_twin_float(cm, model, x[:8], 0.1)
    if preset == "tiny":
        rtl_equals_golden(cm, x[:2])


def test_a_strided_waveform_conv_runs_over_its_patches_on_the_rtl():
    torch.manual_seed(2)
    model, x = Waveform().eval(), _x((1, 64))
    traced_equal_to_torch(model, x[:4])
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    assert "over im2col patches the host writes (K=16" in cm.describe()
    golden_twin_float(cm, model, x[:8], 0.1)
    rtl_equals_golden(cm, x[:2])


class _Inner(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 4, 4)

    def forward(self, x):
        return self.b(self.a(x))


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 4, 4), nn.Conv2d(3, 4, 4, 4)

    def forward(self, x):
        return self.a(x) + self.b(x)


def test_a_stride_past_the_engine_elsewhere_is_refused_by_name():
    with pytest.raises(UnsupportedOp, match=r"Conv2d attribute at b .*stride=\(4, 4\); strides "
                                            r"1 or 2 \(any on the model's input\)"):
        trace(_Inner(), _x((3, 8, 8), 2))
    # on the input, but the input has two readers: the host writes it plain, and the engine
    # cannot take the stride
    x = _x((3, 8, 8), 16)
    with pytest.raises(LoweringError, match=r"layer 'a' cannot run on accel_tiny: stride must "
                                            r"be 1 or 2, not 4"):
        hwaccel.compile(_Twice().eval(), x[:2], preset="tiny", calibration=x)
