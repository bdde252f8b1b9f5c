"""The softmax unit's reciprocal: dividers ``R = floor(127 * 2**31 / S)`` taking rows in turn.

A restoring divider resolves ``bits_per_cycle`` quotient bits a cycle (that many
subtract-and-select steps chained): ``div_cycles = ceil(recip_bits / bits_per_cycle)`` cycles
(22 at one bit a cycle). 22 bits hold the quotient for every table numerics accepts
(``EXP[0] >= 2**16``, and ``S >= EXP[0]``); the dividend ``127 * 2**31`` has zeros in its low
31 bits, so a divider starts from ``127 * 2**31 >> 22`` (or more, padded to whole cycles),
already below ``S``, and shifts in zeros. ``dividers`` of them
(:attr:`~.config.AttentionConfig.dividers`) take the rows in turn, one a cycle at most: a
divider takes its next row in the cycle of its last step. The output stage may take a row up
to :data:`DIV_LEAD` cycles before its quotient is in its slot (it reads ``R`` only at the
stage that uses it); then the divider does not mark the slot full.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Mux, Signal, signed

from ...numerics.softmax import PROB_MAX, RECIP_SHIFT
from .common import any_of, put_slot

__all__ = ["reciprocal_dividers", "DIV_LEAD", "div_lead"]

#: Cycles before the slot shows a row's quotient (the cycle after the divider's last step)
#: that the output stage may start the row: its first word reaches the product stage two
#: cycles after its first read, and the last step is at most a cycle after the start.
DIV_LEAD = 2


def div_lead(cfg) -> int:
    """Cycles before a row's quotient shows in its slot that the output stage may start it:
    at most :data:`DIV_LEAD`, and only while the divider runs (``div_cycles`` of them)."""
    return min(DIV_LEAD, cfg.div_cycles)


def reciprocal_dividers(m, cfg, *, ssum, sfull, rh, rfull) -> list:
    """Add ``cfg.dividers`` dividers to ``m``: they take the slots' sums in slot order (slot
    ``k`` once ``sfull[k]``, clearing it) and write each quotient to ``rh[k]``, setting
    ``rfull[k]`` unless the output stage took the row early, in the cycle of the last step
    (``div_cycles`` cycles after the start). Returns each divider's ``(busy, slot, cnt, last,
    taken)``: it runs the row of ``slot``, its last step when ``cnt == 1`` (``last``); the
    caller sets ``taken`` when it takes that row before the last step (cleared as the divider
    starts a row)."""
    slots, dividers = cfg.slots, cfg.dividers
    qb, k = cfg.recip_bits, cfg.bits_per_cycle
    steps = cfg.div_cycles * k                # padded to whole cycles: leading zeros
    assert steps <= RECIP_SHIFT   # the dividend's shifted-in bits are all zero
    d_slot, d_eng = Signal(range(slots)), Signal(range(dividers))   # the next row's
    d_gos, out = [], []
    for n in range(dividers):
        d_cur, d_busy = Signal(range(slots), name=f"div{n}_slot"), Signal(name=f"div{n}_busy")
        d_taken = Signal(name=f"div{n}_taken")
        dsum = Signal(cfg.sum_bits, name=f"div{n}_sum")
        rem, quo = Signal(cfg.sum_bits + 1, name=f"div{n}_rem"), Signal(steps, name=f"div{n}_q")
        cnt = Signal(range(cfg.div_cycles + 1), name=f"div{n}_cnt")
        d_last = d_busy & (cnt == 1)
        d_go = sfull[d_slot] & (d_eng == n) & (~d_busy | d_last)
        d_gos.append(d_go)
        r_cur, q_cur = rem, quo
        for j in range(k):                    # k restoring steps chained in one cycle
            rem2 = (r_cur << 1)[:len(rem)]    # a zero shifted in
            diff = Signal(signed(len(rem) + 1), name=f"div{n}_diff{j}")
            r_new = Signal.like(rem, name=f"div{n}_rem{j}")
            q_new = Signal.like(quo, name=f"div{n}_q{j}")
            m.d.comb += [diff.eq(rem2 - dsum),
                         r_new.eq(Mux(diff >= 0, diff, rem2)),
                         q_new.eq(Cat(diff >= 0, q_cur)[:steps])]
            r_cur, q_cur = r_new, q_new
        with m.If(d_busy):
            m.d.sync += [rem.eq(r_cur), quo.eq(q_cur), cnt.eq(cnt - 1)]
            with m.If(d_last):
                m.d.sync += d_busy.eq(0)
                put_slot(m, rh, d_cur, q_cur[:qb])
                with m.If(~d_taken):
                    put_slot(m, rfull, d_cur, 1)
        with m.If(d_go):
            # The partial remainder starts below S (127 * 2**31 >> steps < 2**16).
            m.d.sync += [d_busy.eq(1), d_cur.eq(d_slot), dsum.eq(ssum[d_slot]),
                         rem.eq((PROB_MAX << RECIP_SHIFT) >> steps), quo.eq(0),
                         cnt.eq(cfg.div_cycles), d_taken.eq(0)]
        out.append((d_busy, d_cur, cnt, d_last, d_taken))
    with m.If(any_of(d_gos)):
        m.d.sync += [d_slot.eq(Mux(d_slot == slots - 1, 0, d_slot + 1)),
                     d_eng.eq(Mux(d_eng == dividers - 1, 0, d_eng + 1))]
        put_slot(m, sfull, d_slot, 0)
    return out
