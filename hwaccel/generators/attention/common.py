"""Stream layouts and small datapath pieces shared by the attention units."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal, signed
from amaranth.lib import data, memory

from ...numerics import INT8

__all__ = ["word_layout", "out_layout", "lane_tables", "lane_max", "round_shift_var", "sat8",
           "tree_sum", "tree_reduce", "tree_stages", "delay", "any_of", "TREE_LEVELS_PER_STAGE"]

#: Levels of a lane tree (compare-select or add) between registers: two keep an 8-bit maximum
#: or an 18-bit sum of 16 lanes off the critical path (one level of 16 was 34.7 MHz on ECP5).
TREE_LEVELS_PER_STAGE = 2


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


def tree_stages(lanes: int) -> int:
    """Registers inside :func:`tree_reduce` of ``lanes`` values (its caller registers the
    result): one after every :data:`TREE_LEVELS_PER_STAGE` levels but the last."""
    levels = (lanes - 1).bit_length()
    return max(0, (levels - 1) // TREE_LEVELS_PER_STAGE)


def tree_reduce(m, values, op, name: str):
    """``op`` over ``values`` as a balanced tree with a register after every
    :data:`TREE_LEVELS_PER_STAGE` levels (not after the last: the caller registers the
    result); the result is :func:`tree_stages` cycles late."""
    vals, level, stages = list(values), 0, 0
    while len(vals) > 1:
        nxt = [op(a, b) for a, b in zip(vals[::2], vals[1::2])]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals, level = nxt, level + 1
        if level % TREE_LEVELS_PER_STAGE == 0 and len(vals) > 1:
            regs = [Signal(v.shape(), name=f"{name}_t{stages}_{i}") for i, v in enumerate(vals)]
            m.d.sync += [r.eq(v) for r, v in zip(regs, vals)]
            vals, stages = regs, stages + 1
    assert stages == tree_stages(len(list(values)))
    return vals[0]


def delay(m, sig, cycles: int, name: str) -> list:
    """The registers of ``sig`` delayed by 1 .. ``cycles`` cycles (empty for 0)."""
    out = []
    for k in range(cycles):
        reg = Signal.like(sig, name=f"{name}_d{k}")
        m.d.sync += reg.eq(sig)
        out.append(reg)
        sig = reg
    return out


def any_of(sigs):
    """The OR of signals (0 for none)."""
    out = 0
    for sig in sigs:
        out = out | sig
    return out


def round_shift_var(value, shift_m1):
    """``(value + 2**(shift-1)) >> shift`` for a variable ``shift >= 1``, given ``shift - 1``
    (a register, so no subtract sits before the shifter), as ``((value >> (shift - 1)) + 1)
    >> 1``: the same round half up (floor shifts), without a wide adder in front of the
    shifter."""
    return ((value >> shift_m1) + 1) >> 1


def sat8(value):
    """``value`` clamped into int8."""
    return Mux(value > INT8.max, INT8.max, Mux(value < INT8.min, INT8.min, value))
