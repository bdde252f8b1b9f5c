"""Golden models of the systolic array.

* :func:`gemm_reference` -- the exact product, ``torch.matmul`` on int64 tensors.
* :func:`golden_rows` -- every result row the array emits, in order, computed tile by tile with
  torch in the hardware's tiling (:mod:`.tiling`): RTL rows must equal these exactly.
* :func:`ideal_cycles` -- MACs divided by the array's MAC units.
* :func:`scalesim_cycles` -- SCALE-Sim's compute-cycle model, for comparison.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .config import SystolicConfig
from .tiling import _pad, check_operands

__all__ = ["gemm_reference", "golden_rows", "scalesim_cycles", "ideal_cycles"]


def gemm_reference(a, b) -> np.ndarray:
    """``a @ b`` exactly, in int64 (torch)."""
    ta = torch.as_tensor(np.asarray(a), dtype=torch.int64)
    tb = torch.as_tensor(np.asarray(b), dtype=torch.int64)
    return torch.matmul(ta, tb).numpy()


def golden_rows(cfg: SystolicConfig, a, b) -> np.ndarray:
    """The array's result rows in emission order (``rows x C``)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    m, k, n = check_operands(cfg, a, b)
    R, C = cfg.rows, cfg.cols
    mt, kt, nt = math.ceil(m / R), math.ceil(k / R), math.ceil(n / C)
    out = []
    if cfg.dataflow == "os":
        ap, bp = _pad(a, mt * R, k), _pad(b, k, nt * C)
        for tm in range(mt):
            for tn in range(nt):
                out.append(gemm_reference(ap[tm * R:(tm + 1) * R], bp[:, tn * C:(tn + 1) * C]))
    else:
        ap, bp = _pad(a, m, kt * R), _pad(b, kt * R, nt * C)
        for tn in range(nt):
            for tk in range(kt):
                out.append(gemm_reference(ap[:, tk * R:(tk + 1) * R],
                                          bp[tk * R:(tk + 1) * R, tn * C:(tn + 1) * C]))
    return np.concatenate(out, axis=0)


def ideal_cycles(cfg: SystolicConfig, m: int, k: int, n: int) -> int:
    return math.ceil(m * k * n / cfg.macs)


def scalesim_cycles(dataflow: str, rows: int, cols: int, m: int, k: int, n: int) -> int:
    """SCALE-Sim's compute cycles (no memory stalls) for ``(M x K) @ (K x N)`` on R x C."""
    R, C = rows, cols
    if dataflow == "os":
        return math.ceil(m / R) * math.ceil(n / C) * (k + R + C - 2)
    if dataflow == "ws":
        return math.ceil(k / R) * math.ceil(n / C) * (m + 2 * R + C - 2)
    if dataflow == "is":
        return math.ceil(k / R) * math.ceil(m / C) * (n + 2 * R + C - 2)
    raise ValueError(f"dataflow must be 'os', 'ws' or 'is', not {dataflow!r}")
