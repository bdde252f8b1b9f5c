"""Upsampling (:mod:`hwaccel.compiler.trace_upsample`): a ConvTranspose2d is a conv into its
output phases (1 x 1 at kernel = stride), a nearest upsampling by a whole factor and a pixel
shuffle of a 1 x 1 conv a 1 x 1 conv, each into a depth-to-space, whose GEMMs write each output
pixel where the depth-to-space puts it (an identity 1 x 1 conv after a conv that is not 1 x 1).
Traced equal to torch in float64; golden equal to the integer twin and to the plain numpy
reference; the RTL equal to golden, its counters equal to the cycle model's; what the hardware
cannot run (a transposed conv's output of no whole patches, bilinear) refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from compile_checks import (
    golden_twin_float,
    model_close,
    rtl_equals_golden,
    traced_equal_to_torch,
)
from rtl_checks import run_and_check
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir, qreference
from hwaccel.compiler.lower import LoweringError, lower
from hwaccel.compiler.memory import DoesNotFit
from hwaccel.compiler.quantize import quantize
from hwaccel.compiler.trace import trace
from hwaccel.generators.accel.config import PRESETS
from hwaccel.numerics import requantize

HOST_CONFIG = PRESETS["tiny"]


class Decoder(nn.Module):
    """Down by a stride-2 conv, up by a transposed conv (batch norm, ReLU), a nearest upsampling
    and a pixel shuffle of a 1 x 1 conv; a U-Net's skip concatenation; pooled into a Linear."""

    def __init__(self, mid: int = 8, up: int = 6):
        super().__init__()
        self.down = nn.Conv2d(3, mid, 3, 2, 1)
        self.up = nn.ConvTranspose2d(mid, up, 2, 2)
        self.bn = nn.BatchNorm2d(up)
        self.mix = nn.Conv2d(up + 3, 4, 3, 1, 1)
        self.expand = nn.Conv2d(4, 16, 1)
        self.shuffle = nn.PixelShuffle(2)
        self.head = nn.Conv2d(4, 4, 3, 1, 1)
        self.fc = nn.Linear(4 * 2 * 2, 5)

    def forward(self, x):
        y = F.relu(self.bn(self.up(F.relu(self.down(x)))))
        y = F.relu(self.mix(torch.cat([y, x], 1)))
        y = self.shuffle(self.expand(F.max_pool2d(y, 2)))
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        y = F.max_pool2d(F.relu(self.head(y)), 4)
        return self.fc(torch.flatten(y, 1))


