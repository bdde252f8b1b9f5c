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

A layer's loads begin only between rows: its setup beat waits until every row is out (and
goes in before a row's first word offered with it). Its rows may follow the setup beat at once,
beside the parameter beats: the output stage starts none until the parameters are written.

Hardware decisions
------------------
* Four stages, each on its own row, so rows overlap; a row keeps one of ``slots``
  row-buffer slots (``ch_words`` words each, one block RAM) from its first word in to its
  last read out, and each slot keeps the row's sums, then its root.
* Input stage: each word is stored and registered; its masked lanes and their squares
  (``lanes`` 8 x 8 squarers) are registered the next cycle, the word's two sums (adder
  trees) the cycle after, and added into ``Sx`` and ``Sxx`` the cycle after that: exact.
* Variance stage and reciprocal square roots (:mod:`.ln_variance`): a pipeline of
  :data:`VAR_CYCLES` that takes a row a cycle (``C*Sxx`` and ``Sx*Sx``, ``W``, its leading
  one, the normalizing shift to the 22-bit mantissa ``w``), then ``roots`` roots taking the
  rows in turn, ``rsqrt_cycles`` each: bitwise, ``bits_per_cycle`` bits of ``r`` a cycle
  from the top (``r <= 2**21``, 22 bits: 22 cycles at one), keeping ``2**62 - r**2 * w``,
  ``r * w`` and the next candidate's increment as running values so each step's path is one
  subtract (the compare) and a select, the next increment added beside it: no multiplier.
  The greedy bit choice is the largest ``r`` with ``r*r*w <= 2**62``, i.e. ``isqrt(2**62 //
  w)``, the exact floor. A row enters the variance stage only when its root will be free as
  it comes out.
* Output stage: a pipeline that freezes as a whole while ``source`` is not ready: buffer and
  parameter reads, registered (the parameter memory holds ``lanes`` channels per word, one
  block RAM wide, written a word a cycle from the packed beats through per-lane write
  enables), ``D_c`` (``C * q``, an 11 x 8 multiplier per lane), ``D_c * r`` (19 x 22), the
  rounding shift by ``h``, ``z * G + B`` (20 x 17 plus a 56-bit add), the shift by ``S -
  1``, then rounding and saturation: :data:`LN_OUT_LATENCY` cycles. The row's ``Sx`` and
  slot travel with each word, ``r`` and ``h - 1`` are read from the slot a stage before their
  use, so a row may start while its root's last steps run (:data:`.ln_variance.ROOT_LEAD`
  cycles early); ``S - 1`` is a register set with the layer.
* Back-pressure stops only the output stage; the others stop when no slot is free.

Cycles: :mod:`.perf` (``layernorm_schedule``); short rows follow each other every
``rsqrt_cycles / roots`` cycles or a turn of the slots (rows of 32 channels on 16 lanes at
two bits a cycle, four roots and eight slots: 3.125; default_attention's three roots at four
bits a cycle and 32 slots: 2, their words), long ones every ``W`` cycles.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ...numerics import INT8
from ...numerics.layernorm import RSQRT_SHIFT
from .common import (
    any_of,
    delay,
    out_layout,
    packed_writer,
    put_slot,
    round_shift_var,
    sat8,
    slot_regs,
    tree_reduce,
    tree_stages,
    word_layout,
)
from .config import AttentionConfig
from .ln_variance import VAR_CYCLES, root_lead, variance_roots
from .packing import LN_PARAM_BITS

__all__ = ["LayerNormUnit", "ln_setup_layout", "ln_param_layout", "sum_latency", "VAR_CYCLES",
           "LN_OUT_LATENCY"]


def sum_latency(cfg: AttentionConfig) -> int:
    """Cycles from a row's last word taken to the first cycle the variance stage may take its
    sums: the word registered, its masked lanes and squares, the sums (``1 +
    tree_stages(lanes)``), the row's."""
    return 4 + tree_stages(cfg.lanes)


