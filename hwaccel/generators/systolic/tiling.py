"""Software tiling of an arbitrary GEMM onto the array's streams (shared by tests and benchmarks).

``plan_gemm`` turns ``A (M x K) @ B (K x N)`` into the exact beat sequences the array consumes and
knows how to assemble the result rows it emits back into ``M x N``. The same tile order is used by
the golden model (:mod:`.model`), so every result row can be compared exactly, not just the sum.

Tile order
----------
OS: for each M-tile (R rows), for each N-tile (C columns): K steps, then R result rows.
WS: for each N-tile, for each K-fold (R rows of B): R weight beats, M activation beats and M rows
of partial sums; the partial sums of an N-tile's folds add up to its result columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...hdl.pack import pack_rows, unpack_rows
from .config import SystolicConfig

__all__ = ["GemmPlan", "plan_gemm", "check_operands"]


def check_operands(cfg: SystolicConfig, a: np.ndarray, b: np.ndarray) -> tuple[int, int, int]:
    """Validate shapes and value ranges; returns ``(M, K, N)``."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"operands must be 2-D, not shapes {a.shape} and {b.shape}")
    (m, k), (k2, n) = a.shape, b.shape
    if k != k2 or min(m, k, n) < 1:
        raise ValueError(f"cannot multiply {a.shape} by {b.shape}")
    lo, hi = cfg.operand.min, cfg.operand.max
    for name, x in (("A", a), ("B", b)):
        if x.size and (x.min() < lo or x.max() > hi):
            raise ValueError(f"{name} must hold {cfg.in_bits}-bit signed values in [{lo}, {hi}]")
    if cfg.dataflow == "os" and k > cfg.max_k:
        raise ValueError(
            f"K must be at most {cfg.max_k} for a {cfg.acc_bits}-bit accumulator, not {k}"
        )
    return m, k, n


def _pad(x: np.ndarray, rows: int, cols: int) -> np.ndarray:
    out = np.zeros((rows, cols), dtype=np.int64)
    out[: x.shape[0], : x.shape[1]] = x
    return out


@dataclass(frozen=True)
class GemmPlan:
    """The streams for one GEMM and how to read its results back."""

    config: SystolicConfig
    m: int
    k: int
    n: int
    activations: list[int]   # packed {data, last} words
    weights: list[int]       # packed weight rows
    result_count: int        # result beats the array will emit

    @property
    def tiles(self) -> tuple[int, int, int]:
        R, C = self.config.rows, self.config.cols
        return math.ceil(self.m / R), math.ceil(self.k / R), math.ceil(self.n / C)

    def assemble(self, words: list[int]) -> np.ndarray:
        """``M x N`` int64 result from the packed result words, in emission order."""
        rows, lasts = self.result_rows(words)
        return self.assemble_rows(rows)

    def result_rows(self, words: list[int]) -> tuple[np.ndarray, list[int]]:
        cfg = self.config
        if len(words) != self.result_count:
            raise ValueError(f"expected {self.result_count} result rows, got {len(words)}")
        rows, lasts = unpack_rows(words, cfg.acc_bits, cfg.cols)
        return np.array(rows, dtype=np.int64).reshape(-1, cfg.cols), lasts

    def assemble_rows(self, rows: np.ndarray) -> np.ndarray:
        cfg = self.config
        R, C = cfg.rows, cfg.cols
        mt, kt, nt = self.tiles
        out = np.zeros((mt * R, nt * C), dtype=np.int64)
        i = 0
        if cfg.dataflow == "os":
            for tm in range(mt):
                for tn in range(nt):
                    out[tm * R:(tm + 1) * R, tn * C:(tn + 1) * C] = rows[i:i + R]
                    i += R
        else:
            for tn in range(nt):
                for _ in range(kt):
                    out[: self.m, tn * C:(tn + 1) * C] += rows[i:i + self.m]
                    i += self.m
        return out[: self.m, : self.n]

    def expected_lasts(self) -> list[int]:
        per = self.config.rows if self.config.dataflow == "os" else self.m
        return [int((i + 1) % per == 0) for i in range(self.result_count)]


def plan_gemm(cfg: SystolicConfig, a, b) -> GemmPlan:
    """Beat sequences for ``a @ b`` on ``cfg`` (operands are integer arrays)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    m, k, n = check_operands(cfg, a, b)
    R, C, bits = cfg.rows, cfg.cols, cfg.in_bits
    mt, kt, nt = math.ceil(m / R), math.ceil(k / R), math.ceil(n / C)
    act_rows, act_last, w_rows = [], [], []
    if cfg.dataflow == "os":
        ap, bp = _pad(a, mt * R, k), _pad(b, k, nt * C)
        for tm in range(mt):
            for tn in range(nt):
                act_rows.extend(ap[tm * R:(tm + 1) * R, :].T.tolist())
                act_last.extend([0] * (k - 1) + [1])
                w_rows.extend(bp[:, tn * C:(tn + 1) * C].tolist())
        results = mt * nt * R
    else:
        ap, bp = _pad(a, m, kt * R), _pad(b, kt * R, nt * C)
        for tn in range(nt):
            for tk in range(kt):
                w_rows.extend(bp[tk * R:(tk + 1) * R, tn * C:(tn + 1) * C].tolist())
                act_rows.extend(ap[:, tk * R:(tk + 1) * R].tolist())
                act_last.extend([0] * (m - 1) + [1])
        results = nt * kt * m
    return GemmPlan(cfg, m, k, n, pack_rows(act_rows, bits, act_last), pack_rows(w_rows, bits),
                    results)
