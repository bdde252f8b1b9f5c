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
RUN -> ISSUE ... (a depthwise CONV's next groups and a GEMM's next tile: RUN -> ISSUE; after a
FENCE, CHECK -> FETCH). Overlap: while a job issues and runs, the program memory reads the next
command's word, and the checks read it from the job's first RUN cycle (``ccmd``; the running
command keeps the command register ``cmd`` and its copies, ``run_*``, of what its later tiles
and its units read of the checks): CALC's registers load in the second, CHECK's products in the
third, and the tile pipeline works out its first tile (:mod:`.tiling`), so by
:data:`.tiling.RIPE` RUN cycles the next command is checked. The command retiring from RUN then
loads it into the command register in that cycle, with its job's fields (and its first tile's)
if it passed its checks, and it issues in the next cycle (FETCH, DECODE, CALC, CHECK and TILE
hidden under the job; a MATMUL checked so may gather its B under the job too, ``mm_early``:
:func:`.matmul_checks.matmul_tiling`); FENCE, DONE or a command that failed a check goes to
CHECK, which ends, fences or faults as ever; after a depthwise CONV (whose jobs read the check
registers, so nothing is checked under them) or before one, to CALC; at the program memory's
end, to FETCH and its PC_RANGE fault. A GEMM's next tile is loaded in the cycle the running one
ends (from the loop state after it, which the tile pipeline has settled by then) and issues in
the next, with no TILE cycle of its own. A job still issues only once the previous one is done
(every result stored), so a command always reads what the one before it wrote; and every fault
stops at the faulting command's own pc. Clock speed: no path does more than one multiply, none a
multiply then a compare. CALC registers the factors of every count and the room left in each
memory, CHECK multiplies and compares the shapes into a register, the command's first TILE
or ISSUE (or the retirement before it) compares the ranges and reads the shapes' verdict (a
command that fails them under a running job goes on to CHECK, and a SHAPE or ADDRESS fault is
found in its first TILE or ISSUE after CHECK; in an ISSUE it abandons the job it starts: the
units are reset in the next cycle, before the job can store a word, so the compares do not
gate the job's start); a GEMM's next tile is worked out while the current
one runs, so TILE only copies, adds and multiplies once. All in cycles the processor spent
anyway: the cycle counts are those of a processor that did all of it in one cycle.

