"""Cycle models of the attention units, exact when inputs are never late and outputs never wait.

Cycle 0 is the cycle a row's (or stream's) first word is accepted; a :class:`RowTiming` gives
the cycle each row's first word is accepted (``start``) and the cycle its last word is on
``source`` (``last_out``), so a row's latency is ``last_out - start + 1`` cycles. Loads (exponent
table, GELU table, LayerNorm parameters) are packed beats (:mod:`.packing`) that begin between
rows, each written a memory row a cycle (:func:`load_cycles`; :func:`load_taken` to the cycle
after the last beat is taken). GELU's rows enter once the load is written; softmax and
LayerNorm rows may enter behind a load's first beat, and the stage that reads the load (the
exponent stage, LayerNorm's output stage) starts no row before it is written (``table_at``,
``params_at`` of the schedules, in the rows' cycles).

* Softmax, a row of ``W = ceil(n / lanes)`` words, through four stages that each take a row at a
  time and start the next in the cycle of their last read of the previous one
  (:func:`softmax_schedule`): input (``W`` words; the exponent stage may start the row
  :func:`~.softmax.in_latency` cycles after its last word), exponent (``W`` reads from the cycle
  after its start; the divider may take ``S`` :func:`~.softmax.exp_latency` cycles after the
  last), dividers (``dividers`` of the config taking rows in turn, one a cycle, ``div_cycles``
  each; the output stage may start the row :func:`~.divider.div_lead` cycles (2) before the
  cycle after the last step), output (``W`` reads from the cycle after its start, the last
  word on ``source`` :data:`~.softmax.OUT_LATENCY` cycles after the last read). A row's slot
  (``slots`` of them) is the input stage's again the cycle after the exponent stage's last
  read of it, the exponent stage's the cycle after the output stage's. Rows of one length
  follow each other every ``max(W, div_cycles / dividers, (2W + div_cycles + T + 7 - lead) /
  slots, (2W + T + 2) / slots)`` cycles on average (``T`` the register stages of a lane tree,
  :func:`~.common.tree_stages`: none up to 4 lanes, one up to 16; ``lead`` the divider lead,
  2), and one row alone takes ``3W + div_cycles + 2T + 12 - lead``.
* LayerNorm, a row of ``W = ceil(C / lanes)`` words, through four stages
  (:func:`layernorm_schedule`): input (``W`` words; the variance stage may take the row's sums
  :func:`~.layernorm.sum_latency` cycles after its last word), variance (a pipeline taking a
  row a cycle, when the row's root will be free as it comes out; it hands ``w`` to the root
  :data:`~.ln_variance.VAR_CYCLES` cycles after taking the row), the reciprocal square roots
  (``roots`` of the config taking rows in turn, ``rsqrt_cycles`` each, 22 at one bit a cycle;
  the output stage may start the row :func:`~.ln_variance.root_lead` cycles (3) before the
  cycle after the last step), output (``W`` reads from the cycle after its start, the last
  word out :data:`~.layernorm.LN_OUT_LATENCY` after the last read). A row's slot is the input
  stage's again the cycle after the output stage's last read of it. Rows of one size follow
  each other every ``max(W, rsqrt_cycles / roots, (2W + rsqrt_cycles + T + 9 - lead) /
  slots)`` cycles on average, one alone takes ``2W + rsqrt_cycles + T + 17 - lead`` (``lead``
  the root lead, 3).
* GELU: one word a cycle, each word out :data:`~.gelu.GELU_LATENCY` cycle after it is accepted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from .config import AttentionConfig
from .divider import div_lead
from .gelu import GELU_LATENCY
from .layernorm import LN_OUT_LATENCY, VAR_CYCLES, sum_latency
from .ln_variance import root_lead
from .packing import drain_rows, load_beats, load_spec
from .softmax import OUT_LATENCY, exp_latency, in_latency

__all__ = ["RowTiming", "RowPerf", "softmax_schedule", "softmax_row_perf",
           "layernorm_schedule", "layernorm_row_perf", "gelu_cycles", "load_words",
           "load_cycles", "load_taken"]


def load_words(cfg: AttentionConfig, unit: str, channels: int | None = None) -> int:
    """Weight words (load beats) of ``unit``'s load: the packed table or parameters
    (:mod:`.packing`), and LayerNorm's setup word before its parameters."""
    count, bits, _ = load_spec(cfg, unit, channels)
    return load_beats(count, bits, cfg.load_bits) + (unit == "layernorm")


