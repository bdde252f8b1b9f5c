"""The element-wise unit's lane multipliers under ``lut_multipliers``: one DSP block a lane, shared
by AVGPOOL's divider and the ADD's first word.

Under :attr:`AccelConfig.lut_multipliers` the FPGA flow maps every multiply to LUT logic but the
conv engine's int8 MACs and the ones marked :data:`hwaccel.impl.yosys.DSP_ATTR`, and the
element-wise unit marks AVGPOOL's lane products: ``lanes`` DSP blocks (the 12 that
``ecp5_144``'s 144 MACs leave on the 85F), idle in an ADD job. The ADD's ``2 x lanes`` products
(``mult x byte``, a lane of each of the two words it holds) were all Booth trees in LUTs: on
``ecp5_144``'s unit alone (Yosys) the 12 this takes off were 5,202 LUT4 slots
(docs/ecp5-dsp.md). The unit runs one job at a time, and a job's last product is in its results
before the job ends and the next one can start, so each lane's block takes AVGPOOL's operands in
an AVGPOOL job and the ADD's first word's in an ADD job: a choice by the job's kind (a register)
in front of the block's input registers, the same latency. Outputs and cycles are unchanged.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, signed

from ...hdl.dsp import DSP_LATENCY, MULT18_BITS, registered_product
from ...impl.yosys import DSP_ATTR
from ...numerics import MULT_BITS

__all__ = ["SharedLaneProducts", "avg_fits_a_block", "shares_lane_products", "staged_product",
           "STAGED_LATENCY"]

#: Cycles from the operands to a :func:`staged_product`: a stage more than a DSP block's.
STAGED_LATENCY = DSP_LATENCY + 1


def avg_fits_a_block(cfg) -> bool:
    """Whether AVGPOOL's lane product (accumulator x multiplier, each with a zero sign bit)
    fits one MULT18X18D."""
    return max(cfg.avg_acc_bits, cfg.avg_mult_bits) < MULT18_BITS


def shares_lane_products(cfg) -> bool:
    """Whether ``cfg``'s element-wise unit shares AVGPOOL's lane blocks with the ADD: under
    ``lut_multipliers`` (elsewhere every product has a DSP block of its own), and where
    AVGPOOL's operands fit one block (else its multiply is not on one)."""
    return cfg.lut_multipliers and avg_fits_a_block(cfg)


class SharedLaneProducts:
    """``lanes`` registered products on DSP blocks, each taking the AVGPOOL operands of its
    lane when ``avg`` (the job's kind) is set and the ADD's otherwise.

    :meth:`add` and :meth:`avg` drive a lane's operands for one datapath and return the
    product as that datapath's own multiply would (:func:`registered_product`, ``fabric=False``:
    the same latency).
    """

    def __init__(self, m, cfg, platform, avg):
        self._m = m
        add_mult, byte = signed(MULT_BITS + 1), signed(8)
        avg_acc, avg_mult = signed(cfg.avg_acc_bits + 1), signed(cfg.avg_mult_bits + 1)
        self._add = [(Signal(add_mult, name=f"elt_add_m{i}"), Signal(byte, name=f"elt_add_b{i}"))
                     for i in range(cfg.lanes)]
        self._avg = [(Signal(avg_mult, name=f"elt_avg_m{i}"), Signal(avg_acc, name=f"elt_avg_s{i}"))
                     for i in range(cfg.lanes)]
        self._products = [
            registered_product(m, Mux(avg, vm, am), Mux(avg, vs, ab), platform=platform,
                               name=f"elt_q{i}", fabric=False, attrs={DSP_ATTR: 1})
            for i, ((am, ab), (vm, vs)) in enumerate(zip(self._add, self._avg))]

    def _take(self, ops, i, a, b):
        self._m.d.comb += [ops[i][0].eq(a), ops[i][1].eq(b)]
        return self._products[i][:len(a) + len(b)].as_signed()

    def add(self, i, mult, byte):
        """Lane ``i`` of the ADD's first word: ``mult x byte`` (signed, ``MULT_BITS + 1`` and 8
        bits)."""
        return self._take(self._add, i, mult, byte)

    def avg(self, i, acc, mult):
        """Lane ``i`` of AVGPOOL's divider: ``acc x mult`` (signed operands, the accumulator's
        and the multiplier's widths plus a zero sign bit)."""
        return self._take(self._avg, i, mult, acc)


def staged_product(m, a, byte, *, name: str):
    """``a * byte`` (signed, ``byte`` 8 bits) in LUT logic, :data:`STAGED_LATENCY` cycles after
    the operands: registered operands, then the two partial products of the byte's halves
    (``a * byte[:4]``, unsigned low nibble, and ``a * byte[4:]``, signed) registered, then
    ``(high << 4) + low`` registered. Exactly ``a * byte``: the multiply of
    :func:`registered_product` with a register between its partial products, so neither
    half's tree and the add that joins them share a cycle."""
    if len(byte) != 8:
        raise ValueError(f"byte must be 8 bits wide, not {len(byte)}")
    a_q = Signal(signed(len(a)), name=f"{name}_a")
    b_q = Signal(signed(8), name=f"{name}_b")
    low = Signal(signed(len(a) + 5), name=f"{name}_lo", reset_less=True)
    high = Signal(signed(len(a) + 4), name=f"{name}_hi", reset_less=True)
    product = Signal(signed(len(a) + 8), name=f"{name}_p", reset_less=True)
    m.d.sync += [a_q.eq(a), b_q.eq(byte),
                 low.eq(a_q * Cat(b_q[:4], Const(0, 1)).as_signed()),
                 high.eq(a_q * b_q[4:].as_signed()),
                 product.eq((high << 4) + low)]
    return product
