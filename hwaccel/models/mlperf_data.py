"""Stand-in data for the MLPerf Tiny reference models: shaped like the real inputs, bundled or
generated, seeded and deterministic; nothing is downloaded.

* :func:`digits_rgb` (ResNet-8, CIFAR-10's stand-in) -- scikit-learn's bundled 8x8 digits,
  upsampled bilinearly to ``size`` x ``size`` and repeated over 3 channels, 10 classes, with
  :func:`hwaccel.models.data.digits`'s fixed 80/20 split.
* :func:`wake_words` (MobileNetV1, Visual Wake Words' stand-in) -- the same at 96x96, two
  classes: 1 ("person") for the digits 5-9, 0 for 0-4.
* :func:`keywords` (DS-CNN, Speech Commands' stand-in) -- 49 frames x 10 MFCC-like coefficients,
  12 classes in the reference's order: 10 keywords, then silence (10), then unknown (11). Each
  keyword is a fixed sequence of three "phones" (a coefficient vector held for 5-9 frames); a
  sample places one at a random onset with random gain and per-phone duration jitter, over
  Gaussian background noise. Silence is the background alone; an unknown word is three phones
  that spell no keyword (half fresh random phones, half keyword phones in a foreign order).
* :func:`machine_sounds` (FC autoencoder, ToyADMOS's stand-in) -- 640-dim vectors, 5 frames x
  128 log-mel-like bins of a machine hum: a spectral slope plus 5 harmonics of a fundamental that
  varies a little from sample to sample. Training holds normal samples only (labels 0); the test
  split holds as many anomalous ones (labels 1): a speed change (the fundamental off its range),
  a squeak (an extra narrow peak) or a knock (broadband energy in one frame).

The task definitions (keyword phones, machine harmonics) come from fixed seeds of their own, so
``seed`` draws other samples of the same task.
"""

from __future__ import annotations

import numpy as np
import torch

from .data import Split, digits

__all__ = ["digits_rgb", "wake_words", "keywords", "machine_sounds", "FRAMES", "COEFFS",
           "KEYWORDS", "SILENCE", "UNKNOWN", "MELS", "AE_FRAMES"]

FRAMES, COEFFS = 49, 10          # DS-CNN input: 49 time steps x 10 MFCC coefficients
KEYWORDS, SILENCE, UNKNOWN = 10, 10, 11
PHONES, NOISE = 3, 1.5           # phones per word; background noise (std) against unit phones
MELS, AE_FRAMES = 128, 5         # FC autoencoder input: 5 frames x 128 mel bins = 640
_KEYWORD_TASK_SEED, _MACHINE_TASK_SEED = 20_210_607, 20_200_301


def digits_rgb(size: int = 32, seed: int = 0) -> Split:
    """Digits at ``size`` x ``size`` x 3 (the grey image in each channel), labels 0-9."""
    s = digits(seed, size=size)
    rgb = lambda x: x.expand(-1, 3, -1, -1).contiguous()  # noqa: E731
    return Split(rgb(s.x_train), s.y_train, rgb(s.x_test), s.y_test)


def wake_words(seed: int = 0) -> Split:
    """Digits at 96x96x3, label 1 ("person") for 5-9 and 0 for 0-4."""
    s = digits_rgb(96, seed)
    return Split(s.x_train, (s.y_train >= 5).long(), s.x_test, (s.y_test >= 5).long())


def _phones() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(_KEYWORD_TASK_SEED)
    return (rng.normal(0.0, 1.0, (KEYWORDS, PHONES, COEFFS)),
            rng.integers(5, 10, (KEYWORDS, PHONES)))