Aborts are decided a cycle ahead, so that the units' reset is a register (the accelerator's
``kill``, loaded from ``abort_next``) with no logic in front of it. The watchdog counts a job's
RUN cycles since its issue or its last ``progress`` (``watch``); in a RUN cycle without
progress, after which ``watch`` reaches the limit, and in which the job does not end,
``abort_next`` rises; the next cycle is the abort (``abort``, TIMEOUT): the job is abandoned
in it even if it ends in it, and the units are reset at its end (before, a job that ended in
the watchdog's last cycle won). The accelerator hands ``progress`` over a cycle late, as
``job_done`` (registers: the datapath's handshakes never reach the reset register), and counts
a job's ISSUE as progress, so the watchdog counts the datapath's quiet cycles a cycle behind:
it still allows ``limit`` of them, and a TIMEOUT comes a cycle after the ``limit``-th (before,
in it). The cycles of a job that ends are unchanged. An attention unit's bad parameter
(``job_fault``, SHAPE, not delayed) is abandoned the same way, in the cycle after the bad beat
(in which the accelerator takes no further beat and stores nothing), unless the job ends in the
bad beat's own cycle.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..conv.layouts import layer_layout, pool_layer_layout
from .attn_checks import attn_job_layout
from .checks import command_checks
from .config import AccelConfig
from .dw_jobs import depthwise_jobs
from .isa import Cause, Op, command_layout, elt_layout
from .lstm_checks import lstm_job_layout
from .matmul_checks import matmul_members, matmul_tiling
from .tiling import RIPE, gemm_tiling

__all__ = ["Processor", "JOB_CONV", "JOB_POOL", "JOB_LSTM", "JOB_ELT", "JOB_ATTN",
           "JOB_KIND_BITS"]

JOB_CONV, JOB_POOL, JOB_LSTM = 0, 1, 2
JOB_ELT = 3   # ADD, MUL or AVGPOOL on the element-wise unit (``job_elt``, ``job_avg``, ...)
JOB_ATTN = 4  # SOFTMAX, LAYERNORM or GELU on an attention unit (``job_attn``)
JOB_KIND_BITS = 3   # room for more kinds (5 .. 7)
STATES = ("IDLE", "FETCH", "DECODE", "CALC", "CHECK", "TILE", "ISSUE", "RUN")


class Processor(wiring.Component):
    """Command processor of an :class:`AccelConfig`.

    Members
    -------
    prog_addr : ``Out``, prog_data : ``In``   the program memory's read port (1-cycle latency;
                                              the processor registers the word, and asks for
                                              it in IDLE too: ``start_pc``)
    start, start_pc : ``In``                  begin a program (ignored while busy)
    job_* : ``Out``                           the job handed to the datapath on ``job_start``
    job_fab_pixels, job_fab_words : ``Out``   a conv job's fabric slots are their product
                                              (pixels x weight beats a pixel), which the
                                              accelerator multiplies after the job's start
                                              (its ``mac_slots`` counter)
    job_done, progress : ``In``               the job ended; a stream moved (both in the cycle
                                              before, and a job's ISSUE counts as progress)
    watch_last : ``In``                       the last count of cycles without progress before
                                              TIMEOUT: the limit less one (the host port keeps
                                              it so, and no adder is before the compare)
    busy, done, error, cause, pc : ``Out``    status
    retire, in_job : ``Out``                  a command retired; a job is in flight
    fence : ``Out``                           a FENCE retired (forget the held weights)
    abort : ``Out``                           a job is abandoned in this cycle (TIMEOUT, or
                                              SHAPE from an attention unit)
    abort_next : ``Out``                      ``abort`` will be high in the next cycle: the
                                              accelerator registers it as the engines' reset
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
            "job_keep": Out(1),
            "job_fab_pixels": Out(range(cfg.conv.max_width * cfg.conv.max_height + 1)),
            "job_fab_words": Out(range(max(cfg.conv.weight_depth,
                                           cfg.conv.max_groups * cfg.conv.max_blocks,
                                           cfg.conv.dw_words * cfg.conv.dw_groups) + 1)),
            "job_elt": Out(elt_layout(cfg)), "job_avg": Out(1),
            **({"job_mul": Out(1)} if cfg.elt_mul else {}),
            **matmul_members(cfg),
            "job_done": In(1), "progress": In(1), "watch_last": In(range(cfg.watchdog + 1)),
            "busy": Out(1), "done": Out(1), "error": Out(1), "cause": Out(8), "pc": Out(16),
            "retire": Out(1), "in_job": Out(1), "fence": Out(1), "abort": Out(1),
            "abort_next": Out(1),
            "cmd": Out(command_layout(cfg)),
            **({"job_lstm": Out(lstm_job_layout(cfg))} if cfg.lstm is not None else {}),
            **({"job_attn": Out(attn_job_layout(cfg)), "job_fault": In(1)}
               if cfg.attention is not None else {}),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        cmd = Signal(command_layout(cfg))   # the running command
        # The command the checks read: the running one from DECODE (or the retirement that
        # loads it) to its job's first RUN cycle, then the next word (read ahead), checked
        # under the job (``calc_ahead``) unless a depthwise CONV runs (its jobs read the check
        # registers).
        ccmd = Signal(command_layout(cfg), name="ccmd")
        pc = Signal(16)
        m.d.comb += [self.pc.eq(pc), self.cmd.eq(cmd)]
        watch = Signal(range(cfg.watchdog + 1))
        age = Signal(range(RIPE + 1))      # RUN cycles so far (saturating)
        done_seen = Signal()               # a GEMM tile finished before its successor was ripe
        fresh = Signal()                   # CHECK was the last state: the range checks decide
        expire = Signal()                  # the running job is abandoned in this cycle
        expire_cause = Signal(8)

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

        # The program memory's word goes through a register (``word``) before anything reads
        # it: its block RAM's clock-to-out (5.6 ns on ECP5) feeds a register, not the command
        # register's logic. So a word is asked for two cycles before it is read, by state and
        # pc alone. DECODE reads pc's (asked for in the cycle before FETCH: IDLE's
        # ``start_pc``, or a FENCE's CHECK, pc + 1). A command's first job reads the next
        # command's (pc + 1) in its first RUN cycle into ``ccmd``, for the checks (asked for
        # in the cycle before the ISSUE: CHECK, TILE or, pc + 2 then, the retirement that
        # hands over to a command checked ahead); its later jobs (GEMM tiles, depthwise
        # groups) keep it (``again``), and its retirement hands it from there straight to CALC
        # (no FETCH, DECODE) or, checked ahead, to its first TILE or ISSUE. The cycles are a
        # 1-cycle read's.
        word = Signal(command_layout(cfg), name="prog_word")
        m.d.sync += word.eq(self.prog_data)
        ask = Mux(is_("IDLE"), self.start_pc,
                  Mux(is_("FETCH"), pc, Mux(is_("RUN"), pc + 2, pc + 1)))
        m.d.comb += self.prog_addr.eq(ask[: len(self.prog_addr)])
        again = Signal()   # the job issued next is a later job of the running command
        nxt_word = Signal(command_layout(cfg), name="nxt_word")   # ccmd, or pc + 1's word
        m.d.comb += nxt_word.eq(Mux(is_("RUN") & (age == 0) & ~again, word, ccmd))

        op = cmd.op
        cop = ccmd.op
        dw_conv = (op == Op.CONV) & cmd.desc.depthwise   # the running command's
        calc_ahead = is_("RUN") & (age == 1) & ~dw_conv
        with m.If(is_("RUN") & (age == 0)):
            m.d.sync += [ccmd.eq(nxt_word), again.eq(0)]   # the word of pc + 1
        m.d.sync += fresh.eq(is_("CHECK"))
        calc = is_("CALC") | calc_ahead
        chk = command_checks(m, ccmd, cfg, calc=calc)
        mm = matmul_tiling(self, m, ccmd, chk, word=word, decode=is_("DECODE"),   # MATMUL
                           calc=is_("CALC"), check=is_("CHECK"), calc_regs=calc,
                           running=cmd)
        d = mm.desc   # the checked command's descriptor
        # The shape checks' compares (of CALC's registers and the command's fields) go into a
        # register, read in the cycle after CHECK with the range checks, or at RIPE by a
        # command checked ahead: the compares then feed one register, not every job field.
        shape_ok = Signal(name="shape_ok")
        m.d.sync += shape_ok.eq(chk.shape_ok)
        # The next command's checks and first tile are done by the job's RIPE-th RUN cycle
        # (ccmd at 0, CALC's registers at 1, CHECK's products and the tile's shape at 2, its
        # products at 3): a job command that passes them starts at its first ISSUE as the
        # running command retires (FETCH, DECODE, CALC, CHECK and TILE hidden); DONE, FENCE or
        # a command that fails them goes to CHECK (which ends, fences or faults as ever); a
        # depthwise CONV, unchecked, to CALC.
        # (Its job's RIPE-th cycle or later, a register: in RUN the running command and, from
        # the job's second cycle, the checked one hold, so it is worked out a cycle ahead.)
        ripe = Signal(name="ripe")
        m.d.sync += ripe.eq(is_("RUN") & (age >= RIPE - 1) & ~dw_conv
                            & ~((cop == Op.CONV) & ccmd.desc.depthwise))
        ready = is_("RUN") & ripe
        # The verdict is a register too: every input of it holds from the job's third RUN
        # cycle on (``shape_ok`` and CHECK's products from then), so in the RIPE-th it is that
        # of the cycle before, and the range compares feed one register, not every job field.
        # As ``has_next`` (``pc + 1`` inside the program memory): ``pc`` holds through a job.
        passed, has_next = Signal(name="passed"), Signal(name="has_next")
        m.d.sync += [passed.eq(chk.legal & shape_ok & ~chk.range_bad),
                     has_next.eq(pc + 1 < cfg.prog_depth)]
        fast = ready & passed
        run_lstm = run_attn = None
        if cfg.lstm is not None:
            run_lstm = Signal.like(chk.lstm_job, name="run_lstm")
            m.d.comb += self.job_lstm.eq(run_lstm)
        if cfg.attention is not None:
            run_attn = Signal.like(chk.attn_job, name="run_attn")
            m.d.comb += self.job_attn.eq(run_attn)
        dw_left, dw_job = depthwise_jobs(self, m, cfg, cmd, chk, calc=is_("CALC"))
        # What a job's end chooses (a next tile, next groups), registers: the running command
        # and ``dw_left`` hold from the ISSUE before a RUN, so in RUN these are theirs.
        run_tiled, run_dw, dw_more = (Signal(name=n) for n in ("run_tiled", "run_dw", "dw_more"))
        m.d.sync += [run_tiled.eq(mm.run.tiled), run_dw.eq(dw_conv), dw_more.eq(dw_left != 0)]
        accepting = Signal()   # the checked command's job fields load (CHECK, or ``fast``)
        til = gemm_tiling(self, m, ccmd, cmd, chk, check=accepting, run=is_("RUN"),
                          tiled=run_tiled)
        mm.early(may=fast & ~til.own & ~self.retire, issue=is_("ISSUE"), idle=is_("IDLE"))

        def accept():
            """The checked command's job fields, its tiling's start and what its jobs read of
            the checks (``run_*``): in CHECK, or as the command before it retires."""
            m.d.comb += accepting.eq(1)
            m.d.sync += [self.job_src.eq(ccmd.src), self.job_src_count.eq(chk.in_words),
                         self.job_dst.eq(ccmd.dst), self.job_dst_count.eq(chk.out_words),
                         self.job_wgt.eq(ccmd.wgt), self.job_wgt_count.eq(chk.w_words),
                         self.job_desc.eq(d), self.job_pool.eq(ccmd.pool),
                         self.job_desc.acc_in.eq(0), self.job_desc.acc_out.eq(0),
                         self.job_desc.reuse.eq(0), self.job_keep.eq(1),
                         self.job_pool.enable.eq(1),
                         self.job_src_run.eq(1), self.job_src_stride.eq(1),
                         self.job_dst_run.eq(1), self.job_dst_stride.eq(1),
                         self.job_wgt_run.eq(1), self.job_wgt_stride.eq(1),
                         self.job_src_group.eq(0), self.job_dst_group.eq(0),
                         self.job_kind.eq(Mux(chk.attn, JOB_ATTN, Mux(chk.elt, JOB_ELT,
                                              Mux(cop == Op.MAXPOOL, JOB_POOL,
                                                  Mux(cop == Op.LSTM, JOB_LSTM, JOB_CONV))))),
                         self.job_elt.eq(ccmd.elt), self.job_avg.eq(cop == Op.AVGPOOL),
                         *([self.job_mul.eq(cop == Op.MUL)] if cfg.elt_mul else []),
                         self.job_fab_pixels.eq(chk.pixels_out),
                         self.job_fab_words.eq(d.weight_words),
                         *mm.accept()]
            if run_lstm is not None:
                m.d.sync += run_lstm.eq(chk.lstm_job)
            if run_attn is not None:
                m.d.sync += run_attn.eq(chk.attn_job)

        with m.If(is_("IDLE")):
            with m.If(self.start):
                m.d.sync += [pc.eq(self.start_pc), self.busy.eq(1), self.done.eq(0), again.eq(0),
                             self.error.eq(0), self.cause.eq(Cause.NONE)]
                goto("FETCH")
        with m.Elif(is_("FETCH")):
            with m.If(pc >= cfg.prog_depth):
                fault(Cause.PC_RANGE)
            with m.Else():
                goto("DECODE")
        with m.Elif(is_("DECODE")):
            m.d.sync += [cmd.eq(word), ccmd.eq(word)]
            goto("CALC")
        with m.Elif(is_("CALC")):
            goto("CHECK")  # the registers of :func:`.checks.command_checks` load in this cycle
        with m.Elif(is_("CHECK")):
            accept()
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
            with m.Elif(chk.mm.tiled):   # GEMM or MATMUL
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
            gemm = run_tiled
            ending = (self.job_done | done_seen) & (~gemm | (age == RIPE))
            with m.If(expire):   # decided last cycle: it wins over a job ending now
                m.d.comb += self.abort.eq(1)
                fault(expire_cause)
            with m.Elif(ending):
                with m.If(gemm & til.more):  # the next tile (K, then M, then N), issued next
                    m.d.sync += [*til.advance(), *til.load(self, ahead=True), again.eq(1)]
                    goto("ISSUE")
                with m.Elif(run_dw & dw_more):  # the next channel groups
                    m.d.sync += [self.job_src.eq(self.job_src + self.job_desc.blocks),
                                 self.job_dst.eq(self.job_dst + self.job_desc.blocks),
                                 self.job_wgt.eq(self.job_wgt + self.job_wgt_count),
                                 *dw_job(dw_left), again.eq(1)]
                    goto("ISSUE")
                with m.Else():
                    m.d.sync += pc.eq(pc + 1)
                    m.d.comb += self.retire.eq(1)
                    with m.If(has_next):   # its word is in
                        m.d.sync += [cmd.eq(nxt_word), ccmd.eq(nxt_word)]
                        with m.If(fast):   # checked ahead: its first ISSUE is next
                            accept()
                            with m.If(chk.mm.tiled):
                                m.d.sync += til.load(self, first=True)
                            goto("ISSUE")
                        with m.Elif(ready):
                            goto("CHECK")
                        with m.Else():
                            goto("CALC")
                    with m.Else():
                        goto("FETCH")   # a PC_RANGE fault
            with m.Elif(self.job_done):
                m.d.sync += done_seen.eq(1)
            # The abort is decided a cycle ahead (``abort_next``, registered as ``expire``
            # here and as the units' reset in the accelerator): this cycle is quiet and the
            # next one's count reaches the limit, or a unit's parameters failed their check.
            stop, cause = ~self.progress & (watch >= self.watch_last), Cause.TIMEOUT
            if cfg.attention is not None:   # a unit's parameters failed their check
                stop, cause = stop | self.job_fault, Mux(self.job_fault, Cause.SHAPE, cause)
            with m.If(~expire & ~ending & stop):
                m.d.comb += self.abort_next.eq(1)
                m.d.sync += expire_cause.eq(cause)
        # The command's first TILE or ISSUE after CHECK reads the shape verdict, then compares
        # the ranges (``fresh``). Its job issues either way, and a fault abandons it: the units'
        # reset (``abort_next``) is in the next cycle, before the job can store a word. So the
        # compares feed the state, the status and the reset register, not the job's start.
        bad = (is_("TILE") | is_("ISSUE")) & fresh & (~shape_ok | chk.range_bad)
        with m.If(bad):
            fault(Mux(shape_ok, Cause.ADDRESS, Cause.SHAPE))
            m.d.comb += self.abort_next.eq(is_("ISSUE"))
        m.d.sync += expire.eq(self.abort_next)
        return m
