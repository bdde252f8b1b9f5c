"""A conv engine whose result beat is less than an activation word (``block < lanes``,
:mod:`hwaccel.generators.accel.beats`): ``tiny_4x2`` (4 lanes, 2-channel beats, two a word) is
``tiny`` but for its block, so the same layers give the same tensors on both, its RTL equals the
golden interpreter word for word and the cycle model on every counter, and the commands whose
beats make no whole word fault as the checks say."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rtl_checks import int8 as _int8

import hwaccel
from hwaccel.compiler.cases import make
from hwaccel.generators.accel import PRESETS, run_program
from hwaccel.generators.accel.cases import fault_programs, random_program, random_requant
from hwaccel.generators.accel.config import MODEL_PRESETS, AccelConfig
from hwaccel.generators.accel.driver import ProgramBuilder, from_words
from hwaccel.generators.accel.perf import program_perf
from hwaccel.generators.attention.config import AttentionConfig
from hwaccel.generators.conv.config import ConvConfig
from hwaccel.generators.conv.layer import ConvLayer
from hwaccel.generators.conv.model import conv_golden
from hwaccel.sim.host import HarnessHost

SPLIT, TINY = MODEL_PRESETS["tiny_4x2"], PRESETS["tiny"]


@pytest.fixture(scope="module")
def split():
    with HarnessHost.of(SPLIT) as host:
        yield host


def test_the_block_divides_the_lanes_by_a_power_of_two():
    assert (SPLIT.word_beats, MODEL_PRESETS["ecp5_128"].word_beats, TINY.word_beats) == (2, 2, 1)
    conv = ConvConfig(lanes=6, block=4, max_cout=12)
    with pytest.raises(ValueError, match=r"conv.lanes \(6\) must be conv.block \(4\) times a "):
        AccelConfig(conv=conv)
    with pytest.raises(ValueError, match="times a power of two"):
        AccelConfig(conv=conv.with_(block=2))   # three beats a word
    with pytest.raises(ValueError, match=r"max_cout \(6\) must be a multiple of conv.lanes"):
        AccelConfig(conv=ConvConfig(lanes=4, block=2, max_cout=6))
    with pytest.raises(ValueError, match="must equal conv.lanes .* with attention units"):
        SPLIT.with_(attention=AttentionConfig(max_len=16, max_channels=16, lanes=4))


def _layers(cfg, seed):
    """Convs with output channels that are no whole word (pooled too), a MAXPOOL, and GEMMs
    whose N and K span several engine tiles."""
    r = np.random.default_rng(seed)
    b = ProgramBuilder(cfg)
    x = b.put(_int8(r, (6, 7, 5)))
    t = b.conv(x, _int8(r, (5, 6, 3, 3)), *random_requant(r, 5, 54), padding=1, pool=True)
    t = b.conv(t, _int8(r, (7, 5, 1, 1)), *random_requant(r, 7, 5), relu=False)
    p = b.maxpool(b.conv(x, _int8(r, (3, 6, 2, 2)), *random_requant(r, 3, 24), stride=2))
    g = b.gemm(t, _int8(r, (7, 3)), *random_requant(r, 3, 7))
    big = b.put(_int8(r, (30, 1, 9)))   # K: 8 words, N: 37 channels (tiles of 8 and 4 words)
    h = b.gemm(big, _int8(r, (30, 37)), *random_requant(r, 37, 30), relu=False)
    b.done()
    return b, (t, p, g, h)


def test_the_same_layers_give_the_same_tensors_as_tiny():
    for seed in range(4):
        outs = []
        for cfg in (TINY, SPLIT):
            b, tensors = _layers(cfg, seed)
            res = run_program(cfg, b.act, b.wgt, b.commands)
            assert res.done, res.cause
            outs.append([from_words(res.act, t) for t in tensors])
        for a, b_ in zip(*outs):
            np.testing.assert_array_equal(a, b_)


def test_rtl_equals_golden_and_the_cycle_model(split, seed):
    """The layers above and random programs (convs of any output channels, pools, GEMMs over
    several tiles, ADDs, AVGPOOLs, LSTMs): the scratchpad and every counter."""
    progs = [_layers(SPLIT, seed)[0]]
    progs += [random_program(SPLIT, np.random.default_rng(s), 8) for s in range(seed, seed + 12)]
    for i, prog in enumerate(progs):
        gold = run_program(SPLIT, prog.act, prog.wgt, prog.commands)
        split.load(prog)
        split.run(limit=1_000_000)
        np.testing.assert_array_equal(split.read_act(0, prog.act_top),
                                      gold.act[: prog.act_top], err_msg=f"program {i}")
        if gold.done:
            assert split.counters() == program_perf(SPLIT, prog.commands).counters, i


def test_faults_match_golden_on_the_rtl(split, seed):
    """Every fault program, with the three a block below the lanes adds: a CONV and a GEMM
    whose beats make no whole word, and a depthwise CONV with one beat's weight words."""
    faults = fault_programs(SPLIT, np.random.default_rng(seed))
    assert {"shape_conv_part_word", "shape_gemm_part_word",
            "shape_depthwise_one_beat"} <= set(faults)
    for name, (b, cause, pc) in faults.items():
        gold = run_program(SPLIT, b.act, b.wgt, b.commands)
        assert (gold.cause, gold.pc) == (cause, pc), name
        split.load(b)
        split.run(limit=200_000)
        status = split.status()
        assert (status["error"], status["cause"], status["pc"]) == (1, cause, pc), name