def load_cycles(cfg: AttentionConfig, unit: str, channels: int | None = None) -> int:
    """Cycles from a load's first beat offered (each beat offered from the cycle its port
    takes the previous one) to the first cycle the unit can take a row word: the first beat
    is taken in cycle 0 and each is cut into memory rows a row a cycle from the next
    (:func:`~.packing.drain_rows`), the next beat taken in its last row's cycle, and each row
    written the cycle after it is cut; LayerNorm's setup beat takes a cycle before them."""
    count, bits, row = load_spec(cfg, unit, channels)
    return 2 + sum(drain_rows(count, bits, cfg.load_bits, row)) + (unit == "layernorm")


def load_taken(cfg: AttentionConfig, unit: str, channels: int | None = None) -> int:
    """Cycles from a load's first beat offered (each beat offered from the cycle its port
    takes the previous one) to the cycle after its last beat is taken: each beat is taken in
    the cycle its predecessor's last row is cut (:func:`load_cycles`), LayerNorm's first
    parameter beat the cycle after the setup beat."""
    count, bits, row = load_spec(cfg, unit, channels)
    return 1 + sum(drain_rows(count, bits, cfg.load_bits, row)[:-1]) + (unit == "layernorm")


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


def softmax_schedule(cfg: AttentionConfig, lengths, table_at: int | None = None
                     ) -> list[RowTiming]:
    """When each row of ``lengths`` (back to back) enters and leaves the softmax unit: the
    four stages of :mod:`.softmax`, each starting a row when the previous stage hands it over
    and its own previous row's last read issues, in slots that come free (``cfg.slots``).
    ``table_at``: the first cycle the exponent stage may start a row, when the rows follow
    a table load that is still being written (:func:`load_cycles` after its first beat);
    ``None``: the table was written before the first row."""
    ws = [_words(cfg, "softmax row length", n, cfg.max_len) for n in lengths]
    div, SLOTS, DIVIDERS, lead = cfg.div_cycles, cfg.slots, cfg.dividers, div_lead(cfg)
    a, e, d, o, out = [], [], [], [], []
    for r, w in enumerate(ws):
        old = r - SLOTS                      # the row that last used this row's slot
        # input: its first word (the words of a row follow each other)
        cand = [a[-1] + ws[r - 1]] if r else [0]
        if old >= 0:                         # its buffer slot read by the exponent stage
            cand.append(e[old] + ws[old] + 1)
        a.append(max(cand))
        # exponent stage starts (first read the cycle after): the maximum known, the
        # previous row's last read, the e-buffer slot read out
        cand = [a[r] + w - 1 + in_latency(cfg)]
        if table_at is not None:
            cand.append(table_at)
        if r:
            cand.append(e[-1] + ws[r - 1])
        if old >= 0:
            cand.append(o[old] + ws[old] + 1)
        e.append(max(cand))
        # divider takes S; output stage starts (first read the cycle after)
        # (one divider takes a row a cycle, each divider a row every div_cycles)
        cand = [e[r] + w + exp_latency(cfg)] + ([d[-1] + 1] if r else [])
        if r >= DIVIDERS:
            cand.append(d[r - DIVIDERS] + div)
        d.append(max(cand))
        o.append(max([d[r] + div + 1 - lead] + ([o[-1] + ws[r - 1]] if r else [])))
        out.append(RowTiming(a[r], o[r] + w + OUT_LATENCY))
    return out


