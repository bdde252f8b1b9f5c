"""A line's global max over its length (TextCNN's max over time, a keyword net's max pool of its
last Conv1d): ``F.adaptive_max_pool1d(x, 1)``, ``nn.AdaptiveMaxPool1d(1)``, ``x.amax(-1)``,
``x.max(-1)[0]`` / ``.values`` and a ``MaxPool1d`` of the whole line, at any length: line pools
of 4 while the length divides by 4, then windows of 2 (:class:`~hwaccel.compiler.fold_pools.
LinePool`: two picks and a max) down to one value. Traced equal to torch, golden equal to the
integer twin, the RTL equal to golden; the indices of a max and a reduction over channels are
refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, rtl_equals_golden
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace

SPELLINGS = {
    "adaptive": lambda y: F.adaptive_max_pool1d(y, 1).flatten(1),
    "module": lambda y, pool: pool(y).squeeze(-1),
    "amax": lambda y: y.amax(-1),
    "max_values": lambda y: y.max(-1).values,
    "max_item": lambda y: torch.max(y, dim=2)[0],
    "keepdim": lambda y: y.amax(dim=-1, keepdim=True).flatten(1),
    "pool_whole": lambda y: F.max_pool1d(y, y.shape[-1]).flatten(1),
}


class Net(nn.Module):
    """A Conv1d, a ReLU and the line's max into a Linear (``spell`` picks the spelling)."""

    def __init__(self, spell: str, cin: int = 4):
        super().__init__()
        self.spell = spell
        self.c, self.fc = nn.Conv1d(cin, 8, 3, padding=1), nn.Linear(8, 5)
        self.pool = nn.AdaptiveMaxPool1d(1)

    def forward(self, x):
        y, spell = F.relu(self.c(x)), SPELLINGS[self.spell]
        return self.fc(spell(y, self.pool) if self.spell == "module" else spell(y))


def _model(spell, seed=0):
    torch.manual_seed(seed)
    return Net(spell).eval()


@pytest.mark.parametrize("length", [16, 24, 13, 101])
@pytest.mark.parametrize("spell", sorted(SPELLINGS))
def test_every_spelling_traces_equal_to_torch(spell, length):
    model = _model(spell)
    x = torch.randn(3, 4, length, generator=torch.Generator().manual_seed(length))
    graph = trace(model, x[:2])
    torch.testing.assert_close(float_forward(graph, x.double()), model.double()(x.double()),
                               rtol=1e-9, atol=1e-12)
    stages = [isinstance(op, ir.Conv2d) for op in graph.ops   # a window of 2: its taps' first
              if isinstance(op, ir.MaxPool2d) or op.name.endswith(".tap0")]
    want = {16: [False, False], 24: [False, True, True, True],   # 24 -> 6 -> 3 -> 2 -> 1
            13: [True, True, False], 101: [True] * 4 + [True, False]}   # 101 -> 51 -> 26 -> 13
    assert stages == want[length]


def test_a_line_max_runs_on_the_rtl_equal_to_golden():
    """Lengths of 16 (two pools of 4) and 13 (windows of 2, padded where odd) on ``tiny``."""
    for spell, length in (("amax", 16), ("max_values", 13)):
        model = _model(spell, seed=1)
        x = torch.randn(16, 4, length, generator=torch.Generator().manual_seed(7))
        cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
        golden_twin_float(cm, model, x[:8], 0.15)
        rtl_equals_golden(cm, x[:2])


class Indices(nn.Module):
    def __init__(self, what):
        super().__init__()
        self.what, self.c = what, nn.Conv1d(4, 8, 3, padding=1)

    def forward(self, x):
        y = F.relu(self.c(x))
        if self.what == "indices":
            return y.max(-1).indices.float()
        if self.what == "channels":
            return y.amax(1)
        return F.adaptive_max_pool1d(y, 3)


def test_indices_channels_and_unequal_windows_are_refused_by_name():
    x = torch.randn(2, 4, 16)
    for what, match in (("indices", r"indices of a max are not computed"),
                        ("channels", r"amax.*dim=1 on a \(channels, length\) line"),
                        ("unequal", r"AdaptiveMaxPool1d attribute.*output_size=3")):
        with pytest.raises(UnsupportedOp, match=match):
            trace(Indices(what).eval(), x)
