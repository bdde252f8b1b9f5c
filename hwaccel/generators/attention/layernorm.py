"""The LayerNorm unit: int8 rows of C channels in, int8 out, bit-exact with numerics.

Every number follows :func:`hwaccel.numerics.layernorm.layernorm_int`: ``Sx``, ``Sxx``, ``W =
(C*Sxx - Sx*Sx) * 2**16 + E``, the even shift ``s`` and mantissa ``w``, ``r = floor(2**31 /
sqrt(w))`` (0 when ``W = 0``), ``h = clip(9 + s, 1, 62)``, ``z_c = (D_c*r + 2**(h-1)) >> h`` with
``D_c = C*q_c - Sx``, and ``y_c = sat8((z_c*G_c + B_c + 2**(S-1)) >> S)``.

Interface
---------
``setup``   In  stream of ``{channels, eps_term, shift}`` (``C``, ``E``, ``S`` of
            ``LayerNormParams``, which checks ``1 <= C <= max_channels``, ``E < 2**50``,
            ``1 <= S <= 40``): one beat per layer; it also restarts the parameter load.
``params``  In  stream of packed beats of ``load_bits`` (:mod:`.packing`): the ``C`` entries
            ``{gamma, beta}`` (:func:`ln_param_layout`, 73 bits, ``G_c`` in the low 17),
            channel 0 first, as many a beat as fit (28 in a 2048-bit beat), so a load is
            ``load_beats(C, 73, load_bits)`` beats; each is written a parameter-memory word
            (``lanes`` channels) a cycle.
``sink``    In  stream of ``lanes x int8`` words: a row is ``ceil(C / lanes)`` words, channel
            ``c`` in lane ``c % lanes`` of word ``c // lanes`` (lanes past ``C`` ignored).
``source``  Out stream of ``{data: lanes x int8, last}``: the row's outputs in the same order
            (0 past ``C``), ``last`` on its last word.

``setup`` and ``params`` are taken only between rows (and before ``sink`` when both are
valid); a layer's loads go in before its rows.

Hardware decisions
------------------
* Input pass: each word is stored in a row buffer (``ch_words`` words, one block RAM) and
  registered; its masked lanes and their squares (``lanes`` 8 x 8 squarers) are registered
  the next cycle, the word's two sums (adder trees) the cycle after, and added into ``Sx``
  and ``Sxx`` the cycle after that: exact.
* Variance (:func:`var_cycles`): ``C*Sxx`` and ``Sx*Sx`` (two multipliers, one cycle), ``W``
  (a subtract and add), a leading-one detector gives ``s``, and one barrel shift by an even
  amount the 22-bit mantissa ``w``: a cycle each.
* Reciprocal square root (``rsqrt_cycles`` of the config): bitwise, ``bits_per_cycle`` bits
  of ``r`` a cycle from the top (``r <= 2**21``, 22 bits: 22 cycles at one), keeping
  ``r**2 * w`` and ``r * w`` as running sums so each step is two adds and a compare against
  ``2**62``: no multiplier. The greedy bit choice is the largest ``r`` with ``r*r*w <=
  2**62``, i.e. ``isqrt(2**62 // w)``, the exact floor.
* Output pass: a pipeline that freezes as a whole while ``source`` is not ready: buffer and
  parameter reads, registered (the parameter memory holds ``lanes`` channels per word, one
  block RAM wide, written a word a cycle from the packed beats through per-lane write
  enables), ``D_c`` (``C * q``, an 11 x 8 multiplier per lane), ``D_c * r`` (19 x 22), the
  rounding shift by ``h``,
  ``z * G + B`` (20 x 17 plus a 56-bit add), the shift by ``S - 1``, then rounding and
  saturation: :data:`LN_OUT_LATENCY` cycles. The shifts' amounts ``h - 1`` and ``S - 1``
  are registers set with the row. Four multipliers a lane (three in DSPs) could be shared
  between lanes at a word every few cycles; one word a cycle keeps the pass at ``W``
  cycles.
* The next row's input pass runs while the output pipeline drains; its square root waits
  at its last step until the pipeline is empty (the pipeline's ``Sx``, ``r``, ``h`` are
  copies taken there), which never happens when ``source`` keeps up.

Cycles: :mod:`.perf`; rows repeat every ``2 W + var_cycles + rsqrt_cycles`` cycles.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ...numerics import INT8
from ...numerics.layernorm import LN_EPS_FRAC, LN_FRAC, RSQRT_BITS, RSQRT_SHIFT
from .common import (
    delay,
    out_layout,
    packed_writer,
    round_shift_var,
    sat8,
    tree_reduce,
    tree_stages,
    word_layout,
)
from .config import AttentionConfig
from .packing import LN_PARAM_BITS

__all__ = ["LayerNormUnit", "ln_setup_layout", "ln_param_layout", "var_cycles", "LN_OUT_LATENCY"]



def var_cycles(cfg: AttentionConfig) -> int:
    """Cycles from the input pass's end to the square root's first step: the last word's
    squares, its sums (``1 + tree_stages(lanes)``), the row's sums, the products, ``W``, its
    leading one, the normalizing shift."""
    return 7 + tree_stages(cfg.lanes)


#: Cycles from the output pass's last read to that word on ``source`` (reads, the word
#: registered, ``D``, ``D*r``, ``z``, ``z*G + B``, the shift by ``S - 1``, rounding and
#: saturation).
LN_OUT_LATENCY = 8
_H_BIAS = RSQRT_SHIFT - LN_FRAC - LN_EPS_FRAC // 2     # h = _H_BIAS + s


def ln_setup_layout(cfg: AttentionConfig) -> data.StructLayout:
    return data.StructLayout({"channels": range(cfg.max_channels + 1),
                              "eps_term": cfg.eps_bits,
                              "shift": range(cfg.shift_max + 1)})


def ln_param_layout(cfg: AttentionConfig) -> data.StructLayout:
    return data.StructLayout({"gamma": signed(cfg.gamma_bits), "beta": signed(cfg.beta_bits)})


class LayerNormUnit(wiring.Component):
    """Integer LayerNorm of an :class:`AttentionConfig`.

    Members
    -------
    setup : ``In(stream.Signature(ln_setup_layout(config)))``
    params : ``In(stream.Signature(unsigned(config.load_bits)))``
    sink : ``In(stream.Signature(word_layout(config.lanes)))``
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
            "setup": In(stream.Signature(ln_setup_layout(config))),
            "params": In(stream.Signature(unsigned(config.load_bits))),
            "sink": In(stream.Signature(word_layout(config.lanes))),
            "source": Out(stream.Signature(out_layout(config.lanes))),
        })

    def elaborate(self, platform):
        cfg = self.config
        L, depth = cfg.lanes, max(cfg.ch_words, 2)
        pos = range(cfg.max_channels + L + 1)
        m = Module()

        buf = m.submodules.buf = memory.Memory(shape=word_layout(L), depth=depth, init=[])
        buf_wr, buf_rd = buf.write_port(), buf.read_port()
        par_shape = data.ArrayLayout(ln_param_layout(cfg), L)
        par = m.submodules.par = memory.Memory(shape=par_shape, depth=depth, init=[])
        par_wr, par_rd = par.write_port(granularity=1), par.read_port()

        IN, VAR, RSQRT, OUT = range(4)
        phase = Signal(range(4))
        in_row = Signal()
        # Channels from the current word on (0 or less past them): lane i takes part when
        # left > i, a compare with a constant.
        left = Signal(signed(Shape.cast(pos).width + 2))
        widx = Signal(range(depth + 1))
        nwords = Signal(range(depth + 1))
        chans = Signal(range(cfg.max_channels + 1))
        eps = Signal(cfg.eps_bits)
        shift = Signal(range(cfg.shift_max + 1))
        out_busy, adv = Signal(), Signal()

        # --- loads ----------------------------------------------------------------------------
        idle = (phase == IN) & ~in_row & ~out_busy
        setup_take = self.setup.valid & self.setup.ready
        p_addr, p_data, p_en, p_busy = packed_writer(
            m, "pload", self.params, entry_bits=LN_PARAM_BITS, row_entries=L, count=chans,
            max_count=cfg.max_channels, allow=idle & ~self.setup.valid, restart=setup_take)
        m.d.comb += self.setup.ready.eq(idle & ~p_busy)
        with m.If(setup_take):
            s = self.setup.payload
            m.d.sync += [chans.eq(s.channels), eps.eq(s.eps_term), shift.eq(s.shift)]
        m.d.comb += [par_wr.addr.eq(p_addr), par_wr.data.eq(p_data), par_wr.en.eq(p_en)]

        # --- input pass: store, exact Sx and Sxx ----------------------------------------------
        accept = Signal()
        m.d.comb += [self.sink.ready.eq((phase == IN)
                                        & (in_row | ~(self.setup.valid | self.params.valid
                                                      | p_busy))),
                     accept.eq(self.sink.valid & self.sink.ready)]
        left_now = Mux(in_row, left, chans)
        widx_now = Mux(in_row, widx, 0)
        m.d.comb += [buf_wr.addr.eq(widx_now), buf_wr.data.eq(self.sink.payload),
                     buf_wr.en.eq(accept)]
        # The word is registered, its masked sums next cycle, added in the cycle after.
        in_v, in_first = Signal(), Signal()
        in_q = Signal(word_layout(L))
        in_left = Signal.like(left)
        m.d.sync += in_v.eq(accept)
        with m.If(accept):
            m.d.sync += [in_q.eq(self.sink.payload), in_left.eq(left_now),
                         in_first.eq(~in_row)]
        # Then the masked lanes and their squares (one multiplier each), then the two sums.
        mq = [Signal(signed(INT8.bits), name=f"mq{i}") for i in range(L)]
        sq = [Signal(2 * INT8.bits - 1, name=f"sq{i}") for i in range(L)]
        mv, mfirst = Signal(), Signal()
        m.d.sync += [mv.eq(in_v), mfirst.eq(in_first)]
        for i in range(L):
            qi = Mux(in_left > i, in_q[i], 0)
            m.d.sync += [mq[i].eq(qi), sq[i].eq(qi * qi)]
        sx, sxx = Signal(signed(cfg.sx_bits)), Signal(cfg.sxx_bits)
        psx, psxx = Signal(signed(cfg.sx_bits)), Signal(cfg.sxx_bits)
        pv, pfirst = Signal(), Signal()
        sum_x = tree_reduce(m, mq, operator.add, "psx")
        sum_xx = tree_reduce(m, sq, operator.add, "psxx")
        t_v = delay(m, mv, tree_stages(L), "psum_v")
        t_first = delay(m, mfirst, tree_stages(L), "psum_first")
        m.d.sync += [pv.eq(([mv] + t_v)[-1]), pfirst.eq(([mfirst] + t_first)[-1]),
                     psx.eq(sum_x), psxx.eq(sum_xx)]
        with m.If(pv):
            m.d.sync += [sx.eq(Mux(pfirst, 0, sx) + psx), sxx.eq(Mux(pfirst, 0, sxx) + psxx)]
        tv = tree_stages(L)                          # the sums' extra cycles
        vstep = Signal(range(var_cycles(cfg)))
        with m.If(accept):
            with m.If(left_now <= L):
                m.d.sync += [in_row.eq(0), phase.eq(VAR), vstep.eq(0), nwords.eq(widx_now + 1)]
            with m.Else():
                m.d.sync += [in_row.eq(1), widx.eq(widx_now + 1), left.eq(left_now - L)]

        # --- variance and its normalization -----------------------------------------------
        t1 = Signal(cfg.sxx_bits + len(chans))
        t2 = Signal(2 * cfg.sx_bits)
        wv = Signal(cfg.var_bits)
        k = cfg.bits_per_cycle
        steps = cfg.rsqrt_cycles * k               # padded to whole cycles: leading zeros
        rb = 2 * (steps - 1)                       # B starts at w << 2 * (top bit)
        # P <= 2**62; A = (r*w) << (b+1) <= 2**43 << steps; B <= w << rb.
        big = max(RSQRT_BITS + rb, 43 + steps, 2 * RSQRT_SHIFT) + 2
        acc_p, acc_a, acc_b = Signal(big), Signal(big), Signal(big)
        r = Signal(steps)
        cnt = Signal(range(cfg.rsqrt_cycles + 1))
        zero = Signal()
        sb = Signal(range(cfg.var_bits + 2))           # s + 11 = (bits(W) + 1) // 2
        s_off = (RSQRT_BITS // 2)                      # 11
        with m.If(phase == VAR):
            m.d.sync += vstep.eq(vstep + 1)
            # vstep 0 .. 2 + tv: the last word's squares, then its sums, then the row's.
            with m.If(vstep == 3 + tv):
                m.d.sync += [t1.eq(chans * sxx), t2.eq((sx * sx).as_unsigned())]
            with m.If(vstep == 4 + tv):
                m.d.sync += wv.eq(((t1 - t2) << LN_EPS_FRAC) + eps)
            with m.If(vstep == 5 + tv):
                m.d.sync += [sb.eq((_bit_length(wv) + 1) >> 1), zero.eq(wv == 0)]
            with m.If(vstep == 6 + tv):
                down = Mux(sb > s_off, sb - s_off, 0)[:5]      # s > 0: W >> 2s
                up = Mux(sb > s_off, 0, s_off - sb)[:5]        # s <= 0: W << -2s
                w = ((wv << (up * 2)) >> (down * 2))[:RSQRT_BITS]
                m.d.sync += [acc_p.eq(0), acc_a.eq(0),
                             acc_b.eq(w << rb), r.eq(0), cnt.eq(cfg.rsqrt_cycles),
                             phase.eq(RSQRT)]

        # --- reciprocal square root, bits_per_cycle bits a cycle ----------------------------
        p_cur, a_cur, b_cur, r_cur = acc_p, acc_a, acc_b, r
        for j in range(k):                         # k greedy steps chained in one cycle
            cand = Signal(big + 2, name=f"rs_cand{j}")
            take = Signal(name=f"rs_take{j}")
            p_new, a_new, b_new = (Signal(big, name=f"rs_{x}{j}") for x in "pab")
            r_new = Signal(steps, name=f"rs_r{j}")
            m.d.comb += [cand.eq(p_cur + a_cur + b_cur),
                         take.eq(cand <= (1 << (2 * RSQRT_SHIFT))),
                         p_new.eq(Mux(take, cand, p_cur)),
                         a_new.eq(Mux(take, (a_cur >> 1) + b_cur, a_cur >> 1)),
                         b_new.eq(b_cur >> 2),
                         r_new.eq(Cat(take, r_cur)[:steps])]
            p_cur, a_cur, b_cur, r_cur = p_new, a_new, b_new, r_new
        o_r = Signal(cfg.root_bits)
        o_hm1 = Signal(range(2 * RSQRT_SHIFT))        # h - 1 and S - 1: the shifts' amounts
        o_sm1 = Signal(range(cfg.shift_max))
        o_sx = Signal(signed(cfg.sx_bits))
        o_chans = Signal.like(chans)
        o_nwords = Signal.like(nwords)
        with m.If((phase == RSQRT) & ((cnt != 1) | ~out_busy)):
            m.d.sync += [acc_p.eq(p_cur), acc_a.eq(a_cur), acc_b.eq(b_cur), r.eq(r_cur),
                         cnt.eq(cnt - 1)]
            with m.If(cnt == 1):
                h = sb - (s_off - _H_BIAS)               # 9 + s
                m.d.sync += [o_r.eq(Mux(zero, 0, r_cur[:cfg.root_bits])),
                             o_hm1.eq(Mux(sb < s_off - _H_BIAS + 1, 0, h - 1)),
                             o_sx.eq(sx), o_chans.eq(chans), o_sm1.eq(shift - 1),
                             o_nwords.eq(nwords), phase.eq(OUT), widx.eq(0), left.eq(chans)]

        # --- output pass: a pipeline that freezes while source is not ready -----------------
        o_issue = Signal()
        m.d.comb += o_issue.eq((phase == OUT) & adv)
        with m.If(o_issue):
            with m.If(widx == o_nwords - 1):
                m.d.sync += [phase.eq(IN), widx.eq(0)]
            with m.Else():
                m.d.sync += [widx.eq(widx + 1), left.eq(left - L)]
        m.d.comb += [buf_rd.addr.eq(widx), buf_rd.en.eq(adv),
                     par_rd.addr.eq(widx), par_rd.en.eq(adv)]
        stages = LN_OUT_LATENCY - 1
        v = [Signal(name=f"o_v{k}") for k in range(stages)]
        b = [Signal.like(left, name=f"o_left{k}") for k in range(stages)]
        last = [Signal(name=f"o_last{k}") for k in range(stages)]
        gam = [[Signal(signed(cfg.gamma_bits), name=f"g{k}_{i}") for i in range(L)]
               for k in range(4)]
        bet = [[Signal(signed(cfg.beta_bits), name=f"b{k}_{i}") for i in range(L)]
               for k in range(4)]
        qr = [Signal(signed(INT8.bits), name=f"qr_{i}") for i in range(L)]
        dd = [Signal(signed(cfg.d_bits), name=f"d_{i}") for i in range(L)]
        prod = [Signal(signed(cfg.d_bits + cfg.root_bits + 1), name=f"dr_{i}") for i in range(L)]
        z = [Signal(signed(cfg.z_bits), name=f"z_{i}") for i in range(L)]
        t = [Signal(signed(max(cfg.z_bits + cfg.gamma_bits, cfg.beta_bits) + 1), name=f"t_{i}")
             for i in range(L)]
        ts = [Signal.like(t[i], name=f"ts_{i}") for i in range(L)]
        out_v, out_last = Signal(), Signal()
        out_data = Signal(word_layout(L))
        with m.If(adv):
            m.d.sync += [v[0].eq(o_issue), b[0].eq(left), last[0].eq(widx == o_nwords - 1)]
            for k in range(stages - 1):
                m.d.sync += [v[k + 1].eq(v[k]), b[k + 1].eq(b[k]), last[k + 1].eq(last[k])]
            for i in range(L):
                pw = par_rd.data[i]
                m.d.sync += [
                    qr[i].eq(buf_rd.data[i]),                                  # v0 -> v1
                    gam[0][i].eq(pw.gamma), bet[0][i].eq(pw.beta),
                    dd[i].eq(o_chans * qr[i] - o_sx),                          # v1 -> v2
                    gam[1][i].eq(gam[0][i]), bet[1][i].eq(bet[0][i]),
                    prod[i].eq(dd[i] * o_r),                                   # v2 -> v3
                    gam[2][i].eq(gam[1][i]), bet[2][i].eq(bet[1][i]),
                    z[i].eq(round_shift_var(prod[i], o_hm1)),                  # v3 -> v4
                    gam[3][i].eq(gam[2][i]), bet[3][i].eq(bet[2][i]),
                    t[i].eq(z[i] * gam[3][i] + bet[3][i]),                     # v4 -> v5
                    ts[i].eq(t[i] >> o_sm1),                                   # v5 -> v6
                    out_data[i].eq(Mux(b[6] > i, sat8((ts[i] + 1) >> 1), 0)),  # v6 -> out
                ]
            m.d.sync += [out_v.eq(v[6]), out_last.eq(last[6])]
        m.d.comb += [adv.eq(~out_v | self.source.ready),
                     self.source.valid.eq(out_v),
                     self.source.payload.data.eq(out_data),
                     self.source.payload.last.eq(out_last),
                     out_busy.eq(_any(v) | out_v)]
        return m


def _bit_length(value):
    """``value.bit_length()`` of an unsigned value: a balanced tree of halves (the upper half
    when it is not zero), ``log2`` levels of muxes rather than one per bit."""
    n = len(value)
    if n == 1:
        return value
    lo = n // 2
    return Mux(value[lo:] != 0, _bit_length(value[lo:]) + lo, _bit_length(value[:lo]))


def _any(sigs):
    out = 0
    for sig in sigs:
        out = out | sig
    return out
