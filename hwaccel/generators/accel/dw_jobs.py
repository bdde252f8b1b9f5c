"""A depthwise CONV's engine jobs in the command processor (:mod:`.processor`).

A depthwise CONV is a job per ``dw_groups`` channel groups (one group when it pools): the
engine walks the job's groups one after the other, so the reads and writes are word g of every
pixel (runs of 1, stride nb), then word g + 1 (a group of ``width x height`` words); the
weights are each group's ``weight_words`` beats and requantizer, group after group.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

__all__ = ["depthwise_jobs"]


def depthwise_jobs(proc, m, cfg, cmd, chk, *, calc):
    """``(dw_left, dw_job)``: the groups after the running job's (a register), and a function
    of the groups still to run giving the job fields of the next ``min(left, dw_k)`` of them
    (``dw_left`` less them). ``cmd`` is the running command, ``chk`` its checks, ``calc`` its
    CALC cycle."""
    dw_left = Signal(range(cfg.act_depth + 1))
    dw_k = Mux(cmd.desc.pool, 1, cfg.conv.dw_groups)
    # ``min(left, dw_k)`` a cycle ahead, and one product each of it and registers that hold
    # for the whole command (CALC's factors).
    jg = Signal(range(cfg.conv.dw_groups + 1), name="dw_jg")
    m.d.sync += jg.eq(Mux(calc, Mux(cmd.nb > dw_k, dw_k, cmd.nb),
                          Mux(dw_left > dw_k, dw_k, dw_left)))
    dw_src, dw_dst = chk.in_a * jg, chk.out_a * jg
    # a group's weight words: the command's (checked against its kernel's) with dw_trim
    dww = cmd.desc.weight_words if cfg.conv.dw_trim else cfg.conv.dw_words

    def dw_job(left):
        """The counts of a depthwise job of the next ``min(left, dw_k)`` groups."""
        return [proc.job_src_count.eq(dw_src), proc.job_dst_count.eq(dw_dst),
                proc.job_wgt_count.eq((dww + cfg.conv.dw_beats) * jg),
                proc.job_desc.blocks.eq(jg), proc.job_desc.weight_words.eq(dww * jg),
                proc.job_fab_pixels.eq(chk.pixels_out),
                proc.job_fab_words.eq(dww * jg), dw_left.eq(left - jg)]

    return dw_left, dw_job
