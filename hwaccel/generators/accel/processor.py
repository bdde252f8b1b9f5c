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
cannot see.

States: IDLE -> FETCH -> DECODE (program word arrives) -> CALC (counts, registered so the
products do not sit in front of the comparators) -> CHECK -> [TILE] -> ISSUE -> RUN -> FETCH ...
"""

from __future__ import annotations

import math

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..conv.layouts import layer_layout, pool_layer_layout
from .config import AccelConfig
from .isa import Cause, Op, command_layout

__all__ = ["Processor", "JOB_CONV", "JOB_POOL", "JOB_LSTM", "lstm_words"]


def lstm_words(cfg: AccelConfig) -> tuple[int, int, int]:
    """Words per x step, words per h step, weight-scratchpad words of one LSTM load."""
    lc = cfg.lstm
    return (math.ceil(lc.input_size / cfg.lanes), math.ceil(lc.hidden_size / cfg.lanes),
            lc.weight_depth + lc.rows)

JOB_CONV, JOB_POOL, JOB_LSTM = 0, 1, 2
STATES = ("IDLE", "FETCH", "DECODE", "CALC", "CHECK", "TILE", "ISSUE", "RUN")


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
            "job_done": In(1), "progress": In(1), "watch_limit": In(range(cfg.watchdog + 1)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "cause": Out(8), "pc": Out(16),
            "retire": Out(1), "in_job": Out(1), "fence": Out(1), "abort": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        conv = cfg.conv
        m = Module()
        ad, wd = cfg.act_depth, cfg.wgt_depth
        cmd = Signal(command_layout(cfg))
        pc = Signal(16)
        m.d.comb += [self.pc.eq(pc), self.prog_addr.eq(pc[: len(self.prog_addr)])]
        in_words, out_words = Signal(range(ad * 2 + 1)), Signal(range(ad * 2 + 1))
        w_words = Signal(range(wd * 2 + 1))
        shape_ok = Signal()
        rem = Signal(range(ad + 1))
        a_ptr, c_ptr = Signal(range(ad + 1)), Signal(range(ad + 1))
        watch = Signal(range(cfg.watchdog + 1))

        # An explicit state register and If/Elif chains, not m.FSM or m.Switch: Yosys writes a
        # case per signal without a default, which lints as CASEINCOMPLETE.
        state = Signal(range(len(STATES)))

        def goto(name):
            m.d.sync += state.eq(STATES.index(name))

        def fault(cause):
            m.d.sync += [self.error.eq(1), self.cause.eq(cause), self.busy.eq(0)]
            goto("IDLE")

        d, p, op = cmd.desc, cmd.pool, cmd.op
        ow_p = Mux(d.pool, d.out_width >> 1, d.out_width)
        oh_p = Mux(d.pool, d.out_height >> 1, d.out_height)
        span_w = d.width + 2 * d.padding
        span_h = d.height + 2 * d.padding

        def le(field, limit):
            # A constant where the field's bits cannot exceed the limit (lint CMPCONST).
            return Const(1) if limit >= (1 << len(field)) - 1 else field <= limit

        # Fields hold ``range(limit + 1)`` values, but their bits can encode more: check both
        # ends against the engine's limits (an overflowing index would corrupt or hang it).
        derived_ok = ((d.kernel != 0) & le(d.kernel, conv.max_kernel)
                      & (d.groups != 0) & le(d.groups, conv.max_groups)
                      & (d.blocks != 0) & le(d.blocks, conv.max_blocks)
                      & (d.weight_words != 0)
                      & le(d.weight_words, conv.max_blocks * conv.max_chunks)
                      & (d.row_lanes != 0) & le(d.row_lanes, conv.lanes)
                      & (d.shift_lanes != 0) & le(d.shift_lanes, conv.lanes)
                      & (d.rows_per_chunk != 0) & le(d.rows_per_chunk, conv.lanes)
                      & le(d.padding, conv.max_pad))
        conv_ok = (derived_ok & (d.width != 0) & (d.height != 0) & (2 * d.padding < d.kernel)
                   & le(d.width, conv.max_width) & le(d.height, conv.max_height)
                   & (span_w >= d.kernel) & (span_h >= d.kernel)
                   & (d.out_width == ((span_w - d.kernel) >> d.stride2) + 1)
                   & (d.out_height == ((span_h - d.kernel) >> d.stride2) + 1)
                   & (~d.pool | ((d.out_width >= 2) & (d.out_height >= 2))))
        mg, mb = conv.max_groups, conv.max_blocks
        kw, nb = cmd.kw, cmd.nb
        gemm_ok = (derived_ok & (d.kernel == 1) & (d.padding == 0) & ~d.stride2 & ~d.pool
                   & (cmd.count != 0) & (kw != 0) & (nb != 0) & le(kw, cfg.gemm_max_words)
                   & (d.groups == Mux(kw > mg, mg, kw)) & (d.blocks == Mux(nb > mb, mb, nb))
                   & (d.weight_words == d.groups * d.blocks))
        pool_ok = ((p.width >= 2) & (p.height >= 2) & (p.blocks != 0)
                   & le(p.width, conv.max_width) & le(p.height, conv.max_height)
                   & le(p.blocks, conv.max_blocks))

        # GEMM tiling. N tiles (n0: first block) outermost, so M tiles of one N tile share its
        # weights; then M tiles; K tiles (k0: first word of the row) innermost, so partial sums
        # live only for one M x N tile. M tiles: whole max_height x max_width tiles, then whole
        # rows, then the rest (no divider); with K tiled, rows of at most psum_width pixels.
        mw, mh, pw = conv.max_width, conv.max_height, cfg.psum_width
        n0, k0 = Signal(range(ad + 1)), Signal(range(ad + 1))
        w_nt, w_k = Signal(range(wd + 1)), Signal(range(wd + 1))  # N tile's / K tile's weights
        b_t = Signal(range(mb + 1))
        g_t = Signal(range(mg + 1))
        k_tiled = kw > mg
        tile_w = Signal(range(mw + 1))
        tile_h = Signal(range(mh + 1))
        m.d.comb += [b_t.eq(Mux(nb - n0 >= mb, mb, nb - n0)),
                     g_t.eq(Mux(kw - k0 >= mg, mg, kw - k0)),
                     tile_w.eq(Mux(k_tiled, Mux(rem >= pw, pw, rem), Mux(rem >= mw, mw, rem))),
                     tile_h.eq(Mux(~k_tiled & (rem >= mw * mh), mh, 1))]
        tile_n = tile_w * tile_h
        last_k = k0 + g_t == kw

        with m.If(state == STATES.index("IDLE")):
            with m.If(self.start):
                m.d.sync += [pc.eq(self.start_pc), self.busy.eq(1), self.done.eq(0),
                             self.error.eq(0), self.cause.eq(Cause.NONE)]
                goto("FETCH")
        with m.Elif(state == STATES.index("FETCH")):
            with m.If(pc >= cfg.prog_depth):
                fault(Cause.PC_RANGE)
            with m.Else():
                goto("DECODE")
        with m.Elif(state == STATES.index("DECODE")):
            m.d.sync += cmd.eq(self.prog_data)
            goto("CALC")
        with m.Elif(state == STATES.index("CALC")):
            m.d.sync += w_words.eq(d.weight_words + d.blocks)
            with m.If(op == Op.CONV):
                m.d.sync += [in_words.eq(d.width * d.height * d.groups),
                             out_words.eq(ow_p * oh_p * d.blocks), shape_ok.eq(conv_ok)]
            with m.Elif(op == Op.GEMM):
                m.d.sync += [in_words.eq(cmd.count * d.groups),
                             out_words.eq(cmd.count * d.blocks), shape_ok.eq(gemm_ok)]
            with m.Elif(op == Op.MAXPOOL):
                m.d.sync += [in_words.eq(p.width * p.height * p.blocks),
                             out_words.eq((p.width >> 1) * (p.height >> 1) * p.blocks),
                             shape_ok.eq(pool_ok)]
            with m.Else():
                m.d.sync += shape_ok.eq(0)
            if cfg.lstm is not None:
                gx, gh, lw = lstm_words(cfg)
                with m.If(op == Op.LSTM):
                    m.d.sync += [in_words.eq(cmd.count * gx), out_words.eq(cmd.count * gh),
                                 shape_ok.eq(cmd.count != 0), w_words.eq(lw)]
            goto("CHECK")
        with m.Elif(state == STATES.index("CHECK")):
            src_bad = cmd.src + in_words > ad
            dst_bad = cmd.dst + out_words > ad
            wgt_bad = (cmd.wgt + w_words > wd) & (op != Op.MAXPOOL)
            legal = (op == Op.CONV) | (op == Op.GEMM) | (op == Op.MAXPOOL)
            if cfg.lstm is not None:
                legal |= op == Op.LSTM
            m.d.sync += [self.job_src.eq(cmd.src), self.job_src_count.eq(in_words),
                         self.job_dst.eq(cmd.dst), self.job_dst_count.eq(out_words),
                         self.job_wgt.eq(cmd.wgt), self.job_wgt_count.eq(w_words),
                         self.job_desc.eq(d), self.job_pool.eq(p),
                         self.job_desc.acc_in.eq(0), self.job_desc.acc_out.eq(0),
                         self.job_desc.reuse.eq(0), self.job_keep.eq(1),
                         self.job_pool.enable.eq(1),
                         self.job_src_run.eq(1), self.job_src_stride.eq(1),
                         self.job_dst_run.eq(1), self.job_dst_stride.eq(1),
                         self.job_wgt_run.eq(1), self.job_wgt_stride.eq(1),
                         n0.eq(0), k0.eq(0), w_nt.eq(cmd.wgt), w_k.eq(cmd.wgt),
                         self.job_kind.eq(Mux(op == Op.MAXPOOL, JOB_POOL,
                                              Mux(op == Op.LSTM, JOB_LSTM, JOB_CONV))),
                         self.job_fabric.eq(d.out_width * d.out_height * d.weight_words),
                         rem.eq(cmd.count), a_ptr.eq(cmd.src), c_ptr.eq(cmd.dst)]
            with m.If(op == Op.DONE):
                m.d.sync += [self.done.eq(1), self.busy.eq(0)]
                m.d.comb += self.retire.eq(1)
                goto("IDLE")
            with m.Elif(op == Op.FENCE):
                m.d.sync += pc.eq(pc + 1)
                m.d.comb += [self.retire.eq(1), self.fence.eq(1)]
                goto("FETCH")
            with m.Elif(~legal):
                fault(Cause.ILLEGAL_OPCODE)
            with m.Elif(~shape_ok):
                fault(Cause.SHAPE)
            with m.Elif(src_bad | dst_bad | wgt_bad):
                fault(Cause.ADDRESS)
            with m.Elif(op == Op.GEMM):
                goto("TILE")
            with m.Else():
                goto("ISSUE")
        with m.Elif(state == STATES.index("TILE")):
            ww = g_t * b_t
            m.d.sync += [
                self.job_desc.width.eq(tile_w), self.job_desc.out_width.eq(tile_w),
                self.job_desc.height.eq(tile_h), self.job_desc.out_height.eq(tile_h),
                self.job_desc.groups.eq(g_t), self.job_desc.blocks.eq(b_t),
                self.job_desc.weight_words.eq(ww),
                self.job_desc.acc_in.eq(k0 != 0), self.job_desc.acc_out.eq(~last_k),
                self.job_keep.eq(last_k),
                self.job_src.eq(a_ptr + k0), self.job_src_count.eq(tile_n * g_t),
                self.job_src_run.eq(g_t), self.job_src_stride.eq(kw),
                self.job_dst.eq(c_ptr), self.job_dst_count.eq(tile_n * b_t),
                self.job_dst_run.eq(b_t), self.job_dst_stride.eq(nb),
                # This K tile's weight beats, then its N tile's requantizers after all K tiles.
                self.job_wgt.eq(w_k), self.job_wgt_count.eq(ww + b_t),
                self.job_wgt_run.eq(ww), self.job_wgt_stride.eq(w_nt + kw * b_t - w_k),
                self.job_fabric.eq(tile_n * ww),
            ]
            goto("ISSUE")
        with m.Elif(state == STATES.index("ISSUE")):
            m.d.comb += self.job_start.eq(1)
            m.d.sync += watch.eq(0)
            goto("RUN")
        with m.Else():  # RUN
            m.d.comb += self.in_job.eq(1)
            m.d.sync += watch.eq(Mux(self.progress, 0, watch + 1))
            limit = Mux(self.watch_limit == 0, cfg.watchdog, self.watch_limit)
            with m.If(self.job_done):
                with m.If((op == Op.GEMM) & ~last_k):  # next K tile of this M x N tile
                    m.d.sync += [k0.eq(k0 + g_t), w_k.eq(w_k + g_t * b_t)]
                    goto("TILE")
                with m.Elif((op == Op.GEMM) & (rem != tile_n)):  # next M tile
                    m.d.sync += [k0.eq(0), w_k.eq(w_nt), rem.eq(rem - tile_n),
                                 a_ptr.eq(a_ptr + tile_n * kw), c_ptr.eq(c_ptr + tile_n * nb)]
                    goto("TILE")
                with m.Elif((op == Op.GEMM) & (n0 + b_t != nb)):  # next N tile
                    nxt = w_nt + (kw + 1) * b_t
                    m.d.sync += [k0.eq(0), n0.eq(n0 + b_t), w_nt.eq(nxt), w_k.eq(nxt),
                                 rem.eq(cmd.count), a_ptr.eq(cmd.src),
                                 c_ptr.eq(cmd.dst + n0 + b_t)]
                    goto("TILE")
                with m.Else():
                    m.d.sync += pc.eq(pc + 1)
                    m.d.comb += self.retire.eq(1)
                    goto("FETCH")
            with m.Elif(watch >= limit):
                m.d.comb += self.abort.eq(1)
                fault(Cause.TIMEOUT)
        return m
