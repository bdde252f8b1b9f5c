"""Convolution engine RTL (Verilator under cocotb) against the golden model, bit-exact.

Each test is one simulator run over many layers (descriptors, weights and images queued back to
back), with random idle cycles on every input stream and back-pressure on ``result``. The
engines carry the max-pool stage, which random layers enable at random.
"""

from __future__ import annotations

import re

import pytest

from hwaccel.generators.conv.config import PRESETS
from hwaccel.sim.runner import design_for, run_bench


def _run(slug: str, params: dict, seed: int) -> list[dict]:
    res = run_bench(design_for(PRESETS[slug]), "sim.tb_conv", {**params, "seed": seed},
                    seed=seed)
    cases = res["cases"]
    assert cases, f"{slug}: the bench compared nothing (seed {seed})"
    bad = [c for c in cases if c["mismatches"]]
    assert not bad, f"{slug} (seed {seed}): mismatching layers {bad}"
    return cases


@pytest.mark.parametrize("slug, count", [("k5n3", 110), ("k1n1", 12)])
def test_random_layers(slug, count, seed):
    """Directed corners plus random layers: square and non-square kernels 1..max, stride 1/2
    per axis, padding none, "same" (torch's and TensorFlow's) or different on each side,
    channel counts not multiples of lanes/block, 1x1 images, extreme values and scales."""
    cases = _run(slug, {"mode": "random", "count": count, "idle": 0.2, "backpressure": 0.3,
                        "batch": 8}, seed)
    assert len(cases) >= count + 7
    kernels = {c["layer"].split("kernel=")[1].split(", stride")[0] for c in cases}
    assert len(kernels) >= min(PRESETS[slug].max_kernel, 3), kernels
    assert any(k.startswith("(") for k in kernels), f"no non-square kernel among {kernels}"
    sides = [c["layer"] for c in cases if re.search(r"padding=\(\d+, \d+, \d+, \d+\)",
                                                     c["layer"])]
    assert sides, "no layer padded differently on each side"
    dw = [c["layer"] for c in cases if "depthwise=True" in c["layer"]]
    assert len(dw) >= 3 and any("stride=2" in d for d in dw), dw


@pytest.mark.parametrize("slug, count", [("k5n3", 40), ("k1n1", 12)])
def test_cycles_equal_the_model(slug, count, seed):
    """Each layer alone, every stream always valid and ready (pooling off): the cycles from its
    descriptor to its last result equal the cycle model's, for every kernel shape, stride and
    padding the cases draw (k5n3: a 16-row line buffer and kernels up to 10 rows)."""
    cases = _run(slug, {"mode": "timing", "count": count}, seed)
    assert len(cases) >= count + 7
    assert sum("depthwise=True" in c["layer"] for c in cases) >= 3
    wrong = [(c["name"], c["layer"], c["cycles"], c["model_cycles"]) for c in cases
             if c["cycles"] != c["model_cycles"]]
    assert not wrong, (f"{slug} (seed {seed}): {len(wrong)} of {len(cases)} layers differ, "
                       f"(name, layer, RTL, model): {wrong[:4]}")


def test_cnn_layers_with_pools(seed):
    """The reference CNN's conv1 + pool, conv2 + pool, conv3, chained, on a 16-MAC engine with
    the same layer limits (the 256-MAC preset runs them in `hwaccel bench conv`)."""
    cases = _run("cnn_small", {"mode": "cnn", "idle": 0.1, "backpressure": 0.2}, seed)
    assert [c["name"] for c in cases] == ["conv1", "conv2", "conv3"]
    assert [c["outputs"] for c in cases] == [32 * 13 * 13, 64 * 5 * 5, 64 * 3 * 3]


def test_depthwise_one_chunk_per_pixel(seed):
    """9 lanes x 9 channels: a 3x3 depthwise window is one chunk, so a pixel's last column read
    and its only chunk share a cycle and the next pixel's read follows at once (the presets above
    take 2 and 9 chunks). Bit-exact and cycle-exact, every layer alone."""
    from hwaccel.generators.conv.config import ConvConfig

    cfg = ConvConfig(lanes=9, block=9, max_width=7, max_height=6, max_cin=9, max_cout=9,
                     max_kernel=3, pool=True, name="k9n9")
    res = run_bench(design_for(cfg), "sim.tb_conv", {"mode": "timing", "count": 24,
                                                     "seed": seed}, seed=seed)
    cases = res["cases"]
    assert not [c for c in cases if c["mismatches"]], cases
    wrong = [(c["layer"], c["cycles"], c["model_cycles"]) for c in cases
             if c["cycles"] != c["model_cycles"]]
    assert not wrong, f"seed {seed}: {wrong[:4]}"
    assert sum("depthwise=True" in c["layer"] for c in cases) >= 4


@pytest.mark.parametrize("slug", ["k5n3", "k1n1"])
def test_depthwise_groups_slow_weights(slug, seed):
    """Depthwise layers of several channel groups with the weight stream idle 85% of cycles: a
    group must not issue before its own weight words are in (they load while the group before
    it runs), bit-exact against the golden model (the directed cases include groups of one
    pixel each, whose weights arrive long after the group before them has issued)."""
    cases = _run(slug, {"mode": "random", "count": 6, "batch": 4, "backpressure": 0.2,
                        "idle": {"weights": 0.85, "activations": 0.1}}, seed)
    groups = [c["layer"] for c in cases if "depthwise=True" in c["layer"]
              and int(c["layer"].split("cin=")[1].split(",")[0]) > PRESETS[slug].dw_channels]
    assert any("height=1, width=1" in g for g in groups), groups