#: Cycles from the output pass's last read to that word on ``source`` (reads, the word
#: registered, ``D``, ``D*r``, ``z``, ``z*G + B``, the shift by ``S - 1``, rounding and
#: saturation).
LN_OUT_LATENCY = 8


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
        L, depth, SLOTS = cfg.lanes, cfg.ch_words, cfg.slots
        pos = range(cfg.max_channels + L + 1)
        lshape = signed(Shape.cast(pos).width + 2)
        m = Module()

        def put(regs, idx, value):
            put_slot(m, regs, idx, value)

        def nxt(slot):
            return Mux(slot == SLOTS - 1, 0, slot + 1)

        sbits = (depth - 1).bit_length()           # a slot's words: the low address bits

        def slot_addr(slot, word):
            return Cat(word[:sbits], slot)

        buf = m.submodules.buf = memory.Memory(shape=word_layout(L), depth=SLOTS << sbits,
                                               init=[])
        buf_wr, buf_rd = buf.write_port(), buf.read_port()
        par_shape = data.ArrayLayout(ln_param_layout(cfg), L)
        par = m.submodules.par = memory.Memory(shape=par_shape, depth=max(depth, 2), init=[])
        par_wr, par_rd = par.write_port(granularity=1), par.read_port()

        # Per slot: the row (from its first word in to its last read out), its sums for the
        # variance stage, then its root for the output stage.
        bbusy, vfull, rfull = (slot_regs(n, 1, SLOTS) for n in ("bbusy", "vfull", "rfull"))
        sxs = slot_regs("sx", signed(cfg.sx_bits), SLOTS)
        sxxs = slot_regs("sxx", cfg.sxx_bits, SLOTS)
        rs = slot_regs("root", cfg.root_bits, SLOTS)
        hm1s = slot_regs("hm1", range(2 * RSQRT_SHIFT), SLOTS)
        in_row = Signal()
        # Channels from the current word on (0 or less past them): lane i takes part when
        # left > i, a compare with a constant.
        left = Signal(lshape)
        widx = Signal(range(depth + 1))
        nwords = Signal(range(depth + 1))
        chans = Signal(range(cfg.max_channels + 1))
        eps = Signal(cfg.eps_bits)
        shift = Signal(range(cfg.shift_max + 1))
        o_sm1 = Signal(range(cfg.shift_max))       # S - 1: the output shift's amount
        out_busy, adv = Signal(), Signal()

        # --- loads: the setup beat while no row is in, then the parameters; rows may follow
        # the setup beat at once (the output stage waits until the parameters are written)
        idle = ~in_row & ~any_of(bbusy) & ~out_busy
        setup_take = self.setup.valid & self.setup.ready
        p_open = Signal()                      # setup (or a first beat) in, the last beat not
        p_addr, p_data, p_en, p_busy = packed_writer(
            m, "pload", self.params, entry_bits=LN_PARAM_BITS, row_entries=L, count=chans,
            max_count=cfg.max_channels, allow=(idle | p_open) & ~self.setup.valid,
            restart=setup_take, open_load=p_open)
        p_loading = p_open | p_busy
        m.d.comb += self.setup.ready.eq(idle & ~p_busy)
        with m.If(setup_take):
            s = self.setup.payload
            m.d.sync += [chans.eq(s.channels), eps.eq(s.eps_term), shift.eq(s.shift),
                         o_sm1.eq(s.shift - 1)]
        m.d.comb += [par_wr.addr.eq(p_addr), par_wr.data.eq(p_data), par_wr.en.eq(p_en)]

        # --- input stage: store, exact Sx and Sxx ---------------------------------------------
        in_slot = Signal(range(SLOTS))
        accept = Signal()
        new_load = self.setup.valid | (self.params.valid & ~p_open)   # goes in before a row
        m.d.comb += [self.sink.ready.eq(in_row | ~(bbusy[in_slot] | new_load)),
                     accept.eq(self.sink.valid & self.sink.ready)]
        left_now = Mux(in_row, left, chans)
        widx_now = Mux(in_row, widx, 0)
        last_word = left_now <= L
        m.d.comb += [buf_wr.addr.eq(slot_addr(in_slot, widx_now)),
                     buf_wr.data.eq(self.sink.payload), buf_wr.en.eq(accept)]
        with m.If(accept):
            with m.If(~in_row):
                put(bbusy, in_slot, 1)
            with m.If(last_word):
                m.d.sync += [in_row.eq(0), widx.eq(0), nwords.eq(widx_now + 1),
                             in_slot.eq(nxt(in_slot))]
            with m.Else():
                m.d.sync += [in_row.eq(1), widx.eq(widx_now + 1), left.eq(left_now - L)]
        # The word is registered, its masked lanes and their squares (one multiplier each)
        # next cycle, the two sums (trees) after, added into the row's in the cycle after.
        in_v, in_first, in_last = Signal(), Signal(), Signal()
        in_sl = Signal(range(SLOTS))
        in_q = Signal(word_layout(L))
        in_left = Signal(lshape)
        m.d.sync += in_v.eq(accept)
        with m.If(accept):
            m.d.sync += [in_q.eq(self.sink.payload), in_left.eq(left_now),
                         in_first.eq(~in_row), in_last.eq(last_word), in_sl.eq(in_slot)]
        mq = [Signal(signed(INT8.bits), name=f"mq{i}") for i in range(L)]
        sq = [Signal(2 * INT8.bits - 1, name=f"sq{i}") for i in range(L)]
        mv, mfirst, mlast = Signal(), Signal(), Signal()
        msl = Signal(range(SLOTS))
        m.d.sync += [mv.eq(in_v), mfirst.eq(in_first), mlast.eq(in_last), msl.eq(in_sl)]
        for i in range(L):
            # The lane mask selects the square, not the squarer's input: its compare runs
            # beside the multiply instead of in series with it.
            live = in_left > i
            m.d.sync += [mq[i].eq(Mux(live, in_q[i], 0)),
                         sq[i].eq(Mux(live, in_q[i] * in_q[i], 0))]
        sx, sxx = Signal(signed(cfg.sx_bits)), Signal(cfg.sxx_bits)
        psx, psxx = Signal(signed(cfg.sx_bits)), Signal(cfg.sxx_bits)
        pv, pfirst, plast = Signal(), Signal(), Signal()
        psl = Signal(range(SLOTS))
        t = tree_stages(L)
        m.d.sync += [psx.eq(tree_reduce(m, mq, operator.add, "psx")),
                     psxx.eq(tree_reduce(m, sq, operator.add, "psxx"))] + [
            reg.eq(([sig] + delay(m, sig, t, f"psum_{name}"))[-1])
            for reg, sig, name in ((pv, mv, "v"), (pfirst, mfirst, "first"),
                                   (plast, mlast, "last"), (psl, msl, "slot"))]
        row_sx, row_sxx = Mux(pfirst, 0, sx) + psx, Mux(pfirst, 0, sxx) + psxx
        with m.If(pv):
            m.d.sync += [sx.eq(row_sx), sxx.eq(row_sxx)]
            with m.If(plast):
                put(sxs, psl, row_sx)
                put(sxxs, psl, row_sxx)
                put(vfull, psl, 1)

        # --- variance stage and reciprocal square roots: a row a cycle, roots in turn -------
        roots = variance_roots(m, cfg, chans=chans, eps=eps, vfull=vfull, sxs=sxs, sxxs=sxxs,
                               rs=rs, hm1s=hm1s, rfull=rfull)

        # --- output stage: a pipeline that freezes while source is not ready -----------------
        o_slot, o_cur = Signal(range(SLOTS)), Signal(range(SLOTS))
        o_busy = Signal()
        o_widx = Signal(range(depth + 1))
        o_left = Signal(lshape)
        o_sx = Signal(signed(cfg.sx_bits))
        o_last = o_busy & (o_widx == nwords - 1)
        o_issue = o_busy & adv
        # The next row may start once its root is in its slot, or while the root that runs
        # it is in its last root_lead(cfg) cycles (r reaches the slot before D*r needs it).
        lead = root_lead(cfg)
        early = [busy & (slot == o_slot) & (cnt <= lead) & ~taken
                 for busy, slot, cnt, _, taken in roots]
        o_go = ((rfull[o_slot] | any_of(early)) & (~o_busy | (o_last & adv)) & ~p_loading)
        for (_, _, _, r_last, taken), e in zip(roots, early):
            with m.If(o_go & e & ~r_last):      # in its last step the clear below wins
                m.d.sync += taken.eq(1)
        with m.If(o_issue):
            m.d.sync += [o_widx.eq(o_widx + 1), o_left.eq(o_left - L)]
            with m.If(o_last):
                m.d.sync += o_busy.eq(0)
                put(bbusy, o_cur, 0)
        with m.If(o_go):
            m.d.sync += [o_busy.eq(1), o_cur.eq(o_slot), o_slot.eq(nxt(o_slot)), o_widx.eq(0),
                         o_left.eq(chans), o_sx.eq(sxs[o_slot])]
            put(rfull, o_slot, 0)
        m.d.comb += [buf_rd.addr.eq(slot_addr(o_cur, o_widx)), buf_rd.en.eq(adv),
                     par_rd.addr.eq(o_widx), par_rd.en.eq(adv)]
        stages = LN_OUT_LATENCY - 1
        v = [Signal(name=f"o_v{k}") for k in range(stages)]
        b = [Signal.like(left, name=f"o_left{k}") for k in range(stages)]
        last = [Signal(name=f"o_last{k}") for k in range(stages)]
        # The row's Sx and slot travel with each word; r and h - 1 are read from the slot at
        # the stages before those that use them (the root may come after the row starts).
        psx_ = [Signal.like(o_sx, name=f"o_sx{k}") for k in range(2)]
        psl_ = [Signal.like(o_cur, name=f"o_slot{k}") for k in range(3)]
        pr2 = Signal(cfg.root_bits, name="o_r2")
        phm3 = Signal(range(2 * RSQRT_SHIFT), name="o_hm3")    # h - 1: the shift's amount
        gam = [[Signal(signed(cfg.gamma_bits), name=f"g{k}_{i}") for i in range(L)]
               for k in range(4)]
        bet = [[Signal(signed(cfg.beta_bits), name=f"b{k}_{i}") for i in range(L)]
               for k in range(4)]
        qr = [Signal(signed(INT8.bits), name=f"qr_{i}") for i in range(L)]
        dd = [Signal(signed(cfg.d_bits), name=f"d_{i}") for i in range(L)]
        prod = [Signal(signed(cfg.d_bits + cfg.root_bits + 1), name=f"dr_{i}") for i in range(L)]
        z = [Signal(signed(cfg.z_bits), name=f"z_{i}") for i in range(L)]
        tt = [Signal(signed(max(cfg.z_bits + cfg.gamma_bits, cfg.beta_bits) + 1),
                     name=f"t_{i}") for i in range(L)]
        ts = [Signal.like(tt[i], name=f"ts_{i}") for i in range(L)]
        out_v, out_last = Signal(), Signal()
        out_data = Signal(word_layout(L))
        with m.If(adv):
            m.d.sync += [v[0].eq(o_issue), b[0].eq(o_left), last[0].eq(o_last),
                         psx_[0].eq(o_sx), psx_[1].eq(psx_[0]), psl_[0].eq(o_cur),
                         psl_[1].eq(psl_[0]), psl_[2].eq(psl_[1]),
                         pr2.eq(rs[psl_[1]]), phm3.eq(hm1s[psl_[2]])]
            for k in range(stages - 1):
                m.d.sync += [v[k + 1].eq(v[k]), b[k + 1].eq(b[k]), last[k + 1].eq(last[k])]
            for i in range(L):
                pw = par_rd.data[i]
                m.d.sync += [
                    qr[i].eq(buf_rd.data[i]),                                  # v0 -> v1
                    gam[0][i].eq(pw.gamma), bet[0][i].eq(pw.beta),
                    dd[i].eq(chans * qr[i] - psx_[1]),                         # v1 -> v2
                    gam[1][i].eq(gam[0][i]), bet[1][i].eq(bet[0][i]),
                    prod[i].eq(dd[i] * pr2),                                   # v2 -> v3
                    gam[2][i].eq(gam[1][i]), bet[2][i].eq(bet[1][i]),
                    z[i].eq(round_shift_var(prod[i], phm3)),                   # v3 -> v4
                    gam[3][i].eq(gam[2][i]), bet[3][i].eq(bet[2][i]),
                    tt[i].eq(z[i] * gam[3][i] + bet[3][i]),                    # v4 -> v5
                    ts[i].eq(tt[i] >> o_sm1),                                  # v5 -> v6
                    out_data[i].eq(Mux(b[6] > i, sat8((ts[i] + 1) >> 1), 0)),  # v6 -> out
                ]
            m.d.sync += [out_v.eq(v[6]), out_last.eq(last[6])]
        m.d.comb += [adv.eq(~out_v | self.source.ready),
                     self.source.valid.eq(out_v),
                     self.source.payload.data.eq(out_data),
                     self.source.payload.last.eq(out_last),
                     out_busy.eq(any_of(v) | out_v)]
        return m

