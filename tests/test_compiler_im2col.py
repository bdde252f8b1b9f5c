"""The first conv over host-written im2col patches (:mod:`hwaccel.compiler.im2col`): the patches
and their weights are the convolution, the choice is the cycle model's, and a model lowered
that way is bit-exact: golden equals the integer twin, and the RTL equals golden (tiny)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwaccel
from hwaccel.compiler import im2col, ir
from hwaccel.compiler.lower import layout
from hwaccel.compiler.memory import DoesNotFit, plan
from hwaccel.generators.accel import PRESETS
from hwaccel.generators.accel.model import run_program


class Stem(nn.Module):
    """MobileNet's stem in small: TensorFlow's "same" at stride 2 (pad 0 top/left, 1
    bottom/right) on a 3-channel image, then a depthwise and a pointwise conv and a head."""

    def __init__(self, size: int, cout: int = 8, pool: bool = False, cin: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride=2)
        self.dw = nn.Conv2d(cout, cout, 3, padding=1, groups=cout)
        self.pw = nn.Conv2d(cout, 8, 1)
        self.pool = pool
        side = -(-size // 2) // (2 if pool else 1)
        self.fc = nn.Linear(8 * side * side, 4)

    def forward(self, x):
        x = F.relu(self.conv(F.pad(x, (0, 1, 0, 1))))
        if self.pool:
            x = F.max_pool2d(x, 2)
        x = F.relu(self.pw(F.relu(self.dw(x))))
        return self.fc(torch.flatten(x, 1))


def _compile(model, shape, preset, seed=0):
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed + 1)
    x = torch.randn(64, *shape, generator=gen)
    return hwaccel.compile(model.eval(), x[:2], calibration=x, preset=preset), x[:5]


def _golden(cm, x_int) -> np.ndarray:
    low = cm.lower(x_int)
    act = low.builder.act
    for load in low.loads():
        res = run_program(cm.config, act, load.wgt, load.commands)
        assert res.done and not res.error, (res.cause, res.pc)
        act = res.act
    return low.ints(act)


@pytest.mark.parametrize("stride, padding", [(2, (0, 0, 1, 1)), (1, 1), ((1, 2), (2, 1, 0, 1))])
def test_patches_times_weights_is_the_convolution(stride, padding):
    rng = np.random.default_rng(3)
    w = rng.integers(-128, 128, (5, 3, 3, 2))
    op = ir.QConv("c", w, np.zeros(5, np.int64), np.ones(5, np.int64), np.ones(5, np.int64),
                  stride, padding, False, False, inputs=(ir.INPUT,))
    x = rng.integers(-128, 128, (3, 7, 6))
    cols = im2col.patches(op, x)
    (oh, ow), k = op.out_size(7, 6), im2col.patch_channels(op)
    assert cols.shape == (k, oh, ow) == (3 * 3 * 2, *cols.shape[1:])
    got = np.einsum("kn,kyx->nyx", im2col.patch_weights(op), cols)
    t, left, b, r = op.pads
    xp = F.pad(torch.tensor(x, dtype=torch.float64)[None], (left, r, t, b))
    ref = F.conv2d(xp, torch.tensor(w, dtype=torch.float64), stride=op.strides)[0]
    np.testing.assert_array_equal(got, ref.numpy().astype(np.int64))


@pytest.mark.parametrize("size, pool", [(16, False), (14, True)])
def test_first_conv_over_patches_is_bit_exact_on_default(size, pool):
    cm, x = _compile(Stem(size, pool=pool), (3, size, size), "default")
    op = cm.qgraph.ops[0]
    assert im2col.first_conv(cm.qgraph, cm.config) is op
    vals, _ = layout(cm.qgraph, cm.config, 1)
    assert vals[ir.INPUT].kind == "patches" and vals[ir.INPUT].channels == 27
    x_int = cm.quantize_input(x)
    np.testing.assert_array_equal(_golden(cm, x_int), cm.int8_forward(x_int))
    assert "im2col patches the host writes (K=27: 2 words a pixel)" in cm.describe()


def test_the_choice_is_the_cycle_models():
    """Patches where the cycle model says they are faster (a 3x3 kernel over 3 channels), the
    plain input where they are not (a 1x1 kernel: its patches are its input, no faster)."""
    cfg = PRESETS["default"]
    for k, chosen in ((3, True), (1, False)):
        model = nn.Sequential(nn.Conv2d(3, 8, k, padding=k // 2), nn.ReLU(), nn.Flatten(),
                              nn.Linear(8 * 10 * 10, 3))
        cm, _ = _compile(model, (3, 10, 10), cfg)
        op = cm.qgraph.ops[0]
        plain = im2col.layer_cycles(cfg, op, (3, 10, 10), False)
        cols = im2col.layer_cycles(cfg, op, (3, 10, 10), True)
        assert (cols < plain) == chosen, (k, cols, plain)
        assert (im2col.first_conv(cm.qgraph, cfg) is op) == chosen


def test_an_input_read_twice_stays_plain():
    """A second reader of the input needs it as an image: no patches."""

    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x):
            return self.a(x) + self.b(x)

    cm, _ = _compile(Twice(), (3, 6, 6), "default")
    assert im2col.first_conv(cm.qgraph, cm.config) is None


def test_rtl_equals_golden_with_patches_on_tiny():
    """tiny's 4 lanes and 12 channels: a 1-channel stem (K = 9, 3 words a pixel)."""
    cm, x = _compile(Stem(8, cout=4, cin=1), (1, 8, 8), "tiny")
    assert im2col.first_conv(cm.qgraph, cm.config) is cm.qgraph.ops[0]
    x = x[:2]
    x_int = cm.quantize_input(x)
    gold = cm.execute("golden", x)
    np.testing.assert_array_equal(gold.int_logits, cm.int8_forward(x_int))
    np.testing.assert_array_equal(cm.execute("rtl", x).int_logits, gold.int_logits)


