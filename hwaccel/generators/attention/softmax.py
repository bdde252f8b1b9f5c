"""The softmax unit: int8 score rows in, 7-bit probabilities out, bit-exact with numerics.

Every number follows :func:`hwaccel.numerics.softmax.softmax_int`: ``d = max - q``, ``e =
EXP[d]`` (the 256 x 18-bit table), ``S = sum e``, ``R = floor(127 * 2**31 / S)``, ``p = (e * R
+ 2**30) >> 31``, and ``p = 0`` at masked positions.

Interface
---------
``table``   In  stream of packed beats of ``load_bits`` (:mod:`.packing`): the 256 18-bit
            unsigned exponent entries, ``EXP[0]`` first (``SoftmaxParams.exp_table`` in
            order), as many a beat as fit (113 in a 2048-bit beat: a load is 3 beats), each
            beat written :data:`~.packing.TABLE_ROW` entries a cycle. Accepted only between
            rows; send the whole load before the next row.
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
* The row is stored once in a row buffer (``len_words`` words of ``lanes`` int8, one block
  RAM) and read twice: the input pass finds the masked maximum (a register, a tree of
  ``lanes`` comparisons per word, the running maximum: one stage each); the exponent pass
  reads the buffer and the table and sums ``e`` (an adder tree per word into ``S``); the
  output pass reads both again and multiplies. Reading the table twice costs nothing (it is
  already there); keeping ``e`` instead would take a second buffer of ``lanes x 18`` bits per
  word.
* The exponent table is one 16 x (16 x 18) memory per lane (rows of
  :data:`~.packing.TABLE_ROW` entries, all lanes written together a row a cycle from the
  packed beats, one enable per entry): a lookup reads the row and selects the entry with
  the index's low bits, registered with the read.
* ``R`` comes from a restoring divider, ``bits_per_cycle`` quotient bits a cycle (that many
  subtract-and-select steps chained): ``div_cycles = ceil(recip_bits / bits_per_cycle)``
  cycles (22 at one bit a cycle). 22 bits hold the quotient for every table numerics
  accepts (``EXP[0] >= 2**16``, and ``S >= EXP[0]``); the dividend ``127 * 2**31`` has zeros
  in its low 31 bits, so the divider starts from ``127 * 2**31 >> 22`` (or more, padded to
  whole cycles), already below ``S``, and shifts in zeros.
* The output pass is a pipeline that freezes as a whole while ``source`` is not ready
  (its memory read ports hold their data), so back-pressure never loses a word. The next
  row's input pass starts as soon as the last word has been read; its exponent pass waits
  until the output pipeline is empty, since both passes share the read ports.

Cycles: :mod:`.perf` (``softmax_schedule``); rows of ``W = ceil(n / lanes)`` words follow
each other every ``3 W + div_cycles + 4 + max(0, OUT_LATENCY - 1 - W)`` cycles when the output
keeps up (the last term: a row too short to cover the previous row's output pipeline).
"""

from __future__ import annotations

import operator

from amaranth.hdl import Cat, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ...numerics import INT8
from ...numerics.softmax import EXP_TABLE_SIZE, PROB_MAX, RECIP_SHIFT
from .common import (
    any_of,
    delay,
    lane_max,
    lane_tables,
    out_layout,
    packed_writer,
    table_entry,
    tree_reduce,
    tree_stages,
    word_layout,
)
from .config import AttentionConfig
from .packing import TABLE_ROW

__all__ = ["SoftmaxUnit", "softmax_in_layout", "in_latency", "exp_latency", "OUT_LATENCY"]



def in_latency(cfg: AttentionConfig) -> int:
    """Cycles from the input pass's last word to the exponent pass's first read: the word's
    masked maximum (``1 + tree_stages(lanes)`` cycles), then the row's."""
    return 1 + tree_stages(cfg.lanes)


