"""The command processor: fetches commands, checks them, tiles GEMMs and hands jobs to the
datapath, one at a time.

A *job* is one pass of one engine: a conv-engine layer (a CONV, or one (N, M, K) tile of a GEMM)
or a max-pool pass. Each job names its reads and writes as runs (``*_run`` words, then the next
run ``*_stride`` words further on), so a GEMM tile reads its K columns of A and writes its N
columns of C in place; ``job_keep`` is low for a K tile whose sums are still partial.

The processor computes every job's word counts from the descriptor itself (never trusting a
count in the command), so a DMA can never wait for a word the engine will not
produce; checks each command's ranges and shape before anything moves, so a bad command is a
fault state, not a hang; and runs a watchdog while a job is in flight for whatever the checks
cannot see. A GEMM's ranges are checked whole (``count x kw`` words of A, ``count x nb`` of C,
``(kw + 1) x nb`` weight words), not only its first tile's, as the golden model checks them.

States: IDLE -> FETCH -> DECODE (program word arrives) -> CALC -> CHECK -> [TILE] -> ISSUE ->
RUN -> FETCH ... (a depthwise CONV's next channel group: RUN -> ISSUE). Clock speed: no path
does more than one multiply. CALC registers the factors
of every count and the room left in each memory, CHECK multiplies and compares; a GEMM's next
tile is worked out while the current one runs, so TILE only copies, adds and multiplies once.
These stages sit in cycles the processor spent anyway: the cycle counts are those of a
processor that did all of it in one cycle.
"""

from __future__ import annotations

import math
import operator
from functools import reduce
from types import SimpleNamespace

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..conv.layouts import layer_layout, pool_layer_layout
from .config import AccelConfig
from .eltwise_checks import elt_checks
from .isa import ELT_OPS, Cause, Op, command_layout, elt_layout

__all__ = ["Processor", "JOB_CONV", "JOB_POOL", "JOB_LSTM", "JOB_ELT", "lstm_words"]


def lstm_words(cfg: AccelConfig) -> tuple[int, int, int]:
    """Words per x step, words per h step, weight-scratchpad words of one LSTM load."""
    lc = cfg.lstm
    return (math.ceil(lc.input_size / cfg.lanes), math.ceil(lc.hidden_size / cfg.lanes),
            lc.weight_depth + lc.rows)

JOB_CONV, JOB_POOL, JOB_LSTM = 0, 1, 2
JOB_ELT = 3   # ADD or AVGPOOL on the element-wise unit (``job_elt``, ``job_avg``)
STATES = ("IDLE", "FETCH", "DECODE", "CALC", "CHECK", "TILE", "ISSUE", "RUN")
#: RUN cycles after which the next GEMM tile's registers are settled (the tile pipeline is three
#: deep). A tile job takes far longer (descriptor, DMA read latency, the engine's pipeline
#: before its first result); should one ever end sooner, the processor waits (``done_seen``),
#: which costs cycles the models would catch, never a wrong tile.
RIPE = 3


