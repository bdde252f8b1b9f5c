"""The conv engine's requantizer stages (6 to 8): each block's accumulator times its
multiplier, rounded, shifted, saturated.

Stage 6: ``acc * M`` as two products that each fit one 18x18 multiplier (an ECP5 MULT18X18D),
registered at its output; stage 7: their sum + 2**(S-1); stage 8: >> S (arithmetic, so round
half up); then saturate into the result FIFO. At the product's width
(:mod:`hwaccel.generators.rounding`): a shift past it gives 0. With ``requant_dsp`` each half
is a product register (:func:`.split_product.registered_halves`, what Verilator runs too): on
a MULT18X18D the block's output register, so no route follows the block in the cycle (a
third of a placed 13.3 ns path at ef1bf89). Without it, ``requant_dsp_blocks`` blocks' halves are
such product registers all the same, the others products for Yosys to map (LUT logic under
``lut_multipliers``).
"""

from __future__ import annotations

from ..rounding import rounding_terms, saturate_int8, shift_terms
from ..split_product import join_product, registered_halves, split_product
from .rw import data_register

__all__ = ["requantize_stages"]


def requantize_stages(m, cfg, platform, accs, mults, shifts, relu, v5, e5, stage, datum):
    """The saturated int8 results of the accumulators ``accs`` (stage 5's registers, with
    their ``mults`` and ``shifts``) three cycles on: ``(outs, valids, end)``, ``valids``
    stage 5's valid flag ``v5`` in stages 6, 7 and 8 (the last marks ``outs``), ``end`` stage
    5's ``e5`` in stage 8. ``stage`` and ``datum`` make
    the engine's control and data registers."""
    B = cfg.block
    halves = [split_product(accs[n], mults[n]) for n in range(B)]
    dsp = {n: registered_halves(m, halves[n], accs[n], mults[n], platform=platform,
                                name=f"rq_n{n}", register=data_register)
           for n in range(B) if cfg.requant_dsp or n < cfg.requant_dsp_blocks}
    lows = [dsp[n][0] if n in dsp else datum(f"rq_lo_n{n}", h.low, h.low.shape())
            for n, h in enumerate(halves)]
    highs = [dsp[n][1] if n in dsp else datum(f"rq_high_n{n}", h.high, h.high.shape())
             for n, h in enumerate(halves)]
    shifts6 = [datum(f"s6_shift_n{n}", shifts[n], shifts[n].shape()) for n in range(B)]
    v6, e6 = stage("s6_valid", v5), stage("s6_end", e5)
    terms = [rounding_terms(join_product(lows[n], highs[n], halves[n]), shifts6[n])
             for n in range(B)]
    scaled = [datum(f"scaled_n{n}", t.total, t.total.shape()) for n, t in enumerate(terms)]
    shifts7 = [datum(f"s7_shift_n{n}", t.shift, t.shift.shape()) for n, t in enumerate(terms)]
    big7 = [datum(f"s7_big_n{n}", t.big, 1) for n, t in enumerate(terms)]
    v7, e7 = stage("s7_valid", v6), stage("s7_end", e6)
    shifted = [datum(f"shifted_n{n}", shift_terms(scaled[n], shifts7[n], big7[n]),
                     scaled[n].shape()) for n in range(B)]
    v8, e8 = stage("s8_valid", v7), stage("s8_end", e7)
    return [saturate_int8(shifted[n], relu) for n in range(B)], (v6, v7, v8), e8
