"""LayerNorm's variance stage and reciprocal square roots: a row's sums in, its root out.

* The variance stage is a pipeline that takes a row a cycle (:data:`VAR_CYCLES` deep): the
  slot's sums registered, ``C*Sxx`` and ``Sx*Sx`` (two multipliers), ``W`` (a subtract and
  add), a leading-one detector gives ``s`` (``W`` kept beside it), then one barrel shift by an
  even amount gives the 22-bit mantissa ``w`` as a root takes the row.
* ``roots`` reciprocal square roots (:attr:`~.config.AttentionConfig.roots`) take the rows in
  turn, ``rsqrt_cycles`` each: a row enters the variance stage only when its root will be free
  as it comes out (``rsqrt_cycles`` after that root's previous row entered), so the pipeline
  never waits. Each root is bitwise (:func:`~.common.rsqrt_steps`), ``bits_per_cycle`` bits of
  ``r`` a cycle from the top, and writes ``r`` and ``h - 1`` to the row's slot in its last
  step's cycle. The output stage may take the row up to :data:`ROOT_LEAD` cycles before
  that (it reads ``r`` and ``h - 1`` only at the stages that use them); then the root does
  not mark the slot full.
"""

from __future__ import annotations

from amaranth.hdl import Array, Mux, Signal, signed

from ...numerics.layernorm import LN_EPS_FRAC, LN_FRAC, RSQRT_BITS, RSQRT_SHIFT
from .common import bit_length, put_slot, rsqrt_steps

__all__ = ["variance_roots", "VAR_CYCLES", "ROOT_LEAD", "root_lead"]

#: Cycles from the variance stage taking a row's sums to a root's start: the sums registered,
#: ``C*Sxx`` and ``Sx*Sx``, ``W``, its leading one (the normalizing shift as the root takes it).
VAR_CYCLES = 4
#: Cycles before the slot shows a row's root (the cycle after the root's last step) that the
#: output stage may start the row: its first word reaches the ``D*r`` stage three cycles after
#: its first read, and the root's last step is at most two cycles after the start.
ROOT_LEAD = 3
_H_BIAS = RSQRT_SHIFT - LN_FRAC - LN_EPS_FRAC // 2     # h = _H_BIAS + s


def root_lead(cfg) -> int:
    """Cycles before a row's root shows in its slot that the output stage may start it: at
    most :data:`ROOT_LEAD`, and only while the root runs (``rsqrt_cycles`` of them)."""
    return min(ROOT_LEAD, cfg.rsqrt_cycles)