@pytest.mark.parametrize("lanes, block", [(4, 2), (12, 3)])
def test_depthwise_beats_of_a_word(lanes, block, seed):
    """Lanes a power-of-two multiple of the block (``dw_beats`` > 1): a depthwise channel group
    is a whole word of ``lanes`` channels, each pixel ``dw_beats`` beats of ``block`` channels
    back to back, each with its own weight words and requantizer (4 x 2: 2 beats of 3 chunks;
    12 x 3: 4 beats of one chunk). Bit-exact with idle streams and back-pressure, and every
    layer alone cycle-exact."""
    from hwaccel.generators.conv.config import ConvConfig

    cfg = ConvConfig(lanes=lanes, block=block, max_width=7, max_height=6, max_cin=2 * lanes,
                     max_cout=2 * lanes, max_kernel=3, pool=True, name=f"k{lanes}n{block}")
    assert cfg.dw_beats == lanes // block and cfg.dw_channels == lanes
    rand, timed = _random_and_timed(cfg, seed)
    for cases in (rand, timed):
        assert sum("depthwise=True" in c["layer"] for c in cases) >= 3
    assert any("depthwise=True" in c["layer"] and "pool=True" in c["layer"] for c in rand)


@pytest.mark.parametrize("lanes, block, dk", [(8, 8, 5), (4, 2, 5), (8, 8, 7)])
def test_depthwise_window_above_3(lanes, block, dk, seed):
    """``dw_max_kernel`` 5 and 7: depthwise kernels up to 5 x 5 (MobileNetV3's) or 7 x 7
    (MCUNet's) in a window register of that side. With one beat a pixel (8 x 8) the lanes take
    the register ring by ring from its top-right corner (``dw_taps``), so a pixel issues only
    the chunks its kernel's side fills (a 7 x 7 kernel 7 chunks, a 5 x 5 4, a 3 x 3 2, a 1 x 1
    1); with beats (4 x 2) every beat issues the register's 7 (14 a pixel). Bit-exact with
    idle streams and back-pressure, and every layer alone cycle-exact."""
    from hwaccel.generators.conv.config import ConvConfig

    cfg = ConvConfig(lanes=lanes, block=block, max_width=9, max_height=8, max_cin=2 * lanes,
                     max_cout=2 * lanes, max_kernel=dk, dw_max_kernel=dk, pool=True,
                     name=f"dw{dk}_k{lanes}n{block}")
    assert cfg.dw_kernel == dk and cfg.dw_trim == (lanes == block)
    sides = [1, 3, 5, 7][:(dk + 1) // 2]
    issue = [1, 2, 4, 7][:len(sides)] if lanes == block else [14] * len(sides)
    assert [cfg.dw_issue(k, k) for k in sides] == issue
    rand, timed = _random_and_timed(cfg, seed)
    for cases in (rand, timed):
        kernels = {c["layer"].split("kernel=")[1].split(", stride")[0] for c in cases
                   if "depthwise=True" in c["layer"]}
        assert any(str(dk) in k for k in kernels) and len(kernels) >= 3, kernels


def _random_and_timed(cfg, seed: int) -> tuple[list, list]:
    """24 random layers with idle streams and back-pressure, and 24 layers each alone: every
    one bit-exact, and each alone in the model's cycles."""
    design = design_for(cfg)
    rand = run_bench(design, "sim.tb_conv", {"mode": "random", "count": 24, "idle": 0.2,
                                             "backpressure": 0.3, "batch": 6, "seed": seed},
                     seed=seed)["cases"]
    timed = run_bench(design, "sim.tb_conv", {"mode": "timing", "count": 24, "seed": seed},
                      seed=seed)["cases"]
    for cases in (rand, timed):
        assert cases and not [c for c in cases if c["mismatches"]], cases
    wrong = [(c["layer"], c["cycles"], c["model_cycles"]) for c in timed
             if c["cycles"] != c["model_cycles"]]
    assert not wrong, f"seed {seed}: {wrong[:4]}"
    return rand, timed


def test_product_register(seed):
    """``product_register``: each MAC product registered once more as it leaves its multiplier,
    a stage more (4 x 2, depthwise beats and pools among the layers; one requantizer a product
    register, ``requant_dsp_blocks``, the other plain products). Bit-exact with idle streams
    and back-pressure, and every layer alone takes the model's cycles: one more than the same
    engine without the register."""
    from hwaccel.generators.conv.config import ConvConfig
    from hwaccel.generators.conv.perf import pipe_stages

    base = ConvConfig(lanes=4, block=2, max_width=7, max_height=6, max_cin=8, max_cout=8,
                      max_kernel=3, pool=True, requant_dsp=False, requant_dsp_blocks=1,
                      name="k4n2r")
    cfg = base.with_(product_register=True)
    assert pipe_stages(cfg) == pipe_stages(base) + 1
    _random_and_timed(cfg, seed)
