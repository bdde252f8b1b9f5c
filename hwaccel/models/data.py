"""Data for the reference models, generated or bundled: nothing is downloaded.

* :func:`digits` -- scikit-learn's bundled 8x8 handwritten digits (1,797 images), upsampled
  bilinearly to 28x28 (or another size) in [0, 1], with a fixed seeded 80/20 train/test split.
* :func:`tokens` -- a deterministic synthetic token-sequence task. Tokens below ``SIGNAL``
  carry a class (``token % 10``); the rest are noise. Each sequence holds a few signal tokens
  whose majority class is the label, at random positions among noise. The model must learn
  which of 500 tokens carry which class and count them over the sequence: learnable in
  seconds, not trivial (a bag of noise says nothing; a single signal token is not enough).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["Split", "digits", "tokens", "SEQ_LEN", "SIGNAL"]

SEQ_LEN = 16
SIGNAL = 500


@dataclass(frozen=True)
class Split:
    """Inputs and labels of a train and a held-out test set."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def _bundled_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits, ``(images (1797, 8, 8) float64, labels (1797,))``, read
    from the ``digits.csv.gz`` it installs, as its ``load_digits`` reads them, without
    importing scikit-learn (about 3.6 s, the slowest part of loading the digits)."""
    import gzip
    import importlib.util
    from pathlib import Path

    spec = importlib.util.find_spec("sklearn")   # locates the package; runs none of it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the digits are scikit-learn's: pip install scikit-learn")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: scikit-learn's bundled digits are not there")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(int, copy=False)


def digits(seed: int = 0, size: int = 28) -> Split:
    """The digits at ``size`` x ``size`` (28 for the brief's CNN), ``(N, 1, size, size)``."""
    images, target = _bundled_digits()
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    y = torch.tensor(target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    cut = int(0.8 * len(y))
    tr, te = order[:cut], order[cut:]
    return Split(x[tr], y[tr], x[te], y[te])


def _sequences(n: int, rng: np.random.Generator, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    seqs = rng.integers(SIGNAL, vocab, size=(n, SEQ_LEN))
    labels = rng.integers(0, 10, size=n)
    for i in range(n):
        k = int(rng.integers(3, 7))                     # signal tokens in this sequence
        majority = k // 2 + 1
        classes = [labels[i]] * majority
        others = rng.choice([c for c in range(10) if c != labels[i]], size=k - majority,
                            replace=False)
        classes += list(others)
        # Other classes appear at most once each, so the label is the strict majority.
        pos = rng.choice(SEQ_LEN, size=k, replace=False)
        for p, c in zip(pos, classes):
            seqs[i, p] = int(rng.integers(0, SIGNAL // 10)) * 10 + int(c)
    return seqs, labels


def tokens(n_train: int = 6_000, n_test: int = 1_000, seed: int = 0,
           vocab: int = 10_000) -> Split:
    rng = np.random.default_rng(seed)
    xtr, ytr = _sequences(n_train, rng, vocab)
    xte, yte = _sequences(n_test, rng, vocab)
    t = lambda a: torch.from_numpy(a).to(torch.int64)  # noqa: E731
    return Split(t(xtr), t(ytr), t(xte), t(yte))
