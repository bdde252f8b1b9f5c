"""Transformer encoders on the ``xla`` backend: the float IR in JAX (attention products,
softmax, layer norms, slices and joins of heads, positional constants, the mean or first-token
head) equals the module through torch-cpu, for pre- and post-norm layers, GELU and ReLU, causal
and not, patch and token inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import hwaccel
from hwaccel.models.transformer import TOKENS, DigitTransformer, TokenTransformer

#: Float32 on both sides; their summation orders differ, nothing else.
FLOAT_TOL = 1e-4


def _same_on_xla(model, x):
    cm = hwaccel.compile(model, x[:2], preset="tiny_attention", calibration=x)
    ref, got = cm.execute("torch-cpu", x), cm.execute("xla", x)
    assert got.logits.shape == ref.logits.shape
    np.testing.assert_allclose(got.logits, ref.logits, rtol=0, atol=FLOAT_TOL)
    with torch.no_grad():
        np.testing.assert_allclose(got.logits, model(x).numpy(), rtol=0, atol=FLOAT_TOL)


@pytest.mark.parametrize("norm_first, activation, pool, causal", [
    (True, "gelu", "mean", False), (False, "relu", "first", True)])
def test_digit_transformers_on_xla_equal_torch(norm_first, activation, pool, causal):
    torch.manual_seed(0)
    model = DigitTransformer(16, 2, 32, 1, norm_first=norm_first, activation=activation,
                             pool=pool, causal=causal).eval()
    _same_on_xla(model, torch.randn(8, TOKENS, 4, generator=torch.Generator().manual_seed(1)))


def test_a_token_transformer_on_xla_equals_torch():
    torch.manual_seed(2)
    model = TokenTransformer(16, 2, 32).eval()
    x = torch.randint(0, model.embed.num_embeddings, (8, TokenTransformer.INPUT[0]),
                      generator=torch.Generator().manual_seed(3))
    _same_on_xla(model, x)


def test_hand_written_attention_on_xla_equals_torch():
    """``q @ k.transpose(-2, -1)``, a softmax and ``@ v`` written out, with a LayerNorm."""

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.qkv, self.norm, self.fc = nn.Linear(8, 24), nn.LayerNorm(8), nn.Linear(8, 3)

        def forward(self, x):
            q, k, v = self.qkv(self.norm(x)).split(8, dim=-1)
            p = (q @ k.transpose(-2, -1) / 8 ** 0.5).softmax(-1)
            return self.fc((x + p @ v).mean(1))

    torch.manual_seed(4)
    _same_on_xla(Attn().eval(), torch.randn(8, 6, 8, generator=torch.Generator().manual_seed(5)))
