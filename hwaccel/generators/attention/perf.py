"""Cycle models of the attention units, exact when inputs are never late and outputs never wait.

Cycle 0 is the cycle a row's (or stream's) first word is accepted; a :class:`RowTiming` gives
the cycle each row's first word is accepted (``start``) and the cycle its last word is on
``source`` (``last_out``), so a row's latency is ``last_out - start + 1`` cycles. Loads (exponent
table, GELU table, LayerNorm parameters) are packed beats (:mod:`.packing`) taken between rows,
each written a memory row a cycle (:func:`load_cycles`).

* Softmax, a row of ``W = ceil(n / lanes)`` words: input pass ``W`` plus
  :func:`~.softmax.in_latency`; exponent pass ``W`` reads plus :func:`~.softmax.exp_latency`
  (each one cycle more per register stage ``T`` of the lane trees,
  :func:`~.common.tree_stages`: none up to 4 lanes, one up to 16), starting once the
  previous row's output pipeline is empty; divider ``div_cycles`` (22 at one bit a cycle);
  output pass ``W`` reads, the last word on ``source`` :data:`~.softmax.OUT_LATENCY` cycles
  after the last read. The next row's first word is accepted the cycle after the last read.
  Rows of one length repeat every ``3 W + div_cycles + 4 + 2 T + max(0, OUT_LATENCY - 1 - T
  - W)`` cycles.
* LayerNorm, a row of ``W = ceil(C / lanes)`` words: input pass ``W``; the variance and its
  normalization :func:`~.layernorm.var_cycles` (``7 + T``); the reciprocal square root
  ``rsqrt_cycles`` (22 at one bit a cycle); output pass ``W`` reads, the last
  word out :data:`~.layernorm.LN_OUT_LATENCY` after the last read. Rows repeat every
  ``2 W + var_cycles + rsqrt_cycles`` cycles.
* GELU: one word a cycle, each word out :data:`~.gelu.GELU_LATENCY` cycle after it is accepted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .config import AttentionConfig
from .gelu import GELU_LATENCY
from .layernorm import LN_OUT_LATENCY, var_cycles
from .packing import drain_rows, load_beats, load_spec
from .softmax import OUT_LATENCY, exp_latency, in_latency

__all__ = ["RowTiming", "RowPerf", "softmax_schedule", "softmax_row_perf",
           "layernorm_schedule", "layernorm_row_perf", "gelu_cycles", "load_words",
           "load_cycles"]


def load_words(cfg: AttentionConfig, unit: str, channels: int | None = None) -> int:
    """Weight words (load beats) of ``unit``'s load: the packed table or parameters
    (:mod:`.packing`), and LayerNorm's setup word before its parameters."""
    count, bits, _ = load_spec(cfg, unit, channels)
    return load_beats(count, bits, cfg.load_bits) + (unit == "layernorm")


def load_cycles(cfg: AttentionConfig, unit: str, channels: int | None = None) -> int:
    """Cycles from a load's first beat offered (each beat offered from the cycle its port
    takes the previous one) to the first cycle the unit can take a row word: the first beat
    is taken in cycle 0 and each is written a memory row a cycle from the next
    (:func:`~.packing.drain_rows`), the next beat taken in its last row's cycle; LayerNorm's
    setup beat takes a cycle before them."""
    count, bits, row = load_spec(cfg, unit, channels)
    return 1 + sum(drain_rows(count, bits, cfg.load_bits, row)) + (unit == "layernorm")


@dataclass(frozen=True)
class RowTiming:
    start: int
    last_out: int


@dataclass(frozen=True)
class RowPerf:
    """One row length on a unit: its words, the cycles of each pass, its latency alone (first
    word in to last word out, inclusive) and its period (first word to the next row's first
    word) when rows of this length follow each other."""

    words: int
    passes: dict
    latency: int
    period: int

    def to_json(self) -> dict:
        return asdict(self)


def _words(cfg: AttentionConfig, what: str, n: int, most: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= most:
        raise ValueError(f"{what} must be an integer in [1, {most}], not {n!r}")
    return math.ceil(n / cfg.lanes)


def softmax_schedule(cfg: AttentionConfig, lengths) -> list[RowTiming]:
    """When each row of ``lengths`` (back to back) enters and leaves the softmax unit."""
    out, start, free = [], 0, None
    for n in lengths:
        w = _words(cfg, "softmax row length", n, cfg.max_len)
        exp = start + w + in_latency(cfg)
        exp = exp if free is None else max(exp, free)
        last_read = exp + w + exp_latency(cfg) + cfg.div_cycles + w - 1
        out.append(RowTiming(start, last_read + OUT_LATENCY))
        free = last_read + OUT_LATENCY + 1        # the output pipeline is empty
        start = last_read + 1
    return out


def softmax_row_perf(cfg: AttentionConfig, n: int) -> RowPerf:
    w = _words(cfg, "softmax row length", n, cfg.max_len)
    a, b, c = softmax_schedule(cfg, [n, n, n])
    passes = {"input": w + in_latency(cfg), "exponent": w + exp_latency(cfg),
              "divide": cfg.div_cycles,
              "output": w, "output_latency": OUT_LATENCY}
    return RowPerf(w, passes, a.last_out - a.start + 1, c.start - b.start)


def layernorm_schedule(cfg: AttentionConfig, channels: int, rows: int) -> list[RowTiming]:
    """When each of ``rows`` rows of ``channels`` (back to back) enters and leaves LayerNorm."""
    w = _words(cfg, "channels", channels, cfg.max_channels)
    period = 2 * w + var_cycles(cfg) + cfg.rsqrt_cycles
    return [RowTiming(k * period, k * period + period - 1 + LN_OUT_LATENCY)
            for k in range(rows)]


def layernorm_row_perf(cfg: AttentionConfig, channels: int) -> RowPerf:
    w = _words(cfg, "channels", channels, cfg.max_channels)
    a, b = layernorm_schedule(cfg, channels, 2)
    passes = {"input": w, "variance": var_cycles(cfg), "rsqrt": cfg.rsqrt_cycles, "output": w,
              "output_latency": LN_OUT_LATENCY}
    return RowPerf(w, passes, a.last_out - a.start + 1, b.start - a.start)


def gelu_cycles(words: int) -> int:
    """Cycles from a stream's first word accepted to its last word out, inclusive."""
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise ValueError(f"words must be a positive integer, not {words!r}")
    return words + GELU_LATENCY
