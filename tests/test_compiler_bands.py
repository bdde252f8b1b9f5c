"""Banded chains (:mod:`hwaccel.compiler.lower_bands`): convs whose intermediate maps do not fit
the activation scratchpad whole run a band of output rows at a time. An inverted-residual block
too large for ``tiny``'s scratchpad compiles, golden equal to the integer twin, and runs on the
RTL bit-exact with every counter equal to the cycle model's; the band geometry covers every
output row once and reads only rows inside the map; a model that fits is not banded; a model that
no banding fits keeps its plain refusal."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from rtl_checks import compiled_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.compiler.memory import DoesNotFit
from hwaccel.generators.accel.config import PRESETS

HOST_CONFIG = PRESETS["tiny"]


class Block(nn.Module):
    """An inverted residual (expand 1 x 1, depthwise 3 x 3, project 1 x 1) with a stem conv
    before it and a strided one after: 16 x 8 maps, ``expand`` channels in the middle."""

    def __init__(self, expand: int):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU())
        self.block = nn.Sequential(
            nn.Conv2d(8, expand, 1), nn.ReLU(),
            nn.Conv2d(expand, expand, 3, padding=1, groups=expand), nn.ReLU(),
            nn.Conv2d(expand, 8, 1))
        self.down = nn.Sequential(
            nn.Conv2d(8, expand, 1), nn.ReLU(),
            nn.Conv2d(expand, expand, 3, stride=2, padding=1, groups=expand), nn.ReLU(),
            nn.Conv2d(expand, 8, 1), nn.ReLU())
        self.fc = nn.Linear(8 * 8 * 4, 5)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(x + self.block(x))
        return self.fc(torch.flatten(self.down(x), 1))


def _compiled(expand: int, seed: int = 0):
    torch.manual_seed(seed)
    model = Block(expand).eval()
    x = torch.randn(16, 3, 16, 8, generator=torch.Generator().manual_seed(seed + 1))
    return model, x, hwaccel.compile(model, x[:2], preset="tiny", calibration=x)


def test_a_block_too_large_for_the_scratchpad_runs_in_bands_on_the_rtl(host):
    model, x, cm = _compiled(96)   # 96 channels of 16 x 8: 3,072 words, tiny has 2,048
    low = compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:1], "banded inverted residuals")
    assert low.chains, "the block fits whole: nothing was banded"
    assert {op.name for op in low.chains[0].ops} >= {"block.0", "block.2", "block.4"}
    names = {n for pcs in low.layer_pcs for n in pcs}
    assert {"block.0", "block.2", "block.4"} <= names   # each band's command is its conv's
    with torch.no_grad():
        want = model(x[:8]).numpy()
    got = cm.execute("golden", x[:8]).int_logits * cm.qgraph.output_scale
    assert np.abs(got - want).max() <= 0.1 * np.abs(want).max()
    text = cm.describe()
    assert "bands of rows" in text and "MACs a sample recomputed" in text


def test_every_output_row_once_and_every_read_inside_the_map():
    _, _, cm = _compiled(96)
    low = cm.lower(cm.quantize_input(torch.zeros(1, 3, 16, 8)))
    for ch in low.chains:
        for k, (op, (_, h, _)) in enumerate(zip(ch.ops, ch.shapes)):
            out_h = op.out_size(*ch.shapes[k][1:])[0]
            if k == len(ch.ops) - 1:   # the last conv's bands tile its output
                rows = [r for band in ch.steps for r in range(band[k].a, band[k].b)]
                assert rows == list(range(out_h))
            for band in ch.steps:
                st = band[k]
                assert 0 <= st.lo < st.hi <= h and 0 <= st.a < st.b <= out_h
                assert st.pads[0] <= op.pads[0] and st.pads[2] <= op.pads[2]
                if k:   # read what the conv before wrote
                    assert (st.lo, st.hi) == (band[k - 1].a, band[k - 1].b)
        assert ch.recomputed_macs() > 0


def test_a_model_that_fits_is_not_banded_and_its_tall_depthwise_runs_in_bands():
    """16 channels fit whole; the depthwise conv's 16 rows exceed the line buffer's 8, so it
    runs as three CONVs of bands of at most 6 output rows (the 8 input rows a band's 3 x 3
    windows read; it was refused), bit-exact to the integer twin."""
    _, x, cm = _compiled(16)
    x_int = cm.quantize_input(x[:1])
    low = cm.lower(x_int)
    assert low.chains == ()
    assert "bands of rows" not in cm.describe()
    assert low.layer_pcs[0].count("block.2") == 3
    np.testing.assert_array_equal(cm.execute("golden", x[:1]).int_logits, cm.int8_forward(x_int))


def test_a_batch_runs_its_samples_through_one_set_of_band_buffers():
    """Two samples in one lowering (``tiny``'s 64 commands a program hold one; 512 hold
    two), each through the same band buffers in turn, bit-exact to the integer twin."""
    torch.manual_seed(4)
    model = Block(96).eval()
    x = torch.randn(16, 3, 16, 8, generator=torch.Generator().manual_seed(5))
    assert hwaccel.compile(model, x[:1], preset="tiny", calibration=x).max_batch == 1
    cfg = dataclasses.replace(HOST_CONFIG, prog_depth=512)
    cm = hwaccel.compile(model, x[:1], preset=cfg, calibration=x)
    x_int = cm.quantize_input(x[:2])
    low = cm.lower(x_int)
    assert low.chains and cm.max_batch == 2
    np.testing.assert_array_equal(cm.execute("golden", x[:2]).int_logits,
                                  cm.int8_forward(x_int))


def test_a_large_kernels_stack_in_parts_runs_each_part_banded_with_its_conv(host):
    """A 5 x 5 "same" conv on tiny (3 x 3 kernels) is a stack of nine shifted copies of its
    input, in parts of tiny's 8 output channels, and a 3 x 3 conv over each part
    (:mod:`hwaccel.compiler.split_kernels`): every part comes before the first part's conv, so
    a chain's convs need not be side by side in the graph. The stack does not fit whole; each
    part runs in bands with its conv, the input (which every part reads) live until the last
    chain has read it. The RTL bit-exact to golden, every counter the cycle model's."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 5, padding=2),
                          nn.ReLU(), nn.Flatten(), nn.Linear(4 * 32 * 8, 4)).eval()
    x = torch.randn(16, 3, 32, 8, generator=torch.Generator().manual_seed(1))
    cm = hwaccel.compile(model, x[:1], preset="tiny", calibration=x)
    low = compiled_on_the_rtl(host, HOST_CONFIG, cm, x[:1], "banded stack parts")
    assert [tuple(op.name for op in ch.ops) for ch in low.chains] == [
        (f"2.shifts.out{k}", f"2.cat{k}") for k in range(3)]


