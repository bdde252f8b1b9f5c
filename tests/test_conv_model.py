"""Convolution engine: config and layer checks, driver, golden model vs float (no simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from hwaccel.emit import emit
from hwaccel.generators.conv.cases import (
    CNN_LAYERS,
    cnn_cases,
    directed_cases,
    make_case,
    random_cases,
)
from hwaccel.generators.conv.config import PRESETS, ConvConfig
from hwaccel.generators.conv.layer import ConvLayer, check_layer, descriptor, same_padding
from hwaccel.generators.conv.layouts import requant_layout
from hwaccel.generators.conv.model import FLOAT_TOLERANCE, conv_float, conv_golden, scalesim_best
from hwaccel.generators.conv.plan import plan_layer
from hwaccel.hdl.pack import unpack
from hwaccel.toolchain import lint_verilog

SEED = 20240603


@pytest.mark.parametrize("changes, exc, text", [
    ({"lanes": 0}, ValueError, "lanes must be at least 1, not 0"),
    ({"block": 2.0}, TypeError, "block must be an integer, not 2.0"),
    ({"max_kernel": 16}, ValueError, "max_kernel must be at most 15, not 16"),
    ({"max_cin": 0}, ValueError, "max_cin must be at least 1, not 0"),
    ({"max_weight_words": 15}, ValueError, "max_weight_words must be at least 16, not 15"),
    ({"max_weight_words": 145}, ValueError, "max_weight_words must be at most 144, not 145"),
    ({"pool": 1}, TypeError, "pool must be a bool, not 1"),
    ({"name": "a-b"}, ValueError, "name must be an identifier-like string, not 'a-b'"),
])
def test_config_errors(changes, exc, text):
    with pytest.raises(exc, match=text):
        ConvConfig(**changes)


@pytest.mark.parametrize("kwargs, text", [
    ({"stride": 3}, "stride must be 1 or 2, not 3"),
    ({"padding": 2}, r"padding must leave each window an image pixel \(top \+ bottom < 3, "
                     r"left \+ right < 3\), not 2"),
    ({"padding": (1, 0, 2, 0)}, r"top \+ bottom < 3, left \+ right < 3\), not \(1, 0, 2, 0\)"),
    ({"padding": (1, 2, 3)}, "padding must be an int, a pair, a quadruple or 'same'"),
    ({"padding": "valid"}, "padding must be an int, a pair, a quadruple or 'same', not 'valid'"),
    ({"padding": (1, -1)}, "padding must be at least 0, not -1"),
    ({"kernel": 0}, "kernel must be at least 1, not 0"),
    ({"kernel": (3, 0)}, "kernel must be at least 1, not 0"),
    ({"kernel": (1, 2, 3)}, r"kernel must be an int or a \(height, width\) pair, not "
                            r"\(1, 2, 3\)"),
    ({"stride": (1, 3)}, r"stride must be 1 or 2, not \(1, 3\)"),
    ({"height": 2, "kernel": 3}, r"kernel must fit the padded 2x5 input \(padding 0\), not 3"),
    ({"relu": "yes"}, "relu must be a bool, not 'yes'"),
])
def test_layer_errors(kwargs, text):
    args = {"height": 5, "width": 5, "cin": 2, "cout": 3, **kwargs}
    with pytest.raises((ValueError, TypeError), match=text):
        ConvLayer(**args)


@pytest.mark.parametrize("field, value, text", [
    ("width", 29, r"width must be at most 28 \(max_width of conv_cnn\), not 29"),
    ("height", 30, r"height must be at most 28 \(max_height of conv_cnn\), not 30"),
    ("cin", 65, r"cin must be at most 64 \(max_cin of conv_cnn\), not 65"),
    ("cout", 100, r"cout must be at most 64 \(max_cout of conv_cnn\), not 100"),
    ("kernel", 5, r"kernel_h must be at most 3 \(max_kernel of conv_cnn\), not 5"),
    ("kernel", (1, 4), r"kernel_w must be at most 3 \(max_kernel of conv_cnn\), not 4"),
    ("padding", (0, 0, 2, 0), r"padding must be at most 1 on each side \(max_pad of conv_cnn\), "
                              r"not \(0, 0, 2, 0\) \(top, left, bottom, right\)"),
])
def test_layer_too_big_for_engine(field, value, text):
    layer = ConvLayer(**{"height": 28, "width": 28, "cin": 8, "cout": 8, field: value})
    with pytest.raises(ValueError, match=text):
        check_layer(PRESETS["cnn"], layer)
    with pytest.raises(ValueError, match=text):
        descriptor(PRESETS["cnn"], layer)


def test_weights_must_fit_the_weight_memory():
    """A capped weight memory refuses a 7x7 kernel over 64 channels (4 blocks x 196 chunks)
    and runs it over 16 channels into 16 outputs (1 block x 49 chunks)."""
    cfg = ConvConfig(max_kernel=7, max_weight_words=144, name="capped")
    with pytest.raises(ValueError, match=r"weights must fit the engine's weight memory \(144 "
                                         r"words of conv_capped\), not 4 blocks x 196 chunks"):
        check_layer(cfg, ConvLayer(28, 28, 64, 64, 7))
    assert descriptor(cfg, ConvLayer(28, 28, 16, 16, 7))["weight_words"] == 49


def test_pool_needs_a_pool_stage():
    with pytest.raises(ValueError, match="pool needs an engine built with pool=True"):
        check_layer(PRESETS["cnn_nopool"], ConvLayer(4, 4, 1, 1, pool=True))


def test_cnn_layer_chunking():
    """conv1 packs the whole 3x3x1 window in one chunk; conv2/3 use one chunk per tap group."""
    cfg = PRESETS["cnn"]
    d1, d2, d3 = (descriptor(cfg, CNN_LAYERS[n]) for n in ("conv1", "conv2", "conv3"))
    assert (d1["packed"], d1["weight_words"], d1["blocks"]) == (1, 2, 2)
    assert (d2["packed"], d2["weight_words"], d2["groups"]) == (0, 4 * 18, 2)
    assert (d3["packed"], d3["weight_words"], d3["groups"]) == (0, 4 * 36, 4)


def test_scalesim_reference_numbers():
    """The lead's figures for 256 MACs (16 x 16)."""
    best = {n: scalesim_best(CNN_LAYERS[n], 256) for n in CNN_LAYERS}
    assert best == {"conv1": ("ws", 1444), "conv2": ("os", 10176), "conv3": ("os", 2424)}