def variance_roots(m, cfg, *, chans, eps, vfull, sxs, sxxs, rs, hm1s, rfull) -> list:
    """Add the variance stage and the roots to ``m``: slots are taken in order once
    ``vfull[k]`` (clearing it) from ``sxs[k]``, ``sxxs[k]``; each row's ``r`` (0 when ``W =
    0``) and ``h - 1`` go to ``rs[k]``, ``hm1s[k]``, setting ``rfull[k]`` unless the output
    stage took the row early. Returns each root's ``(busy, slot, cnt, last, taken)``: it
    runs the row of ``slot``, its last step when ``cnt == 1`` (``last``); the caller sets
    ``taken`` when it takes that row before the last step (cleared as the root starts)."""
    slots, roots = cfg.slots, cfg.roots
    k = cfg.bits_per_cycle
    steps = cfg.rsqrt_cycles * k               # padded to whole cycles: leading zeros
    v_slot = Signal(range(slots))              # the next row's slot
    r_eng = Signal(range(roots))               # the root that takes the next row
    # Cycles until each root may take another row into the variance stage.
    hold = Array(Signal(range(cfg.rsqrt_cycles), name=f"root{n}_hold") for n in range(roots))
    v_go = vfull[v_slot] & (hold[r_eng] == 0)
    for n in range(roots):
        with m.If(v_go & (r_eng == n)):
            m.d.sync += hold[n].eq(cfg.rsqrt_cycles - 1)
        with m.Elif(hold[n] != 0):
            m.d.sync += hold[n].eq(hold[n] - 1)
    with m.If(v_go):
        m.d.sync += [v_slot.eq(Mux(v_slot == slots - 1, 0, v_slot + 1)),
                     r_eng.eq(Mux(r_eng == roots - 1, 0, r_eng + 1))]
        put_slot(m, vfull, v_slot, 0)
    # Each row's valid bit, slot and root down the pipeline.
    pv = [Signal(name=f"var_v{j}") for j in range(VAR_CYCLES)]
    ps = [Signal(range(slots), name=f"var_slot{j}") for j in range(VAR_CYCLES)]
    pe = [Signal(range(roots), name=f"var_root{j}") for j in range(VAR_CYCLES)]
    m.d.sync += [pv[0].eq(v_go), ps[0].eq(v_slot), pe[0].eq(r_eng)]
    m.d.sync += [x[j + 1].eq(x[j]) for x in (pv, ps, pe) for j in range(VAR_CYCLES - 1)]
    vsx, vsxx = Signal(signed(cfg.sx_bits)), Signal(cfg.sxx_bits)
    t1 = Signal(cfg.sxx_bits + len(chans))
    t2 = Signal(2 * cfg.sx_bits)
    wv, wv3 = Signal(cfg.var_bits), Signal(cfg.var_bits)
    zero = Signal()
    sb = Signal(range(cfg.var_bits + 2))           # s + 11 = (bits(W) + 1) // 2
    s_off = (RSQRT_BITS // 2)                      # 11
    m.d.sync += [vsx.eq(sxs[v_slot]), vsxx.eq(sxxs[v_slot]),                   # -> pv[0]
                 t1.eq(chans * vsxx), t2.eq((vsx * vsx).as_unsigned()),        # -> pv[1]
                 wv.eq(((t1 - t2) << LN_EPS_FRAC) + eps),                      # -> pv[2]
                 sb.eq((bit_length(wv) + 1) >> 1), zero.eq(wv == 0), wv3.eq(wv)]   # -> pv[3]
    fin = pv[VAR_CYCLES - 1]

    # --- reciprocal square roots, bits_per_cycle bits a cycle, taking rows in turn ---------
    rb = 2 * (steps - 1)                       # B starts at w << 2 * (top bit)
    # A = (r*w) << (b+1) <= 2**43 << steps; B = w << 2b <= w << rb
    big = max(RSQRT_BITS + rb, 43 + steps, 2 * RSQRT_SHIFT) + 2
    down = Mux(sb > s_off, sb - s_off, 0)[:5]      # s > 0: W >> 2s
    up = Mux(sb > s_off, 0, s_off - sb)[:5]        # s <= 0: W << -2s
    w = ((wv3 << (up * 2)) >> (down * 2))[:RSQRT_BITS]
    out = []
    for n in range(roots):
        r_busy, r_taken = Signal(name=f"root{n}_busy"), Signal(name=f"root{n}_taken")
        cnt = Signal(range(cfg.rsqrt_cycles + 1), name=f"root{n}_cnt")
        r_cur, r_zero = Signal(range(slots), name=f"root{n}_slot"), Signal(name=f"root{n}_0")
        r_sb = Signal.like(sb, name=f"root{n}_sb")
        r_last = r_busy & (cnt == 1)
        go = fin & (pe[VAR_CYCLES - 1] == n)
        root = rsqrt_steps(m, f"root{n}", k, steps, big, busy=r_busy, start=go, w=w << rb)
        with m.If(r_busy):
            m.d.sync += cnt.eq(cnt - 1)
            with m.If(r_last):
                h = r_sb - (s_off - _H_BIAS)           # 9 + s
                m.d.sync += r_busy.eq(0)
                put_slot(m, rs, r_cur, Mux(r_zero, 0, root[:cfg.root_bits]))
                put_slot(m, hm1s, r_cur, Mux(r_sb < s_off - _H_BIAS + 1, 0, h - 1))
                with m.If(~r_taken):
                    put_slot(m, rfull, r_cur, 1)
        with m.If(go):
            m.d.sync += [cnt.eq(cfg.rsqrt_cycles), r_busy.eq(1), r_cur.eq(ps[VAR_CYCLES - 1]),
                         r_zero.eq(zero), r_sb.eq(sb), r_taken.eq(0)]
        out.append((r_busy, r_cur, cnt, r_last, r_taken))
    return out
