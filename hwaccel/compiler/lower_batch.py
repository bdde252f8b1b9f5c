"""The lowering's batch-level helpers: the per-sample tensors the host stores, the weight
groups one sample runs as, and the largest batch that :func:`.lower.lower` fits."""

from __future__ import annotations

import numpy as np

from ..generators.accel.config import AccelConfig
from . import ir
from .builders import Program
from .memory import DoesNotFit

__all__ = ["dry_lowered", "max_batch", "weight_groups"]


def _inputs(qg: ir.QGraph, x_int: np.ndarray) -> list[np.ndarray]:
    """Per-sample ``C x H x W`` tensors to store (an embedded sequence as ``D x 1 x T``)."""
    if qg.tokens:
        return [s.T[:, None, :] for s in qg.ops[0].table[x_int]]
    if x_int.ndim == 4:
        return list(x_int)
    if x_int.ndim == 3:
        return [s.T[:, None, :] for s in x_int]
    return [s[:, None, None] for s in x_int]


def weight_groups(qg: ir.QGraph, cfg: AccelConfig) -> list[Program]:
    """The programs one sample runs as (the layers of each, its weight words): more than one
    when the weights do not all fit the weight scratchpad."""
    return list(dry_lowered(qg, cfg).programs)


def dry_lowered(qg: ir.QGraph, cfg: AccelConfig):
    """One sample's dry lowering (:func:`.lower.lower` with ``dry``): its programs and
    banded chains, with no command encoded past each layer's first."""
    return _lower(qg, cfg, _dummy(qg, 1), dry=True)


def _dummy(qg: ir.QGraph, batch: int) -> np.ndarray:
    return np.zeros((batch, *qg.input_shape), dtype=np.int64)


def _lower(*args, **kw):
    from .lower import lower

    return lower(*args, **kw)


def max_batch(qg: ir.QGraph, cfg: AccelConfig) -> int:
    """The largest batch that :func:`lower` fits on ``cfg`` (raises what batch 1 raises)."""
    _lower(qg, cfg, _dummy(qg, 1), dry=True)

    def fits(n: int) -> bool:
        try:
            _lower(qg, cfg, _dummy(qg, n), dry=True)
            return True
        except DoesNotFit:
            return False

    lo, hi = 1, 2
    while hi <= cfg.act_depth and fits(hi):  # every sample takes at least one input word
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo
