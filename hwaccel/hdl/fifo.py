"""A first-word-fall-through FIFO whose read side is driven by registers.

Amaranth's ``SyncFIFO`` works out ``r_rdy`` as ``level != 0`` after the level register, so a
consumer's handshake starts a few LUTs and a route behind it. :class:`ResultFIFO` keeps "not
empty" (``r_rdy``) and "exactly one row" (``single``) as registers worked out from the next
fill level, cycle for cycle the same outputs as ``SyncFIFO`` (``tests/test_systolic_fifo.py``
compares the two every cycle). A write is taken whenever ``w_en`` is set: its users (the
systolic array, the conv engine) issue work only against credits for free rows, so it has no
``w_rdy`` and no ``level != depth`` compare; their formal harnesses prove it is never written
while full.

On ECP5 the registered flag took the 8 x 8 output-stationary array from 141.7 to 157.1 MHz;
in the conv engine it takes the FIFO's level compare out of a job's end (``ecp5_144`` at
d0fbf53: the result FIFO's level through the job's last store into the job-kind registers'
reset, 13.4 ns placed).
"""

from __future__ import annotations

from amaranth.hdl import Elaboratable, Module, Mux, Signal
from amaranth.lib.memory import Memory

__all__ = ["ResultFIFO"]


class ResultFIFO(Elaboratable):
    """``depth`` rows of ``width`` bits, first word fall-through.

    Members: ``w_data``, ``w_en`` (a write, taken unconditionally), ``r_data``, ``r_rdy`` (not
    empty, a register), ``r_en`` (a read, taken with ``r_rdy``), and ``level`` (the rows held,
    a register, as ``SyncFIFO``'s).

    Raises
    ------
    ValueError
        If ``depth`` is under 2.
    """

    def __init__(self, width: int, depth: int):
        if depth < 2:
            raise ValueError(f"ResultFIFO depth must be at least 2, not {depth}")
        self.width, self.depth = width, depth
        self.w_data, self.w_en = Signal(width), Signal()
        self.r_data, self.r_en, self.r_rdy = Signal(width), Signal(), Signal()
        self.level = Signal(range(depth + 1))

    def elaborate(self, platform):
        m = Module()
        depth, level = self.depth, self.level
        storage = m.submodules.storage = Memory(shape=self.width, depth=depth, init=[])
        w_port, r_port = storage.write_port(), storage.read_port(domain="comb")
        produce = Signal(range(depth))  # one per line: named in the RTL (formal harness reads them)
        consume = Signal(range(depth))
        single = Signal()
        do_read, do_write = self.r_en & self.r_rdy, self.w_en
        m.d.comb += [
            w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(do_write),
            r_port.addr.eq(consume), self.r_data.eq(r_port.data),
        ]
        with m.If(do_write):
            m.d.sync += produce.eq(Mux(produce == depth - 1, 0, produce + 1))
        with m.If(do_read):
            m.d.sync += consume.eq(Mux(consume == depth - 1, 0, consume + 1))
        up, down = do_write & ~do_read, do_read & ~do_write
        with m.If(up):
            m.d.sync += level.eq(level + 1)
        with m.Elif(down):
            m.d.sync += level.eq(level - 1)
        # Next level != 0 and == 1, from the current flags (level 0 is ~r_rdy, level 1 single).
        m.d.sync += [
            self.r_rdy.eq(do_write | (self.r_rdy & ~(down & single))),
            single.eq(Mux(up, ~self.r_rdy, Mux(down, level == 2, single))),
        ]
        return m
