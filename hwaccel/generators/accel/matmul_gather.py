"""MATMUL's weight stream: B gathered from the activation scratchpad into the conv engine's weight
beats, then the requantizer beats made from the command's fields.

A MATMUL tile job (:func:`.attn_isa.matmul_gemm`, tiled as a GEMM by the processor) needs the
beats the weight scratchpad would hold for the GEMM ``A @ B`` (:meth:`.driver.ProgramBuilder.
gemm`'s packing, read as :func:`.perf.gemm_jobs` reads it): for each of the tile's ``blocks``
blocks (N, ``block`` columns each) its ``groups`` words of K (``lanes`` rows each), one
``lanes x block`` int8 beat each, byte ``l x block + j`` = ``B[k = lanes x (k0 + g) + l,
col = block x (n0 + b) + j]``; then one requantizer beat per block (:func:`..conv.layouts.
requant_layout`): bias 0 and the command's ``mult`` and ``shift`` for columns below N,
``{0, 0, 1}`` past it (their results are 0, as C's lanes past N must be).

Since ``lanes == block``, a beat is a ``lanes x lanes`` byte matrix and one activation word is
one of its rows (B, row ``k``: word ``src2 + k x sb + n0 + b``) or, transposed, one of its
columns (B stored N x K, row ``col``: word ``src2 + col x sb + k0 + g``). The gatherer reads
``lanes`` words a beat, one a cycle (a read-port interface: ``addr`` out, ``rdata`` in one
cycle later), zeroes the rows past K (B) or columns past N (B transposed) without reading them
and the lanes past N (B) or K (B transposed) of the words it reads, and hands the beat to the
engine the cycle after its last word arrives. The requantizer beats follow, one a cycle.

Timing: ``start`` at cycle 0, reads at cycles ``1 .. R`` (``R = groups x blocks x lanes``),
beat ``i`` on ``source`` from cycle ``(i + 1) x lanes + 2``, the requantizer beats from
``R + 3``, one a cycle, when ``source`` is always ready. ``load`` is high on each read and each
requantizer beat: ``R + blocks`` cycles a job (the ``load_cycles`` the ISA defines). A word's
read issues only when its beat will have room (``source`` may stall it); ``lanes`` must be at
least 2 (a one-word beat would wait a cycle for the previous one to leave).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..conv.layouts import requant_layout
from .config import AccelConfig
from .matmul_checks import matmul_job_layout

__all__ = ["MatmulGather"]


class MatmulGather(wiring.Component):
    """B's weight beats and the requantizer beats of one MATMUL tile job.

    Members
    -------
    start : ``In(1)``            a pulse: latch the tile and begin (while idle)
    job : ``In``                 the command's fields and the tile's ``k0`` (first word of K)
                                 and ``n0`` (first block of N): :func:`.matmul_checks.
                                 matmul_job_layout`; steady from ``start`` to the last beat
    groups, blocks : ``In``      the tile's K words and N blocks
    addr : ``Out``, rdata : ``In``  the activation scratchpad's read port (1-cycle latency)
    source : ``Out(stream)``     weight beats, then requantizer beats (``wgt_bits`` wide)
    last : ``Out(1)``            the beat on ``source`` is the job's last
    load : ``Out(1)``            a read issued or a requantizer beat was made (a gather cycle)
    busy : ``Out(1)``            beats remain to be read or delivered
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        if config.attention is None:
            raise ValueError(f"{config.slug} has no attention units, so no MATMUL command")
        if config.lanes < 2:
            raise ValueError(f"{config.slug}: the gatherer needs lanes >= 2 (a beat of one word "
                             f"would take two cycles, not the one the cycle model defines), not "
                             f"{config.lanes}")
        self.config = cfg = config
        conv = cfg.conv
        super().__init__({
            "start": In(1), "job": In(matmul_job_layout(cfg)),
            "groups": In(range(conv.max_groups + 1)), "blocks": In(range(conv.max_blocks + 1)),
            "addr": Out(range(cfg.act_depth)), "rdata": In(cfg.act_bits),
            "source": Out(stream.Signature(cfg.wgt_bits)), "last": Out(1), "load": Out(1),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        L, ad = cfg.lanes, cfg.act_depth
        job = self.job
        tr = job.transpose
        # Word addresses and indices may run past the scratchpad for rows that are masked.
        wide = range(2 * ad * L * L + (1 << 18) + 1)
        # Per job: the first address of a block and of a beat, and their steps; the row index
        # of the word being read (K rows of B, or N rows of B transposed) and its limit; the
        # valid lanes of the words of a beat (``p``: N or K left).
        a_blk, a_beat, a = Signal(wide), Signal(wide), Signal(wide)
        r_blk, r_beat, r = Signal(wide), Signal(wide), Signal(wide)
        p_blk, p = Signal(wide), Signal(wide)
        lim = Signal(wide)
        step_beat, step_blk = Signal(wide), Signal(wide)
        i = Signal(range(L))                               # word of the beat
        gi = Signal(range(cfg.conv.max_groups))            # beat of the block
        bi = Signal(range(cfg.conv.max_blocks))            # block of the tile
        reading = Signal()
        rq_left = Signal(range(cfg.conv.max_blocks + 1))
        rq_cols = Signal(wide)                             # N left at the requantizer beat
        out, out_valid, out_last = Signal(cfg.wgt_bits), Signal(), Signal()
        buf = [Signal(8 * L, name=f"buf{w}") for w in range(L - 1)]
        inflight, in_slot = Signal(), Signal(range(L))
        in_ok, in_p, in_final = Signal(), Signal(wide), Signal()

        taken = out_valid & self.source.ready
        room = ~out_valid | taken                          # ``out`` is free at the next edge
        row_ok = r < lim
        last_word = i == L - 1
        issue = reading & (~last_word | (room & ~(inflight & (in_slot == L - 1))))
        m.d.comb += [self.addr.eq(Mux(row_ok, a, 0)),
                     self.source.valid.eq(out_valid), self.source.payload.eq(out),
                     self.last.eq(out_valid & out_last),
                     self.busy.eq(reading | inflight | out_valid | (rq_left != 0))]

        with m.If(self.start):
            nb, kb = job.n0 * L, job.k0 * L
            first = job.src2 + Mux(tr, nb * job.sb + job.k0, kb * job.sb + job.n0)
            m.d.sync += [
                a_blk.eq(first), a_beat.eq(first), a.eq(first),
                step_beat.eq(Mux(tr, 1, job.sb * L)), step_blk.eq(Mux(tr, job.sb * L, 1)),
                r_blk.eq(Mux(tr, nb, kb)), r_beat.eq(Mux(tr, nb, kb)), r.eq(Mux(tr, nb, kb)),
                lim.eq(Mux(tr, job.n, job.k)),
                p_blk.eq(Mux(tr, job.k - kb, job.n - nb)), p.eq(Mux(tr, job.k - kb, job.n - nb)),
                rq_cols.eq(job.n - nb), rq_left.eq(self.blocks),
                i.eq(0), gi.eq(0), bi.eq(0), reading.eq(1), out_valid.eq(0)]

        # --- reads: one word a cycle, beat by beat (blocks outer, K words inner) ---------------
        m.d.sync += inflight.eq(issue)
        with m.If(issue):
            m.d.sync += [in_slot.eq(i), in_ok.eq(row_ok), in_p.eq(p),
                         in_final.eq(last_word & (gi == self.groups - 1)
                                     & (bi == self.blocks - 1)),
                         i.eq(i + 1), a.eq(a + self.job.sb), r.eq(r + 1)]
            with m.If(last_word):
                m.d.sync += i.eq(0)
                with m.If(gi == self.groups - 1):          # the next block
                    m.d.sync += [gi.eq(0), bi.eq(bi + 1),
                                 a_blk.eq(a_blk + step_blk), a_beat.eq(a_blk + step_blk),
                                 a.eq(a_blk + step_blk),
                                 r_blk.eq(Mux(tr, r_blk + L, r_blk)),
                                 r_beat.eq(Mux(tr, r_blk + L, r_blk)),
                                 r.eq(Mux(tr, r_blk + L, r_blk)),
                                 p_blk.eq(Mux(tr, p_blk, p_blk - L)),
                                 p.eq(Mux(tr, p_blk, p_blk - L))]
                    with m.If(bi == self.blocks - 1):
                        m.d.sync += reading.eq(0)
                with m.Else():                             # the next K word of the block
                    m.d.sync += [gi.eq(gi + 1), a_beat.eq(a_beat + step_beat),
                                 a.eq(a_beat + step_beat),
                                 r_beat.eq(Mux(tr, r_beat, r_beat + L)),
                                 r.eq(Mux(tr, r_beat, r_beat + L)),
                                 p.eq(Mux(tr, p - L, p))]

        # --- words arrive: masked into the beat; the last one completes it --------------------
        word = Signal(8 * L)
        m.d.comb += word.eq(Cat(*[Mux(in_ok & (j < in_p), self.rdata[8 * j:8 * j + 8], 0)
                                  for j in range(L)]))
        with m.If(taken):
            m.d.sync += out_valid.eq(0)
        with m.If(inflight):
            for w in range(L - 1):
                with m.If(in_slot == w):
                    m.d.sync += buf[w].eq(word)
            with m.If(in_slot == L - 1):
                rows = [*buf, word]
                if L == 1:
                    beat = word
                else:
                    # Transposed: word ``w`` is column ``w`` of the beat (byte ``l x L + w``).
                    cols = Cat(*[rows[w][8 * l_:8 * l_ + 8] for l_ in range(L) for w in range(L)])
                    beat = Mux(tr, cols, Cat(*rows))
                m.d.sync += [out.eq(beat), out_valid.eq(1), out_last.eq(0)]

        # --- requantizer beats, once the last weight beat is out --------------------------------
        rq = Signal(requant_layout(cfg.conv))
        for j in range(cfg.conv.block):
            on = Const(j, range(cfg.conv.block + 1)) < rq_cols
            m.d.comb += [rq[j].bias.eq(0), rq[j].multiplier.eq(Mux(on, job.mult, 0)),
                         rq[j].shift.eq(Mux(on, job.shift, 1))]
        weights_out = Signal()                 # the last weight beat has reached ``out``
        with m.If(self.start):
            m.d.sync += weights_out.eq(0)
        with m.Elif(inflight & in_final):
            m.d.sync += weights_out.eq(1)
        go_rq = weights_out & ~inflight & (rq_left != 0) & room
        with m.If(go_rq):
            m.d.sync += [out.eq(rq.as_value()), out_valid.eq(1), out_last.eq(rq_left == 1),
                         rq_left.eq(rq_left - 1), rq_cols.eq(Mux(rq_cols > L, rq_cols - L, 0))]
        m.d.comb += self.load.eq(issue | go_rq)
        return m