def _utterances(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    phones, durations = _phones()
    labels = np.arange(n) % (KEYWORDS + 2)
    rng.shuffle(labels)
    x = rng.normal(0.0, NOISE, (n, FRAMES, COEFFS))
    for i, label in enumerate(labels):
        if label == SILENCE:
            continue
        if label < KEYWORDS:
            word, lengths = phones[label], durations[label]
        elif rng.random() < 0.5:  # unknown: fresh phones
            word, lengths = rng.normal(0.0, 1.0, (PHONES, COEFFS)), rng.integers(5, 10, PHONES)
        else:  # unknown: keyword phones, each from another keyword than the one before
            ks = [int(rng.integers(KEYWORDS))]
            for _ in range(PHONES - 1):
                ks.append(int((ks[-1] + rng.integers(1, KEYWORDS)) % KEYWORDS))
            word = np.stack([phones[k, j] for j, k in enumerate(ks)])
            lengths = np.array([durations[k, j] for j, k in enumerate(ks)])
        lengths = lengths + rng.integers(-1, 2, PHONES)
        t = int(rng.integers(0, FRAMES - lengths.sum() + 1))
        gain = rng.uniform(0.7, 1.3)
        for phone, d in zip(word, lengths):
            x[i, t:t + d] += gain * phone
            t += d
    return x, labels


def keywords(n_train: int = 1_500, n_test: int = 600, seed: int = 0) -> Split:
    """Synthetic keyword spotting, ``(N, 1, 49, 10)`` float32, labels 0-11 (balanced)."""
    rng = np.random.default_rng(seed)
    xtr, ytr = _utterances(n_train, rng)
    xte, yte = _utterances(n_test, rng)
    img = lambda a: torch.from_numpy(a).float().unsqueeze(1)  # noqa: E731
    return Split(img(xtr), torch.from_numpy(ytr).long(), img(xte), torch.from_numpy(yte).long())


def _hum(n: int, rng: np.random.Generator, f0: np.ndarray) -> np.ndarray:
    """Log-mel-like frames of a machine with fundamental ``f0`` (in bins), shape (n, 5, 128)."""
    base = np.random.default_rng(_MACHINE_TASK_SEED).uniform(0.5, 1.0, 5)  # harmonic levels
    bins = np.arange(MELS)
    spectrum = np.broadcast_to(0.6 * np.exp(-bins / 40.0), (n, MELS)).copy()
    for h in range(1, 6):
        level = base[h - 1] * rng.uniform(0.8, 1.2, (n, 1))
        spectrum += level * np.exp(-((bins - h * f0[:, None]) ** 2) / (2 * 1.5 ** 2))
    frames = spectrum[:, None, :] * rng.uniform(0.95, 1.05, (n, AE_FRAMES, 1))
    return frames + rng.normal(0.0, 0.05, (n, AE_FRAMES, MELS))


def _normal(n: int, rng: np.random.Generator) -> np.ndarray:
    return _hum(n, rng, rng.uniform(10.0, 12.0, n))


def _anomalous(n: int, rng: np.random.Generator) -> np.ndarray:
    kind = np.arange(n) % 3
    f0 = rng.uniform(10.0, 12.0, n)
    slow_or_fast = np.where(rng.random(n) < 0.5, rng.uniform(9.0, 9.8, n),
                            rng.uniform(12.2, 13.0, n))
    f0 = np.where(kind == 0, slow_or_fast, f0)                          # speed change
    x = _hum(n, rng, f0)
    bins = np.arange(MELS)
    for i in np.flatnonzero(kind == 1):                                 # squeak
        x[i] += rng.uniform(0.15, 0.35) * np.exp(-((bins - rng.uniform(20, 120)) ** 2) / 2.0)
    for i in np.flatnonzero(kind == 2):                                 # knock
        x[i, rng.integers(AE_FRAMES)] += rng.uniform(0.1, 0.25)
    return x


def machine_sounds(n_train: int = 2_000, n_test: int = 300, seed: int = 0) -> Split:
    """Anomaly detection, ``(N, 640)`` float32: ``n_train`` normal training vectors (labels 0);
    ``n_test`` normal then ``n_test`` anomalous test vectors, shuffled (labels 0 and 1)."""
    rng = np.random.default_rng(seed)
    xtr = _normal(n_train, rng)
    xte = np.concatenate([_normal(n_test, rng), _anomalous(n_test, rng)])
    yte = np.repeat([0, 1], n_test)
    order = rng.permutation(2 * n_test)
    flat = lambda a: torch.from_numpy(a.reshape(len(a), -1)).float()  # noqa: E731
    return Split(flat(xtr), torch.zeros(n_train, dtype=torch.int64), flat(xte[order]),
                 torch.from_numpy(yte[order]).long())