class Processor(wiring.Component):
    """Command processor of an :class:`AccelConfig`.

    Members
    -------
    prog_addr : ``Out``, prog_data : ``In``   the program memory's read port (1-cycle latency)
    start, start_pc : ``In``                  begin a program (ignored while busy)
    job_* : ``Out``                           the job handed to the datapath on ``job_start``
    job_done, progress : ``In``               the job has finished; a stream moved this cycle
    watch_limit : ``In``                      cycles without progress before TIMEOUT
    busy, done, error, cause, pc : ``Out``    status
    retire, in_job : ``Out``                  a command retired; a job is in flight
    fence : ``Out``                           a FENCE retired (forget the held weights)
    abort : ``Out``                           a job was abandoned (TIMEOUT): reset the engines
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = cfg = config
        ad, wd = cfg.act_depth, cfg.wgt_depth
        super().__init__({
            "prog_addr": Out(range(cfg.prog_depth)), "prog_data": In(command_layout(cfg)),
            "start": In(1), "start_pc": In(16),
            "job_start": Out(1), "job_kind": Out(2),
            "job_desc": Out(layer_layout(cfg.conv)),
            "job_pool": Out(pool_layer_layout(cfg.conv.pool_config)),
            "job_src": Out(range(ad)), "job_src_count": Out(range(ad + 1)),
            "job_dst": Out(range(ad)), "job_dst_count": Out(range(ad + 1)),
            "job_wgt": Out(range(wd)), "job_wgt_count": Out(range(wd + 1)),
            "job_src_run": Out(range(ad + 1)), "job_src_stride": Out(range(ad + 1)),
            "job_dst_run": Out(range(ad + 1)), "job_dst_stride": Out(range(ad + 1)),
            "job_wgt_run": Out(range(wd + 1)), "job_wgt_stride": Out(range(wd + 1)),
            "job_keep": Out(1), "job_fabric": Out(32),
            "job_elt": Out(elt_layout(cfg)), "job_avg": Out(1),
            "job_done": In(1), "progress": In(1), "watch_limit": In(range(cfg.watchdog + 1)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "cause": Out(8), "pc": Out(16),
            "retire": Out(1), "in_job": Out(1), "fence": Out(1), "abort": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        cmd = Signal(command_layout(cfg))
        pc = Signal(16)
        m.d.comb += [self.pc.eq(pc), self.prog_addr.eq(pc[: len(self.prog_addr)])]
        watch = Signal(range(cfg.watchdog + 1))
        age = Signal(range(RIPE + 1))      # RUN cycles so far (saturating)
        done_seen = Signal()               # a GEMM tile finished before its successor was ripe

        # An explicit state register and If/Elif chains, not m.FSM or m.Switch: Yosys writes a
        # case per signal without a default, which lints as CASEINCOMPLETE.
        state = Signal(range(len(STATES)))

        def goto(name):
            m.d.sync += state.eq(STATES.index(name))

        def fault(cause):
            m.d.sync += [self.error.eq(1), self.cause.eq(cause), self.busy.eq(0)]
            goto("IDLE")

        def is_(name):
            return state == STATES.index(name)

        op, d, p = cmd.op, cmd.desc, cmd.pool
        chk = self._checks(m, cmd, calc=is_("CALC"))
        # A depthwise CONV is ``nb`` jobs, one per channel group: job g reads word g of every
        # pixel and writes word g of every output pixel (runs of 1, stride nb), with its own
        # weight beats and requantizer (``weight_words + 1`` words, group after group).
        dw_left = Signal(range(cfg.act_depth + 1))
        dw_conv = (op == Op.CONV) & d.depthwise
        til = self._tiles(m, cmd, chk, check=is_("CHECK"), run=is_("RUN"))

        with m.If(is_("IDLE")):
            with m.If(self.start):
                m.d.sync += [pc.eq(self.start_pc), self.busy.eq(1), self.done.eq(0),
                             self.error.eq(0), self.cause.eq(Cause.NONE)]
                goto("FETCH")
        with m.Elif(is_("FETCH")):
            with m.If(pc >= cfg.prog_depth):
                fault(Cause.PC_RANGE)
            with m.Else():
                goto("DECODE")
        with m.Elif(is_("DECODE")):
            m.d.sync += cmd.eq(self.prog_data)
            goto("CALC")
        with m.Elif(is_("CALC")):
            goto("CHECK")  # the registers of :meth:`_checks` load in this cycle
        with m.Elif(is_("CHECK")):
            m.d.sync += [self.job_src.eq(cmd.src), self.job_src_count.eq(chk.in_words),
                         self.job_dst.eq(cmd.dst), self.job_dst_count.eq(chk.out_words),
                         self.job_wgt.eq(cmd.wgt), self.job_wgt_count.eq(chk.w_words),
                         self.job_desc.eq(d), self.job_pool.eq(p),
                         self.job_desc.acc_in.eq(0), self.job_desc.acc_out.eq(0),
                         self.job_desc.reuse.eq(0), self.job_keep.eq(1),
                         self.job_pool.enable.eq(1),
                         self.job_src_run.eq(1), self.job_src_stride.eq(1),
                         self.job_dst_run.eq(1), self.job_dst_stride.eq(1),
                         self.job_wgt_run.eq(1), self.job_wgt_stride.eq(1),
                         self.job_kind.eq(Mux(chk.elt, JOB_ELT,
                                              Mux(op == Op.MAXPOOL, JOB_POOL,
                                                  Mux(op == Op.LSTM, JOB_LSTM, JOB_CONV)))),
                         self.job_elt.eq(cmd.elt), self.job_avg.eq(op == Op.AVGPOOL),
                         self.job_fabric.eq(chk.pixels_out * d.weight_words)]
            with m.If(dw_conv):
                m.d.sync += [self.job_src_count.eq(chk.in_a), self.job_dst_count.eq(chk.out_a),
                             self.job_wgt_count.eq(chk.w_a), self.job_src_stride.eq(cmd.nb),
                             self.job_dst_stride.eq(cmd.nb), dw_left.eq(cmd.nb - 1)]
            with m.If(op == Op.DONE):
                m.d.sync += [self.done.eq(1), self.busy.eq(0)]
                m.d.comb += self.retire.eq(1)
                goto("IDLE")
            with m.Elif(op == Op.FENCE):
                m.d.sync += pc.eq(pc + 1)
                m.d.comb += [self.retire.eq(1), self.fence.eq(1)]
                goto("FETCH")
            with m.Elif(~chk.legal):
                fault(Cause.ILLEGAL_OPCODE)
            with m.Elif(~chk.shape_ok):
                fault(Cause.SHAPE)
            with m.Elif(chk.range_bad):
                fault(Cause.ADDRESS)
            with m.Elif(op == Op.GEMM):
                goto("TILE")
            with m.Else():
                goto("ISSUE")
        with m.Elif(is_("TILE")):
            m.d.sync += til.load(self)
            goto("ISSUE")
        with m.Elif(is_("ISSUE")):
            m.d.comb += self.job_start.eq(1)
            m.d.sync += [watch.eq(0), age.eq(0), done_seen.eq(0)]
            goto("RUN")
        with m.Else():  # RUN
            m.d.comb += self.in_job.eq(1)
            m.d.sync += [watch.eq(Mux(self.progress, 0, watch + 1)),
                         age.eq(Mux(age == RIPE, RIPE, age + 1))]
            limit = Mux(self.watch_limit == 0, cfg.watchdog, self.watch_limit)
            gemm = op == Op.GEMM
            with m.If((self.job_done | done_seen) & (~gemm | (age == RIPE))):
                with m.If(gemm & til.more):  # the next tile (K, then M, then N)
                    m.d.sync += til.advance()
                    goto("TILE")
                with m.Elif(dw_conv & (dw_left != 0)):  # the next channel group
                    m.d.sync += [self.job_src.eq(self.job_src + 1),
                                 self.job_dst.eq(self.job_dst + 1),
                                 self.job_wgt.eq(self.job_wgt + self.job_wgt_count),
                                 dw_left.eq(dw_left - 1)]
                    goto("ISSUE")
                with m.Else():
                    m.d.sync += pc.eq(pc + 1)
                    m.d.comb += self.retire.eq(1)
                    goto("FETCH")
            with m.Elif(self.job_done):
                m.d.sync += done_seen.eq(1)
            with m.Elif(watch >= limit):
                m.d.comb += self.abort.eq(1)
                fault(Cause.TIMEOUT)
        return m

    def _checks(self, m, cmd, *, calc):
        """The shape and range checks, across CALC and CHECK: one multiply deep per cycle.

        A range check is ``base + a * b > depth``. CALC registers the factors ``a`` and ``b``
        (themselves at most one product of command fields) and the room ``depth - base``;
        CHECK multiplies and compares. Shape checks are registered in CALC, except the
        descriptor equalities that need a sum or a product first (those compare in CHECK).
        """
        cfg, conv = self.config, self.config.conv
        ad, wd = cfg.act_depth, cfg.wgt_depth
        mg, mb = conv.max_groups, conv.max_blocks
        d, p, op = cmd.desc, cmd.pool, cmd.op
        kw, nb = cmd.kw, cmd.nb
        top = max(ad, wd, conv.max_width * conv.max_height, conv.weight_depth + mb) + 2
        if cfg.lstm is not None:
            top = max(top, *lstm_words(cfg))
        in_a, in_b, out_a, out_b, w_a, w_b = (Signal(range(top)) for _ in range(6))
        room_src, room_dst, room_wgt = (Signal(range(max(ad, wd) + 1)) for _ in range(3))
        past = Signal()             # a base beyond its memory (fields can encode more)
        ok_calc, legal = Signal(), Signal()
        ow_calc, oh_calc = Signal(range(top)), Signal(range(top))
        gb = Signal(range(mg * mb + 1))
        pixels_out = Signal(range(conv.max_width * conv.max_height + 1))

        ow_p = Mux(d.pool, d.out_width >> 1, d.out_width)
        oh_p = Mux(d.pool, d.out_height >> 1, d.out_height)
        span_w = d.width + d.pad_left + d.pad_right
        span_h = d.height + d.pad_top + d.pad_bottom
        kh, kw_ = d.kernel_h, d.kernel_w

        def le(field, limit):
            # A constant where the field's bits cannot exceed the limit (lint CMPCONST).
            return Const(1) if limit >= (1 << len(field)) - 1 else field <= limit

        # Fields hold ``range(limit + 1)`` values, but their bits can encode more: check both
        # ends against the engine's limits (an overflowing index would corrupt or hang it).
        derived_ok = ((kh != 0) & le(kh, conv.max_kernel) & (kw_ != 0) & le(kw_, conv.max_kernel)
                      & (d.groups != 0) & le(d.groups, mg)
                      & (d.blocks != 0) & le(d.blocks, mb)
                      & (d.weight_words != 0)
                      & le(d.weight_words, conv.weight_depth)
                      & (d.row_lanes != 0) & le(d.row_lanes, conv.lanes)
                      & (d.shift_lanes != 0) & le(d.shift_lanes, conv.lanes)
                      & (d.rows_per_chunk != 0) & le(d.rows_per_chunk, conv.lanes)
                      & le(d.pad_top, conv.max_pad) & le(d.pad_left, conv.max_pad)
                      & le(d.pad_bottom, conv.max_pad) & le(d.pad_right, conv.max_pad))
        conv_ok = (derived_ok & (d.width != 0) & (d.height != 0)
                   & (d.pad_top + d.pad_bottom < kh) & (d.pad_left + d.pad_right < kw_)
                   & le(d.width, conv.max_width) & le(d.height, conv.max_height)
                   & (span_w >= kw_) & (span_h >= kh)
                   & (~d.pool | ((d.out_width >= 2) & (d.out_height >= 2))))
        # Depthwise: one group and block a job (``nb`` jobs), the engine's window register.
        dw_ok = ((nb != 0) & (d.groups == 1) & (d.blocks == 1) & ~d.packed
                 & (d.weight_words == conv.dw_chunks) & le(kh, conv.dw_kernel)
                 & le(kw_, conv.dw_kernel) & (d.row_lanes == conv.lanes)
                 & (d.shift_lanes == conv.lanes) & (d.rows_per_chunk == 1))
        conv_ok = conv_ok & (~d.depthwise | dw_ok)
        gemm_ok = (derived_ok & ~d.depthwise & (kh == 1) & (kw_ == 1) & ~d.stride2_h
                   & ~d.stride2_w & ~d.pool
                   & (d.pad_top == 0) & (d.pad_left == 0) & (d.pad_bottom == 0)
                   & (d.pad_right == 0)
                   & (cmd.count != 0) & (kw != 0) & (nb != 0) & le(kw, cfg.gemm_max_words)
                   & (d.groups == Mux(kw > mg, mg, kw)) & (d.blocks == Mux(nb > mb, mb, nb)))
        pool_ok = ((p.width >= 2) & (p.height >= 2) & (p.blocks != 0)
                   & le(p.width, conv.max_width) & le(p.height, conv.max_height)
                   & le(p.blocks, mb))

        elt = elt_checks(m, cmd, cfg, calc=calc, le=le)   # ADD and AVGPOOL
        ops = ((Op.CONV, Op.GEMM, Op.MAXPOOL) + ((Op.LSTM,) if cfg.lstm is not None else ())
               + ELT_OPS)
        with m.If(calc):
            m.d.sync += [room_src.eq(ad - cmd.src), room_dst.eq(ad - cmd.dst),
                         room_wgt.eq(wd - cmd.wgt),
                         past.eq(~le(cmd.src, ad) | ~le(cmd.dst, ad)
                                 | (~le(cmd.wgt, wd) & (op != Op.MAXPOOL) & ~elt.mine)),
                         legal.eq(reduce(operator.or_, [op == o for o in ops])),
                         w_a.eq(d.weight_words + d.blocks),
                         w_b.eq(1), pixels_out.eq(d.out_width * d.out_height),
                         ow_calc.eq(((span_w - kw_) >> d.stride2_w) + 1),
                         oh_calc.eq(((span_h - kh) >> d.stride2_h) + 1),
                         gb.eq(d.groups * d.blocks)]
            with m.If(op == Op.CONV):
                m.d.sync += [in_a.eq(d.width * d.height), in_b.eq(Mux(d.depthwise, nb, d.groups)),
                             out_a.eq(ow_p * oh_p), out_b.eq(Mux(d.depthwise, nb, d.blocks)),
                             w_b.eq(Mux(d.depthwise, nb, 1)), ok_calc.eq(conv_ok)]
            with m.Elif(op == Op.GEMM):
                # The whole of A, C and the weights of every tile (kw + 1 words per block).
                m.d.sync += [in_a.eq(cmd.count), in_b.eq(kw), out_a.eq(cmd.count),
                             out_b.eq(nb), w_a.eq(kw + 1), w_b.eq(nb), ok_calc.eq(gemm_ok)]
            with m.Elif(op == Op.MAXPOOL):
                m.d.sync += [in_a.eq(p.width * p.height), in_b.eq(p.blocks),
                             out_a.eq((p.width >> 1) * (p.height >> 1)), out_b.eq(p.blocks),
                             ok_calc.eq(pool_ok)]
            with m.Elif(elt.mine):
                e = elt.calc
                m.d.sync += [in_a.eq(e["in_a"]), in_b.eq(e["in_b"]), out_a.eq(e["out_a"]),
                             out_b.eq(e["out_b"]), w_a.eq(e["w_a"]), ok_calc.eq(e["ok"])]
            with m.Else():
                m.d.sync += ok_calc.eq(0)
            if cfg.lstm is not None:
                gx, gh, lw = lstm_words(cfg)
                with m.If(op == Op.LSTM):
                    m.d.sync += [in_a.eq(cmd.count), in_b.eq(gx), out_a.eq(cmd.count),
                                 out_b.eq(gh), w_a.eq(lw), ok_calc.eq(cmd.count != 0)]

        in_words, out_words, w_words = in_a * in_b, out_a * out_b, w_a * w_b
        shape_ok = ok_calc & Mux(op == Op.CONV, (ow_calc == d.out_width)
                                 & (oh_calc == d.out_height),
                                 (op != Op.GEMM) | (d.weight_words == gb)) & elt.shape_ok
        range_bad = (past | (in_words > room_src) | (out_words > room_dst)
                     | ((w_words > room_wgt) & (op != Op.MAXPOOL)) | elt.range_bad(in_words))
        return SimpleNamespace(in_words=in_words, out_words=out_words, w_words=w_words,
                               legal=legal, shape_ok=shape_ok, range_bad=range_bad,
                               pixels_out=pixels_out, elt=elt.mine, in_a=in_a, out_a=out_a,
                               w_a=w_a)

    def _tiles(self, m, cmd, chk, *, check, run):
        """GEMM tiling, one multiply deep per cycle.

        N tiles (``n0``: first block) outermost, so M tiles of one N tile share its weights;
        then M tiles; K tiles (``k0``: first word of the row) innermost, so partial sums live
        only for one M x N tile. M tiles: whole max_height x max_width tiles, then whole rows,
        then the rest (no divider); with K tiled, rows of at most psum_width pixels.

        The first tile's shape (``geo_*``) is registered in CHECK from the command. While a
        tile runs (at least :data:`RIPE` cycles: descriptor, DMA latency and the engine's
        pipeline come first), a free-running pipeline computes the loop state after it
        (``nxt_*``), then the next tile's shape, then its products; TILE only copies and adds.
        """
        cfg, conv = self.config, self.config.conv
        ad, wd = cfg.act_depth, cfg.wgt_depth
        mg, mb = conv.max_groups, conv.max_blocks
        mw, mh, pw = conv.max_width, conv.max_height, cfg.psum_width
        kw, nb = cmd.kw, cmd.nb
        rem = Signal(range(ad + 1))                       # rows of A left in this N tile
        k0, n0 = Signal(range(ad + 1)), Signal(range(ad + 1))
        a_ptr, c_ptr = Signal(range(ad + 1)), Signal(range(ad + 1))
        w_nt, w_k = Signal(range(wd + 1)), Signal(range(wd + 1))  # N tile's / K tile's weights
        state = (rem, k0, n0, a_ptr, c_ptr, w_nt, w_k)
        nxt = tuple(Signal.like(s, name=f"nxt_{s.name}") for s in state)
        more = Signal()
        k_tiled = Signal()
        tn_cur = Signal(range(mw * mh + 1))               # pixels of the running tile
        geo_g, geo_b = Signal(range(mg + 1)), Signal(range(mb + 1))
        geo_w, geo_h = Signal(range(mw + 1)), Signal(range(mh + 1))
        geo_tn = Signal(range(mw * mh + 1))
        geo_ww, geo_kwb = Signal(range(mg * mb + 1)), Signal(range((ad + 1) * mb + 1))

        def geometry(k0v, n0v, remv, tiled):
            full = ~tiled & (remv >= mw * mh)             # then the width is mw too
            tw = Mux(tiled, Mux(remv >= pw, pw, remv), Mux(remv >= mw, mw, remv))
            return [geo_g.eq(Mux(kw - k0v >= mg, mg, kw - k0v)),
                    geo_b.eq(Mux(nb - n0v >= mb, mb, nb - n0v)),
                    geo_w.eq(tw), geo_h.eq(Mux(full, mh, 1)), geo_tn.eq(Mux(full, mw * mh, tw))]

        with m.If(check):
            m.d.sync += [*geometry(0, 0, cmd.count, kw > mg), k_tiled.eq(kw > mg),
                         geo_ww.eq(cmd.desc.weight_words), geo_kwb.eq(kw * cmd.desc.blocks),
                         rem.eq(cmd.count), k0.eq(0), n0.eq(0), a_ptr.eq(cmd.src),
                         c_ptr.eq(cmd.dst), w_nt.eq(cmd.wgt), w_k.eq(cmd.wgt)]
        # Stage 1: the running tile against the loop bounds, and its products.
        last_k, more_m, more_n = Signal(), Signal(), Signal()
        g_cur, b_cur = self.job_desc.groups, self.job_desc.blocks
        k_next, n_next = Signal.like(k0), Signal.like(n0)
        wk_next = Signal.like(w_k)
        step_a = Signal(range((ad + 1) * mw * mh + 1))   # the running tile's rows of A
        step_c = Signal.like(step_a)                     # and of C
        kwb = Signal.like(geo_kwb)
        m.d.sync += [last_k.eq(k0 + g_cur == kw), more_m.eq(rem != tn_cur),
                     more_n.eq(n0 + b_cur != nb), k_next.eq(k0 + g_cur), n_next.eq(n0 + b_cur),
                     wk_next.eq(w_k + self.job_desc.weight_words), step_a.eq(tn_cur * kw),
                     step_c.eq(tn_cur * nb), kwb.eq(kw * b_cur)]
        # Stage 2: the loop state after it (next K tile, else next M tile, else next N tile).
        n_rem, n_k0, n_n0, n_a, n_c, n_wnt, n_wk = nxt
        with m.If(~last_k):
            m.d.sync += [n_rem.eq(rem), n_k0.eq(k_next), n_n0.eq(n0), n_a.eq(a_ptr),
                         n_c.eq(c_ptr), n_wnt.eq(w_nt), n_wk.eq(wk_next)]
        with m.Elif(more_m):
            m.d.sync += [n_rem.eq(rem - tn_cur), n_k0.eq(0), n_n0.eq(n0), n_a.eq(a_ptr + step_a),
                         n_c.eq(c_ptr + step_c), n_wnt.eq(w_nt), n_wk.eq(w_nt)]
        with m.Else():
            w_next = w_nt + kwb + b_cur
            m.d.sync += [n_rem.eq(cmd.count), n_k0.eq(0), n_n0.eq(n_next), n_a.eq(cmd.src),
                         n_c.eq(cmd.dst + n_next), n_wnt.eq(w_next), n_wk.eq(w_next)]
        m.d.sync += more.eq(~last_k | more_m | more_n)
        # Stages 3 and 4: the next tile's shape, then its products.
        with m.If(run):
            m.d.sync += [*geometry(n_k0, n_n0, n_rem, k_tiled), geo_ww.eq(geo_g * geo_b),
                         geo_kwb.eq(kw * geo_b)]

        def load(job):
            """TILE: the job of the tile ``geo_*`` describes."""
            ends_k = k0 + geo_g == kw
            return [
                job.job_desc.width.eq(geo_w), job.job_desc.out_width.eq(geo_w),
                job.job_desc.height.eq(geo_h), job.job_desc.out_height.eq(geo_h),
                job.job_desc.groups.eq(geo_g), job.job_desc.blocks.eq(geo_b),
                job.job_desc.weight_words.eq(geo_ww),
                job.job_desc.acc_in.eq(k0 != 0), job.job_desc.acc_out.eq(~ends_k),
                job.job_keep.eq(ends_k),
                job.job_src.eq(a_ptr + k0), job.job_src_count.eq(geo_tn * geo_g),
                job.job_src_run.eq(geo_g), job.job_src_stride.eq(kw),
                job.job_dst.eq(c_ptr), job.job_dst_count.eq(geo_tn * geo_b),
                job.job_dst_run.eq(geo_b), job.job_dst_stride.eq(nb),
                # This K tile's weight beats, then its N tile's requantizers after all K tiles.
                job.job_wgt.eq(w_k), job.job_wgt_count.eq(geo_ww + geo_b),
                job.job_wgt_run.eq(geo_ww), job.job_wgt_stride.eq(w_nt + geo_kwb - w_k),
                job.job_fabric.eq(geo_tn * geo_ww), tn_cur.eq(geo_tn),
            ]

        def advance():
            return [s.eq(n) for s, n in zip(state, nxt)]

        return SimpleNamespace(load=load, advance=advance, more=more)
