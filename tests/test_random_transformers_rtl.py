"""Random small transformer encoders on the ``tiny_attention`` RTL (Verilator C++ harness).

A fixed sample of seeds (:data:`SEEDS`) draws encoders (:func:`random_transformer`: 1 or 2
heads, widths 8 or 16, sequence lengths 3 to 16, ``norm_first`` both ways, causal or not, GELU or
ReLU, mean or first-token pooling (the mean where the sequence is at most 8 long, the width of
tiny's average pool), 1 or 2 layers), compiles them for ``tiny_attention`` and runs
their programs the runtime's ``rtl`` way at batch 2: the outputs equal the golden interpreter's
and the integer twin's bit for bit, and every counter of every program equals the cycle model's
(:func:`hwaccel.generators.accel.perf.program_perf`). The draws together must cover
:data:`COVERED`, checked from the drawn configurations. The property tests on the golden
interpreter alone: ``tests/test_attention_accel_lower.py``.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
import torch
from rtl_checks import programs_on_the_rtl
from torch import nn

import hwaccel
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.model import run_program

CFG = MODEL_PRESETS["tiny_attention"]
BATCH = 2
SEEDS = (0, 3, 4, 6, 9)
#: What the sample must exercise, as :func:`_features` names it.
COVERED = {"1 head", "2 heads", "width 8", "width 16", "norm first", "norm last", "causal",
           "not causal", "short sequence", "full sequence", "2 layers", "gelu", "relu", "mean pool",
           "first-token pool"}

pytestmark = pytest.mark.usefixtures("one_thread")


class RandomEncoder(nn.Module):
    """``(N, tokens, features)`` -> Linear ``width`` + learned positions -> ``layers`` encoder
    layers -> mean or first token -> Linear 3."""

    def __init__(self, tokens, features, width, heads, ffn, layers, *, norm_first, causal,
                 activation, pool):
        super().__init__()
        self.spec = dict(tokens=tokens, features=features, width=width, heads=heads, ffn=ffn,
                         layers=layers, norm_first=norm_first, causal=causal,
                         activation=activation, pool=pool)
        self.embed = nn.Linear(features, width)
        self.pos = nn.Parameter(torch.randn(1, tokens, width) * 0.3)
        layer = nn.TransformerEncoderLayer(width, heads, ffn, 0.0, activation, batch_first=True,
                                           norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(width, 3)
        self.causal, self.pool = causal, pool
        mask = nn.Transformer.generate_square_subsequent_mask(tokens) if causal else None
        self.register_buffer("mask", mask, persistent=False)

    def forward(self, x):
        x = self.embed(x) + self.pos
        x = self.encoder(x, mask=self.mask, is_causal=self.causal)
        return self.head(x.mean(dim=1) if self.pool == "mean" else x[:, 0])


def random_transformer(seed: int) -> RandomEncoder:
    """An encoder that fits ``tiny_attention`` (sequences up to its max_len, LayerNorm over at
    most its max_channels, heads on word boundaries), drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    width = int(rng.choice([8, 16]))
    heads = int(rng.choice([1, 2]))
    torch.manual_seed(seed)
    return RandomEncoder(int(rng.integers(3, CFG.attention.max_len + 1)), int(rng.integers(2, 7)),
                         width, heads, int(rng.choice([8, 16, 24])), int(rng.integers(1, 3)),
                         norm_first=bool(rng.integers(2)), causal=bool(rng.integers(2)),
                         activation=str(rng.choice(["gelu", "relu"])),
                         pool=str(rng.choice(["mean", "first"]))).eval()


def _fitting(seed: int) -> RandomEncoder:
    """:func:`random_transformer`, pooling the first token where the sequence is longer than
    the mean over tokens runs on ``tiny_attention`` (its average pool: up to 8 wide)."""
    model = random_transformer(seed)
    if model.spec["tokens"] > 8:
        model.pool = model.spec["pool"] = "first"
    return model


def _features(spec: dict) -> set[str]:
    return {f"{spec['heads']} head" + ("s" if spec["heads"] > 1 else ""),
            f"width {spec['width']}", "norm first" if spec["norm_first"] else "norm last",
            "causal" if spec["causal"] else "not causal",
            "full sequence" if spec["tokens"] == CFG.attention.max_len else "short sequence",
            f"{spec['layers']} layer" + ("s" if spec["layers"] > 1 else ""), spec["activation"],
            "mean pool" if spec["pool"] == "mean" else "first-token pool"}


@cache
def _compiled(seed: int):
    model = _fitting(seed)
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(48, model.spec["tokens"], model.spec["features"], generator=g) * 4 - 2
    cm = hwaccel.compile(model, x[:2], preset=CFG, calibration=x, strict=False)
    assert cm.refusal is None, f"seed {seed}: {model.spec}: {cm.refusal}"
    x_int = cm.quantize_input(x[-BATCH:])
    return model, cm, x_int, cm.int8_forward(x_int)


def test_the_sample_covers_the_configurations():
    got = set().union(*(_features(_compiled(s)[0].spec) for s in SEEDS))
    assert COVERED <= got, f"the sample {SEEDS} misses {sorted(COVERED - got)}"


HOST_CONFIG = CFG   # the accelerator the `host` fixture (conftest) builds


@pytest.mark.parametrize("seed", SEEDS)
def test_random_transformer_on_the_rtl(host, seed):
    model, cm, x_int, twin = _compiled(seed)
    why = f"seed {seed}: {model.spec}"
    lowered = cm.lower(x_int)
    act = lowered.builder.act
    for k, load in enumerate(lowered.loads()):
        gold = run_program(CFG, act, load.wgt, load.commands)
        assert gold.done and not gold.error, f"{why}: golden program {k + 1}: {gold.cause}"
        act = gold.act
    expect = lowered.ints(act)
    image = programs_on_the_rtl(host, CFG, lowered, why, limit=2_000_000)
    np.testing.assert_array_equal(lowered.ints(image), expect, err_msg=why)
    np.testing.assert_array_equal(np.asarray(expect).reshape(BATCH, -1),
                                  np.asarray(twin).reshape(BATCH, -1), err_msg=why)
