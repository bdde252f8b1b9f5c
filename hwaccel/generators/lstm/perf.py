"""Cycle model of the LSTM cell: when each step's snapshot happens, from the config alone.

A step of :class:`~.cell.LstmCell` is a sequencer pass and a gate-unit pass that overlap:

* ``XPH``: ``slots x I`` issue cycles (each x element broadcast for ``slots`` cycles);
* ``HPH`` (not on a sequence's first step, whose h is zero): ``slots x H`` issue cycles, element
  ``k`` of ``h_{t-1}`` only once the gate unit has written it (``H_READY + k`` cycles after the
  previous snapshot; it writes one unit a cycle, in order);
* ``DRAIN``: ``MAC_LATENCY`` cycles for the last products to land, then the *snapshot* copies
  the accumulators into the gate unit's chains, once the gate unit is free (``H + GATE_FREE``
  cycles after the previous snapshot) -- the next step's XPH starts the cycle after.

So a step costs ``slots x (I + H) + MAC_LATENCY`` cycles whenever the gate unit keeps up, which
it does unless ``slots x I`` (the XPH that hides it) is shorter than its latency.

Every figure follows the sizes the cell runs, not the ones it was generated for: for a cell
that runs smaller sizes (``runtime_size``), pass the run's config
(:meth:`~.config.LstmConfig.run`), whose I, H and ``slots`` are the registers the cell loaded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .cell import MAC_LATENCY
from .config import LstmConfig
from .gate_unit import GATE_LATENCY

__all__ = ["SequencePerf", "sequence_perf", "H_READY", "GATE_FREE", "STREAM_OVERHEAD"]

#: Cycles from a snapshot to the sequencer seeing h element 0 (chain shift, C0..C9, counter).
H_READY = GATE_LATENCY + 1
#: Cycles after a snapshot's last hidden unit leaves its chain until the gate unit is empty.
GATE_FREE = GATE_LATENCY + 1
#: Cycles from the last snapshot to h_T entering the output FIFO (the last unit's C0..C10).
OUT_LATENCY = GATE_LATENCY + 1
#: What a stream-level span adds: x accepted -> first XPH cycle (2), h_T in the FIFO -> out (1).
STREAM_OVERHEAD = 3


@dataclass(frozen=True)
class SequencePerf:
    """One sequence of ``steps`` on the cell, its weights already loaded, x never late.

    ``cycles`` runs from the first XPH cycle to the cycle h_T enters the output FIFO:
    ``issue`` cycles issue a MAC element, ``h_waits`` wait in HPH for the gate unit,
    ``drains`` are the DRAIN cycles before each snapshot, ``tail`` follows the last one.
    """

    steps: int
    issue: int
    h_waits: int
    drains: int
    tail: int
    cycles: int
    macs: int
    utilization: float   # MACs / (cycles x lanes)

    def to_json(self) -> dict:
        return asdict(self)


def sequence_perf(cfg: LstmConfig, steps: int) -> SequencePerf:
    """The cycle model of a ``steps``-long sequence from h = c = 0 (see the module docstring)."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, not {steps!r}")
    I, H, R = cfg.input_size, cfg.hidden_size, cfg.slots
    t = -1                       # cycle before the first XPH cycle ("snapshot" -1)
    prev_snap = None
    issue = waits = drains = 0
    for step in range(steps):
        t += R * I               # XPH: last issue cycle
        issue += R * I
        if step > 0:             # HPH: element k once h_{t-1}[k] is written
            for k in range(H):
                ready = prev_snap + H_READY + k
                start = max(t + 1, ready)
                waits += start - (t + 1)
                t = start + R - 1
            issue += R * H
        snap = t + MAC_LATENCY
        if prev_snap is not None:
            snap = max(snap, prev_snap + H + GATE_FREE)
        drains += snap - t
        prev_snap, t = snap, snap
    tail = (H - 1) + OUT_LATENCY
    cycles = prev_snap + 1 + tail
    macs = steps * 4 * H * (I + H)
    return SequencePerf(steps, issue, waits, drains, tail, cycles, macs,
                        macs / (cycles * cfg.lanes))
