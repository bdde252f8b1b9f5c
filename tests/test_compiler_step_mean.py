"""The mean over a sequence's steps, ``out.mean(1)``, of an LSTM's outputs or of token
embeddings (an embedding bag), is one AVGPOOL whose window is the whole sequence: a preset
without attention units runs it, and only the ops that need those units (MATMUL, SOFTMAX,
LAYERNORM, GELU) are refused on it. Golden equal to the integer twin, the RTL equal to golden,
and the float IR on XLA equal to torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from compile_checks import golden_twin_float, rtl_equals_golden
from torch import nn

import hwaccel
from hwaccel.compiler.lower import AttentionNotLowered


class LstmMean(nn.Module):
    """An LSTM over the steps, its outputs averaged over time into a Linear (sized for tiny's
    LSTM cell: 6 inputs, 5 hidden)."""

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        return self.fc(self.lstm(x)[0].mean(1))


class EmbeddingBag(nn.Module):
    """Token embeddings averaged over the tokens (fastText's classifier)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(torch.mean(self.emb(x), dim=1))


def test_an_lstms_mean_over_its_steps_runs_without_attention_units():
    torch.manual_seed(0)
    model = LstmMean().eval()
    x = torch.randn(32, 9, 6, generator=torch.Generator().manual_seed(1))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    assert cm.config.attention is None
    assert "AVGPOOL per sample (window: the sequence)" in cm.describe()
    golden_twin_float(cm, model, x[:8], 0.15)
    rtl_equals_golden(cm, x[:3])


@pytest.mark.parametrize("preset", ["tiny", "ecp5_128"])
def test_an_embedding_bag_runs_without_attention_units(preset):
    torch.manual_seed(2)
    model = EmbeddingBag().eval()
    x = torch.randint(0, 40, (32, 12), generator=torch.Generator().manual_seed(3))
    cm = hwaccel.compile(model, x[:2], preset=preset, calibration=x)
    gold = cm.execute("golden", x[:3])
    np.testing.assert_array_equal(gold.int_logits, cm.int8_forward(cm.quantize_input(x[:3])))
    assert np.count_nonzero(gold.int_logits) > gold.int_logits.size // 2
    if preset == "tiny":
        rtl_equals_golden(cm, x[:3])


def test_self_attention_is_still_refused_by_the_op_that_needs_the_units():
    """A transformer's mean-pooled head on a preset without attention units is refused at the
    attention's MATMUL or SOFTMAX, not at the mean."""
    torch.manual_seed(4)
    model = nn.Sequential(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True, dropout=0.0))
    x = torch.randn(16, 6, 8)
    with pytest.raises(AttentionNotLowered, match=r"is (MatMul|Softmax|LayerNorm) \(attention\)"):
        hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