def test_patches_that_do_not_fit_fall_back_to_the_plain_input():
    """On tiny a stride-1 stem's patches (3 words a pixel) take three times its input: beyond
    8 samples they do not fit, and the batch runs with the plain input, bit-exact."""
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 8 * 8, 3))
    cm, _ = _compile(model, (1, 8, 8), "tiny")
    assert im2col.first_conv(cm.qgraph, cm.config) is cm.qgraph.ops[0]
    plan(layout(cm.qgraph, cm.config, 8)[1], cm.config)
    with pytest.raises(DoesNotFit):
        plan(layout(cm.qgraph, cm.config, 9)[1], cm.config)
    assert cm.max_batch > 8
    x = torch.randn(9, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    x_int = cm.quantize_input(x)
    np.testing.assert_array_equal(_golden(cm, x_int), cm.int8_forward(x_int))


def test_a_kernel_past_the_engine_runs_over_its_patches_on_the_rtl():
    """tiny's line buffer takes kernels up to 3 x 3: a 4 x 3 stem cannot run over its input,
    so it runs over its patches (K = 12: 3 words a pixel), golden equal to the integer twin
    and the RTL to golden; beyond the batch its patches fit, it splits (no plain fallback)."""
    model = nn.Sequential(nn.Conv2d(1, 4, (4, 3), stride=(2, 1), padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(4 * 4 * 8, 3))
    cm, x = _compile(model, (1, 8, 8), "tiny")
    op = cm.qgraph.ops[0]
    assert im2col.layer_cycles(cm.config, op, (1, 8, 8), False) is None   # no window for it
    assert im2col.first_conv(cm.qgraph, cm.config) is op
    assert im2col.patches_only(cm.qgraph, cm.config)
    assert "im2col patches the host writes (K=12: 3 words a pixel)" in cm.describe()
    x_int = cm.quantize_input(x[:2])
    gold = cm.execute("golden", x[:2])
    np.testing.assert_array_equal(gold.int_logits, cm.int8_forward(x_int))
    np.testing.assert_array_equal(cm.execute("rtl", x[:2]).int_logits, gold.int_logits)
    n = cm.max_batch
    plan(layout(cm.qgraph, cm.config, n)[1], cm.config)
    with pytest.raises(DoesNotFit):
        cm.lower(np.zeros((n + 1, 1, 8, 8), dtype=np.int64))
    big = torch.randn(n + 3, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(cm.execute("golden", big).int_logits,
                                  cm.int8_forward(cm.quantize_input(big)))


def test_a_stems_pool_runs_apart_where_its_patches_need_a_gemm():
    """A 5 x 5 stem with its 2 x 2 pool (the CIFAR-10 "quick" net's shape) on tiny: the kernel
    is past the line buffer's and its 75 patch channels past the engine's 12, so the patches
    run as a GEMM, which has no pool; the pool runs as a MAXPOOL of its own. It was refused
    (kernel_h must be at most 3). The RTL bit-exact to golden, every counter the cycle
    model's; golden equal to the integer twin."""
    from rtl_checks import compiled_on_the_rtl

    from hwaccel.sim.host import HarnessHost

    model = nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.MaxPool2d(2), nn.ReLU(),
                          nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                          nn.Linear(8 * 4 * 4, 5))
    cm, x = _compile(model, (3, 8, 8), "tiny")
    op = cm.qgraph.ops[0]   # neither over its input nor over its patches with the pool
    assert op.pool and im2col.first_conv(cm.qgraph, cm.config) is None
    assert im2col.layer_cycles(cm.config, op, (3, 8, 8), False) is None
    low = cm.lower(cm.quantize_input(x[:1]))
    assert low.layer_pcs[0][:2] == ("0", "0.pool")   # the GEMM, then the MAXPOOL
    assert "(K=75: 19 words a pixel), then its 2x2 pool as a MAXPOOL" in cm.describe()
    with HarnessHost.of(cm.config) as host:
        compiled_on_the_rtl(host, cm.config, cm, x[:1], "stem pool")


def test_dscnn_runs_on_ecp5_over_its_patches():
    """DS-CNN's 10 x 4 stem on ``ecp5`` (kernels up to 3 x 3) was refused; over its patches
    (K = 40: 5 words a pixel) the whole model lowers, golden equal to the integer twin."""
    from hwaccel.compiler.cases import make

    model, inputs = make("dscnn_tiny", 0)
    gen = torch.Generator().manual_seed(1)
    cm = hwaccel.compile(model, inputs(2, gen), calibration=inputs(64, gen), preset="ecp5")
    assert cm.refusal is None
    assert im2col.patches_only(cm.qgraph, cm.config)
    x = inputs(3, gen)
    np.testing.assert_array_equal(cm.execute("golden", x).int_logits,
                                  cm.int8_forward(cm.quantize_input(x)))
