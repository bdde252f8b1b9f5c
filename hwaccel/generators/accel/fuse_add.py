"""The residual ADD in a GEMM's result path (:mod:`.fuse`): two pipeline stages a word a cycle.

Each lane is :func:`hwaccel.numerics.add_requantize` of the GEMM's result ``a`` (after the fused
GELU table, if any) and the residual ``b`` (the word the result overwrites, read a cycle after
``a``): ``saturate((a * mult_a + b * mult_b + 2**(S-1)) >> S)``, ReLU folded into the lower
bound, as the element-wise unit computes it (:mod:`.eltwise`). Stage 1 registers ``a * mult_a``
as ``b``'s read is in flight; stage 2 adds ``b * mult_b``, rounds, shifts and clamps into the
store. Two multipliers a lane (the element-wise unit's one a lane takes two cycles a word).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...numerics import MULT_BITS
from ..rounding import round_shift, saturate_int8
from .config import AccelConfig
from .isa import elt_layout

__all__ = ["FuseAdd"]


class FuseAdd(wiring.Component):
    """Members
    -------
    a : ``In(act_bits)``, a_valid : ``In(1)``   a result word of the GEMM
    b : ``In(act_bits)``                        the residual word, the cycle after ``a``
    args : ``In(elt_layout(config))``           the command's ``elt.add`` fields
    y : ``Out(act_bits)``, y_valid : ``Out(1)``   the sum, the cycle after ``a``
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = config
        super().__init__({"a": In(config.act_bits), "a_valid": In(1), "b": In(config.act_bits),
                          "args": In(elt_layout(config)), "y": Out(config.act_bits),
                          "y_valid": Out(1)})

    def elaborate(self, platform):
        m = Module()
        p = self.args.add
        out = []
        for lane in range(self.config.lanes):
            prod_a = Signal(signed(8 + MULT_BITS + 1), name=f"prod_a{lane}")
            m.d.sync += prod_a.eq(self.a.word_select(lane, 8).as_signed() * p.mult_a)
            total = prod_a + self.b.word_select(lane, 8).as_signed() * p.mult_b
            v = Signal(signed(len(total) + 1), name=f"sum{lane}")
            m.d.comb += v.eq(round_shift(total, p.shift))
            out.append(saturate_int8(v, p.relu))
        m.d.sync += self.y_valid.eq(self.a_valid)
        m.d.comb += self.y.eq(Cat(*out))
        return m
