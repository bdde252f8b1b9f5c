"""Operand tensors for test cases, shared by every generator's ``cases`` module.

The styles name the corners a datapath must get right: ``min`` and ``max`` fill a tensor with
one extreme (the largest products and sums), ``extremes`` draws each element from the two
extremes (sign changes at full magnitude), anything else is uniform over the format.
"""

from __future__ import annotations

import numpy as np

from ..numerics import INT8, IntFormat

__all__ = ["fill"]


def fill(rng: np.random.Generator, shape, style: str, fmt: IntFormat = INT8) -> np.ndarray:
    """An int64 array of ``shape`` holding ``fmt`` values in ``style`` (see the module)."""
    lo, hi = fmt.min, fmt.max
    if style == "min":
        return np.full(shape, lo, dtype=np.int64)
    if style == "max":
        return np.full(shape, hi, dtype=np.int64)
    if style == "extremes":
        return rng.choice(np.array([lo, hi], dtype=np.int64), size=shape)
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
