"""Max pools of lines and lines wider than the line buffer: ``MaxPool1d(4)`` (M5's, 16, 64 ...)
is the max-pool unit's 2 x 2 windows over the line laid out as rows of 2 (four consecutive
values, in bands of the unit's rows), and a Conv1d over a line wider than the engine's line
buffer runs in bands of output columns. Traced equal to torch; golden equal to the integer twin
and the numpy reference; the RTL's outputs and every counter equal to golden's and the cycle
model's (tiny: 8 rows and 8 columns). A window of 2 or 3 (at stride 1 or 2) has no such layout:
it is the max of its taps, each a depthwise conv, which is exact on a ReLU's output; other
windows are refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, traced_equal_to_torch
from rtl_checks import compiled_on_the_rtl, run_and_check
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir, qreference
from hwaccel.compiler.memory import DoesNotFit
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]


class Waveform(nn.Module):
    """M5's shape in small: a strided Conv1d on the raw waveform, batch norms, MaxPool1d(4)
    after each conv, the global average, a Linear."""

    def __init__(self, ch: int = 8, pool=None):
        super().__init__()
        self.c1, self.bn1 = nn.Conv1d(1, ch, 16, stride=4), nn.BatchNorm1d(ch)
        self.c2, self.bn2 = nn.Conv1d(ch, ch, 3), nn.BatchNorm1d(ch)
        self.pool = pool or nn.MaxPool1d(4)
        self.fc = nn.Linear(ch, 5)

    def forward(self, x):
        x = self.pool(F.relu(self.bn1(self.c1(x))))
        x = F.max_pool1d(F.relu(self.bn2(self.c2(x))), 4)
        return self.fc(F.avg_pool1d(x, x.shape[-1]).flatten(1))


def _model(seed=0, **kw):
    torch.manual_seed(seed)
    m = Waveform(**kw).eval()
    for bn in (m.bn1, m.bn2):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 1.5)
    return m


def _x(n, length=256, seed=1):
    return torch.randn(n, 1, length, generator=torch.Generator().manual_seed(seed))


def test_a_line_max_pool_traces_to_pools_of_four_equal_to_torch():
    model, x = _model(), _x(8)
    traced_equal_to_torch(model, x)
    graph = trace(model, x[:2])
    pools = [op for op in graph.ops if isinstance(op, ir.MaxPool2d)]
    assert [p.line for p in pools] == [True, True]
    assert ir.out_shape(pools[0], (8, 1, 61)) == (8, 1, 15)
    long = _x(8, length=1024)
    sixteen = trace(_model(pool=nn.MaxPool1d(16)), long[:2])   # two pools of four in a row
    assert [op.line for op in sixteen.ops if isinstance(op, ir.MaxPool2d)] == [True, True, True]
    traced_equal_to_torch(_model(pool=nn.MaxPool1d(16)), long)


def test_golden_equals_the_twin_and_the_numpy_reference():
    model, x = _model(), _x(64)
    for preset in ("tiny", "ecp5_128"):
        cm = hwaccel.compile(model, x[:2], preset=preset, calibration=x)
        x_int, twin = golden_twin_float(cm, model, x[:8], 0.1)
        np.testing.assert_array_equal(qreference.forward(cm.qgraph, x_int), twin)


def test_the_rtl_equals_golden_and_its_counters_the_cycle_model(host):
    model, x = _model(seed=2), _x(32, seed=3)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    low = cm.lower(cm.quantize_input(x[:cm.max_batch]))
    assert len(low.programs) == 1
    names = low.layer_pcs[0]
    # 61 values: 30 rows of 2 in bands of tiny's 8 rows; c2's 13 outputs over 15 columns in
    # bands of the 6 whose windows fit its 8
    assert names.count("pool") == 4 * cm.max_batch and names.count("c2") == 3 * cm.max_batch
    run_and_check(host, HOST_CONFIG, low.builder, low.outputs, "waveform")


@pytest.mark.parametrize(("pool", "match"), [
    (nn.MaxPool1d(5), r"MaxPool1d attribute .*kernel_size=5; a kernel of 4, 16, 64"),
    (nn.MaxPool1d(3), r"MaxPool1d attribute .*stride=3"),
    (nn.MaxPool1d(4, stride=2), r"MaxPool1d attribute .*stride=2"),
    (nn.MaxPool1d(4, ceil_mode=True), r"MaxPool1d attribute .*ceil_mode=True"),
])
def test_a_window_the_layout_cannot_make_is_refused_by_name(pool, match):
    with pytest.raises(UnsupportedOp, match=match):
        trace(_model(pool=pool), _x(2))


class LinePools(nn.Module):
    """``MaxPool1d`` of 2 and 3, at strides 2 and 1, padded and not, ceil mode where it makes
    the floor mode's windows: each the max of its taps (:class:`~.fold_pools.LinePool`)."""

    def __init__(self, length: int = 18):   # half of it odd: ceil mode makes no more windows
        super().__init__()
        self.a = nn.Conv1d(4, 8, 3, padding=1)
        self.b = nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * ((length // 2 - 1) // 2), 5)
        self.halve, self.slide = nn.MaxPool1d(2), nn.MaxPool1d(2, 1)

    def forward(self, x):
        x = self.halve(F.relu(self.a(x)))                             # 18 -> 9
        x = F.max_pool1d(F.relu(self.b(x)), 3, 2, 1, ceil_mode=True)  # 9 -> 5
        return self.fc(torch.flatten(F.relu(self.slide(x)), 1))      # 5 -> 4


def test_a_lines_max_pool_of_two_or_three_is_the_max_of_its_taps(host):
    torch.manual_seed(0)
    model = LinePools().eval()
    x = torch.randn(32, 4, 18, generator=torch.Generator().manual_seed(5))
    traced_equal_to_torch(model, x)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    taps = [op.name for op in cm.qgraph.ops if ".tap" in op.name]
    assert len(taps) == 2 + 3 + 2, taps
    golden_twin_float(cm, model, x[:8], 0.1)
    low = cm.lower(cm.quantize_input(x[:cm.max_batch]))
    run_and_check(host, HOST_CONFIG, low.builder, low.outputs, "line pools")


def test_a_samples_commands_beyond_the_program_memory_run_as_programs_split_between_layers(
        host):
    """Over a line of 66 the convs and taps run in bands of tiny's 8 columns: more commands
    for one sample than tiny's program memory holds (64). The sample runs as programs split
    between layers, each within it, on the RTL bit-exact with every counter the cycle
    model's; a batch of two is not split (the largest batch is one). One layer longer than
    the program memory alone is refused by name."""
    torch.manual_seed(1)
    model = LinePools(66).eval()
    x = torch.randn(32, 4, 66, generator=torch.Generator().manual_seed(6))
    cm = hwaccel.compile(model, x[:1], preset="tiny", calibration=x)
    low = cm.lower(cm.quantize_input(x[:1]))
    sizes = [len(p.commands) for p in low.programs]
    assert len(sizes) > 1 and max(sizes) <= HOST_CONFIG.prog_depth, sizes
    assert not set(low.programs[0].layers) & set(low.programs[1].layers)   # between layers
    assert cm.max_batch == 1
    compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:1], "program splits")   # golden == twin too
    long = nn.Sequential(nn.Conv1d(4, 4, 1), nn.ReLU(), nn.Conv1d(4, 4, 3, padding=1)).eval()
    with pytest.raises(DoesNotFit, match=r"layer '2' alone takes 94 commands for a sample, "
                                         r"and the program memory of accel_tiny holds 64"):
        hwaccel.compile(long, torch.randn(2, 4, 560), preset="tiny")
