"""An input that only flattens read (an MLP on ``(1, 28, 28)`` digits or ``(3, 32, 32)``
images) is held as the vector they make (:mod:`hwaccel.compiler.trace_line`): its values packed
a word of lanes at a time rather than a word of channels a pixel, so a CIFAR MLP's first Linear
takes 3,072 / lanes weight words an output block, not one a pixel. Traced equal to torch, golden
equal to the integer twin and the RTL equal to golden; an input a conv reads too stays an image."""

from __future__ import annotations

import numpy as np
import torch
from compile_checks import golden_twin_float, rtl_equals_golden
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace


class Viewed(nn.Module):
    """An MLP that flattens with ``x.view(x.size(0), -1)``: its other reader is a shape."""

    def __init__(self, n: int):
        super().__init__()
        self.a, self.b = nn.Linear(n, 24), nn.Linear(24, 10)

    def forward(self, x):
        return self.b(torch.relu(self.a(x.view(x.size(0), -1))))


class Both(nn.Module):
    """An input read by a conv and by a flatten: it stays an image."""

    def __init__(self):
        super().__init__()
        self.c, self.a, self.b = nn.Conv2d(1, 8, 3, padding=1), nn.Linear(64, 8), nn.Linear(8, 4)

    def forward(self, x):
        return self.b(torch.relu(self.a(x.flatten(1))) + torch.relu(self.c(x)).mean((2, 3)))


def _mlp(n: int):
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(n, 32), nn.ReLU(), nn.Linear(32, 10)).eval()


def _same(graph, model, x):
    torch.testing.assert_close(float_forward(graph, x.double()), model.double()(x.double()),
                               rtol=1e-9, atol=1e-12)
    model.float()


def test_an_input_only_flattens_read_is_the_vector():
    x = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for model, shape in ((_mlp(64), (1, 8, 8)), (Viewed(64).eval(), (8, 8)), (_mlp(192), None)):
        xs = x if shape == (1, 8, 8) else x[:, 0] if shape else torch.randn(4, 3, 8, 8)
        graph = trace(model, xs[:2])
        assert graph.input_shape == (int(np.prod(xs.shape[1:])),)
        assert graph.input_view == tuple(xs.shape[1:])
        assert isinstance(graph.ops[0], ir.Linear)   # no Flatten op: the input is the vector
        _same(graph, model, xs)
    both = Both().eval()
    graph = trace(both, x[:2])
    assert graph.input_shape == (1, 8, 8) and graph.input_view is None
    _same(graph, both, x)


def test_a_flat_input_runs_on_the_rtl_equal_to_golden():
    """On ``tiny`` (8 lanes) a ``(3, 8, 8)`` image's 192 values are 24 words, not 64 pixel
    words of 3 channels; the RTL equals golden."""
    model = _mlp(192)
    x = torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    assert cm.qgraph.input_shape == (192,)
    golden_twin_float(cm, model, x[:8], 0.1)
    rtl_equals_golden(cm, x[:2])
    viewed = Viewed(64).eval()
    x = torch.randn(16, 8, 8, generator=torch.Generator().manual_seed(3))
    rtl_equals_golden(hwaccel.compile(viewed, x[:2], preset="tiny", calibration=x), x[:2])


def test_a_cifar_mlp_fits_the_presets_that_refused_it():
    """A ``3 x 32 x 32`` MLP's first Linear (3,072 inputs): one output block's weights were
    1,024 pixel words and a requantizer word, a word past ``default``'s 1,024-word weight
    scratchpad; as a vector it is 192 words."""
    model = _mlp(3072)
    x = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    for preset in ("default", "ecp5_128"):
        cm = hwaccel.compile(model, x[:1], preset=preset, calibration=x)
        xi = cm.quantize_input(x[:1])
        assert np.array_equal(cm.execute("golden", x[:1]).int_logits, cm.int8_forward(xi))
        assert cm.lower(xi).programs
