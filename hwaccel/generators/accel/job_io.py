"""The accelerator's job I/O: the conv engine's and max-pool's descriptors, and for the LSTM cell
and MATMUL's gatherer how their words reach the datapath of :mod:`.accelerator` (which calls
these while it elaborates)."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Mux, ResetInserter, Signal, unsigned
from amaranth.lib import memory

from ..conv.dw_beats import group_words
from .isa import Op
from .lstm_checks import lstm_words
from .processor import JOB_CONV, JOB_POOL

__all__ = ["engine_layers", "lstm_io", "lstm_weights", "matmul_io", "weight_split"]


def engine_layers(m, proc, conv, pool, reuse) -> tuple:
    """The conv engine's and max-pool's ``layer`` streams: registered copies of the job's
    descriptors, placed by the engines' start logic (the job fields load before a job's ISSUE
    and hold; an engine takes them after it), and their valid (the accelerator's ``is_conv &
    pending``: from the job's start to the handshake), in registers of their own, not through
    its job kind. Returns the valid registers (a reset clears them)."""
    conv_desc = Signal.like(proc.job_desc, name="conv_desc")
    pool_desc = Signal.like(proc.job_pool, name="pool_desc")
    conv_wait, pool_wait = Signal(name="conv_wait"), Signal(name="pool_wait")
    m.d.sync += [conv_desc.eq(proc.job_desc), pool_desc.eq(proc.job_pool)]
    with m.If(proc.job_start):
        m.d.sync += [conv_wait.eq(proc.job_kind == JOB_CONV),
                     pool_wait.eq(proc.job_kind == JOB_POOL)]
    for wait, layer in ((conv_wait, conv.layer), (pool_wait, pool.layer)):
        with m.If(layer.valid & layer.ready):
            m.d.sync += wait.eq(0)
    pool_in = [pool.layer.payload.eq(pool_desc)]
    if len(pool.layer.payload.as_value()) != len(pool_desc.as_value()):
        # the MAXPOOL unit counts words, fewer than the fused stage's blocks (:mod:`.beats`)
        pool_in = [getattr(pool.layer.payload, f).eq(getattr(pool_desc, f))
                   for f in ("width", "height", "blocks", "enable")]
    m.d.comb += [conv.layer.payload.eq(conv_desc), conv.layer.payload.reuse.eq(reuse),
                 *pool_in, conv.layer.valid.eq(conv_wait), pool.layer.valid.eq(pool_wait)]
    return conv_wait, pool_wait


def weight_split(m, cfg, proc, to_weights, popped, pop, dw_pop, start, kill) -> None:
    """Keep ``to_weights`` (a register) telling whether the weight stream's beat is a conv
    job's weight word, else a requantizer: the job's first ``weight_words`` beats, a depthwise
    job's first ``dw_words`` of each group's ``dw_words + dw_beats`` (counted by ``dw_sub``;
    with ``dw_trim`` its kernel's ``dw_issue`` words).

    ``popped`` counts the job's beats (``pop``: one taken; 0 at ``start``, a taken beat
    winning, and at ``kill``), ``dw_sub`` a depthwise group's (``dw_pop``; 0 at ``start``,
    winning). The flag's next value is picked from compares of registers with the job's
    fields (``popped + 1``, ``popped`` and 0 against ``weight_words``), the beat taken
    selecting last: as a compare of ``popped`` in its own cycle, the job field's way across
    the chip into the engine's weight flags (``w_ok``, ``w_count``, the weight RAM's address)
    was the placed critical path at ef1bf89 (14.4 ns, 11.6 of it routing). The job fields load
    before a job's ISSUE and hold through it; the flag follows them from the cycle after its
    ISSUE, before its first beat can be taken."""
    jd = proc.job_desc
    dwc, ww = group_words(cfg.conv, jd.kernel_h, jd.kernel_w), jd.weight_words
    top = dwc + cfg.conv.dw_beats - 1     # a group's last beat
    dw_sub = Signal(range(cfg.conv.dw_words + cfg.conv.dw_beats), name="dw_sub")
    with m.If(dw_pop):
        m.d.sync += dw_sub.eq(Mux(dw_sub == top, 0, dw_sub + 1))
    with m.If(start):
        m.d.sync += dw_sub.eq(0)
    dense = Mux(pop & ~kill, popped + 1 < ww, Mux(start | kill, ww != 0, popped < ww))
    if cfg.conv.dw_beats == 1:
        grouped = Mux(start, 1, Mux(dw_pop, (dw_sub == dwc) | (dw_sub != dwc - 1),
                                    dw_sub != dwc))
    else:   # (the next beat a weight word: the group's first, or one before its dwc-th)
        grouped = Mux(start, 1, Mux(dw_pop, (dw_sub == top) | (dw_sub < dwc - 1),
                                    dw_sub < dwc))
    m.d.sync += to_weights.eq(Mux(proc.job_desc.depthwise, grouped, dense))


def lstm_weights(m, cfg, lstm, proc, wgt_dma, popped, is_lstm, w_ready):
    """The cell's weight beats, then its 4H parameter beats, from the weight DMA's one in-order
    stream (``popped`` beats taken so far); the stream's ready, the cell's for an LSTM job."""
    w_valid = wgt_dma.source.valid
    lw_to_weights = popped < proc.job_lstm.beats
    m.d.comb += [
        lstm.size.eq(proc.job_lstm.size),
        lstm.weights.payload.eq(wgt_dma.source.payload[: cfg.lstm.lanes * 8]),
        lstm.params.payload.eq(wgt_dma.source.payload[: len(lstm.params.payload.as_value())]),
        lstm.weights.valid.eq(w_valid & lw_to_weights & is_lstm),
        lstm.params.valid.eq(w_valid & ~lw_to_weights & is_lstm),
    ]
    return Mux(is_lstm, Mux(lw_to_weights, lstm.weights.ready, lstm.params.ready), w_ready)


def lstm_io(m, cfg, lstm, act_dma, is_lstm, proc, soft, res_valid, res_data, a_ready):
    """Gather ``gx`` scratchpad words into each x beat and scatter each h beat into ``gh``
    words (the job's counts, at most those of the cell's largest sizes). One word per
    cycle each way; the cell needs ``slots * (I + H)`` cycles a step, so these never limit
    it."""
    gx_most, gh_most, _ = lstm_words(cfg)
    gx, gh = proc.job_lstm.gx, proc.job_lstm.gh
    w = cfg.act_bits
    xbuf, x_full, x_last = Signal(gx_most * w), Signal(), Signal()
    x_i = Signal(range(max(gx_most, 2)))
    taken = Signal(range(cfg.act_depth + 1))   # x words gathered in this job
    take = act_dma.source.valid & is_lstm & ~x_full
    m.d.comb += act_dma.source.ready.eq(Mux(is_lstm, ~x_full, a_ready))
    with m.If(proc.job_start):
        m.d.sync += [taken.eq(0), x_i.eq(0)]
    with m.If(take):
        # Word x_i of the beat; the job's last word ends the sequence.
        for g in range(gx_most):
            with m.If(x_i == g):
                m.d.sync += xbuf[g * w:(g + 1) * w].eq(act_dma.source.payload)
        m.d.sync += [x_i.eq(x_i + 1), taken.eq(taken + 1)]
        with m.If(x_i == gx - 1):
            m.d.sync += [x_full.eq(1), x_i.eq(0),
                         x_last.eq(taken + 1 == proc.job_src_count)]
    m.d.comb += [lstm.x.valid.eq(x_full), lstm.x.payload.data.eq(xbuf[: cfg.lstm.input_size
                                                                      * 8]),
                 lstm.x.payload.last.eq(x_last)]
    with m.If(lstm.x.valid & lstm.x.ready):
        m.d.sync += x_full.eq(0)
    hbuf, h_full = Signal(gh_most * w), Signal()
    h_i = Signal(range(max(gh_most, 2)))
    m.d.comb += lstm.h.ready.eq(is_lstm & ~h_full)
    with m.If(lstm.h.valid & lstm.h.ready):
        m.d.sync += [hbuf.eq(lstm.h.payload.data), h_full.eq(1), h_i.eq(0)]
    with m.If(h_full):  # the write port takes one word per cycle
        m.d.sync += [hbuf.eq(hbuf >> w), h_i.eq(h_i + 1)]
        with m.If(h_i == gh - 1):
            m.d.sync += h_full.eq(0)
    with m.If(soft):
        m.d.sync += [x_full.eq(0), h_full.eq(0), x_i.eq(0), h_i.eq(0)]
    valid = Mux(is_lstm, h_full, res_valid)
    data_ = Mux(is_lstm, hbuf[:w], res_data)
    return valid, data_, ~x_full & ~h_full



def matmul_io(m, cfg, proc, conv, act_dma, wgt_dma, act_rd, kill, busy, dp):
    """A MATMUL tile job (a conv job with ``job_mm.on``): the gatherer
    (:mod:`.matmul_gather`) reads B two words a cycle, on the activation scratchpad's read port
    ``act_rd`` and on the read port of a copy of the scratchpad that only it reads (written with
    every write of ``dp.act_wr``: a second read port of a block RAM costs the same copy), and
    feeds the engine's weight and requantizer streams in place of the weight DMA (which reads
    nothing). A MATMUL's first tile job starts its gather early, as the command's word loads
    (``proc.mm_pre``, :data:`.matmul_checks.GATHER_LEAD` cycles before its ISSUE, one fewer
    after a job, none when it was checked under the job before it: no job runs then, so the
    port is free), later
    tiles' at their ISSUE; the beats wait for the job. Or under the job before it
    (``proc.mm_early``: its first tile one beat, B outside that job's writes), reading only the
    copy's port (``solo``), which a fused ADD's residual reads would hold (``proc.mm_free``):
    its beats wait for their own job (``ahead``: not the running one's) and its last read
    leaves A's rows to that job's ISSUE. Its
    last read starts the activation DMA (A's rows), which reads from the next cycle, so the
    shared port is never wanted twice in a cycle: at the job's ISSUE when B's reads ended
    before it (the DMA takes the job's fields then). A fault (SHAPE in CHECK, ADDRESS in
    TILE) resets the gatherer. The engine's held weights are forgotten (the next CONV/GEMM
    loads its own). ``load_cycles`` counts the job's weight and requantizer beats, as for a
    GEMM's (:func:`.attn_isa.matmul_cycles`). The statements below override the datapath's
    defaults for such a job only."""
    from .matmul_gather import MatmulGather

    stop = kill | proc.error
    gather = m.submodules.gather = ResetInserter(stop)(MatmulGather(cfg))
    mirror = m.submodules.act_mirror = memory.Memory(shape=unsigned(cfg.act_bits),
                                                     depth=cfg.act_depth, init=[])
    act_rd2, mirror_wr = mirror.read_port(), mirror.write_port()
    m.d.comb += [mirror_wr.addr.eq(dp.act_wr.addr), mirror_wr.data.eq(dp.act_wr.data),
                 mirror_wr.en.eq(dp.act_wr.en)]
    now = proc.job_start & (proc.job_kind == JOB_CONV) & proc.job_mm.on
    mine = Signal()                          # the running job is a MATMUL tile's
    early = Signal()                         # the next MATMUL job's gather started early
    a_due = Signal()                         # and read its last words before the job's ISSUE
    ahead = Signal()                         # under the job before it (``mm_early``)
    with m.If(proc.job_start):
        m.d.sync += [mine.eq(now), early.eq(0), a_due.eq(0), ahead.eq(0)]
    with m.If((proc.mm_pre | proc.mm_early) & ~proc.job_start):   # else it starts with it
        m.d.sync += early.eq(1)
    with m.If(proc.mm_early):
        m.d.sync += ahead.eq(1)
    on = mine & dp.active & ~ahead           # the gatherer's beats are the running job's
    with m.If(gather.a_go & ~on & ~proc.job_start):
        m.d.sync += a_due.eq(1)
    with m.If(stop):
        m.d.sync += [mine.eq(0), early.eq(0), a_due.eq(0), ahead.eq(0)]
    # Under another job the gatherer may read only the copy's port: not while a fused ADD's
    # residual reads hold it (from its GEMM's job start to the next job's).
    add = (proc.cmd.op == Op.GEMM) & proc.cmd.fuse.add
    m.d.comb += [gather.start.eq(proc.mm_pre | proc.mm_early | (now & ~early)),
                 gather.fresh.eq(proc.mm_pre | proc.mm_early), gather.solo.eq(proc.mm_early),
                 proc.mm_free.eq(~gather.busy & ~add),
                 gather.job.eq(proc.job_mm),
                 gather.groups.eq(proc.mm_groups), gather.blocks.eq(proc.mm_blocks),
                 gather.rdata.eq(act_rd.data), gather.rdata2.eq(act_rd2.data),
                 gather.source.ready.eq(on & conv.weights.ready),
                 gather.rq.ready.eq(on & conv.requant.ready)]
    with m.If(now):
        m.d.comb += [act_dma.start.eq(a_due | gather.a_go), wgt_dma.count.eq(0)]
        m.d.sync += [dp.held.eq(0), dp.reuse.eq(0)]
    with m.If(on & gather.a_go):   # B's last read: A's rows from the next cycle on
        m.d.comb += act_dma.start.eq(1)
    with m.If(gather.reading):
        m.d.comb += act_rd.addr.eq(gather.addr)
    with m.If(on):
        m.d.comb += [conv.weights.payload.eq(gather.source.payload),
                     conv.requant.payload.eq(gather.rq.payload),
                     conv.weights.valid.eq(gather.source.valid),
                     conv.requant.valid.eq(gather.rq.valid)]
        with m.If(gather.moved):
            m.d.comb += proc.progress.eq(1)
        with m.If(~(proc.start & ~busy)):
            beats = (gather.source.valid & gather.source.ready) + (gather.rq.valid
                                                                   & gather.rq.ready)
            m.d.sync += dp.counters.added["load_cycles"].eq(beats)
    # The copy's port: the gatherer's while it reads, else a fused ADD's (its residuals: its
    # select holds from its GEMM's job start to the next job's, past a MATMUL's first reads).
    other = SimpleNamespace(addr=Signal.like(act_rd2.addr), data=act_rd2.data)
    m.d.comb += act_rd2.addr.eq(Mux(gather.reading2, gather.addr2, other.addr))
    return other
