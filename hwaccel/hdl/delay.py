"""A signal through a line of registers, for the tags that travel beside a pipeline's data."""

from __future__ import annotations

from amaranth.hdl import Signal

__all__ = ["delay"]


def delay(m, sig, cycles: int, name: str) -> list:
    """The registers of ``sig`` delayed by 1 .. ``cycles`` cycles (empty for 0)."""
    out = []
    for k in range(cycles):
        reg = Signal.like(sig, name=f"{name}_d{k}")
        m.d.sync += reg.eq(sig)
        out.append(reg)
        sig = reg
    return out
