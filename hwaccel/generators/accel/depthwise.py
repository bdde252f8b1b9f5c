"""The command processor's depthwise CONV jobs (:mod:`.processor`): a job per ``dw_groups``
channel groups (one group when it pools).

The engine walks a job's groups one after the other, so the reads and writes are word g of
every pixel (runs of 1, stride ``nb``), then word g + 1 (a group of ``width x height`` words);
the weights are each group's ``weight_words`` beats and requantizer, group after group. The
processor loads the first job's fields in CHECK and each next job's as the one before ends
(RUN -> ISSUE); its jobs read the check registers (CALC's factors, ``pixels_out``), which is
why nothing is checked under a depthwise CONV.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Mux, Signal

__all__ = ["depthwise_jobs"]


def depthwise_jobs(proc, m, cmd, chk, *, calc) -> SimpleNamespace:
    """Processor ``proc``'s depthwise jobs of the running command ``cmd`` (``chk``: its checks,
    :func:`.checks.command_checks`; ``calc``: the processor's CALC and CALC2). Returns ``left``
    (the groups after this job's) and ``job(left)``, the job fields of the next ``min(left,
    dw_k)`` groups.

    ``min(left, dw_k)`` is registered two cycles ahead and its products with registers that
    hold for the whole command (CALC's factors) a cycle ahead: the first job's in CALC and
    CALC2, the next groups' from their ISSUE, so those may end from their second RUN cycle on
    (the processor's ``ending``), long before any job can."""
    cfg = proc.config
    conv = cfg.conv
    left = Signal(range(cfg.act_depth + 1), name="dw_left")
    dw_k = Mux(cmd.desc.pool, 1, conv.dw_groups)
    jg = Signal(range(conv.dw_groups + 1), name="dw_jg")
    m.d.sync += jg.eq(Mux(calc, Mux(cmd.nb > dw_k, dw_k, cmd.nb), Mux(left > dw_k, dw_k, left)))
    src = Signal.like(proc.job_src_count, name="dw_src")
    dst = Signal.like(proc.job_dst_count, name="dw_dst")
    m.d.sync += [src.eq(chk.in_a * jg), dst.eq(chk.out_a * jg)]

    def job(now):
        """The fields of a depthwise job of the next ``min(now, dw_k)`` groups."""
        return [proc.job_src_count.eq(src), proc.job_dst_count.eq(dst),
                proc.job_wgt_count.eq((conv.dw_chunks + 1) * jg),
                proc.job_desc.blocks.eq(jg),
                proc.job_desc.weight_words.eq(conv.dw_chunks * jg),
                proc.job_fab_pixels.eq(chk.pixels_out),
                proc.job_fab_words.eq(conv.dw_chunks * jg), left.eq(now - jg)]

    return SimpleNamespace(left=left, job=job)
