"""``hwaccel parallel --mode pp``: rows of a model streamed through N pipelined instances.

For each instance count ``N``: the balanced partition into ``N`` stages (:func:`.pp.balanced`),
the samples streamed through a top of ``N`` instances (:func:`.pp_sim.simulate`) and through
the cycle model (:func:`.pp_model.model`). All counts share one top of the most instances
(a partition of fewer stages leaves the last ones idle). The one-instance reference is its
instance 0 running the whole model, sample after sample, under the same controller (the host
writes a sample's input, the program runs, the host reads the output): ``speedup`` is its
cycles over the pipeline's. ``mismatches`` counts samples whose outputs differ from the golden
interpreter on one instance. ``link_utilization``: bytes the links carried over their
capacity (``W`` bytes a cycle each) during the run. ``throughput`` (samples a cycle) is
``1 / period``, the steady interval between outputs, against ``1 / max(occupancy)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .rows import ParallelRow

__all__ = ["PpRow", "run_pp", "pp_rows", "pipeline_config", "default_link", "pp_link",
           "single_instance"]


@dataclass(frozen=True, kw_only=True)
class PpRow(ParallelRow):
    """One instance count's figures: beside :class:`.rows.ParallelRow`'s, the pipeline's
    fill, drain and period, the slowest stage's occupancy, the stages' layers and whether
    every sample's cycles equal the model's; ``timeline``: the measured
    :meth:`.pp_model.Timeline.rows` (every sample's cycles at every stage, which
    :mod:`.plots` draws; left out of :meth:`to_json`)."""

    fill: int
    drain: int
    period: int
    slowest_occupancy: int
    stages: list
    samples_equal: bool
    timeline: list = field(default_factory=list, repr=False, compare=False)

    def to_json(self) -> dict:
        out = super().to_json()
        del out["timeline"]
        return out


def default_link(accel):
    """Latency 2 and the five words of buffer that keep it at a word a cycle."""
    from ..generators.link.config import LinkConfig

    return LinkConfig(width=accel.lanes, latency=2, buffer=5 * accel.lanes, watchdog=64,
                      name="pp")


def pipeline_config(accel, instances: int, link):
    """The top of ``max(2, instances)`` instances of ``accel`` and ``link``, named
    ``<preset>x<N>`` (with ``_l<L>_d<D>`` unless the link is :func:`default_link`'s)."""
    from ..generators.multi import PipelineConfig

    n = max(2, instances)
    d = default_link(accel)
    same = (link.latency, link.buffer, link.watchdog) == (d.latency, d.buffer, d.watchdog)
    tail = "" if same else f"_l{link.latency}_d{link.buffer}"
    return PipelineConfig(accel, n, link, name=f"{accel.name}x{n}{tail}")


def run_pp(compiled, x, instances, *, link=None, clock=None, top=None) -> list[PpRow]:
    """One :class:`PpRow` for each instance count in ``instances`` on the samples ``x``;
    ``top``: the :class:`~hwaccel.generators.multi.PipelineConfig` to run on (default:
    :func:`pipeline_config` of the most instances and ``link``)."""
    from ..runtime.compare import clock_for
    from ..sim.runner import design_for
    from .pp import balanced, partition, sample_inputs
    from .pp_model import model, occupancy
    from .pp_sim import golden, outputs_of, simulate

    cfg = compiled.config
    link = link or default_link(cfg)
    x_int = compiled.quantize_input(x)
    m = len(x_int)
    mhz, source = clock or clock_for(cfg)
    ref = golden(compiled, x_int).reshape(m, -1)
    one = partition(compiled, x_int, [])
    counts = [int(v) for v in instances]
    if not counts or min(counts) < 1:
        raise ValueError(f"instances must be counts >= 1, not {instances!r}")
    pcfg = top or pipeline_config(cfg, max(counts), link)   # fewer stages use its first
    link = pcfg.link
    if pcfg.accel != cfg or pcfg.instances < max(counts):
        raise ValueError(f"top {pcfg.slug} has {pcfg.instances} instances of "
                         f"{pcfg.accel.slug}, not {max(counts)} of {cfg.slug}")
    design = design_for(pcfg)
    single = single_instance(design, pcfg, compiled, x_int, one)
    rows = []
    for n in counts:
        part = balanced(compiled, x_int, n, link=link)
        inputs = sample_inputs(part, compiled, x_int)
        t0 = time.perf_counter()
        words, measured = simulate(design, pcfg, part, inputs)
        wall = time.perf_counter() - t0
        predicted = model(part, m, link)
        got = outputs_of(part, words).reshape(m, -1)
        occ = occupancy(part, link)
        moved = sum(s.output.words for s in part.stages[:-1]) * cfg.lanes * m
        util = moved / ((n - 1) * link.width * measured.cycles) if n > 1 else 0.0
        speedup = single[0] / measured.cycles
        rows.append(PpRow(
            mode="pp", instances=n, batch=m, shared_host_port=False, cycles=measured.cycles,
            model_cycles=predicted.cycles, single_cycles=single[0],
            single_model_cycles=single[1], speedup=speedup, efficiency=speedup / n,
            mismatches=int(np.any(got != ref, axis=1).sum()), link_utilization=util,
            bubble_fraction=measured.bubble_fraction, fill=measured.fill,
            drain=measured.drain, period=measured.period, slowest_occupancy=max(occ),
            stages=[list(s.layers) for s in part.stages],
            samples_equal=measured.rows() == predicted.rows(), timeline=measured.rows(),
            hw_samples_per_second=m * mhz * 1e6 / measured.cycles, clock_mhz=mhz,
            clock_source=source, sim_samples_per_second=m / wall, wall_seconds=wall,
            note=f"period {measured.period} vs slowest stage {max(occ)}"))
    return rows


def single_instance(design, pcfg, compiled, x_int, one=None) -> tuple[int, int]:
    """The one-instance reference's simulated and modelled cycles: the whole model on instance
    0 of the top ``design`` of ``pcfg``, the samples ``x_int`` streamed under the controller
    (``one``: the one-stage partition, if made already)."""
    from .pp import partition, sample_inputs
    from .pp_model import model
    from .pp_sim import simulate

    one = one or partition(compiled, x_int, [])
    _, t1 = simulate(design, pcfg, one, sample_inputs(one, compiled, x_int))
    return t1.cycles, model(one, len(x_int), pcfg.link).cycles


def pp_link(accel, latency: int, buffer: int | None):
    """The pipeline's links of ``--link-latency`` and ``--link-buffer`` (default five words)."""
    from ..generators.link.config import LinkConfig

    buffer = buffer if buffer is not None else 5 * accel.lanes
    return LinkConfig(width=accel.lanes, latency=latency, buffer=buffer,
                      watchdog=max(64, 4 * (2 * latency + 1)), name="pp")


def pp_rows(args, compiled, x, counts, clock) -> list[PpRow]:
    """``hwaccel parallel --mode pp``'s rows from its parsed ``args`` (the link's options)."""
    if args.shared_host_port:
        raise ValueError("--shared-host-port is a dp option: a pp top has one external host "
                         "port, on the instance it selects")
    link = pp_link(compiled.config, args.link_latency, args.link_buffer)
    return run_pp(compiled, x, counts, link=link, clock=clock)