def test_what_no_banding_fits_keeps_its_plain_refusal():
    """An input larger than the scratchpad (3 x 320 x 8: 2,560 words of 2,048): no chain's
    bands help, and the error names the input's shortfall as before."""
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                          nn.ReLU(), nn.Conv2d(8, 4, 1), nn.Flatten(),
                          nn.Linear(4 * 320 * 8, 3)).eval()
    x = torch.randn(4, 3, 320, 8)
    with pytest.raises(DoesNotFit, match=r"tensor 'input' \(2560 words\) does not fit the "
                                         r"activation scratchpad of accel_tiny"):
        cm = hwaccel.compile(model, x[:1], preset="tiny", calibration=x)
        cm.lower(cm.quantize_input(x[:1]))


def test_a_chain_starts_at_the_first_conv_over_its_patches():
    """The stem over im2col patches (27 channels: two words a pixel) is a chain's first conv
    as the 1 x 1 conv it runs as: its patches stay whole, its 32-channel output is banded."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(32, 32, 3, padding=1, groups=32), nn.ReLU(),
                          nn.Conv2d(32, 8, 1), nn.ReLU(), nn.AvgPool2d(4), nn.Flatten(),
                          nn.Linear(8 * 8 * 8, 5)).eval()
    x = torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    cfg = dataclasses.replace(PRESETS["default"], act_depth=3584)
    cm = hwaccel.compile(model, x[:1], preset=cfg, calibration=x)
    x_int = cm.quantize_input(x[:1])
    low = cm.lower(x_int)
    assert [[op.name for op in ch.ops] for ch in low.chains] == [["0", "2", "4"]]
    assert low.chains[0].shapes[0] == (27, 32, 32)   # the patches, K x OH x OW
    np.testing.assert_array_equal(cm.execute("golden", x[:1]).int_logits, cm.int8_forward(x_int))


def test_a_pooled_conv_over_a_map_taller_than_the_line_buffer_runs_in_bands():
    """A 3 x 3 conv with its fused 2 x 2 pool over 16 rows (tiny's line buffer holds 8): bands
    of 3 pooled rows (6 of the conv's, reading 8), each pooled row whole; it was refused."""
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(8 * 8 * 4, 5)).eval()
    x = torch.randn(16, 3, 16, 8, generator=torch.Generator().manual_seed(3))
    cm = hwaccel.compile(model, x[:1], preset="tiny", calibration=x)
    x_int = cm.quantize_input(x[:1])
    low = cm.lower(x_int)
    pooled = next(op for op in cm.qgraph.ops if getattr(op, "pool", False))
    assert sum(pcs.count(pooled.name) for pcs in low.layer_pcs) == 3
    np.testing.assert_array_equal(cm.execute("golden", x[:1]).int_logits, cm.int8_forward(x_int))