def test_plan_rejects_bad_tensors():
    cfg, layer = PRESETS["k5n3"], ConvLayer(3, 3, 2, 2)
    x, w = np.zeros((2, 3, 3)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="x must have shape"):
        plan_layer(cfg, layer, x[:1], w, 0, 1, 1)
    with pytest.raises(ValueError, match=r"w must hold int8 values in \[-128, 127\]"):
        plan_layer(cfg, layer, x, w + 200, 0, 1, 1)


def test_golden_matches_float_within_tolerance():
    """Golden (integer) vs float reference: at most FLOAT_TOLERANCE int8 steps apart."""
    cfg = PRESETS["k5n3"]
    cases = directed_cases(cfg) + random_cases(cfg, 60, SEED) + cnn_cases(SEED)
    worst = 0
    for case in cases:
        got = conv_golden(case.layer, case.x, case.w, case.bias, *case.requant)
        ref = conv_float(case.layer, case.x, case.w, case.bias, case.s_in, case.s_w, case.s_out)
        assert got.shape == ref.shape == (case.layer.cout, *case.layer.result_size)
        if got.size:
            worst = max(worst, int(np.abs(got - ref).max()))
    assert worst <= FLOAT_TOLERANCE, f"seed {SEED}: golden and float differ by {worst} steps"


