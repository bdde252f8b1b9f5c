"""The GELU unit: the 256-entry int8 table of numerics, applied lane-wise, one word a cycle.

``y = table[q + 128]`` per lane (:func:`hwaccel.numerics.gelu.gelu_int`).

Interface
---------
``table``   In  stream of packed beats of ``load_bits`` (:mod:`.packing`): ``table[0]``
            (input -128) first (``GeluParams.table`` in order, int8 two's complement), as many
            entries a beat as fit (256 in a 2048-bit beat); a load is
            ``load_beats(256, 8, load_bits)`` beats, written ``table_row`` entries a cycle
            (:attr:`~.config.AttentionConfig.table_row`). A load goes in before the words it
            applies to (``sink`` waits while a beat is offered or being written).
``sink``    In  stream of ``{data: lanes x int8, last}``.
``source``  Out stream of ``{data: lanes x int8, last}``: each word's GELU, ``last`` passed on.

Hardware decisions
------------------
* One memory per lane of ``256 / table_row`` rows of ``table_row`` entries (16 x (16 x 8) by
  default: LUT RAM, ``lanes x 2 Kibit``), written a row a cycle from the packed beats, so a
  word is one synchronous row read and a ``table_row``-way select: no multiplier, no
  requantizer. Its index is the
  input with the sign bit flipped (``q + 128``).
* The read port is the output register: it is enabled only when a word enters, so while
  ``source`` waits it holds the word (a one-deep pipeline that freezes), and a word enters
  whenever the register is empty or being emptied: one word a cycle, latency
  :data:`GELU_LATENCY`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...numerics.gelu import GELU_TABLE_SIZE
from .common import lane_tables, out_layout, packed_writer, table_entry
from .config import AttentionConfig
from .packing import GELU_ENTRY_BITS

__all__ = ["GeluUnit", "GELU_LATENCY"]

#: Cycles from a word accepted to its result on ``source``.
GELU_LATENCY = 1


class GeluUnit(wiring.Component):
    """Lane-wise GELU table of an :class:`AttentionConfig`.

    Members
    -------
    table : ``In(stream.Signature(unsigned(config.load_bits)))``
    sink : ``In(stream.Signature(out_layout(config.lanes)))``
    source : ``Out(stream.Signature(out_layout(config.lanes)))``

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`AttentionConfig`.
    """

    def __init__(self, config: AttentionConfig):
        if not isinstance(config, AttentionConfig):
            raise TypeError(f"config must be an AttentionConfig, not {config!r}")
        self.config = config
        super().__init__({
            "table": In(stream.Signature(unsigned(config.load_bits))),
            "sink": In(stream.Signature(out_layout(config.lanes))),
            "source": Out(stream.Signature(out_layout(config.lanes))),
        })

    def elaborate(self, platform):
        L, row = self.config.lanes, self.config.table_row
        m = Module()
        t_addr, t_data, t_en, t_busy = packed_writer(
            m, "tload", self.table, entry_bits=GELU_ENTRY_BITS, row_entries=row,
            count=GELU_TABLE_SIZE, max_count=GELU_TABLE_SIZE, allow=1)
        rd = lane_tables(m, "table", data.ArrayLayout(unsigned(GELU_ENTRY_BITS), row),
                         GELU_TABLE_SIZE // row, L, addr=t_addr, data=t_data, en=t_en)

        out_v, out_last = Signal(), Signal()
        take = Signal()
        m.d.comb += [self.sink.ready.eq((~out_v | self.source.ready)
                                        & ~(self.table.valid | t_busy)),
                     take.eq(self.sink.valid & self.sink.ready)]
        ent = []
        for i in range(L):
            q = self.sink.payload.data[i].as_unsigned()
            ent.append(table_entry(m, rd[i], Cat(q[:7], ~q[7]), take, f"table{i}"))
        with m.If(take):
            m.d.sync += [out_v.eq(1), out_last.eq(self.sink.payload.last)]
        with m.Elif(self.source.ready):
            m.d.sync += out_v.eq(0)
        m.d.comb += [self.source.valid.eq(out_v), self.source.payload.last.eq(out_last)]
        m.d.comb += [self.source.payload.data[i].eq(ent[i]) for i in range(L)]
        return m
