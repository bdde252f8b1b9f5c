"""The reference workloads: shapes, MAC counts and deterministic data (no training here)."""

from __future__ import annotations

import torch

from hwaccel.models import CNN, LSTMClassifier, digits, macs, tokens
from hwaccel.models.data import SEQ_LEN, SIGNAL


def test_cnn_matches_the_brief():
    model = CNN()
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    assert macs(model, (1, 28, 28)) == 2_794_240


def test_lstm_matches_the_brief():
    model = LSTMClassifier()
    assert model.embed.weight.shape == (10_000, 64)
    assert model(torch.zeros(3, SEQ_LEN, dtype=torch.int64)).shape == (3, 10)


def test_digits_split_is_fixed():
    a, b = digits(), digits()
    assert torch.equal(digits(size=32).y_test, a.y_test)  # the size leaves the split alone
    assert a.x_train.shape[1:] == (1, 28, 28) and len(a.y_train) + len(a.y_test) == 1797
    assert torch.equal(a.y_test, b.y_test) and float(a.x_train.max()) <= 1.0
    assert set(a.y_train.tolist()) == set(range(10))


def test_digits_read_as_scikit_learn_loads_them():
    """The digits are read from scikit-learn's bundled file without importing it; the images
    and labels equal its ``load_digits``'s, values and dtypes."""
    import numpy as np
    from sklearn.datasets import load_digits

    from hwaccel.models.data import _bundled_digits

    images, labels = _bundled_digits()
    want = load_digits()
    assert images.dtype == want.images.dtype and labels.dtype == want.target.dtype
    np.testing.assert_array_equal(images, want.images)
    np.testing.assert_array_equal(labels, want.target)


def test_token_task_is_deterministic_and_well_posed():
    s = tokens(n_train=200, n_test=50)
    assert torch.equal(s.x_test, tokens(n_train=200, n_test=50).x_test)
    for seq, label in zip(s.x_train.tolist(), s.y_train.tolist()):
        signal = [t % 10 for t in seq if t < SIGNAL]
        counts = {c: signal.count(c) for c in set(signal)}
        assert counts[label] > max(v for c, v in counts.items() if c != label) if len(
            counts) > 1 else counts[label] >= 2
