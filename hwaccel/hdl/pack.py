"""Packing integer vectors into the wide stream payloads the generators use.

An ``ArrayLayout(signed(bits), n)`` puts element ``i`` at bits ``[i*bits, (i+1)*bits)``; a
``StructLayout`` puts its fields in declaration order from bit 0. These helpers do the same in
Python so a testbench moves a whole row per handle access.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["pack", "unpack", "pack_rows", "unpack_rows"]


def pack(values: Iterable[int], bits: int) -> int:
    """Two's-complement ``values`` (element 0 in the low bits) as one integer."""
    mask = (1 << bits) - 1
    word = 0
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


def unpack(word: int, bits: int, count: int, *, signed: bool = True) -> list[int]:
    """Inverse of :func:`pack`."""
    mask = (1 << bits) - 1
    sign = 1 << (bits - 1)
    out = []
    for i in range(count):
        v = (word >> (i * bits)) & mask
        if signed and v & sign:
            v -= 1 << bits
        out.append(v)
    return out


def pack_rows(rows: Sequence[Sequence[int]], bits: int,
              flags: Sequence[int] | None = None) -> list[int]:
    """Pack each row; ``flags[i]`` (e.g. ``last``) goes in the bit above row ``i``'s data."""
    out = []
    for i, row in enumerate(rows):
        word = pack(row, bits)
        if flags is not None and flags[i]:
            word |= 1 << (len(row) * bits)
        out.append(word)
    return out


def unpack_rows(words: Sequence[int], bits: int, count: int) -> tuple[list[list[int]], list[int]]:
    """Rows and the flag bit above them, from packed ``{data: count x bits, flag}`` words."""
    rows = [unpack(w, bits, count) for w in words]
    flags = [(w >> (count * bits)) & 1 for w in words]
    return rows, flags
