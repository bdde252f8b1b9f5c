"""Where the accelerator stores a job's results: the write port's address, word by word.

Results go to the job's runs: ``dst_run`` words, then ``dst_stride`` on from the run's start;
after ``dst_group`` words (if not 0) the runs restart a word after the group's first (a
depthwise job's next channel group). The processor's job fields hold from a job's start to its
end (:mod:`.processor`); :mod:`.accelerator` calls :func:`result_addresses` while it elaborates.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal

from .config import AccelConfig

__all__ = ["result_addresses"]


def result_addresses(m: Module, cfg: AccelConfig, proc, store) -> Signal:
    """The address of the job's next result word: set at ``proc.job_start``, stepped on each
    ``store`` (a result word written this cycle). The run's and group's last-word flags are
    registers, set a store ahead (as the DMA's), so a step is a choice among registers."""
    w_addr, w_first = Signal(range(cfg.act_depth)), Signal(range(cfg.act_depth))
    w_col = Signal(range(cfg.act_depth + 1))
    w_gfirst, w_gcol = Signal(range(cfg.act_depth)), Signal(range(cfg.act_depth + 1))
    # ``w_col + 1 == dst_run`` and ``w_gcol + 1 == dst_group`` a cycle ahead (as the DMA's).
    w_end, w_gend = Signal(), Signal()
    run, group = proc.job_dst_run, proc.job_dst_group
    with m.If(store):
        m.d.sync += [w_addr.eq(w_addr + 1), w_col.eq(w_col + 1), w_gcol.eq(w_gcol + 1),
                     w_end.eq(Mux(w_gend, run == 1, w_col + 2 == run)),
                     w_gend.eq(w_gcol + 2 == group)]
        with m.If(w_end):
            m.d.sync += [w_addr.eq(w_first + proc.job_dst_stride),
                         w_first.eq(w_first + proc.job_dst_stride), w_col.eq(0),
                         w_end.eq(run == 1)]
        with m.If(w_gend):
            m.d.sync += [w_addr.eq(w_gfirst + 1), w_first.eq(w_gfirst + 1),
                         w_gfirst.eq(w_gfirst + 1), w_col.eq(0), w_gcol.eq(0),
                         w_gend.eq(group == 1)]
    with m.If(proc.job_start):
        m.d.sync += [w_addr.eq(proc.job_dst), w_first.eq(proc.job_dst), w_col.eq(0),
                     w_gfirst.eq(proc.job_dst), w_gcol.eq(0), w_end.eq(run == 1),
                     w_gend.eq(group == 1)]
    return w_addr