def _model(seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    m = Decoder(**kw).eval()
    with torch.no_grad():
        m.bn.weight.uniform_(0.5, 1.5)
        m.bn.bias.uniform_(-0.2, 0.2)
        m.bn.running_mean.uniform_(-0.2, 0.2)
        m.bn.running_var.uniform_(0.5, 2.0)
    return m


def _x(n: int, seed: int = 1, size: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_each_upsampling_is_a_1x1_conv_into_a_depth_to_space_equal_to_torch():
    model, x = _model(), _x(8)
    traced_equal_to_torch(model, x)
    graph = trace(model, x[:2])
    kinds = [type(op).__name__ for op in graph.ops]
    assert kinds.count("DepthToSpace") == 3
    for d2s in (op for op in graph.ops if isinstance(op, ir.DepthToSpace)):
        conv = graph.op(d2s.inputs[0])
        assert isinstance(conv, ir.Conv2d) and conv.weight.shape[2:] == (1, 1), d2s.name
        assert d2s.factor == 2
    # the transposed conv's batch norm and ReLU folded into its conv, through the reordering
    assert "bn" not in {op.name for op in graph.ops} and graph.op("up.conv").relu
    # the transposed conv's MACs are its own: each input pixel into a 2 x 2 patch of outputs
    assert ir.macs(graph.op("up.conv"), (8, 2, 2)) == 2 * 2 * 8 * 6 * 2 * 2


def test_golden_equals_the_twin_the_numpy_reference_and_the_float_model_closely():
    model, x = _model(), _x(64)
    for preset in ("tiny", "ecp5_128"):   # a block of a word, and of half a word
        cm = hwaccel.compile(model, x[:2], preset=preset, calibration=x)
        x_int, twin = golden_twin_float(cm, model, x[:8], 0.1)
        np.testing.assert_array_equal(qreference.forward(cm.qgraph, x_int), twin)
        assert "writing its pixels where up puts them" in cm.describe()


def test_the_rtl_equals_golden_and_its_counters_the_cycle_model(host):
    model, x = _model(seed=3), _x(32, seed=4)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    rtl_equals_golden(cm, x[:3])
    # the largest batch that is one program: every counter and every output
    low = cm.lower(cm.quantize_input(x[:cm.max_batch]))
    assert len(low.programs) == 1 and cm.max_batch >= 2
    run_and_check(host, HOST_CONFIG, low.builder, low.outputs, "decoder")


def test_output_channels_of_whole_words_need_no_padding():
    """``up`` = 8 channels: each output pixel's channels fill its words exactly (``tiny``'s
    four lanes; 6, above, leaves two lanes of padding in a pixel's second word)."""
    model, x = _model(seed=5, up=8), _x(32, seed=6)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    rtl_equals_golden(cm, x[:2])


class _One(nn.Module):
    def __init__(self, layer, pre=None):
        super().__init__()
        self.pre, self.layer = pre or nn.Identity(), layer

    def forward(self, x):
        return self.layer(self.pre(x))


@pytest.mark.parametrize(("layer", "match"), [
    (nn.ConvTranspose2d(3, 4, 3, 2, 1), r"ConvTranspose2d attribute.*kernel_size=\(3, 3\), "
     r"stride=\(2, 2\), padding=\(1, 1\), output_padding=\(0, 0\) over 4 rows into 7: 7 "
     r"outputs, not a whole number of 2-output patches"),
    (nn.ConvTranspose2d(3, 4, 2, 2, output_padding=1), r"output_padding=\(1, 1\).* into 9"),
    (nn.ConvTranspose2d(3, 4, 4, 2), r"padded by 1 before and 1 after its kernel of 2, and a "
     r"conv's padding is less than its kernel"),
    (nn.ConvTranspose2d(3, 3, 2, 2, dilation=2), r"dilation=\(2, 2\); the same stride on both "
     r"axes, not dilated"),
    (nn.ConvTranspose2d(3, 4, 2, (2, 1)), r"stride=\(2, 1\)"),
    (nn.Upsample(scale_factor=2, mode="bilinear"), r"Upsample mode.*mode='bilinear'"),
    (nn.Upsample(size=(6, 8)), r"Upsample size.*a whole factor, the same on both axes"),
])
def test_what_no_command_runs_is_refused_by_name(layer, match):
    with pytest.raises(UnsupportedOp, match=match):
        trace(_One(layer), _x(2))


@pytest.mark.parametrize(("k", "s", "p", "op", "kernel"), [
    (3, 2, 1, 1, (2, 2)),            # a decoder's: phase 0 one tap, phase 1 two
    (4, 2, 1, 0, (3, 3)),            # DCGAN's
    (5, 2, 2, 1, (3, 3)),
    (3, 1, 1, 0, (3, 3)),            # stride 1: a conv of the flipped kernel, no depth-to-space
    ((3, 5), 2, (1, 2), 1, (2, 3)),  # per axis
    (3, 3, 0, 0, (1, 1)),            # kernel = stride: the 1 x 1 conv into the phases
])
def test_a_transposed_conv_is_a_conv_into_its_phases_equal_to_torch(k, s, p, op, kernel):
    """Output ``s i + a`` of a transposed conv sums inputs ``i + d`` times its taps ``a + p - s
    d``: a conv over the input into the ``s x s`` phases (zero where a phase has no tap), then
    the depth-to-space, through an identity 1 x 1 writer where the conv is not 1 x 1."""
    torch.manual_seed(11)
    layer = nn.ConvTranspose2d(3, 4, k, s, p, op)
    graph = traced_equal_to_torch(_One(layer), torch.randn(4, 3, 5, 6))
    conv = next(op for op in graph.ops if isinstance(op, ir.Conv2d))
    assert conv.weight.shape == (4 * s * s, 3, *kernel)
    assert [type(op).__name__ for op in graph.ops] == (
        ["Conv2d"] if s == 1 else ["Conv2d", "DepthToSpace"] if kernel == (1, 1)
        else ["Conv2d", "Conv2d", "DepthToSpace"])


@pytest.mark.parametrize(("cin", "cout", "groups"), [(4, 4, 4), (4, 6, 2)])
def test_a_grouped_transposed_conv_is_the_dense_one_with_zeros_between_its_groups(
        cin, cout, groups):
    """A depthwise (or grouped) transposed conv: the dense one's phases, zero between the
    groups; equal to torch in float, golden to the twin in int8."""
    torch.manual_seed(12)
    layer = nn.ConvTranspose2d(cin, cout, 4, 2, 1, groups=groups)
    model = nn.Sequential(nn.Conv2d(3, cin, 3, padding=1), nn.ReLU(), layer).eval()
    graph = traced_equal_to_torch(model, torch.randn(4, 3, 4, 4))
    conv = next(op for op in graph.ops if isinstance(op, ir.Conv2d) and op.weight.shape[:2] == (
        cout * 4, cin))
    per_in = conv.weight.shape[1] // groups   # input channels of each group
    for g in range(groups):   # no weight reads another group's inputs
        outs = slice(g * (cout // groups) * 4, (g + 1) * (cout // groups) * 4)
        assert not conv.weight[outs][:, :g * per_in].any()
        assert not conv.weight[outs][:, (g + 1) * per_in:].any()
    model_close(model, seed=13, shape=(3, 4, 4))


class ConvAutoencoder(nn.Module):
    """An encoder's stride-2 conv; a decoder's two transposed convs (3 x 3 with output padding,
    a batch norm and ReLU after it; DCGAN's 4 x 4); the image is the output."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, 2, 1)
        self.up1, self.bn = nn.ConvTranspose2d(4, 3, 3, 2, 1, output_padding=1), nn.BatchNorm2d(3)
        self.up2 = nn.ConvTranspose2d(3, 2, 4, 2, 1)

    def forward(self, x):
        return self.up2(F.relu(self.bn(self.up1(F.relu(self.enc(x))))))


def _generator() -> nn.Module:
    """DCGAN's generator in small: a 4 x 4 transposed conv over a 1 x 1 latent, then 4 x 4 at
    stride 2."""
    return nn.Sequential(nn.ConvTranspose2d(8, 6, 4, 1, 0), nn.BatchNorm2d(6), nn.ReLU(),
                         nn.ConvTranspose2d(6, 2, 4, 2, 1))


@pytest.mark.parametrize("which", ["autoencoder", "generator"])
def test_overlapping_transposed_convs_run_on_the_rtl_equal_to_golden(host, which):
    torch.manual_seed(12)
    model = (ConvAutoencoder() if which == "autoencoder" else _generator()).eval()
    x = torch.randn(32, *((3, 4, 4) if which == "autoencoder" else (8, 1, 1)),
                    generator=torch.Generator().manual_seed(13))
    traced_equal_to_torch(model, x[:4])
    for preset in ("tiny", "ecp5_128"):
        cm = hwaccel.compile(model, x[:2], preset=preset, calibration=x)
        golden_twin_float(cm, model, x[:8], 0.1)
    rtl_equals_golden(cm := hwaccel.compile(model, x[:2], preset="tiny", calibration=x), x[:2])
    low = cm.lower(cm.quantize_input(x[:2]))
    run_and_check(host, HOST_CONFIG, low.builder, low.outputs, which)


class Espcn(nn.Module):
    """ESPCN's shape: 3 x 3 convs, the last into ``3 f f`` channels, then a pixel shuffle."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1), nn.ReLU(), nn.Conv2d(8, 12, 3, 1, 1))
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        return self.shuffle(self.body(x))


def test_a_pixel_shuffle_of_a_3x3_conv_is_written_by_an_identity_1x1_conv():
    torch.manual_seed(9)
    model, x = Espcn().eval(), _x(32, seed=10)
    traced_equal_to_torch(model, x[:4])
    graph = trace(model, x[:2])
    copy = graph.op("shuffle.copy")
    assert graph.op("shuffle").inputs == ("shuffle.copy",) and copy.inputs == ("body.2",)
    np.testing.assert_array_equal(copy.weight[:, :, 0, 0], np.eye(12))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.1)
    rtl_equals_golden(cm, x[:2])
    # tiny's engine takes 8 outputs: body.2 runs as two groups, the copy as one 1 x 1 conv a
    # group and their add, and a second copy writes the depth-to-space; each copy keeps its
    # input's scale, so its int8 values are its input's: no rounding more
    q = {op.name: op for op in cm.qgraph.ops}
    writer = q[q["shuffle"].inputs[0]]
    assert writer.name == "shuffle.copy#2" and isinstance(q["shuffle.copy"], ir.QAdd)
    assert writer.s_in == writer.s_out
    v = np.arange(-128, 128)
    for c in range(writer.w.shape[0]):
        np.testing.assert_array_equal(requantize(v * writer.w[c, c, 0, 0] + writer.bias[c],
                                                 writer.multiplier[c], writer.shift[c]), v)


class _Shared(nn.Module):
    """A 1 x 1 conv read by a pixel shuffle and by a flatten: nothing can write it in place."""

    def __init__(self):
        super().__init__()
        self.pw, self.fc = nn.Conv2d(3, 8, 1), nn.Linear(2 * 8 * 8 + 8 * 4 * 4, 5)

    def forward(self, x):
        y = self.pw(x)
        return self.fc(torch.cat([F.pixel_shuffle(y, 2).flatten(1), y.flatten(1)], 1))


def test_a_pixel_shuffle_of_a_conv_something_else_reads_gets_a_writer_of_its_own():
    model, x = _Shared().eval(), _x(32)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    assert cm.graph.op("pixel_shuffle").inputs == ("pixel_shuffle.copy",)
    golden_twin_float(cm, model, x[:8], 0.1)
    # without it (the float graph as traced, quantized) lowering names what it cannot write
    qg = quantize(trace(model, x[:2]), x)
    with pytest.raises(LoweringError, match=r"layer 'pixel_shuffle' \(a depth-to-space by 2: "
                                            r"pixel_shuffle\) reads layer 'pw'"):
        lower(qg, cm.config, cm.quantize_input(x[:1]))


def test_tensor_parallelism_runs_a_transposed_conv_replicated_and_bit_exact():
    from hwaccel.generators.link.config import LinkConfig
    from hwaccel.parallel.pp_sim import golden
    from hwaccel.parallel.tp import plan
    from hwaccel.parallel.tp_sim import model as ring_model
    from hwaccel.parallel.tp_sim import simulate

    torch.manual_seed(7)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.ConvTranspose2d(8, 4, 2, 2),
                          nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16, 5)).eval()
    x = _x(32, seed=8)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    xi = cm.quantize_input(x[:3])
    ref = golden(cm, xi).reshape(3, -1)
    link = LinkConfig(width=4, latency=3, buffer=8, watchdog=64, name="t")
    p, _ = plan(cm, xi, 2, "n", link=link)
    out, measured = simulate(p, link)
    assert (out.reshape(3, -1) == ref).all()
    assert ring_model(p, link).cycles == measured.cycles
    assert [(la.name, la.split) for la in p.layers][1] == ("2", "replicated")


def test_transposed_conv_weights_past_the_scratchpad_are_named():
    """64 -> 2 x 2 x 64 on tiny's four lanes: 32 output blocks of 16 weight words and a
    requantizer word, 544 words against tiny's 512 (not split in parts of its outputs)."""
    model = nn.Sequential(nn.Conv2d(3, 64, 1), nn.ConvTranspose2d(64, 64, 2, 2)).eval()
    x = _x(8)
    with pytest.raises(DoesNotFit, match=r"the weights of layer '1.conv' \(544 words: 32 output "
                                         r"blocks of 16 weight words and a requantizer word\) "
                                         r"do not fit the weight scratchpad of accel_tiny "
                                         r"\(512 words\)"):
        hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