def softmax_row_perf(cfg: AttentionConfig, n: int) -> RowPerf:
    """Row length ``n`` on the softmax unit: its latency alone and its period once rows of
    this length are in flight (the mean over a turn of both the slots and the dividers, so it
    may be fractional)."""
    w = _words(cfg, "softmax row length", n, cfg.max_len)
    turn = math.lcm(cfg.slots, cfg.dividers)      # the slots' and the dividers' turns
    sched = softmax_schedule(cfg, [n] * (6 * turn + 1))
    passes = {"input": w, "to_exponent": in_latency(cfg), "exponent": w,
              "to_divider": exp_latency(cfg), "divide": cfg.div_cycles,
              "to_output": 1 - div_lead(cfg), "output": w, "output_latency": OUT_LATENCY}
    period = (sched[-1].last_out - sched[-1 - turn].last_out) / turn
    return RowPerf(w, passes, sched[0].last_out - sched[0].start + 1,
                   int(period) if period == int(period) else period)


def layernorm_schedule(cfg: AttentionConfig, channels: int, rows: int,
                       params_at: int | None = None) -> list[RowTiming]:
    """When each of ``rows`` rows of ``channels`` (back to back) enters and leaves LayerNorm:
    the input, variance, square-root and output stages of :mod:`.layernorm`, in slots that
    come free (``cfg.slots``). ``params_at``: the first cycle the output stage may start a
    row, when the rows follow a parameter load that is still being written
    (:func:`load_cycles` after the setup beat); ``None``: written before the first row."""
    w = _words(cfg, "channels", channels, cfg.max_channels)
    root, slots, roots, lead = cfg.rsqrt_cycles, cfg.slots, cfg.roots, root_lead(cfg)
    a, t, o, out = [], [], [], []      # first word in; variance stage takes it; output starts
    for r in range(rows):
        cand = [a[-1] + w] if r else [0]
        if r >= slots:                      # the slot's previous row read out
            cand.append(o[r - slots] + w + 1)
        a.append(max(cand))
        # the variance stage takes the sums when they are in, a row a cycle, when the row's
        # root will be free as it comes out (root cycles after its previous row was taken)
        cand = [a[r] + w - 1 + sum_latency(cfg)] + ([t[-1] + 1] if r else [])
        if r >= roots:
            cand.append(t[r - roots] + root)
        t.append(max(cand))
        o.append(max([t[r] + VAR_CYCLES + root + 1 - lead] + ([o[-1] + w] if r else [])
                     + ([params_at] if params_at is not None else [])))
        out.append(RowTiming(a[r], o[r] + w + LN_OUT_LATENCY))
    return out


def layernorm_row_perf(cfg: AttentionConfig, channels: int) -> RowPerf:
    """``channels`` on LayerNorm: a row's latency alone and the period once rows of this size
    are in flight (the mean over a turn of both the slots and the roots, so it may be
    fractional)."""
    w = _words(cfg, "channels", channels, cfg.max_channels)
    turn = math.lcm(cfg.slots, cfg.roots)         # the slots' and the roots' turns
    sched = layernorm_schedule(cfg, channels, 6 * turn + 1)
    passes = {"input": w, "to_variance": sum_latency(cfg), "variance": VAR_CYCLES,
              "rsqrt": cfg.rsqrt_cycles, "to_output": 1 - root_lead(cfg), "output": w,
              "output_latency": LN_OUT_LATENCY}
    period = (sched[-1].start - sched[-1 - turn].start) / turn
    return RowPerf(w, passes, sched[0].last_out - sched[0].start + 1,
                   int(period) if period == int(period) else period)


def gelu_cycles(words: int) -> int:
    """Cycles from a stream's first word accepted to its last word out, inclusive."""
    if isinstance(words, bool) or not isinstance(words, int) or words < 1:
        raise ValueError(f"words must be a positive integer, not {words!r}")
    return words + GELU_LATENCY
