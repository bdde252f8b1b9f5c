"""The reference workloads: shapes, MAC counts and deterministic data (no training here)."""

from __future__ import annotations

import torch

from hwaccel.models import CNN, LSTMClassifier, digits, tokens
from hwaccel.models.data import SEQ_LEN, SIGNAL


def _macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    total = 0

    def conv(mod, inp, out):
        nonlocal total
        total += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]

    def lin(mod, inp, out):
        nonlocal total
        total += out.numel() * mod.in_features

    hooks = [m.register_forward_hook(conv) for m in model.modules()
             if isinstance(m, torch.nn.Conv2d)]
    hooks += [m.register_forward_hook(lin) for m in model.modules()
              if isinstance(m, torch.nn.Linear)]
    model(x)
    for h in hooks:
        h.remove()
    return total


def test_cnn_matches_the_brief():
    model = CNN()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert _macs(model, torch.zeros(1, 1, 28, 28)) == 2_794_240


def test_lstm_matches_the_brief():
    model = LSTMClassifier()
    assert model.embed.weight.shape == (10_000, 64)
    assert model(torch.zeros(3, SEQ_LEN, dtype=torch.int64)).shape == (3, 10)


def test_digits_split_is_fixed():
    a, b = digits(), digits()
    assert a.x_train.shape[1:] == (1, 28, 28) and len(a.y_train) + len(a.y_test) == 1797
    assert torch.equal(a.y_test, b.y_test) and float(a.x_train.max()) <= 1.0
    assert set(a.y_train.tolist()) == set(range(10))


def test_token_task_is_deterministic_and_well_posed():
    s = tokens(n_train=200, n_test=50)
    assert torch.equal(s.x_test, tokens(n_train=200, n_test=50).x_test)
    for seq, label in zip(s.x_train.tolist(), s.y_train.tolist()):
        signal = [t % 10 for t in seq if t < SIGNAL]
        counts = {c: signal.count(c) for c in set(signal)}
        assert counts[label] > max(v for c, v in counts.items() if c != label) if len(
            counts) > 1 else counts[label] >= 2