def test_depthwise_groups_are_words_in_two_beats(split, seed):
    """A depthwise CONV's channel group is a 4-channel word computed in two 2-channel beats:
    each stride, padding and pool, over one to three groups (the processor's jobs of
    ``dw_groups``), the RTL equals golden word for word, golden the conv golden model, and the
    cycle model every counter."""
    assert SPLIT.conv.dw_beats == 2 and SPLIT.conv.dw_channels == SPLIT.lanes
    rng = np.random.default_rng(seed)
    for i, (c, stride, pad, pool) in enumerate([(4, 1, 1, False), (12, 2, 1, False),
                                                 (7, 1, 0, True), (9, (1, 2), (1, 0, 1, 1),
                                                                   False)]):
        b = ProgramBuilder(SPLIT)
        x = rng.integers(-128, 128, (c, 7, 6))
        w = rng.integers(-128, 128, (c, 1, 3, 3))
        bias = rng.integers(-3000, 3000, c)
        y = b.dwconv(b.put(x), w, bias, 1 << 14, 20, stride=stride, padding=pad, pool=pool)
        b.done()
        gold = run_program(SPLIT, b.act, b.wgt, b.commands)
        assert gold.done, i
        layer = ConvLayer(7, 6, c, c, 3, stride, pad, True, pool, True)
        want = conv_golden(layer, x, w, bias, np.full(c, 1 << 14), np.full(c, 20))
        np.testing.assert_array_equal(from_words(gold.act, y), want, err_msg=f"layer {i}")
        split.load(b)
        split.run(limit=200_000)
        assert split.status()["error"] == 0, i
        np.testing.assert_array_equal(split.read_act(0, b.act_top), gold.act[: b.act_top],
                                      err_msg=f"layer {i}")
        assert split.counters() == program_perf(SPLIT, b.commands).counters, i


@pytest.mark.parametrize("name", ["sequential", "batchnorm", "mlp", "branches",
                                  "inverted_residual"])
def test_models_compile_and_run_bit_exact(name):
    """CNNs with Linear heads, an MLP whose GEMMs tile N and K, and two branches of one value
    joined by an ADD, a depthwise block (two-beat groups): golden equals the integer twin,
    and the RTL equals golden."""
    model, inputs = make(name)
    gen = torch.Generator().manual_seed(3)
    cm = hwaccel.compile(model, inputs(2, gen), calibration=inputs(32, gen), preset="tiny_4x2")
    x = inputs(3, gen)
    gold = cm.execute("golden", x)
    twin = cm.int8_forward(cm.quantize_input(x))
    np.testing.assert_array_equal(gold.int_logits, twin)
    assert np.count_nonzero(twin) > twin.size // 4
    np.testing.assert_array_equal(cm.execute("rtl", x).int_logits, gold.int_logits)


def test_a_linear_in_parts_of_whole_words():
    """A flattened 4 x 8 x 8 input (64 words of 4 lanes) into 62 outputs: 31 blocks, padded
    to 16 words (32 blocks) of 64 K words and a requantizer word each, four times the weight
    scratchpad. Its parts are whole words (6 blocks, as 7 x 65 words fit), a program each;
    golden and the RTL equal the twin."""
    from torch import nn

    from hwaccel.generators.accel.isa import Op
    from hwaccel.generators.accel.model import decode

    torch.manual_seed(4)
    model = nn.Sequential(nn.Flatten(), nn.Linear(256, 62)).eval()
    x = torch.randn(2, 4, 8, 8)
    cm = hwaccel.compile(model, x, preset="tiny_4x2")
    low = cm.lower(cm.quantize_input(x))
    nbs = [{decode(SPLIT, c)["nb"] for c in p.commands if decode(SPLIT, c)["op"] == Op.GEMM}
           for p in low.programs]
    assert nbs == [{6}] * 5 + [{2}]
    twin = cm.int8_forward(cm.quantize_input(x))
    np.testing.assert_array_equal(cm.execute("golden", x).int_logits, twin)
    np.testing.assert_array_equal(cm.execute("rtl", x).int_logits, twin)
