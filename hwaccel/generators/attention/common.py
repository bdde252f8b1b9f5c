"""Stream layouts and small datapath pieces shared by the attention units."""

from __future__ import annotations

from amaranth.hdl import Mux, signed
from amaranth.lib import data, memory

from ...numerics import INT8

__all__ = ["word_layout", "out_layout", "lane_tables", "lane_max", "round_shift_var", "sat8",
           "tree_sum"]


def word_layout(lanes: int) -> data.ArrayLayout:
    """One stream word: ``lanes`` int8 values, lane ``i`` holding row position ``word*lanes+i``."""
    return data.ArrayLayout(signed(INT8.bits), lanes)


def out_layout(lanes: int) -> data.StructLayout:
    """What every unit emits: a word and ``last`` on a row's (or a stream's) last word."""
    return data.StructLayout({"data": word_layout(lanes), "last": 1})


def lane_tables(m, name: str, shape, depth: int, lanes: int, *, addr, data, en):
    """``lanes`` copies of one table, written together (``addr``, ``data``, ``en``); returns one
    synchronous read port per copy.

    One memory per lane, each with one write and one read port, maps to one block RAM (or LUT
    RAM) per lane directly; a single memory with ``lanes`` read ports is the same hardware
    after the synthesizer replicates it, but Yosys's memory mapper failed on 16 ports."""
    ports = []
    for i in range(lanes):
        mem = memory.Memory(shape=shape, depth=depth, init=[])
        m.submodules[f"{name}{i}"] = mem
        wr = mem.write_port()
        m.d.comb += [wr.addr.eq(addr), wr.data.eq(data), wr.en.eq(en)]
        ports.append(mem.read_port())
    return ports


def lane_max(values):
    """The largest of signed values, as a balanced tree of compare-and-select."""
    vals = list(values)
    while len(vals) > 1:
        nxt = [Mux(a > b, a, b) for a, b in zip(vals[::2], vals[1::2])]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def tree_sum(values):
    """The sum of values as a balanced adder tree (widths grow one bit a level)."""
    vals = list(values)
    while len(vals) > 1:
        nxt = [a + b for a, b in zip(vals[::2], vals[1::2])]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def round_shift_var(value, shift_m1):
    """``(value + 2**(shift-1)) >> shift`` for a variable ``shift >= 1``, given ``shift - 1``
    (a register, so no subtract sits before the shifter), as ``((value >> (shift - 1)) + 1)
    >> 1``: the same round half up (floor shifts), without a wide adder in front of the
    shifter."""
    return ((value >> shift_m1) + 1) >> 1


def sat8(value):
    """``value`` clamped into int8."""
    return Mux(value > INT8.max, INT8.max, Mux(value < INT8.min, INT8.min, value))
