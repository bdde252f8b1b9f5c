"""GEMM test cases, written once and used by every level (golden model, RTL, benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..operands import fill
from .config import SystolicConfig

__all__ = ["GemmCase", "directed_cases", "random_cases", "BENCH_SHAPES"]

#: The benchmark shapes: cubes, and the reference CNN's layers as im2col GEMMs (M, K, N).
BENCH_SHAPES = {
    "16^3": (16, 16, 16),
    "64^3": (64, 64, 64),
    "256^3": (256, 256, 256),
    "conv1": (676, 9, 32),
    "conv2": (121, 288, 64),
    "conv3": (9, 576, 64),
    "fc1": (1, 576, 64),
    "fc2": (1, 64, 10),
}


@dataclass(frozen=True)
class GemmCase:
    name: str
    a: np.ndarray
    b: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.a.shape[0], self.a.shape[1], self.b.shape[1]


def directed_cases(cfg: SystolicConfig) -> list[GemmCase]:
    """Corners: 1x1x1, K = 1, the extreme values, sizes one past the array."""
    op = cfg.operand
    R, C = cfg.rows, cfg.cols
    rng = np.random.default_rng(12345)
    out = []
    for name, (m, k, n), sa, sb in (
        ("one", (1, 1, 1), "random", "random"),
        ("k1", (R + 1, 1, C + 1), "random", "random"),
        ("min_min", (R, 2 * R + 3, C), "min", "min"),
        ("min_max", (R + 2, R + 1, C + 2), "min", "max"),
        ("extremes", (2 * R + 1, 3 * R + 2, 2 * C + 1), "extremes", "extremes"),
    ):
        out.append(GemmCase(name, fill(rng, (m, k), sa, op), fill(rng, (k, n), sb, op)))
    return out


def random_cases(cfg: SystolicConfig, count: int, seed: int) -> list[GemmCase]:
    """``count`` random GEMMs sized around the array (M, K, N rarely multiples of it)."""
    rng = np.random.default_rng(seed)
    op = cfg.operand
    R, C = cfg.rows, cfg.cols
    out = []
    for i in range(count):
        m = int(rng.integers(1, 3 * R + 3))
        k = int(rng.choice([1, int(rng.integers(1, 3 * max(R, 4) + 2))]))
        n = int(rng.integers(1, 3 * C + 3))
        style = str(rng.choice(["random", "random", "random", "extremes"]))
        out.append(GemmCase(f"rand{i}", fill(rng, (m, k), style, op),
                            fill(rng, (k, n), style, op)))
    return out
