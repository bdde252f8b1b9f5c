"""GEMM workloads for ``hwaccel parallel``: ``--model gemm<K>`` is one ``nn.Linear(K, K,
bias=False)`` applied to a batch of ``K``-wide rows, so ``--batch M`` makes an ``M x K x K``
GEMM (``gemm256 --batch 256``: the 256^3 GEMM of the capacity case).

Its weights and rows are seeded random values (a GEMM has no training set and no score: the
command compares integer outputs with golden, which is all it needs). :func:`load` answers
these names and passes every other to :func:`hwaccel.models.train.load`.
"""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["GEMM", "gemm", "load"]

#: ``gemm<K>``, ``K`` the reduction and output width.
GEMM = re.compile(r"gemm(\d+)")

#: Rows in the held-out batch (the most ``--batch`` takes) and in the calibration set.
ROWS = 1024


def gemm(k: int, *, seed: int = 0):
    """``(module, split)``: ``nn.Linear(k, k, bias=False)`` with seeded weights, and a
    :class:`~hwaccel.models.data.Split` of :data:`ROWS` seeded rows each side (labels zero)."""
    from ..models.data import Split

    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 4096:
        raise ValueError(f"a GEMM's width must be an integer in [1, 4096], not {k!r}")
    torch.manual_seed(seed)
    module = nn.Sequential(nn.Linear(k, k, bias=False)).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    x_train, x_test = (torch.randn(ROWS, k, generator=gen) for _ in range(2))
    zeros = torch.zeros(ROWS, dtype=torch.int64)
    return module, Split(x_train, zeros, x_test, zeros)


def load(name: str):
    """``(module, split)`` of the workload ``name``: :func:`gemm` for ``gemm<K>``, else the
    trained reference model (:func:`hwaccel.models.train.load`)."""
    m = GEMM.fullmatch(name)
    if m:
        return gemm(int(m.group(1)))
    from ..models.train import load as trained

    return trained(name)
