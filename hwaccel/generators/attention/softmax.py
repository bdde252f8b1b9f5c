"""The softmax unit: int8 score rows in, 7-bit probabilities out, bit-exact with numerics.

Every number follows :func:`hwaccel.numerics.softmax.softmax_int`: ``d = max - q``, ``e =
EXP[d]`` (the 256 x 18-bit table), ``S = sum e``, ``R = floor(127 * 2**31 / S)``, ``p = (e * R
+ 2**30) >> 31``, and ``p = 0`` at masked positions.

Interface
---------
``table``   In  stream of packed beats of ``load_bits`` (:mod:`.packing`): the 256 18-bit
            unsigned exponent entries, ``EXP[0]`` first (``SoftmaxParams.exp_table`` in
            order), as many a beat as fit (113 in a 2048-bit beat: a load is 3 beats), each
            beat written ``table_row`` entries a cycle. A load begins only between
            rows (its first beat waits until every row is out, and goes in before a row's
            first word offered with it); rows may follow its first beat at once: the
            exponent stage starts none until the table is written.
``sink``    In  stream of ``{data: lanes x int8, length, valid}``: a row of ``length`` scores
            (``1 <= length <= max_len``) is ``ceil(length / lanes)`` words, position ``k`` in
            lane ``k % lanes`` of word ``k // lanes`` (lanes past the row's end are ignored).
            ``length`` and ``valid`` are taken from the row's first word. ``valid`` masks the
            positions ``>= valid`` (a causal row ``i`` has ``valid = i + 1``); 0 means none
            masked. A row needs one valid position, as numerics requires.
``source``  Out stream of ``{data: lanes x int8, last}``: the row's probabilities (0..127) in
            the same word order, 0 at masked positions and past the row's end; ``last`` on the
            row's last word.

Hardware decisions
------------------
* Four stages, each on its own row, so rows overlap: the *input* stage stores a row in one of
  ``slots`` row-buffer slots (``len_words`` words of ``lanes`` int8 each, one block RAM)
  and finds its masked maximum (the word registered, its masked lanes registered, a tree
  of ``lanes`` comparisons, the running maximum); the *exponent* stage reads a stored row,
  looks ``EXP[max - q]`` up, keeps the masked ``e`` in the same slot of an e-buffer (``lanes
  x 18`` bits a word) and sums them (an adder tree per word into ``S``); a *divider* turns
  ``S`` into ``R``; the *output* stage reads the e-buffer and multiplies by ``R``. A slot is
  the input stage's again once the exponent stage has read it, and the exponent stage's once
  the output stage has read its e's, so up to ``slots`` rows are in flight and a stage
  starts a row in the cycle it issues the previous row's last read.
* The exponent table is one memory per lane of ``256 / table_row`` rows of ``table_row``
  18-bit entries (16 x (16 x 18) by default: LUT RAM), all lanes written together a row a
  cycle from the packed beats, one enable per entry: a lookup reads the row and selects the
  entry with the index's low bits, registered with the read. Only the exponent stage reads it (the
  output stage reads the e-buffer), so it needs one read port a lane.
* ``R`` comes from restoring dividers (:mod:`.divider`), ``bits_per_cycle`` quotient bits a
  cycle: ``div_cycles = ceil(recip_bits / bits_per_cycle)`` cycles (22 at one bit a cycle);
  ``dividers`` of them take the rows in turn; each slot keeps its ``S`` and ``R`` until the
  next stage takes them.
* The output stage is a pipeline that freezes as a whole while ``source`` is not ready (its
  read port holds its data), so back-pressure never loses a word; each word's slot travels
  down it and ``R`` is read from the slot a stage before the product, so a row may start while
  its divider's last steps run (:data:`.divider.DIV_LEAD` cycles early). The other stages
  never wait on ``source``: back-pressure reaches them only as slots that stay full.

Cycles: :mod:`.perf` (``softmax_schedule``, exact when ``source`` keeps up and words come
when asked); once short rows are in flight the dividers or a turn of the slots set the pace
(rows of 16 on 16 lanes at two bits a cycle, four dividers and eight slots: one every
2.75 cycles; default_attention's six dividers at four bits a cycle and 32 slots: one a cycle),
long ones their ``W = ceil(n / lanes)`` words.
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ...numerics import INT8
from ...numerics.softmax import EXP_TABLE_SIZE, RECIP_SHIFT
from .common import (
    any_of,
    delay,
    lane_max,
    lane_tables,
    out_layout,
    packed_writer,
    put_slot,
    slot_regs,
    table_entry,
    tree_reduce,
    tree_stages,
    word_layout,
)
from .config import AttentionConfig
from .divider import div_lead, reciprocal_dividers

__all__ = ["SoftmaxUnit", "softmax_in_layout", "in_latency", "exp_latency", "OUT_LATENCY"]


def in_latency(cfg: AttentionConfig) -> int:
    """Cycles from the input stage's last word of a row to the earliest cycle the exponent
    stage starts it (its first read the cycle after): the word registered, its masked lanes
    registered, the row's maximum in ``tree_stages(lanes)`` more cycles before the exponent
    stage needs it."""
    return 2 + tree_stages(cfg.lanes)


def exp_latency(cfg: AttentionConfig) -> int:
    """Cycles from the exponent stage's last read of a row to the earliest cycle the divider
    takes its ``S`` (buffer read, table read, the masked entry registered, the lane sum in
    ``1 + tree_stages(lanes)`` cycles, added into ``S``)."""
    return 5 + tree_stages(cfg.lanes)


#: Output stage: cycles from its last read to that word on ``source`` (e-buffer read, the
#: entries registered, product, rounding into the output register).
OUT_LATENCY = 4


def softmax_in_layout(cfg: AttentionConfig) -> data.StructLayout:
    return data.StructLayout({"data": word_layout(cfg.lanes),
                              "length": range(cfg.max_len + 1),
                              "valid": range(cfg.max_len + 1)})


class SoftmaxUnit(wiring.Component):
    """Row-wise integer softmax of an :class:`AttentionConfig`.

    Members
    -------
    table : ``In(stream.Signature(unsigned(config.load_bits)))``
    sink : ``In(stream.Signature(softmax_in_layout(config)))``
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
            "sink": In(stream.Signature(softmax_in_layout(config))),
            "source": Out(stream.Signature(out_layout(config.lanes))),
        })

    def elaborate(self, platform):
        cfg = self.config
        L, depth, SLOTS, row = cfg.lanes, cfg.len_words, cfg.slots, cfg.table_row
        pos = range(cfg.max_len + L + 1)
        lshape = signed(Shape.cast(pos).width + 2)
        nw_shape = range(depth + 1)
        m = Module()

        def nxt(slot):
            return Mux(slot == SLOTS - 1, 0, slot + 1)

        sbits = (depth - 1).bit_length()           # a slot's words: the low address bits

        def slot_addr(slot, word):
            return Cat(word[:sbits], slot)

        def slots(name, shape):
            return slot_regs(name, shape, SLOTS)

        def put(regs, idx, value):
            put_slot(m, regs, idx, value)

        buf = m.submodules.buf = memory.Memory(shape=word_layout(L), depth=SLOTS << sbits,
                                               init=[])
        buf_wr, buf_rd = buf.write_port(), buf.read_port()
        ebuf = m.submodules.ebuf = memory.Memory(
            shape=data.ArrayLayout(unsigned(cfg.exp_bits), L), depth=SLOTS << sbits, init=[])
        ebuf_wr, ebuf_rd = ebuf.write_port(), ebuf.read_port()

        # Per slot: the input stage's row (buffer written and not yet read by the exponent
        # stage; its maximum known), then the e-buffer's (from the exponent stage's start to
        # the output stage's last read), with what each stage hands the next.
        bbusy, full, ebusy = slots("bbusy", 1), slots("full", 1), slots("ebusy", 1)
        mxs, vrs = slots("mx", signed(INT8.bits)), slots("valid", pos)
        nwi, nwo = slots("nw_in", nw_shape), slots("nw_out", nw_shape)
        ssum, sfull = slots("ssum", cfg.sum_bits), slots("sfull", 1)
        rh, rfull = slots("recip", cfg.recip_bits), slots("rfull", 1)
        out_busy, adv = Signal(), Signal()

        # --- table load: packed beats, a table row a cycle; it begins while no row is in, and
        # rows may enter behind its first beat (the exponent stage waits until it is written)
        in_row = Signal()                         # some words of a row are in
        idle = ~in_row & ~any_of(bbusy) & ~any_of(ebusy) & ~out_busy
        t_open = Signal()                         # the load's first beat in, its last not yet
        t_addr, t_data, t_en, t_busy = packed_writer(
            m, "tload", self.table, entry_bits=cfg.exp_bits, row_entries=row,
            count=EXP_TABLE_SIZE, max_count=EXP_TABLE_SIZE, allow=idle | t_open,
            open_load=t_open)
        t_loading = t_open | t_busy
        exp_rd = lane_tables(m, "exp", data.ArrayLayout(unsigned(cfg.exp_bits), row),
                             EXP_TABLE_SIZE // row, L, addr=t_addr, data=t_data, en=t_en)

        # --- input stage: store, masked max --------------------------------------------------
        in_slot = Signal(range(SLOTS))
        valid_r = Signal(pos)                     # positions < valid_r take part
        # Valid positions from the current word on (negative past them): lane i of the word
        # takes part when left > i, a compare with a constant.
        left, nleft = Signal(lshape), Signal(lshape)
        widx = Signal(nw_shape)
        p = self.sink.payload
        accept = Signal()
        # A new load's first beat goes in before a row's first word.
        new_load = self.table.valid & ~t_open
        m.d.comb += [self.sink.ready.eq(in_row | ~(bbusy[in_slot] | new_load)),
                     accept.eq(self.sink.valid & self.sink.ready)]
        valid_now = Signal(pos)
        with m.If(in_row):
            m.d.comb += valid_now.eq(valid_r)
        with m.Else():
            # valid = 0 (no mask) or past the row's end: the row's length.
            m.d.comb += valid_now.eq(Mux((p.valid == 0) | (p.valid > p.length), p.length,
                                         p.valid))
        length_now = Mux(in_row, nleft, p.length)
        left_now = Mux(in_row, left, valid_now)
        widx_now = Mux(in_row, widx, 0)
        last_word = length_now <= L
        m.d.comb += [buf_wr.addr.eq(slot_addr(in_slot, widx_now)), buf_wr.data.eq(p.data),
                     buf_wr.en.eq(accept)]
        with m.If(accept):
            m.d.sync += [valid_r.eq(valid_now), nleft.eq(length_now - L)]
            with m.If(~in_row):
                put(bbusy, in_slot, 1)
            with m.If(last_word):
                m.d.sync += [in_row.eq(0), widx.eq(0), in_slot.eq(nxt(in_slot))]
                put(nwi, in_slot, widx_now + 1)
                put(vrs, in_slot, valid_now)
            with m.Else():
                m.d.sync += [in_row.eq(1), widx.eq(widx_now + 1), left.eq(left_now - L)]
        # The word registered, its lanes masked, reduced to one maximum, joined to the row's:
        # each on its own cycles. A row's last word marks the slot full 1 + tree_stages(lanes)
        # cycles after it is taken: the exponent stage first uses the maximum as it is written.
        t = tree_stages(L)
        in_v, in_first, in_last = Signal(), Signal(), Signal()
        in_sl = Signal(range(SLOTS))
        in_q = Signal(word_layout(L))
        in_left = Signal(lshape)
        m.d.sync += in_v.eq(accept)
        with m.If(accept):
            m.d.sync += [in_q.eq(p.data), in_left.eq(left_now), in_first.eq(~in_row),
                         in_last.eq(last_word), in_sl.eq(in_slot)]
        mk_v, mk_first, mk_last, mk_sl = Signal(), Signal(), Signal(), Signal(range(SLOTS))
        mk_q = Signal(word_layout(L))               # the masked word (lanes past valid: min)
        m.d.sync += [mk_v.eq(in_v), mk_first.eq(in_first), mk_last.eq(in_v & in_last),
                     mk_sl.eq(in_sl)]
        m.d.sync += [mk_q[i].eq(Mux(in_left > i, in_q[i], INT8.min)) for i in range(L)]
        tree = tree_reduce(m, [mk_q[i] for i in range(L)], lambda a, b: Mux(a > b, a, b),
                           "wmax")
        vs = [accept, in_v, mk_v, *delay(m, mk_v, t, "wmax_v")]
        lasts = [accept & last_word, in_v & in_last, mk_last,
                 *delay(m, mk_last, t, "wmax_last")]
        sls = [in_slot, in_sl, mk_sl, *delay(m, mk_sl, t, "wmax_slot")]
        firsts = [in_first, mk_first, *delay(m, mk_first, t, "wmax_first")]
        with m.If(lasts[t + 1]):
            put(full, sls[t + 1], 1)
        w_v, w_first, w_last = Signal(), Signal(), Signal()
        w_sl = Signal(range(SLOTS))
        wmax, mx = Signal(signed(INT8.bits)), Signal(signed(INT8.bits))
        m.d.sync += [w_v.eq(vs[-1]), w_first.eq(firsts[-1]), w_last.eq(lasts[-1]),
                     w_sl.eq(sls[-1]), wmax.eq(tree)]
        new_mx = lane_max([Mux(w_first, INT8.min, mx), wmax])
        with m.If(w_v):
            m.d.sync += mx.eq(new_mx)
            with m.If(w_last):
                put(mxs, w_sl, new_mx)

        # --- exponent stage: read, look up, keep and sum the masked e ------------------------
        e_slot, e_cur = Signal(range(SLOTS)), Signal(range(SLOTS))
        e_busy = Signal()
        e_widx, e_nw = Signal(nw_shape), Signal(nw_shape)
        e_left = Signal(lshape)
        e_last = e_busy & (e_widx == e_nw - 1)
        e_go = full[e_slot] & ~ebusy[e_slot] & (~e_busy | e_last) & ~t_loading
        with m.If(e_busy):
            m.d.sync += [e_widx.eq(e_widx + 1), e_left.eq(e_left - L)]
            with m.If(e_last):
                m.d.sync += e_busy.eq(0)
                put(bbusy, e_cur, 0)
        with m.If(e_go):
            m.d.sync += [e_busy.eq(1), e_cur.eq(e_slot), e_slot.eq(nxt(e_slot)), e_widx.eq(0),
                         e_nw.eq(nwi[e_slot]), e_left.eq(vrs[e_slot])]
            put(full, e_slot, 0)
            put(ebusy, e_slot, 1)
            put(nwo, e_slot, nwi[e_slot])
        m.d.comb += [buf_rd.addr.eq(slot_addr(e_cur, e_widx)), buf_rd.en.eq(1)]
        # e0: the buffer word is out, the table read; e1: the entries are out, masked into em;
        # e2: em written to the e-buffer and summed by a tree into psum (e3), added into S.
        ev = [Signal(name=f"e_v{k}") for k in range(3)]
        ef = [Signal(name=f"e_first{k}") for k in range(3)]
        el = [Signal(name=f"e_last{k}") for k in range(3)]
        es = [Signal(range(SLOTS), name=f"e_slot{k}") for k in range(3)]
        ea = [Signal(range(SLOTS << sbits), name=f"e_addr{k}") for k in range(3)]
        eb = [Signal(lshape, name=f"e_left{k}") for k in range(2)]
        m.d.sync += [ev[0].eq(e_busy), ef[0].eq(e_widx == 0), el[0].eq(e_last),
                     es[0].eq(e_cur), ea[0].eq(slot_addr(e_cur, e_widx)), eb[0].eq(e_left)]
        for k in range(2):
            m.d.sync += [ev[k + 1].eq(ev[k]), ef[k + 1].eq(ef[k]), el[k + 1].eq(el[k]),
                         es[k + 1].eq(es[k]), ea[k + 1].eq(ea[k])]
        m.d.sync += eb[1].eq(eb[0])
        em = [Signal(cfg.exp_bits, name=f"em{i}") for i in range(L)]
        for i in range(L):
            d = Signal(signed(INT8.bits + 2), name=f"d{i}")
            m.d.comb += d.eq(mxs[es[0]] - buf_rd.data[i])
            ent = table_entry(m, exp_rd[i], d[:8], ev[0], f"exp{i}")
            m.d.sync += em[i].eq(Mux(eb[1] > i, ent, 0))
        m.d.comb += [ebuf_wr.addr.eq(ea[2]), ebuf_wr.en.eq(ev[2])]
        m.d.comb += [ebuf_wr.data[i].eq(em[i]) for i in range(L)]
        ssum_tree = tree_reduce(m, em, operator.add, "esum")
        psum = Signal(cfg.sum_bits)
        e3v, e3f, e3l = Signal(), Signal(), Signal()
        e3s = Signal(range(SLOTS))
        m.d.sync += [psum.eq(ssum_tree)] + [
            reg.eq(([sig] + delay(m, sig, t, f"esum_{name}"))[-1])
            for reg, sig, name in ((e3v, ev[2], "v"), (e3f, ef[2], "first"),
                                   (e3l, el[2], "last"), (e3s, es[2], "slot"))]
        total = Signal(cfg.sum_bits)
        row_sum = Mux(e3f, 0, total) + psum
        with m.If(e3v):
            m.d.sync += total.eq(row_sum)
            with m.If(e3l):
                put(ssum, e3s, row_sum)
                put(sfull, e3s, 1)

        # --- dividers: R = floor(127 * 2**31 / S), taking rows in turn --------------------
        divs = reciprocal_dividers(m, cfg, ssum=ssum, sfull=sfull, rh=rh, rfull=rfull)
        qb = cfg.recip_bits

        # --- output stage: a pipeline that freezes while source is not ready ----------------
        o_slot, o_cur = Signal(range(SLOTS)), Signal(range(SLOTS))
        o_busy = Signal()
        o_widx, o_nw = Signal(nw_shape), Signal(nw_shape)
        o_last = o_busy & (o_widx == o_nw - 1)
        o_issue = o_busy & adv
        # The next row may start once its quotient is in its slot, or while the divider that
        # runs it is in its last div_lead(cfg) cycles (R reaches the slot before the product
        # stage needs it).
        lead = div_lead(cfg)
        early = [busy & (slot == o_slot) & (cnt <= lead) & ~taken
                 for busy, slot, cnt, _, taken in divs]
        o_go = (rfull[o_slot] | any_of(early)) & (~o_busy | (o_last & adv))
        for (_, _, _, d_last, taken), e in zip(divs, early):
            with m.If(o_go & e & ~d_last):      # in its last step the clear below wins
                m.d.sync += taken.eq(1)
        with m.If(o_issue):
            m.d.sync += o_widx.eq(o_widx + 1)
            with m.If(o_last):
                m.d.sync += o_busy.eq(0)
                put(ebusy, o_cur, 0)
        with m.If(o_go):
            m.d.sync += [o_busy.eq(1), o_cur.eq(o_slot), o_slot.eq(nxt(o_slot)), o_widx.eq(0),
                         o_nw.eq(nwo[o_slot])]
            put(rfull, o_slot, 0)
        m.d.comb += [ebuf_rd.addr.eq(slot_addr(o_cur, o_widx)), ebuf_rd.en.eq(adv)]
        v = [Signal(name=f"o_v{k}") for k in range(OUT_LATENCY - 1)]
        last = [Signal(name=f"o_last{k}") for k in range(OUT_LATENCY - 1)]
        # Each word's slot travels with it; R is read from the slot the stage before the
        # product (the divider may finish after the row starts).
        osl = Signal(range(SLOTS), name="o_slot0")
        rc1 = Signal(qb, name="o_recip1")
        ent = [Signal(cfg.exp_bits, name=f"o_e{i}") for i in range(L)]
        prod = [Signal(cfg.exp_bits + qb, name=f"o_prod{i}") for i in range(L)]
        out_v, out_last = Signal(), Signal()
        out_data = Signal(word_layout(L))
        with m.If(adv):
            m.d.sync += [v[0].eq(o_issue), last[0].eq(o_last), osl.eq(o_cur),
                         rc1.eq(rh[osl])]
            for k in range(OUT_LATENCY - 2):
                m.d.sync += [v[k + 1].eq(v[k]), last[k + 1].eq(last[k])]
            half = 1 << (RECIP_SHIFT - 1)
            for i in range(L):
                m.d.sync += [
                    ent[i].eq(ebuf_rd.data[i]),                                # v0 -> v1
                    prod[i].eq(ent[i] * rc1),                                  # v1 -> v2
                    out_data[i].eq((prod[i] + half) >> RECIP_SHIFT),           # v2 -> out
                ]
            m.d.sync += [out_v.eq(v[-1]), out_last.eq(last[-1])]
        m.d.comb += [adv.eq(~out_v | self.source.ready),
                     self.source.valid.eq(out_v),
                     self.source.payload.data.eq(out_data),
                     self.source.payload.last.eq(out_last),
                     out_busy.eq(any_of(v) | out_v)]
        return m