def exp_latency(cfg: AttentionConfig) -> int:
    """Exponent pass: cycles after its last read until the divider starts (buffer read, table
    read, the lane sum in ``1 + tree_stages(lanes)`` cycles; the divider's first step sees the
    final ``S``)."""
    return 3 + tree_stages(cfg.lanes)


#: Output pass: cycles from its last read to that word on ``source`` (buffer read, table read,
#: the entry registered, product, rounding into the output register).
OUT_LATENCY = 5


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
        L, depth = cfg.lanes, max(cfg.len_words, 2)
        pos = range(cfg.max_len + L + 1)
        widx_shape = range(depth + 1)
        m = Module()

        buf = m.submodules.buf = memory.Memory(shape=word_layout(L), depth=depth, init=[])
        buf_wr, buf_rd = buf.write_port(), buf.read_port()

        # --- phases --------------------------------------------------------------------------
        IN, EXP, DIV, OUT = range(4)
        phase = Signal(range(4))
        in_row = Signal()                         # some words of the row are in
        valid_r = Signal(pos)                     # positions < valid_r take part
        # Valid positions from the current word on (negative past them): lane i of the word
        # takes part when left > i, a compare with a constant.
        left = Signal(signed(Shape.cast(pos).width + 2))
        widx = Signal(widx_shape)
        nwords = Signal(range(depth + 1))
        mx = Signal(signed(INT8.bits))
        total = Signal(cfg.sum_bits)

        out_busy = Signal()
        adv = Signal()                            # the output pipeline moves this cycle

        # --- table load: packed beats, a table row a cycle ----------------------------------
        idle = (phase == IN) & ~in_row & ~out_busy
        t_addr, t_data, t_en, t_busy = packed_writer(
            m, "tload", self.table, entry_bits=cfg.exp_bits, row_entries=TABLE_ROW,
            count=EXP_TABLE_SIZE, max_count=EXP_TABLE_SIZE, allow=idle)
        exp_rd = lane_tables(m, "exp", data.ArrayLayout(unsigned(cfg.exp_bits), TABLE_ROW),
                             EXP_TABLE_SIZE // TABLE_ROW, L, addr=t_addr, data=t_data, en=t_en)

        exp_ent = [Signal(cfg.exp_bits, name=f"exp_ent{i}") for i in range(L)]

        # --- input pass: store, masked max --------------------------------------------------
        p = self.sink.payload
        accept = Signal()
        m.d.comb += [self.sink.ready.eq((phase == IN) & (in_row | ~(self.table.valid | t_busy))),
                     accept.eq(self.sink.valid & self.sink.ready)]
        length_now = Signal(pos)
        valid_now = Signal(pos)
        with m.If(in_row):
            m.d.comb += valid_now.eq(valid_r)
        with m.Else():
            # valid = 0 (no mask) or past the row's end: the row's length.
            m.d.comb += valid_now.eq(Mux((p.valid == 0) | (p.valid > p.length), p.length,
                                         p.valid))
        nleft = Signal.like(left)                 # row positions from the current word on
        m.d.comb += length_now.eq(Mux(in_row, nleft, p.length))
        left_now = Mux(in_row, left, valid_now)
        m.d.comb += [buf_wr.addr.eq(Mux(in_row, widx, 0)), buf_wr.data.eq(p.data),
                     buf_wr.en.eq(accept)]
        last_word = length_now <= L
        # The word is registered, then its masked lanes reduced to one maximum, then that
        # joins the row's: the mask, the tree and the running max on separate cycles.
        in_v, in_first, w_v, w_first = Signal(), Signal(), Signal(), Signal()
        in_q = Signal(word_layout(L))
        in_left = Signal.like(left)
        wmax = Signal(signed(INT8.bits))
        tree = tree_reduce(m, [Mux(in_left > i, in_q[i], INT8.min) for i in range(L)],
                           lambda a, b: Mux(a > b, a, b), "wmax")
        t_v = delay(m, in_v, tree_stages(L), "wmax_v")
        t_first = delay(m, in_first, tree_stages(L), "wmax_first")
        in_busy = any_of([in_v, *t_v])            # words whose maximum is not yet in wmax
        m.d.sync += [in_v.eq(accept), w_v.eq(([in_v] + t_v)[-1]), wmax.eq(tree),
                     w_first.eq(([in_first] + t_first)[-1])]
        with m.If(w_v):
            m.d.sync += mx.eq(lane_max([Mux(w_first, INT8.min, mx), wmax]))
        with m.If(accept):
            m.d.sync += [in_q.eq(p.data), in_left.eq(left_now), in_first.eq(~in_row),
                         valid_r.eq(valid_now), nleft.eq(length_now - L)]
            with m.If(last_word):
                m.d.sync += [in_row.eq(0), phase.eq(EXP), nwords.eq(Mux(in_row, widx, 0) + 1),
                             widx.eq(0), left.eq(valid_now)]
            with m.Else():
                m.d.sync += [in_row.eq(1), widx.eq(Mux(in_row, widx, 0) + 1),
                             left.eq(left_now - L)]

        # --- exponent pass: read, look up, sum ----------------------------------------------
        e_issue = Signal()
        e_v0, e_v1, e_v2 = Signal(), Signal(), Signal()
        e_b0, e_b1 = Signal.like(left), Signal.like(left)
        e_first0, e_first1, e_first2 = Signal(), Signal(), Signal()
        psum = Signal(cfg.sum_bits)
        # The first read waits for the row's maximum (needed the cycle after a read).
        m.d.comb += e_issue.eq((phase == EXP) & ~out_busy & ~in_busy & (widx != nwords))
        m.d.sync += [e_v0.eq(e_issue), e_v1.eq(e_v0),
                     e_b0.eq(left), e_b1.eq(e_b0),
                     e_first0.eq(widx == 0), e_first1.eq(e_first0)]
        with m.If(e_issue):
            m.d.sync += [widx.eq(widx + 1), left.eq(left - L)]
        # e_v0: the buffer word is out, the table is read; e_v1: the entries are out, summed
        # by a tree into psum (e_v2), then added into S.
        ssum = tree_reduce(m, [Mux(e_b1 > i, exp_ent[i], 0) for i in range(L)],
                           operator.add, "esum")
        s_v = delay(m, e_v1, tree_stages(L), "esum_v")
        s_first = delay(m, e_first1, tree_stages(L), "esum_first")
        m.d.sync += [psum.eq(ssum), e_v2.eq(([e_v1] + s_v)[-1]),
                     e_first2.eq(([e_first1] + s_first)[-1])]
        exp_busy = any_of([e_v0, e_v1, *s_v])      # words not yet in psum
        with m.If(e_v2):
            m.d.sync += total.eq(Mux(e_first2, 0, total) + psum)

        # --- divider: R = floor(127 * 2**31 / S) --------------------------------------------
        qb, k = cfg.recip_bits, cfg.bits_per_cycle
        steps = cfg.div_cycles * k                # padded to whole cycles: leading zeros
        assert steps <= RECIP_SHIFT   # the dividend's shifted-in bits are all zero
        rem = Signal(cfg.sum_bits + 1)
        quo = Signal(steps)
        cnt = Signal(range(cfg.div_cycles + 1))
        o_recip = Signal(qb)
        o_mx = Signal(signed(INT8.bits))
        o_nwords = Signal(range(depth + 1))
        with m.If((phase == EXP) & (widx == nwords) & ~exp_busy):
            # The last psum lands in S at the end of this cycle; the divider reads S from the
            # next one. The partial remainder starts below S (127 * 2**31 >> steps < 2**16).
            m.d.sync += [phase.eq(DIV), rem.eq((PROB_MAX << RECIP_SHIFT) >> steps), quo.eq(0),
                         cnt.eq(cfg.div_cycles)]
        r_cur, q_cur = rem, quo
        for j in range(k):                        # k restoring steps chained in one cycle
            rem2 = (r_cur << 1)[:len(rem)]        # a zero shifted in
            diff = Signal(signed(len(rem) + 1), name=f"div_diff{j}")
            r_new = Signal.like(rem, name=f"div_rem{j}")
            q_new = Signal.like(quo, name=f"div_quo{j}")
            m.d.comb += [diff.eq(rem2 - total),
                         r_new.eq(Mux(diff >= 0, diff, rem2)),
                         q_new.eq(Cat(diff >= 0, q_cur)[:steps])]
            r_cur, q_cur = r_new, q_new
        with m.If(phase == DIV):
            m.d.sync += [rem.eq(r_cur), quo.eq(q_cur), cnt.eq(cnt - 1)]
            with m.If(cnt == 1):
                m.d.sync += [phase.eq(OUT), o_recip.eq(q_cur[:qb]), o_mx.eq(mx),
                             o_nwords.eq(nwords), widx.eq(0), left.eq(valid_r)]

        # --- output pass: a pipeline that freezes while source is not ready -----------------
        o_issue = Signal()
        m.d.comb += o_issue.eq((phase == OUT) & adv)
        with m.If(o_issue):
            with m.If(widx == o_nwords - 1):
                m.d.sync += [phase.eq(IN), widx.eq(0)]
            with m.Else():
                m.d.sync += [widx.eq(widx + 1), left.eq(left - L)]
        stages = OUT_LATENCY - 1
        v = [Signal(name=f"o_v{k}") for k in range(stages)]
        b = [Signal.like(left, name=f"o_left{k}") for k in range(stages)]
        last = [Signal(name=f"o_last{k}") for k in range(stages)]
        ent = [Signal(cfg.exp_bits, name=f"o_e{i}") for i in range(L)]
        prod = [Signal(cfg.exp_bits + qb, name=f"o_prod{i}") for i in range(L)]
        out_v, out_last = Signal(), Signal()
        out_data = Signal(word_layout(L))
        with m.If(adv):
            m.d.sync += [v[0].eq(o_issue), b[0].eq(left), last[0].eq(widx == o_nwords - 1)]
            for k in range(stages - 1):
                m.d.sync += [v[k + 1].eq(v[k]), b[k + 1].eq(b[k]), last[k + 1].eq(last[k])]
            half = 1 << (RECIP_SHIFT - 1)
            for i in range(L):
                m.d.sync += [
                    ent[i].eq(exp_ent[i]),                                 # v1 -> v2
                    prod[i].eq(ent[i] * o_recip),                              # v2 -> v3
                    out_data[i].eq(Mux(b[3] > i, (prod[i] + half) >> RECIP_SHIFT, 0)),
                ]
            m.d.sync += [out_v.eq(v[3]), out_last.eq(last[3])]
        m.d.comb += [adv.eq(~out_v | self.source.ready),
                     self.source.valid.eq(out_v),
                     self.source.payload.data.eq(out_data),
                     self.source.payload.last.eq(out_last),
                     out_busy.eq(any_of(v) | out_v)]

        # --- shared read ports ---------------------------------------------------------------
        in_out = phase == OUT
        rd_q = buf_rd.data
        mx_sel = Mux(v[0], o_mx, mx)
        m.d.comb += [buf_rd.addr.eq(widx), buf_rd.en.eq(Mux(out_busy | in_out, adv, e_issue))]
        for i in range(L):
            d = Signal(signed(INT8.bits + 2), name=f"d{i}")
            m.d.comb += [d.eq(mx_sel - rd_q[i]),
                         exp_ent[i].eq(table_entry(m, exp_rd[i], d[:8],
                                                   Mux(out_busy | in_out, adv, e_v0), f"exp{i}"))]
        return m

