"""The GELU unit: the 256-entry int8 table of numerics, applied lane-wise, one word a cycle.

``y = table[q + 128]`` per lane (:func:`hwaccel.numerics.gelu.gelu_int`).

Interface
---------
``table``   In  stream of int8 entries: a load is 256 beats, ``table[0]`` (input -128) first
            (``GeluParams.table`` in order). A beat is taken before a word when both are valid;
            send the whole load before the words it applies to.
``sink``    In  stream of ``{data: lanes x int8, last}``.
``source``  Out stream of ``{data: lanes x int8, last}``: each word's GELU, ``last`` passed on.

Hardware decisions
------------------
* One 256 x 8 memory per lane, all written together by ``table`` (LUT RAM or a block RAM
  each: ``lanes x 2 Kibit``), so a word is one synchronous read: no multiplier, no
  requantizer. Its address is the input with the sign bit flipped (``q + 128``).
* The read port is the output register: it is enabled only when a word enters, so while
  ``source`` waits it holds the word (a one-deep pipeline that freezes), and a word enters
  whenever the register is empty or being emptied: one word a cycle, latency
  :data:`GELU_LATENCY`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ...numerics import INT8
from ...numerics.gelu import GELU_TABLE_SIZE
from .common import lane_tables, out_layout
from .config import AttentionConfig

__all__ = ["GeluUnit", "GELU_LATENCY"]

#: Cycles from a word accepted to its result on ``source``.
GELU_LATENCY = 1


class GeluUnit(wiring.Component):
    """Lane-wise GELU table of an :class:`AttentionConfig`.

    Members
    -------
    table : ``In(stream.Signature(signed(8)))``
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
            "table": In(stream.Signature(signed(INT8.bits))),
            "sink": In(stream.Signature(out_layout(config.lanes))),
            "source": Out(stream.Signature(out_layout(config.lanes))),
        })

    def elaborate(self, platform):
        L = self.config.lanes
        m = Module()
        t_addr = Signal(range(GELU_TABLE_SIZE))
        m.d.comb += self.table.ready.eq(1)
        rd = lane_tables(m, "table", signed(INT8.bits), GELU_TABLE_SIZE, L, addr=t_addr,
                         data=self.table.payload, en=self.table.valid)
        with m.If(self.table.valid):
            m.d.sync += t_addr.eq(t_addr + 1)      # wraps after 256: one load

        out_v, out_last = Signal(), Signal()
        take = Signal()
        m.d.comb += [self.sink.ready.eq((~out_v | self.source.ready) & ~self.table.valid),
                     take.eq(self.sink.valid & self.sink.ready)]
        for i in range(L):
            q = self.sink.payload.data[i].as_unsigned()
            m.d.comb += [rd[i].addr.eq(Cat(q[:7], ~q[7])), rd[i].en.eq(take)]
        with m.If(take):
            m.d.sync += [out_v.eq(1), out_last.eq(self.sink.payload.last)]
        with m.Elif(self.source.ready):
            m.d.sync += out_v.eq(0)
        m.d.comb += [self.source.valid.eq(out_v), self.source.payload.last.eq(out_last)]
        m.d.comb += [self.source.payload.data[i].eq(rd[i].data) for i in range(L)]
        return m
