"""MATMUL's weight and requantizer streams: B gathered from the activation scratchpad into the
conv engine's weight beats, two words a cycle, and the requantizer beats made from the
command's fields.

A MATMUL tile job (:func:`.attn_isa.matmul_gemm`, tiled as a GEMM by the processor) needs the
beats the weight scratchpad would hold for the GEMM ``A @ B`` (:meth:`.driver.ProgramBuilder.
gemm`'s packing, read as :func:`.perf.gemm_jobs` reads it): for each of the tile's ``blocks``
blocks (N, ``block`` columns each) its ``groups`` words of K (``lanes`` rows each), one
``lanes x block`` int8 beat each, byte ``l x block + j`` = ``B[k = lanes x (k0 + g) + l,
col = block x (n0 + b) + j]``; and one requantizer beat per block (:func:`..conv.layouts.
requant_layout`): bias 0 and the command's ``mult`` and ``shift`` for columns below N,
``{0, 0, 1}`` past it (their results are 0, as C's lanes past N must be).

Since ``lanes == block``, a beat is a ``lanes x lanes`` byte matrix and one activation word is
one of its rows (B, row ``k``: word ``src2 + k x sb + n0 + b``) or, transposed, one of its
columns (B stored N x K, row ``col``: word ``src2 + col x sb + k0 + g``). The gatherer reads
two words of a beat a cycle, words ``2j`` and ``2j + 1`` on two read ports of the scratchpad
(``addr``/``rdata`` and ``addr2``/``rdata2``, 1-cycle latency each): a beat takes ``h =
ceil(lanes / 2)`` read cycles. It zeroes the rows past K (B) or columns past N (B transposed)
without reading them and the lanes past N (B) or K (B transposed) of the words it reads, and
hands the beat to the engine's weight stream the cycle after its last words arrive. The
requantizer beats are a stream of their own (``rq``, the engine takes them beside the weights):
one a cycle from the cycle after ``start``.

A ``solo`` job (a command's first tile gathered under the job before it, whose DMA holds the
first port) reads on the second port alone: each pair of words in two cycles, the first into a
half-pair register (``lo``), so a beat takes ``2h`` read cycles and the same words.

The first port is the activation scratchpad's only other reader: ``reading`` says the gatherer
holds it, and ``a_go`` pulses in the cycle of the job's last read, so A's stream may read from
the next cycle on.

Timing: the per-job registers load from ``job`` every cycle the gatherer is idle (so ``job``
must be steady from the cycle before ``start``; ``groups`` and ``blocks`` from ``start``; a
``fresh`` start, a command's first tile, reads its first words straight from ``job``), and
the first read issues in the cycle of ``start`` itself: reads at cycles ``0 .. R - 1`` (``R =
groups x blocks x h``), beat ``i`` on ``source`` from cycle ``(i + 1) x h + 1``, the requantizer
beats from cycle 1, when both streams are always ready. A beat's last read issues only when the
beat will have room (``source`` may stall it); ``lanes`` must be at least 3 (a beat of one read
cycle would wait a cycle for the previous one to leave). The accelerator starts a MATMUL's
first tile job before the job itself (:data:`.matmul_checks.GATHER_LEAD`, or fewer cycles), so
its streams are not ready at first: a finished beat waits in ``source`` and the next beat's
last read for it.
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
    start : ``In(1)``            a pulse: begin (while idle); the first read issues at once
    fresh : ``In(1)``            with ``start``: the command's first tile (``k0 = n0 = 0``),
                                 whose ``job`` need only hold from ``start``
    solo : ``In(1)``             with ``start``: the job reads on the second port alone, one
                                 word a cycle (two cycles a pair of rows)
    job : ``In``                 the command's fields and the tile's ``k0`` (first word of K)
                                 and ``n0`` (first block of N): :func:`.matmul_checks.
                                 matmul_job_layout`; steady from the cycle before ``start`` (with
                                 ``fresh``: from ``start``) to the last beat
    groups, blocks : ``In``      the tile's K words and N blocks (from ``start``)
    addr, addr2 : ``Out``        two read ports of the activation scratchpad (1-cycle latency)
    rdata, rdata2 : ``In``
    reading : ``Out(1)``         the gatherer holds the first port this cycle
    reading2 : ``Out(1)``        the gatherer holds the second port this cycle
    a_go : ``Out(1)``            the job's last read issues (the first port is free next cycle)
    source : ``Out(stream)``     weight beats (``lanes x block`` bytes)
    rq : ``Out(stream)``         requantizer beats (:func:`..conv.layouts.requant_layout`)
    moved : ``Out(1)``           a read issued or a beat transferred (progress)
    reads : ``Out``              words read this cycle, 0 to 2 (a masked row is not read: the
                                 ``act_reads`` counter)
    busy : ``Out(1)``            beats remain to be read or delivered
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        if config.attention is None:
            raise ValueError(f"{config.slug} has no attention units, so no MATMUL command")
        if config.lanes < 3:
            raise ValueError(f"{config.slug}: the gatherer needs lanes >= 3 (a beat of one "
                             f"read cycle would take two cycles, not the one the cycle model "
                             f"defines), not {config.lanes}")
        self.config = cfg = config
        conv = cfg.conv
        super().__init__({
            "start": In(1), "fresh": In(1), "solo": In(1), "job": In(matmul_job_layout(cfg)),
            "groups": In(range(conv.max_groups + 1)), "blocks": In(range(conv.max_blocks + 1)),
            "addr": Out(range(cfg.act_depth)), "rdata": In(cfg.act_bits),
            "addr2": Out(range(cfg.act_depth)), "rdata2": In(cfg.act_bits),
            "reading": Out(1), "reading2": Out(1), "a_go": Out(1),
            "source": Out(stream.Signature(cfg.lanes * conv.block * 8)),
            "rq": Out(stream.Signature(requant_layout(conv))),
            "moved": Out(1), "busy": Out(1), "reads": Out(range(3)),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        L, ad = cfg.lanes, cfg.act_depth
        H = (L + 1) // 2                                   # read cycles a beat
        job = self.job
        tr = job.transpose
        # Word addresses and indices may run past the scratchpad for rows that are masked.
        wide = range(2 * ad * L * L + (1 << 18) + 1)
        # Per job: the first address of a block and of a beat, and their steps, for each port
        # (the second port reads the row after the first's); the row index of the first port's
        # word (K rows of B, or N rows of B transposed) and its limit; the valid lanes of the
        # words of a beat (``p``: N or K left).
        a_blk, a_beat, a = Signal(wide), Signal(wide), Signal(wide)
        a2_blk, a2_beat, a2 = Signal(wide), Signal(wide), Signal(wide)
        r_blk, r_beat, r = Signal(wide), Signal(wide), Signal(wide)
        p_blk, p = Signal(wide), Signal(wide)
        lim = Signal(wide)
        step_pair, step_beat, step_blk = Signal(wide), Signal(wide), Signal(wide)
        i = Signal(range(H))                               # read cycle of the beat
        gi = Signal(range(cfg.conv.max_groups))            # beat of the block
        bi = Signal(range(cfg.conv.max_blocks))            # block of the tile
        reading = Signal()
        rq_left = Signal(range(cfg.conv.max_blocks + 1))
        rq_cols = Signal(wide)                             # N left at the requantizer beat
        out, out_valid = Signal(len(self.source.payload)), Signal()
        buf = [Signal(16 * L, name=f"buf{w}") for w in range(H - 1)]
        inflight, in_slot = Signal(), Signal(range(H))
        in_ok, in_ok2, in_p = Signal(), Signal(), Signal(wide)
        # ``solo``: each pair of rows is two reads on the second port, the first (``half``)
        # into ``lo`` the cycle after, the second completing the pair as ``issue`` does.
        solo_r, sub = Signal(), Signal()
        lo, lo_in, lo_ok = Signal(8 * L), Signal(), Signal()

        taken = out_valid & self.source.ready
        room = ~out_valid | taken                          # ``out`` is free at the next edge
        busy = reading | inflight | out_valid | (rq_left != 0)
        rd = reading | self.start
        # ``fresh``: the first read's words and masks from ``job`` in this cycle (k0 = n0 = 0),
        # the registers it does not step loaded with them.
        fresh = self.start & self.fresh
        f_lim, f_p = Mux(tr, job.n, job.k), Mux(tr, job.k, job.n)
        a_c, a2_c = Mux(fresh, job.src2, a), Mux(fresh, job.src2 + job.sb, a2)
        r_c, lim_c, p_c = Mux(fresh, 0, r), Mux(fresh, f_lim, lim), Mux(fresh, f_p, p)
        pair_c = Mux(fresh, job.sb * 2, step_pair)
        row_ok = r_c < lim_c
        # The second word of the last read cycle is past the beat when lanes is odd.
        row_ok2 = (r_c + 1 < lim_c) & ((i != H - 1) if L % 2 else Const(1))
        last_read = i == H - 1
        solo = Mux(self.start, self.solo, solo_r)
        half = rd & solo & ~sub
        issue = rd & (~solo | sub) & (~last_read | (room & ~(inflight & (in_slot == H - 1))))
        final = last_read & (gi == self.groups - 1) & (bi == self.blocks - 1)
        rq_taken = self.rq.valid & self.rq.ready
        m.d.comb += [self.addr.eq(Mux(row_ok, a_c, 0)),
                     self.addr2.eq(Mux(half, Mux(row_ok, a_c, 0), Mux(row_ok2, a2_c, 0))),
                     self.reading.eq(rd & ~solo), self.reading2.eq(rd),
                     self.a_go.eq(issue & final),
                     self.source.valid.eq(out_valid), self.source.payload.eq(out),
                     self.rq.valid.eq(rq_left != 0),
                     self.moved.eq(issue | half | taken | rq_taken), self.busy.eq(busy),
                     self.reads.eq(Mux(solo, (half & row_ok) + (issue & row_ok2),
                                       (issue & row_ok) + (issue & row_ok2)))]
        with m.If(self.start):
            m.d.sync += [solo_r.eq(self.solo), sub.eq(0)]
        with m.If(half):
            m.d.sync += sub.eq(1)
        with m.If(issue):
            m.d.sync += sub.eq(0)
        m.d.sync += [lo_in.eq(half), lo_ok.eq(row_ok)]
        with m.If(fresh & self.solo):   # the first pair's registers (``issue`` sets them)
            m.d.sync += [a.eq(a_c), a2.eq(a2_c), r.eq(r_c)]

        # --- idle: the next job's registers, so its first read issues with ``start`` ----------
        with m.If(~busy & ~self.start):
            nb, kb = job.n0 * L, job.k0 * L
            first = job.src2 + Mux(tr, nb * job.sb + job.k0, kb * job.sb + job.n0)
            m.d.sync += [
                a_blk.eq(first), a_beat.eq(first), a.eq(first),
                a2_blk.eq(first + job.sb), a2_beat.eq(first + job.sb), a2.eq(first + job.sb),
                step_pair.eq(job.sb * 2),
                step_beat.eq(Mux(tr, 1, job.sb * L)), step_blk.eq(Mux(tr, job.sb * L, 1)),
                r_blk.eq(Mux(tr, nb, kb)), r_beat.eq(Mux(tr, nb, kb)), r.eq(Mux(tr, nb, kb)),
                lim.eq(Mux(tr, job.n, job.k)),
                p_blk.eq(Mux(tr, job.k - kb, job.n - nb)), p.eq(Mux(tr, job.k - kb, job.n - nb)),
                rq_cols.eq(job.n - nb), i.eq(0), gi.eq(0), bi.eq(0)]
        with m.If(self.start):
            m.d.sync += [reading.eq(1), rq_left.eq(self.blocks)]
        with m.If(fresh):
            m.d.sync += [
                a_blk.eq(job.src2), a_beat.eq(job.src2),
                a2_blk.eq(job.src2 + job.sb), a2_beat.eq(job.src2 + job.sb),
                step_pair.eq(job.sb * 2),
                step_beat.eq(Mux(tr, 1, job.sb * L)), step_blk.eq(Mux(tr, job.sb * L, 1)),
                r_blk.eq(0), r_beat.eq(0), lim.eq(f_lim), p_blk.eq(f_p), p.eq(f_p),
                rq_cols.eq(job.n)]

        # --- reads: two words a cycle, beat by beat (blocks outer, K words inner) --------------
        m.d.sync += inflight.eq(issue)
        with m.If(issue):
            m.d.sync += [in_slot.eq(i), in_ok.eq(row_ok), in_ok2.eq(row_ok2), in_p.eq(p_c),
                         i.eq(i + 1), a.eq(a_c + pair_c), a2.eq(a2_c + pair_c), r.eq(r_c + 2)]
            with m.If(last_read):
                m.d.sync += i.eq(0)
                with m.If(gi == self.groups - 1):          # the next block
                    nxt, nxt2 = a_blk + step_blk, a2_blk + step_blk
                    r_nxt = Mux(tr, r_blk + L, r_blk)
                    p_nxt = Mux(tr, p_blk, p_blk - L)
                    m.d.sync += [gi.eq(0), bi.eq(bi + 1),
                                 a_blk.eq(nxt), a_beat.eq(nxt), a.eq(nxt),
                                 a2_blk.eq(nxt2), a2_beat.eq(nxt2), a2.eq(nxt2),
                                 r_blk.eq(r_nxt), r_beat.eq(r_nxt), r.eq(r_nxt),
                                 p_blk.eq(p_nxt), p.eq(p_nxt)]
                    with m.If(bi == self.blocks - 1):
                        m.d.sync += reading.eq(0)
                with m.Else():                             # the next K word of the block
                    nxt, nxt2 = a_beat + step_beat, a2_beat + step_beat
                    r_nxt = Mux(tr, r_beat, r_beat + L)
                    m.d.sync += [gi.eq(gi + 1), a_beat.eq(nxt), a.eq(nxt),
                                 a2_beat.eq(nxt2), a2.eq(nxt2),
                                 r_beat.eq(r_nxt), r.eq(r_nxt), p.eq(Mux(tr, p - L, p))]

        # --- words arrive: masked into the beat; the last pair completes it -------------------
        def masked(ok, rdata):
            return Cat(*[Mux(ok & (j < in_p), rdata[8 * j:8 * j + 8], 0) for j in range(L)])

        with m.If(lo_in):   # a solo pair's first row (lanes past N or K: ``p``, as at issue)
            m.d.sync += lo.eq(Cat(*[Mux(lo_ok & (j < p), self.rdata2[8 * j:8 * j + 8], 0)
                                    for j in range(L)]))
        pair = Signal(16 * L)
        m.d.comb += pair.eq(Cat(Mux(solo_r, lo, masked(in_ok, self.rdata)),
                                masked(in_ok2, self.rdata2)))
        with m.If(taken):
            m.d.sync += out_valid.eq(0)
        with m.If(inflight):
            for w in range(H - 1):
                with m.If(in_slot == w):
                    m.d.sync += buf[w].eq(pair)
            with m.If(in_slot == H - 1):
                words = Cat(*buf, pair)
                rows = [words[8 * L * w:8 * L * (w + 1)] for w in range(L)]
                # Transposed: word ``w`` is column ``w`` of the beat (byte ``l x L + w``).
                cols = Cat(*[rows[w][8 * l_:8 * l_ + 8] for l_ in range(L) for w in range(L)])
                m.d.sync += [out.eq(Mux(tr, cols, Cat(*rows))), out_valid.eq(1)]

        # --- requantizer beats, one a cycle from the cycle after ``start`` --------------------
        rq = Signal(requant_layout(cfg.conv))
        for j in range(cfg.conv.block):
            on = Const(j, range(cfg.conv.block + 1)) < rq_cols
            m.d.comb += [rq[j].bias.eq(0), rq[j].multiplier.eq(Mux(on, job.mult, 0)),
                         rq[j].shift.eq(Mux(on, job.shift, 1))]
        m.d.comb += self.rq.payload.eq(rq)
        with m.If(rq_taken):
            m.d.sync += [rq_left.eq(rq_left - 1),
                         rq_cols.eq(Mux(rq_cols > L, rq_cols - L, 0))]
        return m
