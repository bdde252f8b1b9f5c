"""Layers whose weights exceed the weight scratchpad even alone: a Linear's GEMM, on vectors
or on every step of a sequence, and a 1x1 conv run as a GEMM of its pixels, in parts of their
output blocks that fit, a row at a time, a program per part where the scratchpad is full."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import hwaccel
from hwaccel.compiler.cases import SeqHead
from hwaccel.generators.accel import PRESETS


def test_a_linear_whose_weights_do_not_fit_alone_runs_in_parts_of_its_outputs():
    """A flattened 4 x 8 x 8 input into 64 outputs on tiny: 64 K words + a requantizer word for
    each of 16 output blocks is 1,040 words, twice tiny's weight scratchpad. The Linear runs
    as one-row GEMMs on parts of its output blocks (three parts, as 7 x 65 words fit: 6, 6
    and 4 blocks), every sample's row of a part on one copy of its weights, a program per
    part; on one activation scratchpad they equal the integer twin, as golden does."""
    from hwaccel.generators.accel.isa import Op
    from hwaccel.generators.accel.model import decode, run_program

    cfg = PRESETS["tiny"]
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 64)).eval()
    x = torch.randn(3, 4, 8, 8)   # its flat input: 64 words of tiny's 4 lanes
    cm = hwaccel.compile(model, x, preset="tiny")
    low = cm.lower(cm.quantize_input(x))
    gemms = [[decode(cfg, c) for c in p.commands if decode(cfg, c)["op"] == Op.GEMM]
             for p in low.programs]
    assert [len(g) for g in gemms] == [3, 3, 3]           # three parts, three samples each
    assert [p.wgt_top for p in low.programs] == [6 * 65, 6 * 65, 4 * 65]
    for part, g in enumerate(gemms):                       # one copy of the part's weights
        assert {c["wgt"] for c in g} == {0} and {c["count"] for c in g} == {1}
        assert [c["dst"] - g[0]["dst"] for c in g] == [0, 16, 32]   # 16 words a sample
        assert {c["nb"] for c in g} == {(6, 6, 4)[part]}
    assert [g[0]["dst"] - gemms[0][0]["dst"] for g in gemms] == [0, 6, 12]
    act = low.builder.act
    for part in low.loads():
        res = run_program(cfg, act, part.wgt, part.commands)
        assert res.done and not res.error
        act = res.act
    twin = cm.int8_forward(cm.quantize_input(x))
    np.testing.assert_array_equal(low.ints(act), twin)
    assert np.array_equal(cm.execute("golden", x).int_logits, twin)
    assert "GEMM in 3 parts of its outputs, a row at a time" in cm.describe()


def test_a_linear_on_every_step_runs_in_parts_row_by_row():
    """A Linear on every step of an LSTM's output into 3,300 channels on default: 207 output
    blocks of 4 K words and a requantizer word, 1,035 words against 1,024. Two parts (104 and
    103 blocks), each a one-row GEMM for every step of every sample, writing its words of the
    row; golden equals the integer twin on every step."""
    from hwaccel.generators.accel.isa import Op
    from hwaccel.generators.accel.model import decode

    torch.manual_seed(0)
    model = SeqHead()
    model.fc = nn.Linear(64, 3300)
    cfg, t = PRESETS["default"], torch.randint(0, 30, (2, 5))
    cm = hwaccel.compile(model.eval(), t, preset="default")
    low = cm.lower(cm.quantize_input(t))
    gemms = [[d for d in (decode(cfg, c) for c in p.commands) if d["op"] == Op.GEMM]
             for p in low.programs]
    assert [len(g) for g in gemms] == [10, 10]            # 2 samples x 5 steps, a part each
    assert [{d["nb"] for d in g} for g in gemms] == [{104}, {103}]
    # one copy of each part's weights: the LSTM's and the first part's, then the second's
    assert low.programs[0].wgt_top > 104 * 5 and low.programs[1].wgt_top == 103 * 5
    rows = [d["dst"] for d in gemms[0]]
    assert [r - rows[0] for r in rows[:5]] == [0, 207, 414, 621, 828]   # a step's 207 words
    assert gemms[1][0]["dst"] - rows[0] == 104
    want = cm.int8_forward(cm.quantize_input(t))
    assert np.array_equal(cm.execute("golden", t).int_logits, want)
    assert "GEMM in 2 parts of its outputs, a row at a time" in cm.describe()


def test_a_pointwise_gemm_whose_weights_do_not_fit_runs_in_parts_a_pixel_at_a_time():
    """A 1x1 conv of 64 into 160 channels on tiny (MobileNetV2's last conv, in small): 40 output
    blocks of 16 K words and a requantizer word, 680 words against tiny's 512. It runs as
    the wide Linear does: two parts of its output blocks (20 each), each a one-row GEMM for
    every pixel of every sample, a program per part; golden and the RTL equal the integer
    twin."""
    from hwaccel.generators.accel.isa import Op
    from hwaccel.generators.accel.model import decode

    cfg = PRESETS["tiny"]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 64, 1),
                          nn.ReLU6(), nn.Conv2d(64, 160, 1)).eval()
    x = torch.randn(2, 1, 4, 4)
    cm = hwaccel.compile(model, x, preset="tiny")
    low = cm.lower(cm.quantize_input(x))
    gemms = [[d for d in (decode(cfg, c) for c in p.commands)
              if d["op"] == Op.GEMM and d["count"] == 1] for p in low.programs]
    assert [len(g) for g in gemms] == [32, 32]             # 2 samples x 16 pixels, a part each
    assert [{d["nb"] for d in g} for g in gemms] == [{20}, {20}]
    rows = [d["dst"] for d in gemms[0]]
    assert [r - rows[0] for r in rows[:3]] == [0, 40, 80]   # a pixel's 40 words
    assert gemms[1][0]["dst"] - rows[0] == 20
    twin = cm.int8_forward(cm.quantize_input(x))
    gold = cm.execute("golden", x).int_logits
    np.testing.assert_array_equal(gold, twin)
    np.testing.assert_array_equal(cm.execute("rtl", x).int_logits, twin)
    assert "GEMM of its pixels in 2 parts of its outputs, a pixel at a time" in cm.describe()
