"""The CRC-16 of the host link's frames in hardware, derived from the one in :mod:`.framing`."""

from __future__ import annotations

from functools import cache

from amaranth.hdl import Cat, Value

from .framing import crc16_masks

__all__ = ["crc16_next"]


@cache
def _masks() -> tuple[int, ...]:
    return tuple(crc16_masks())


def crc16_next(crc: Value, byte: Value) -> Value:
    """The CRC after ``byte`` (8 bits) from ``crc`` (16 bits): each output bit is the XOR of
    the input bits :func:`.framing.crc16_masks` names, so it equals
    :func:`.framing.crc16` by construction (one byte a cycle, a few LUTs per bit)."""
    bits = Cat(crc, byte)
    out = []
    for mask in _masks():
        taps = [bits[i] for i in range(24) if mask >> i & 1]
        acc = taps[0]
        for t in taps[1:]:
            acc = acc ^ t
        out.append(acc)
    return Cat(*out)
