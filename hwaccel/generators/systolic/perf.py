"""Analytic cycle model of the systolic array: every cycle of a GEMM, from the config alone.

It counts the cycles of :func:`~.tiling.plan_gemm`'s streams on the RTL when the sources never
idle and the result is never back-pressured, as the RTL bench measures them
(:attr:`sim.streams.StreamStats.span`: from the cycle the first input beat is accepted
to the cycle the last result beat leaves, both included). A test holds it equal to simulation.

Output-stationary
    Tile ``i`` (of ``T = ceil(M/R) * ceil(N/C)``) is K steps, one per cycle; its last step at
    cycle ``L_i`` is accepted only when three things hold:

    * ``L_i >= L_{i-1} + K``  -- the steps themselves;
    * ``L_i >= L_{i-1} + R``  -- the previous tile's R result rows leave one per cycle;
    * ``L_i >= L_{i-2} + R + 5 + mult_latency`` -- R free result-FIFO rows (credits): the FIFO
      holds two tiles, so tile ``i`` waits for the last credit of tile ``i-2``. Row ``r`` of a
      tile is selected ``r + 2 + mult_latency`` cycles after the last step (skew, multiply,
      add), written a cycle later, readable the next, and its credit counts two cycles after
      the read (the read is registered first).

    The last row of the last tile leaves ``R + 3 + mult_latency`` cycles after its last step.
Weight-stationary
    Fold ``f`` (of ``F = ceil(K/R) * ceil(N/C)``) loads R weight rows into bank ``f % 2``,
    starting at ``W_f = max(W_{f-1} + R, A_{f-2} + 1)`` (a bank is free the cycle after the last
    activation of the fold that used it, ``A_{f-2}``), then streams M activations:
    ``A_f = max(A_{f-1} + 1, W_f + R) + M - 1``. A result row leaves ``R + 2 + mult_latency``
    cycles after its activation (skew R, the multiply, the add, the FIFO). The FIFO's credits
    (``result_depth`` = that latency + 2, for the registered credit return) never stall a
    free-running stream.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .config import SystolicConfig

__all__ = ["GemmPerf", "gemm_perf", "gemm_cycles"]


@dataclass(frozen=True)
class GemmPerf:
    """Where the cycles of one GEMM go.

    ``cycles = input_beats + input_stalls + drain``: ``input_beats`` cycles accept a step (OS)
    or an activation (WS); ``input_stalls`` cycles between the first and the last such beat
    accept none (waiting for weights, for the drain of a tile or for result-FIFO space; for WS
    it includes loading the first fold's weights); ``drain`` cycles follow the last one.
    """

    dataflow: str
    m: int
    k: int
    n: int
    tiles: int            # OS: output tiles; WS: weight folds
    input_beats: int
    input_stalls: int
    drain: int
    cycles: int
    macs: int
    utilization: float    # MACs / (cycles * R * C)

    def to_json(self) -> dict:
        return asdict(self)


def _os_last_step(tiles: int, k: int, rows: int, credit_gap: int) -> int:
    """Cycle (1-based) of the last tile's last step: the recurrence, in closed form."""
    period = max(k, rows)
    if credit_gap <= 2 * period:
        return k + (tiles - 1) * period
    # Credits bind: tiles go in pairs, a pair every ``credit_gap`` cycles.
    pairs, odd = divmod(tiles - 1, 2)
    return k + pairs * credit_gap + odd * period


def _ws_last_activation(folds: int, m: int, rows: int) -> int:
    """Cycle (1-based) of the last fold's last activation (weights start at cycle 1)."""
    w_prev, a_prev, a_prev2 = None, 0, None
    for f in range(folds):
        w = 1 if f == 0 else max(w_prev + rows, (a_prev2 + 1) if a_prev2 is not None else 0)
        a = max(a_prev + 1, w + rows) + m - 1
        w_prev, a_prev2, a_prev = w, a_prev, a
    return a_prev


def gemm_perf(cfg: SystolicConfig, m: int, k: int, n: int) -> GemmPerf:
    """The cycle model of ``(M x K) @ (K x N)`` on ``cfg`` (see the module docstring)."""
    for name, v in (("M", m), ("K", k), ("N", n)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    R, C, lat = cfg.rows, cfg.cols, cfg.mult_latency
    if cfg.dataflow == "os":
        if k > cfg.max_k:
            raise ValueError(f"K must be at most {cfg.max_k} for a {cfg.acc_bits}-bit "
                             f"accumulator, not {k}")
        tiles = math.ceil(m / R) * math.ceil(n / C)
        beats = tiles * k
        last = _os_last_step(tiles, k, R, credit_gap=R + 5 + lat)
        drain = R + 3 + lat
    else:
        tiles = math.ceil(k / R) * math.ceil(n / C)
        beats = tiles * m
        last = _ws_last_activation(tiles, m, R)
        drain = R + 2 + lat
    cycles = last + drain
    return GemmPerf(cfg.dataflow, m, k, n, tiles, beats, last - beats, drain, cycles, m * k * n,
                    m * k * n / (cycles * cfg.macs))


def gemm_cycles(cfg: SystolicConfig, m: int, k: int, n: int) -> int:
    """Cycles of ``(M x K) @ (K x N)`` on ``cfg`` with free-running streams."""
    return gemm_perf(cfg, m, k, n).cycles