def test_golden_is_exact_integer_convolution():
    """With M = 2**(S-1)... i.e. requantize by exactly 1/2, the golden model is conv2d itself."""
    rng = np.random.default_rng(SEED)
    layer = ConvLayer(6, 5, 3, 4, 3, 2, "same", False, False)
    case = make_case("exact", layer, rng)
    acc = conv_golden(layer, case.x // 8, case.w // 8, np.zeros(4, dtype=np.int64),
                      np.full(4, 1 << 15), np.full(4, 16))
    # Direct sum, independent of torch.
    x, w, p = np.pad(case.x // 8, ((0, 0), (1, 1), (1, 1))), case.w // 8, 1
    oh, ow = layer.out_size
    direct = np.zeros((4, oh, ow), dtype=np.int64)
    for y in range(oh):
        for xx in range(ow):
            win = x[:, 2 * y:2 * y + 3, 2 * xx:2 * xx + 3]
            direct[:, y, xx] = (w * win[None]).sum(axis=(1, 2, 3))
    expect = np.clip(np.floor(direct / 2 + 0.5), -128, 127).astype(np.int64)
    assert p == layer.pad
    assert np.array_equal(acc, expect)


@pytest.mark.parametrize("slug", sorted(PRESETS))
def test_presets_lint_clean(slug, tmp_path):
    res = emit(PRESETS[slug], tmp_path)
    lint_verilog(res.verilog, PRESETS[slug].slug)


def test_tensorflow_same_padding():
    """TensorFlow's rule, from its definition: ``ceil(n / s)`` outputs per axis, the odd pad at
    the bottom/right; the two layers the MLPerf Tiny models need worked out by hand."""
    assert same_padding(6, 6, 3, 2) == (0, 0, 1, 1)
    assert same_padding(49, 10, (10, 4), 2) == (4, 1, 5, 1)
    rng = np.random.default_rng(SEED)
    for _ in range(200):
        h, w = (int(v) for v in rng.integers(1, 30, 2))
        k = tuple(int(v) for v in rng.integers(1, 11, 2))
        s = tuple(int(v) for v in rng.integers(1, 3, 2))
        top, left, bottom, right = same_padding(h, w, k, s)
        assert 0 <= bottom - top <= 1 and 0 <= right - left <= 1
        if top + bottom < k[0] and left + right < k[1]:
            layer = ConvLayer(h, w, 1, 1, k, s, (top, left, bottom, right))
            assert layer.out_size == (-(-h // s[0]), -(-w // s[1])), (h, w, k, s)


def test_golden_per_side_padding_and_non_square():
    """Non-square kernels, a stride per axis and a different padding on each side: the golden
    model equals a direct sum over the zero-padded input (numpy, independent of torch)."""
    rng = np.random.default_rng(SEED)
    for kernel, stride, pads in [((10, 4), 2, (4, 1, 5, 1)), ((2, 5), (1, 2), (0, 3, 1, 0)),
                                 ((3, 1), (2, 1), (2, 0, 0, 0)), (3, 2, (0, 0, 1, 1))]:
        layer = ConvLayer(11, 9, 3, 2, kernel, stride, pads, False, False)
        case = make_case("sides", layer, rng)
        x, w = case.x // 8, case.w // 8
        got = conv_golden(layer, x, w, np.zeros(2, dtype=np.int64), np.full(2, 1 << 15),
                          np.full(2, 16))
        top, left, bottom, right = pads
        xp = np.pad(x, ((0, 0), (top, bottom), (left, right)))
        (kh, kw), (sh, sw) = (layer.kernel_h, layer.kernel_w), (layer.stride_h, layer.stride_w)
        oh, ow = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
        direct = np.zeros((2, oh, ow), dtype=np.int64)
        for y in range(oh):
            for xx in range(ow):
                win = xp[:, y * sh:y * sh + kh, xx * sw:xx * sw + kw]
                direct[:, y, xx] = (w * win[None]).sum(axis=(1, 2, 3))
        assert layer.out_size == (oh, ow)
        assert np.array_equal(got, np.clip(np.floor(direct / 2 + 0.5), -128, 127)), kernel


def test_dscnn_first_layer_descriptor():
    """DS-CNN's first layer (10x4, stride 2, TensorFlow's "same" on 49x10x1) packs whole kernel
    rows: 4 lanes a row, so a 16-lane chunk holds 4 of its 10 rows (3 chunks a block)."""
    cfg = ConvConfig(max_width=10, max_height=49, max_kernel=10, name="dscnn")
    layer = ConvLayer(49, 10, 1, 64, (10, 4), 2, same_padding(49, 10, (10, 4), 2))
    d = descriptor(cfg, layer)
    assert {k: d[k] for k in ("kernel_h", "kernel_w", "pad_top", "pad_left", "pad_bottom",
                              "pad_right", "stride2_h", "stride2_w", "out_height",
                              "out_width")} == {
        "kernel_h": 10, "kernel_w": 4, "pad_top": 4, "pad_left": 1, "pad_bottom": 5,
        "pad_right": 1, "stride2_h": 1, "stride2_w": 1, "out_height": 25, "out_width": 5}
    assert (d["packed"], d["row_lanes"], d["rows_per_chunk"], d["weight_words"]) == (1, 4, 4, 12)
    assert layer.macs == 25 * 5 * 64 * 40


def test_symmetric_padding_reads_as_an_int():
    """Pairs and quadruples with equal parts are the int; ``pad`` refuses unequal sides."""
    assert ConvLayer(5, 5, 1, 1, (3, 3), (2, 2), (1, 1, 1, 1)) == ConvLayer(5, 5, 1, 1, 3, 2, 1)
    assert ConvLayer(5, 5, 1, 1, 4, 1, "same").pads == (1, 1, 2, 2)
    with pytest.raises(ValueError, match=r"padding \(0, 0, 1, 1\) .* is not one int"):
        _ = ConvLayer(6, 6, 1, 1, 3, 2, (0, 0, 1, 1)).pad


def test_depthwise_golden_is_one_convolution_per_channel():
    """A depthwise layer equals, channel by channel, a one-channel convolution of that channel
    with its own filter, bias and requantizer (per-side padding, stride 2 on the columns)."""
    rng = np.random.default_rng(SEED)
    layer = ConvLayer(7, 6, 3, 3, 3, (1, 2), (1, 0, 1, 2), True, False, True)
    case = make_case("dw", layer, rng)
    mult, shift = case.requant
    got = conv_golden(layer, case.x, case.w, case.bias, mult, shift)
    one = ConvLayer(7, 6, 1, 1, 3, (1, 2), (1, 0, 1, 2), True, False)
    for c in range(3):
        ref = conv_golden(one, case.x[c:c + 1], case.w[c:c + 1], case.bias[c:c + 1],
                          mult[c:c + 1], shift[c:c + 1])
        assert np.array_equal(got[c:c + 1], ref), f"channel {c}"
    assert layer.macs == 3 * 7 * 3 * 9


def test_depthwise_descriptor_and_weight_words():
    """One block, one group, dw_chunks words: lane k of chunk c is window position c*lanes + k
    (row-major in the 3x3 register); a 2x2 kernel sits in the register's right columns."""
    cfg = PRESETS["k5n3"]   # 5 lanes, block 3: ceil(9 / 5) = 2 chunks
    layer = ConvLayer(4, 4, 3, 3, (2, 2), 1, 0, False, False, True)
    d = descriptor(cfg, layer)
    assert (d["depthwise"], d["blocks"], d["groups"], d["weight_words"]) == (1, 1, 1, 2)
    w = np.arange(1, 13).reshape(3, 1, 2, 2)
    plan = plan_layer(cfg, layer, np.zeros((3, 4, 4)), w, 0, 1 << 15, 16)
    lanes = [np.array([(word >> (8 * (k * 3 + n))) & 0xFF for k in range(5) for n in range(3)])
             .reshape(5, 3) for word in plan.weights]
    pos = np.concatenate(lanes)[:9]   # positions 0..8: (r, j) = divmod(p, 3)
    for p in range(9):
        r, j = divmod(p, 3)
        expect = w[:, 0, r, j - 1] if r < 2 and j >= 1 else np.zeros(3)
        assert pos[p].tolist() == list(expect), p
    assert not np.concatenate(lanes)[9:].any()


@pytest.mark.parametrize("layer, text", [
    (ConvLayer(4, 4, 4, 4, 3, 1, 1, True, True, True),
     "that pools runs at most 1 channel group"),
    (ConvLayer(6, 6, 2, 2, 5, 1, 2, True, False, True), "depthwise kernel must be at most 3x3"),
])
def test_depthwise_limits(layer, text):
    with pytest.raises(ValueError, match=text):
        check_layer(PRESETS["k5n3"], layer)


def test_depthwise_group_limit():
    """A layer walks at most dw_groups channel groups: k5n3 (5 lanes, block 3) taking 11
    output channels has 3 groups of 3 channels, 9 of the 11 its limits allow otherwise."""
    cfg = PRESETS["k5n3"].with_(max_cout=11)
    assert (cfg.dw_groups, cfg.dw_channels) == (3, 3)
    assert descriptor(cfg, ConvLayer(4, 4, 9, 9, 3, 1, 1, True, False, True))["blocks"] == 3
    with pytest.raises(ValueError, match="at most 3 channel group.* not 10 channels"):
        check_layer(cfg, ConvLayer(4, 4, 10, 10, 3, 1, 1, True, False, True))


def test_depthwise_groups_plan(seed):
    """A layer of several channel groups: each group's weight words then the next's, one
    requantizer word a group (channel ``g * dw_channels + n`` at position ``n``), the
    activations a group's image after the other, and ``assemble`` reading the results back in
    that order (k5n3: 3 channels a group, 5 lanes, block 3; cnn_small: 4 of 4)."""
    rng = np.random.default_rng(seed)
    for slug, c in (("k5n3", 7), ("cnn_small", 10)):
        cfg = PRESETS[slug]
        per = cfg.dw_channels
        layer = ConvLayer(3, 2, c, c, 3, 1, 1, False, False, True)
        x = rng.integers(-128, 128, (c, 3, 2))
        w = rng.integers(-128, 128, (c, 1, 3, 3))
        bias = rng.integers(-99, 99, c)
        plan = plan_layer(cfg, layer, x, w, bias, 1 << 14, 7, junk_seed=seed)
        nb = -(-c // per)
        assert plan.result_count == nb * 3 * 2 and len(plan.requant) == nb
        for g in range(nb):
            one = ConvLayer(3, 2, min(per, c - g * per), min(per, c - g * per), 3, 1, 1,
                            False, False, True)
            part = plan_layer(cfg, one, x[g * per:(g + 1) * per], w[g * per:(g + 1) * per],
                              bias[g * per:(g + 1) * per], 1 << 14, 7)
            k = cfg.dw_chunks
            assert plan.weights[g * k:(g + 1) * k] == part.weights, (slug, g)
            assert plan.requant[g] == part.requant[0], (slug, g)
            acts = plan.activations[g * 6:(g + 1) * 6]
            mask = (1 << (8 * one.cin)) - 1   # the lanes past the group's channels are junk
            assert [a & mask for a in acts] == part.activations, (slug, g)
        y = rng.integers(-128, 128, (nb * per, 3, 2))
        words = [sum((int(y[g * per + n, p // 2, p % 2]) & 0xFF) << (8 * n) for n in range(per))
                 | (int(i == plan.result_count - 1) << (8 * cfg.block))
                 for i, (g, p) in enumerate((g, p) for g in range(nb) for p in range(6))]
        out, lasts = plan.assemble(words)
        np.testing.assert_array_equal(out, y[:c])
        assert lasts == plan.expected_lasts()


def test_depthwise_groups_of_whole_words_in_beats(seed):
    """Lanes twice the block (4 x 2): a channel group is a word of 4 channels in two beats of 2,
    each beat's dw_chunks (3) weight words for its channels, beat after beat, a requantizer a
    beat, and the results a group's pixels in turn, each pixel's two beats together. With
    fewer output channels than lanes (max_cout 2) the parameter memory cannot hold a group's
    beats, and a group is one beat of 2 channels as before."""
    assert (ConvConfig(lanes=4, block=2, max_cout=2).dw_beats,
            ConvConfig(lanes=4, block=2, max_cout=2).dw_channels) == (1, 2)
    cfg = ConvConfig(lanes=4, block=2, max_width=5, max_height=5, max_cin=8, max_cout=8,
                     max_kernel=3, name="k4n2")
    assert (cfg.dw_beats, cfg.dw_channels, cfg.dw_chunks, cfg.dw_words, cfg.dw_groups) == (
        2, 4, 3, 6, 2)
    rng = np.random.default_rng(seed)
    c, layer = 7, ConvLayer(3, 2, 7, 7, 3, 1, 1, False, False, True)
    w = rng.integers(-128, 128, (c, 1, 3, 3))
    bias = rng.integers(-99, 99, c)
    plan = plan_layer(cfg, layer, rng.integers(-128, 128, (c, 3, 2)), w, bias, 1 << 14, 7)
    d = descriptor(cfg, layer)
    assert (d["blocks"], d["weight_words"], len(plan.weights), len(plan.requant)) == (2, 12, 12, 4)
    wp = np.zeros((8, 1, 3, 3), dtype=np.int64)
    wp[:c] = w
    for i, word in enumerate(plan.weights):
        (g, rest), lw = divmod(i, 6), np.array(unpack(word, 8, 8)).reshape(4, 2)
        h, ch = divmod(rest, 3)
        for k in range(4):
            if ch * 4 + k < 9:
                r, j = divmod(ch * 4 + k, 3)
                assert lw[k].tolist() == wp[g * 4 + h * 2:g * 4 + h * 2 + 2, 0, r, j].tolist()
    size = requant_layout(cfg).elem_shape.size   # each channel's bias is its low 32 bits
    biases = [unpack(word >> (n * size), 32, 1)[0] for word in plan.requant for n in range(2)]
    assert biases == [*bias.tolist(), 0]
    assert plan.result_count == 2 * 6 * 2
    y = rng.integers(-128, 128, (8, 3, 2))
    words = [sum((int(y[g * 4 + h * 2 + n, p // 2, p % 2]) & 0xFF) << (8 * n) for n in range(2))
             | (int(i == plan.result_count - 1) << 16)
             for i, (g, p, h) in enumerate((g, p, h) for g in range(2) for p in range(6)
                                           for h in range(2))]
    out, lasts = plan.assemble(words)
    np.testing.assert_array_equal(out, y[:c])
    assert lasts == plan.expected_lasts()


def test_depthwise_needs_cout_equal_cin():
    with pytest.raises(ValueError, match="cout == cin"):
        ConvLayer(4, 4, 2, 3, 3, 1, 1, True, False, True)
