"""ReLU6 and clamps from 0: traced as ReLUs with a cap, fused into the op before them as ReLU
is (where none can take them, an ADD of their input with itself), the float reference clamped
as torch clamps, the int8 scales within the cap, and (on ``tiny``, whose AVGPOOL keeps fewer
words than the model's last map has) the compiled model bit-exact on the golden interpreter
and the RTL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import hwaccel
from hwaccel.compiler.cases import make
from hwaccel.compiler.equalize import depthwise_pairs
from hwaccel.compiler.errors import UnsupportedOp
from hwaccel.compiler.trace import trace
from hwaccel.numerics import INT8


def _caps(graph) -> dict[str, float | None]:
    """The cap of every ReLU'd op of ``graph`` (``None``: a plain ReLU)."""
    return {op.name: op.cap for op in graph.ops if getattr(op, "relu", False)}


def test_each_spelling_is_a_relu_with_its_cap():
    model, inputs = make("inverted_residual")
    graph = trace(model, inputs(2, torch.Generator().manual_seed(0)))
    caps = _caps(graph)
    assert caps == {"stem.0": 6.0, "b1.0": 6.0, "b1.3": 4.0, "expand": 6.0, "dw": 6.0,
                    "head": 6.0}, caps
    assert not any(getattr(op, "relu", False) for op in graph.ops
                   if op.name in ("b1.6", "project", "add", "fc"))
    # a capped producer is not equalized: its cap would scale with the channel
    assert depthwise_pairs(graph) == []


def test_a_plain_relu_producer_still_pairs_for_equalization():
    model = nn.Sequential(nn.Conv2d(2, 4, 1), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4)).eval()
    graph = trace(model, torch.randn(2, 2, 5, 5))
    assert depthwise_pairs(graph) == [("0", "2")]


@pytest.mark.parametrize("clamp, words", [
    (lambda x: x.clamp(max=3), "min=None, max=3"),
    (lambda x: torch.clamp(x, 1, -1), "min=1, max=-1"),
    (lambda x: x.clamp(0, 0), "min=0, max=0"),
])
def test_other_clamps_are_refused_by_name(clamp, words):
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 2, 3)

        def forward(self, x):
            return clamp(self.c(x)).flatten(1)

    with pytest.raises(UnsupportedOp, match=rf"unsupported clamp at .*{words}; only from 0"):
        trace(M().eval(), torch.randn(2, 1, 5, 5))


def test_capped_scales_stay_within_the_cap():
    """Calibration sees the clamped activations, so a capped layer's int8 range ends at or
    below its cap: 127 codes never stand for more than ReLU6's 6."""
    model, inputs = make("inverted_residual")
    gen = torch.Generator().manual_seed(1)
    cm = hwaccel.compile(model, inputs(2, gen), calibration=inputs(64, gen), strict=False)
    caps = _caps(trace(model, inputs(2, gen)))
    for name, cap in caps.items():
        s_out = cm.qgraph.op(name).s_out
        assert s_out * INT8.max <= cap * (1 + 1e-12), (name, s_out * INT8.max, cap)


def test_inverted_residual_runs_bit_exact_on_tiny_rtl():
    """tiny keeps 4 AVGPOOL words (16 channels); the model pools 24 channels of a 2 x 2 map
    as one command over 4 rows of 2 pixels of 3 words (:mod:`.accel.avg_view`)."""
    model, inputs = make("inverted_residual")
    gen = torch.Generator().manual_seed(2)
    cm = hwaccel.compile(model, inputs(2, gen), calibration=inputs(64, gen), preset="tiny")
    assert cm.config.avg_max_blocks * cm.config.lanes < 24
    x = inputs(3, gen)
    x_int = cm.quantize_input(x)
    gold = cm.execute("golden", x)
    twin = cm.int8_forward(x_int)
    np.testing.assert_array_equal(gold.int_logits, twin)
    assert np.count_nonzero(twin) > twin.size // 4
    np.testing.assert_array_equal(cm.execute("rtl", x).int_logits, gold.int_logits)


class Unfused(nn.Module):
    """ReLUs no op before them can take, on ``tiny`` (8 x 8 maps): one on the input, a ReLU6
    after an average pool, and one whose input something else reads too."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 8, 1)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        y = self.a(torch.relu(x))
        y = torch.relu(y) + self.b(y)
        return self.fc(nn.functional.relu6(nn.functional.avg_pool2d(y, 2)).flatten(1))


def test_relus_that_cannot_fuse_are_adds_of_their_input_with_itself():
    from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch

    from hwaccel.compiler import ir

    torch.manual_seed(3)
    model = Unfused().eval()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(4))
    graph = traced_equal_to_torch(model, x)
    adds = {op.name: (op.relu, op.cap, op.inputs[0] == op.inputs[1])
            for op in graph.ops if isinstance(op, ir.Add) and op.weights == (0.5, 0.5)}
    assert adds == {"relu": (True, None, True), "relu_1": (True, None, True),
                    "relu6": (True, 6.0, True)}, adds
    model_close(model, seed=5)
    model_rtl_exact(model, seed=6)
