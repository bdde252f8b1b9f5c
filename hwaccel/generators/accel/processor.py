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
RUN -> CALC ... (a depthwise CONV's next groups and a GEMM's next tile: RUN -> ISSUE; after a
FENCE, CHECK -> FETCH). Overlap: while a job issues and runs, the program memory reads the next
command's word, so the command retiring from RUN loads it into the command register in that cycle
and the next command starts at CALC (FETCH and DECODE hidden under the job; at the program
memory's end, FETCH and its PC_RANGE fault as before); a GEMM's next tile is loaded in the cycle
the running one ends (from the loop state after it, which the tile pipeline has settled by then)
and issues in the next, with no TILE cycle of its own. A job still issues only once the previous
one is done (every result stored), so a command always reads what the one before it wrote; and
every fault stops at the faulting command's own pc. Clock speed: no path does
more than one multiply, none a multiply then a compare. CALC registers the factors of every
count and the room left in each memory, CHECK multiplies, the command's first TILE or ISSUE
compares (an ADDRESS fault starts no job); a GEMM's next tile is worked out while the current
one runs, so TILE only copies, adds and multiplies once. All in cycles the processor spent
anyway: the cycle counts are those of a processor that did all of it in one cycle.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..conv.layouts import layer_layout, pool_layer_layout
from .attn_checks import attn_job_layout
from .checks import command_checks
from .config import AccelConfig
from .isa import Cause, Op, command_layout, elt_layout
from .lstm_checks import lstm_job_layout
from .matmul_checks import matmul_members, matmul_tiling

__all__ = ["Processor", "JOB_CONV", "JOB_POOL", "JOB_LSTM", "JOB_ELT", "JOB_ATTN",
           "JOB_KIND_BITS"]

JOB_CONV, JOB_POOL, JOB_LSTM = 0, 1, 2
JOB_ELT = 3   # ADD or AVGPOOL on the element-wise unit (``job_elt``, ``job_avg``)
JOB_ATTN = 4  # SOFTMAX, LAYERNORM or GELU on an attention unit (``job_attn``)
JOB_KIND_BITS = 3   # room for more kinds (5 .. 7)
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
    cmd : ``Out``                             the running command (from DECODE, or the
                                              retirement that loads it, to its own)
    job_lstm : ``Out``                        an LSTM job's sizes and word counts (only with
                                              an LSTM cell; :mod:`.lstm_checks`)
    job_attn : ``Out``, job_fault : ``In``    an attention unit's job (only with attention
                                              units; :mod:`.attn_checks`); its parameters
                                              failed their check as they loaded (SHAPE)
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = cfg = config
        ad, wd = cfg.act_depth, cfg.wgt_depth
        super().__init__({
            "prog_addr": Out(range(cfg.prog_depth)), "prog_data": In(command_layout(cfg)),
            "start": In(1), "start_pc": In(16),
            "job_start": Out(1), "job_kind": Out(JOB_KIND_BITS),
            "job_desc": Out(layer_layout(cfg.conv)),
            "job_pool": Out(pool_layer_layout(cfg.conv.pool_config)),
            "job_src": Out(range(ad)), "job_src_count": Out(range(ad + 1)),
            "job_dst": Out(range(ad)), "job_dst_count": Out(range(ad + 1)),
            "job_wgt": Out(range(wd)), "job_wgt_count": Out(range(wd + 1)),
            "job_src_run": Out(range(ad + 1)), "job_src_stride": Out(range(ad + 1)),
            "job_dst_run": Out(range(ad + 1)), "job_dst_stride": Out(range(ad + 1)),
            "job_src_group": Out(range(ad + 1)), "job_dst_group": Out(range(ad + 1)),
            "job_wgt_run": Out(range(wd + 1)), "job_wgt_stride": Out(range(wd + 1)),
            "job_keep": Out(1), "job_fabric": Out(32),
            "job_elt": Out(elt_layout(cfg)), "job_avg": Out(1),
            **matmul_members(cfg),
            "job_done": In(1), "progress": In(1), "watch_limit": In(range(cfg.watchdog + 1)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "cause": Out(8), "pc": Out(16),
            "retire": Out(1), "in_job": Out(1), "fence": Out(1), "abort": Out(1),
            "cmd": Out(command_layout(cfg)),
            **({"job_lstm": Out(lstm_job_layout(cfg))} if cfg.lstm is not None else {}),
            **({"job_attn": Out(attn_job_layout(cfg)), "job_fault": In(1)}
               if cfg.attention is not None else {}),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        cmd = Signal(command_layout(cfg))
        pc = Signal(16)
        m.d.comb += [self.pc.eq(pc), self.cmd.eq(cmd)]
        watch = Signal(range(cfg.watchdog + 1))
        age = Signal(range(RIPE + 1))      # RUN cycles so far (saturating)
        done_seen = Signal()               # a GEMM tile finished before its successor was ripe
        fresh = Signal()                   # CHECK was the last state: the range checks decide

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

        # While a job issues and runs, the program memory reads the next command's word
        # (pc + 1): the command retiring from RUN hands it straight to CALC (no FETCH, DECODE).
        ahead = Mux(is_("ISSUE") | is_("RUN"), pc + 1, pc)
        m.d.comb += self.prog_addr.eq(ahead[: len(self.prog_addr)])

        op, d, p = cmd.op, cmd.desc, cmd.pool
        m.d.sync += fresh.eq(is_("CHECK"))
        chk = command_checks(m, cmd, cfg, calc=is_("CALC"))
        d = matmul_tiling(self, m, cmd, chk, decode=is_("DECODE"),   # MATMUL: checks, tiling
                          calc=is_("CALC"), check=is_("CHECK")).desc
        if cfg.lstm is not None:
            m.d.comb += self.job_lstm.eq(chk.lstm_job)
        if cfg.attention is not None:
            m.d.comb += self.job_attn.eq(chk.attn_job)
        # A depthwise CONV is a job per ``dw_groups`` channel groups (one group when it
        # pools): the engine walks the job's groups one after the other, so the reads and
        # writes are word g of every pixel (runs of 1, stride nb), then word g + 1 (a group
        # of ``width x height`` words); the weights are each group's ``weight_words`` beats
        # and requantizer, group after group. ``dw_left``: the groups after this job's.
        dw_left = Signal(range(cfg.act_depth + 1))
        dw_conv = (op == Op.CONV) & d.depthwise
        dw_k = Mux(d.pool, 1, cfg.conv.dw_groups)
        # ``min(left, dw_k)`` a cycle ahead, and one product each of it and registers that hold
        # for the whole command (CALC's factors).
        jg = Signal(range(cfg.conv.dw_groups + 1), name="dw_jg")
        m.d.sync += jg.eq(Mux(is_("CALC"), Mux(cmd.nb > dw_k, dw_k, cmd.nb),
                              Mux(dw_left > dw_k, dw_k, dw_left)))
        dw_src, dw_dst = chk.in_a * jg, chk.out_a * jg
        dw_fab = chk.pixels_out * cfg.conv.dw_chunks * jg

        def dw_job(left):
            """The counts of a depthwise job of the next ``min(left, dw_k)`` groups."""
            return [self.job_src_count.eq(dw_src), self.job_dst_count.eq(dw_dst),
                    self.job_wgt_count.eq((cfg.conv.dw_chunks + 1) * jg),
                    self.job_desc.blocks.eq(jg),
                    self.job_desc.weight_words.eq(cfg.conv.dw_chunks * jg),
                    self.job_fabric.eq(dw_fab), dw_left.eq(left - jg)]
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
            goto("CHECK")  # the registers of :func:`.checks.command_checks` load in this cycle
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
                         self.job_src_group.eq(0), self.job_dst_group.eq(0),
                         self.job_kind.eq(Mux(chk.attn, JOB_ATTN, Mux(chk.elt, JOB_ELT,
                                              Mux(op == Op.MAXPOOL, JOB_POOL,
                                                  Mux(op == Op.LSTM, JOB_LSTM, JOB_CONV))))),
                         self.job_elt.eq(cmd.elt), self.job_avg.eq(op == Op.AVGPOOL),
                         self.job_fabric.eq(chk.pixels_out * d.weight_words)]
            with m.If(dw_conv):
                m.d.sync += [*dw_job(cmd.nb), self.job_src_stride.eq(cmd.nb),
                             self.job_dst_stride.eq(cmd.nb),
                             self.job_src_group.eq(chk.in_a), self.job_dst_group.eq(chk.out_a)]
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
            with m.Elif(chk.mm.tiled):   # GEMM or MATMUL
                goto("TILE")
            with m.Else():
                goto("ISSUE")
        with m.Elif((is_("TILE") | is_("ISSUE")) & fresh & chk.range_bad):
            fault(Cause.ADDRESS)   # the command's first TILE or ISSUE: its range checks
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
            gemm = chk.mm.tiled
            with m.If((self.job_done | done_seen) & (~gemm | (age == RIPE))):
                with m.If(gemm & til.more):  # the next tile (K, then M, then N), issued next
                    m.d.sync += [*til.advance(), *til.load(self, ahead=True)]
                    goto("ISSUE")
                with m.Elif(dw_conv & (dw_left != 0)):  # the next channel groups
                    m.d.sync += [self.job_src.eq(self.job_src + self.job_desc.blocks),
                                 self.job_dst.eq(self.job_dst + self.job_desc.blocks),
                                 self.job_wgt.eq(self.job_wgt + self.job_wgt_count),
                                 *dw_job(dw_left)]
                    goto("ISSUE")
                with m.Else():
                    m.d.sync += pc.eq(pc + 1)
                    m.d.comb += self.retire.eq(1)
                    with m.If(pc + 1 < cfg.prog_depth):   # its word is in (``ahead``)
                        m.d.sync += cmd.eq(self.prog_data)
                        goto("CALC")
                    with m.Else():
                        goto("FETCH")   # a PC_RANGE fault
            with m.Elif(self.job_done):
                m.d.sync += done_seen.eq(1)
            stop, cause = watch >= limit, Cause.TIMEOUT
            if cfg.attention is not None:   # a unit's parameters failed their check
                stop, cause = stop | self.job_fault, Mux(self.job_fault, Cause.SHAPE, cause)
            with m.Elif(stop):
                m.d.comb += self.abort.eq(1)
                fault(cause)
        return m

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
        mm = chk.mm   # a MATMUL's K and N words and row strides, else the GEMM's (matmul_tiling)
        kw, nb, sa, sc = mm.kw, mm.nb, mm.sa, mm.sc
        rem = Signal(range(ad + 1))                       # rows of A left in this N tile
        k0, n0 = Signal(range(ad + 1)), Signal(range(ad + 1))
        a_ptr, c_ptr = Signal(range(ad + 1)), Signal(range(ad + 1))
        w_nt, w_k = Signal(range(wd + 1)), Signal(range(wd + 1))  # N tile's / K tile's weights
        state = (rem, k0, n0, a_ptr, c_ptr, w_nt, w_k)
        nxt = tuple(Signal.like(s, name=f"nxt_{s.name}") for s in state)
        # MATMUL's gatherer: the running tile's k0 and n0, in RUN the next tile's (it loads
        # them while idle, so they hold from the cycle before the next ISSUE).
        m.d.comb += mm.tile(Mux(run, nxt[1], k0), Mux(run, nxt[2], n0))
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
                         geo_ww.eq(mm.desc.weight_words), geo_kwb.eq(kw * cmd.desc.blocks),
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
                     wk_next.eq(w_k + self.job_desc.weight_words), step_a.eq(tn_cur * sa),
                     step_c.eq(tn_cur * sc), kwb.eq(kw * b_cur)]
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

        def load(job, *, ahead=False):
            """The job of the tile ``geo_*`` describes: in TILE (the command's first tile), or
            with ``ahead`` in the cycle the running tile ends, from the loop state after it."""
            _, k0, _, a_ptr, c_ptr, w_nt, w_k = nxt if ahead else state
            ends_k = k0 + geo_g == kw
            return [
                job.job_desc.width.eq(geo_w), job.job_desc.out_width.eq(geo_w),
                job.job_desc.height.eq(geo_h), job.job_desc.out_height.eq(geo_h),
                job.job_desc.groups.eq(geo_g), job.job_desc.blocks.eq(geo_b),
                job.job_desc.weight_words.eq(geo_ww),
                job.job_desc.acc_in.eq(k0 != 0), job.job_desc.acc_out.eq(~ends_k),
                job.job_keep.eq(ends_k),
                job.job_src.eq(a_ptr + k0), job.job_src_count.eq(geo_tn * geo_g),
                job.job_src_run.eq(geo_g), job.job_src_stride.eq(sa),
                job.job_dst.eq(c_ptr), job.job_dst_count.eq(geo_tn * geo_b),
                job.job_dst_run.eq(geo_b), job.job_dst_stride.eq(sc),
                # This K tile's weight beats, then its N tile's requantizers after all K tiles.
                job.job_wgt.eq(w_k), job.job_wgt_count.eq(geo_ww + geo_b),
                job.job_wgt_run.eq(geo_ww), job.job_wgt_stride.eq(w_nt + geo_kwb - w_k),
                job.job_fabric.eq(geo_tn * geo_ww), tn_cur.eq(geo_tn),
            ]

        def advance():
            return [s.eq(n) for s, n in zip(state, nxt)]

        return SimpleNamespace(load=load, advance=advance, more=more)
