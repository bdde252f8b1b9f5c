"""Transformers quantized and run in integers: the torch int8 twin (:mod:`hwaccel.compiler.int8`)
equals the plain numpy reference of the integer IR (:mod:`hwaccel.compiler.qreference`) on every
value, for the trained digit transformer on the held-out digits and for random small encoders
(norm_first both ways, GELU or ReLU, causal or not, 1-4 heads, hand-written SDPA); the trained
model's int8 accuracy is within a point of float; lowering refuses attention by name."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, int8, ir, qreference
from hwaccel.compiler.lower import AttentionNotLowered, LoweringError
from hwaccel.compiler.quantize import quantize, quantize_input
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace
from hwaccel.models import load
from hwaccel.models.transformer import TOKENS, DigitTransformer, digit_patches
from hwaccel.numerics import PROB_SCALE

#: The issue's target: int8 top-1 within one point of float on the held-out digits.
MAX_GAP = 0.01


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def digits():
    return digit_patches()


def integer_runs(qg: ir.QGraph, x) -> np.ndarray:
    """The twin's outputs, after checking that they equal the numpy reference's exactly."""
    x_int = quantize_input(qg, x)
    twin = int8.forward(qg, x_int)
    ref = qreference.forward(qg, x_int)
    assert twin.dtype == ref.dtype == np.int64 and twin.shape == ref.shape
    np.testing.assert_array_equal(twin, ref)
    return twin


def test_trained_transformer_int8_is_exact_and_accurate(digits):
    model, split = load("transformer")
    graph = trace(model, split.x_train[:2])
    qg = quantize(graph, split.x_train[:512])   # as `hwaccel compare` calibrates
    kinds = [type(op).__name__ for op in qg.ops]
    assert kinds.count("QMatMul") == 8 and kinds.count("QSoftmax") == 4
    assert kinds.count("QLayerNorm") == 4 and kinds.count("QGelu") == 2
    assert kinds.count("QConcat") == 2 and kinds.count("QAddConstant") == 1
    for op in qg.ops:
        if isinstance(op, ir.QMatMul) and op.transpose_b:   # 1/sqrt(16) folded in
            real = op.multiplier / 2.0**op.shift
            assert real == pytest.approx(0.25 * op.s_a * op.s_b / op.s_out, rel=2**-15)
        if isinstance(op, ir.QMatMul) and not op.transpose_b:
            assert op.s_a == PROB_SCALE                     # P . V reads 7-bit probabilities
        if isinstance(op, ir.QConcat):                      # heads share the join's scale
            assert all(qg.op(v).s_out == op.s for v in op.inputs)
    logits = integer_runs(qg, split.x_test)
    y = split.y_test.numpy()
    acc_int8 = float((logits.argmax(1) == y).mean())
    acc_float = float((float_forward(graph, split.x_test).numpy().argmax(1) == y).mean())
    print(f"transformer: float top-1 {acc_float:.4f}, int8 {acc_int8:.4f}, gap "
          f"{acc_float - acc_int8:+.4f} on {len(y)} held-out digits")
    assert acc_float >= 0.95
    assert acc_float - acc_int8 <= MAX_GAP


class HandWritten(nn.Module):
    """A pre-norm block written out: one qkv Linear split into heads by view/transpose,
    F.scaled_dot_product_attention (``sdpa``) or q @ k^T scaled, a causal masked_fill and
    F.softmax (``manual``), a tanh-GELU MLP, a final F.layer_norm, a first-token head."""

    def __init__(self, kind: str, heads: int, width: int, causal: bool):
        super().__init__()
        self.kind, self.heads, self.causal = kind, heads, causal
        self.register_buffer("keep", torch.tril(torch.ones(TOKENS, TOKENS)).view(
            1, 1, TOKENS, TOKENS))
        self.embed = nn.Linear(4, width)
        self.pos = nn.Parameter(torch.randn(1, TOKENS, width) * 0.3)
        self.ln1, self.ln2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.proj = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(approximate="tanh"),
                                 nn.Linear(2 * width, width))
        self.head = nn.Linear(width, 10)

    def forward(self, x):
        x = self.embed(x) + self.pos
        b, t, c = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        if self.kind == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            if self.causal:
                att = att.masked_fill(self.keep == 0, float("-inf"))
            y = F.softmax(att, dim=-1) @ v
        x = x + self.proj(y.transpose(1, 2).contiguous().view(b, t, c))
        x = x + self.mlp(self.ln2(x))
        return self.head(F.layer_norm(x, (c,))[:, 0])


def random_encoder(seed: int) -> tuple[nn.Module, str]:
    """Seed ``k``: norm_first ``k % 2``, ReLU when ``k // 2`` is odd, causal when ``k // 4`` is
    odd, ``k % 4 + 1`` heads; width, feed-forward, depth and head drawn from the seed."""
    rng = np.random.default_rng(seed)
    heads = seed % 4 + 1
    width = heads * int(rng.choice([4, 8]))
    cfg = dict(norm_first=bool(seed % 2), activation="relu" if seed // 2 % 2 else "gelu",
               causal=bool(seed // 4 % 2), pool=str(rng.choice(["mean", "first"])))
    torch.manual_seed(seed)
    model = DigitTransformer(width, heads, int(rng.choice([16, 32])), int(rng.integers(1, 3)),
                             **cfg)
    return model, f"heads={heads} width={width} {cfg}"


@pytest.mark.parametrize("seed", range(8))
def test_random_encoders_twin_equals_reference(digits, seed):
    model, what = random_encoder(seed)
    graph = trace(model, digits.x_train[:2])
    qg = quantize(graph, digits.x_train[:96])
    softmax = [op for op in qg.ops if isinstance(op, ir.QSoftmax)]
    assert softmax and all(op.causal == model.causal for op in softmax), what
    assert len(softmax) % (seed % 4 + 1) == 0, what
    out = integer_runs(qg, digits.x_test[:64])
    assert np.abs(out).max() > 0, what        # the values flowed through every op


@pytest.mark.parametrize("kind, heads, causal", [("sdpa", 1, False), ("sdpa", 3, True),
                                                  ("manual", 2, True)])
def test_hand_written_attention_twin_equals_reference(digits, kind, heads, causal):
    torch.manual_seed(10 + heads)
    model = HandWritten(kind, heads, 8 * heads, causal)
    graph = trace(model, digits.x_train[:2])
    qg = quantize(graph, digits.x_train[:96])
    assert [type(op).__name__ for op in qg.ops].count("QMatMul") == 2 * heads
    assert any(isinstance(op, ir.QToken) for op in qg.ops)
    assert [op.causal for op in qg.ops if isinstance(op, ir.QSoftmax)] == [causal] * heads
    integer_runs(qg, digits.x_test[:64])


def test_lowering_refuses_attention_by_name(digits):
    model = DigitTransformer(16, 2, 16, 1)
    with pytest.raises(UnsupportedOp) as info:
        hwaccel.compile(model, digits.x_train[:4])
    assert isinstance(info.value, AttentionNotLowered) and isinstance(info.value, LoweringError)
    msg = str(info.value)
    # the first op the attention units run (the positional add before it is an ADD)
    assert "layer 'encoder.layers.0.norm1' is LayerNorm (attention)" in msg
    assert "no accelerator command for it on accel_default (no attention units" in msg
    cm = hwaccel.compile(model, digits.x_train[:4], calibration=digits.x_train[:64],
                         strict=False)
    assert isinstance(cm.refusal, AttentionNotLowered)
    with pytest.raises(AttentionNotLowered):
        cm.lower(cm.quantize_input(digits.x_test[:2]))
    x_int = cm.quantize_input(digits.x_test[:16])    # the integer twin still runs it
    np.testing.assert_array_equal(cm.int8_forward(x_int), qreference.forward(cm.qgraph, x_int))
    assert "no command yet (attention" in cm.describe()
    rows = {r.layer: r for r in cm.saturation(digits.x_test[:16])}   # counted by the twin
    for op in cm.qgraph.ops:
        if isinstance(op, (ir.QMatMul, ir.QAddConstant)):
            per_sample = int(np.prod(cm.qgraph.shapes()[op.name]))
            assert rows[op.name].values == 16 * per_sample


def test_a_join_at_different_scales_is_refused_by_name():
    w = np.eye(4) * 3.0
    graph = ir.Graph((TOKENS, 4), False, (
        ir.Linear("a", w, np.zeros(4), False),
        ir.Concat("joined", inputs=("a", ir.INPUT)), ir.TokenMean("m")))
    x = torch.rand(8, TOKENS, 4)
    with pytest.raises(ValueError, match=r"op 'joined' \(Concat\) joins values at different "
                                         r"scales .* not 'a', 'input'"):
        quantize(graph, x)
