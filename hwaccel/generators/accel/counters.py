"""The accelerator's performance counters (:data:`.isa.COUNTERS`): their registers, which add
what the datapath (:mod:`.accelerator`) counts each cycle."""

from __future__ import annotations

from amaranth.hdl import Signal

from .isa import COUNTERS

__all__ = ["COUNTER_BITS", "counter_registers"]

COUNTER_BITS = 48


def counter_registers(m, events: dict, clear) -> list:
    """One ``COUNTER_BITS`` register per name of :data:`.isa.COUNTERS`, in that order, adding
    ``events[name]`` every cycle; all cleared (to 0) in a cycle of ``clear`` instead."""
    counters = []
    for name in COUNTERS:
        c = Signal(COUNTER_BITS, name=f"count_{name}")
        with m.If(clear):
            m.d.sync += c.eq(0)
        with m.Else():
            m.d.sync += c.eq(c + events[name])
        counters.append(c)
    return counters
