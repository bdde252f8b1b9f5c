"""Hybrid parallelism: pipeline stages that are data-parallel groups.

``N`` instances form ``p = N / g`` stages of ``g`` instances (``--dp-size g``). Stage ``k``
holds a consecutive range of the model's layers (the balanced cut of :func:`.pp.balanced`
into ``p`` stages, every stage's program the pp stage's); its ``g`` instances split the batch's
samples (:func:`.dp.shards`: consecutive shards, sizes differing by at most one), instance ``i``
of every stage taking shard ``i``. The samples of a shard stream through the stages one at a
time: instance ``i`` of stage ``k`` sends its outputs to instance ``i`` of stage ``k + 1`` over
its own link, and lane ``i`` (instance ``i`` of every stage) has its own host port, which
writes its samples into stage 0 and reads them back from the last stage. So the ``g`` lanes are
``g`` pp pipelines under :class:`.pp_model.Controller` that share no port, link or instance, and
the system finishes when its slowest lane does. With ``shared_host_port`` (``--shared-host-port``)
the lanes share one round-robin host port instead, and interact through it
(:mod:`.hybrid_dp_port`).

What is simulated and what is modelled
--------------------------------------
* ``cycles``: each lane's samples streamed through the Verilated pipeline top
  (:func:`.pp_sim.simulate`: the instances' RTL, the link components and the controller cycle by
  cycle), lane after lane on the same top (they share nothing, so each lane's cycles are those
  of its own top); the system's cycles are the slowest lane's, and every sample's outputs are
  read back from its lane's last stage. With a shared port the lanes' tops are clocked together
  and the arbiter grants their port words (:func:`.hybrid_dp_port.simulate_lanes`);
* ``model_cycles``: each lane's shard through :func:`.pp_model.model` (the exact pipeline
  recurrence fed :func:`~hwaccel.generators.accel.perf.program_perf` and the link model); the
  slowest lane's. With a shared port the lanes' models composed by the port's recurrence
  (:func:`.hybrid_dp_port.model_lanes`).

``speedup`` is against one instance streaming the whole batch under the same controller (pp's
one-instance reference, :func:`.pp_run.single_instance`); ``bubble_fraction`` counts the
instance-cycles of all ``N`` instances in ``[0, cycles)`` in which an instance neither receives,
computes nor sends (a lane that finishes early idles to the end); ``link_utilization``: bytes the
``g (p - 1)`` links carried over their capacity.

Refused, naming what cannot run: an instance count that is not a multiple of ``g``; a batch
smaller than ``g`` (a lane without a sample, :func:`.dp.shards`); more stages than the pipeline
top has instances; what :func:`.pp.balanced` refuses (more stages than layers, a stage across
weight groups: :class:`.pp.PartitionError`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .rows import ParallelRow

__all__ = ["HybridDpRow", "stage_count", "hybrid_dp_model", "run_hybrid_dp", "run_lanes",
           "hybrid_dp_rows"]


@dataclass(frozen=True, kw_only=True)
class HybridDpRow(ParallelRow):
    """Beside :class:`.rows.ParallelRow`'s (and as :class:`.hybrid.HybridRow`): the kind of
    group (``dp``), its size, each stage's layers, the pipeline's fill and period (the slowest
    lane's), the link's latency; and each lane's shard size, simulated and modelled cycles."""

    group_kind: str
    dp_size: int
    stages: list
    fill: int
    period: int
    link_latency: int
    shard_sizes: list
    lane_cycles: list
    model_lane_cycles: list


def stage_count(instances: int, group: int, batch: int) -> int:
    """The stages of ``instances`` in groups of ``group``; refuses a count that is not a
    multiple, and a batch that leaves a lane without a sample."""
    from .dp import shards

    if not isinstance(group, int) or isinstance(group, bool) or group < 1 or instances % group:
        raise ValueError(f"--instances {instances} is not a multiple of --dp-size {group}: "
                         f"hybrid stages are data-parallel groups of {group} instances")
    shards(batch, group)
    return instances // group


def hybrid_dp_model(compiled, x_int, instances: int, group: int, link,
                    shared_host_port: bool = False) -> tuple[int, list]:
    """The modelled cycles of the batch ``x_int`` over ``instances / group`` stages of
    ``group``-way dp groups (the ``model_cycles`` :func:`run_hybrid_dp` reports), and each
    stage's layers."""
    from .dp import shards
    from .hybrid_dp_port import model_lanes
    from .pp import balanced
    from .pp_model import model

    p = stage_count(instances, group, len(x_int))
    part = balanced(compiled, x_int, p, link=link)
    sizes = [s.stop - s.start for s in shards(len(x_int), group)]
    lanes = (model_lanes(part, sizes, link) if shared_host_port
             else [model(part, n, link) for n in sizes])
    return max(t.cycles for t in lanes), [list(s.layers) for s in part.stages]


def run_hybrid_dp(compiled, x, instances, *, group: int = 2, link=None, top=None,
                  clock=None, shared_host_port: bool = False) -> list[HybridDpRow]:
    """One :class:`HybridDpRow` per instance count in ``instances`` on the samples ``x``;
    ``top``: the :class:`~hwaccel.generators.multi.PipelineConfig` every lane runs on (default:
    :func:`.pp_run.pipeline_config` of the most stages and ``link``); ``shared_host_port``:
    the lanes share one round-robin host port (:mod:`.hybrid_dp_port`)."""
    from ..runtime.compare import clock_for
    from ..sim.runner import design_for
    from .pp import balanced
    from .pp_run import default_link, pipeline_config, single_instance
    from .pp_sim import golden

    cfg = compiled.config
    link = top.link if top is not None else link or default_link(cfg)
    x_int = compiled.quantize_input(x)
    m = len(x_int)
    counts = [int(v) for v in instances]
    if not counts or min(counts) < 1:
        raise ValueError(f"instances must be counts >= 1, not {instances!r}")
    stages = {n: stage_count(n, group, m) for n in counts}      # refuse before any work
    parts = {n: balanced(compiled, x_int, p, link=link) for n, p in stages.items()}
    pcfg = top or pipeline_config(cfg, max(stages.values()), link)
    if pcfg.accel != cfg or pcfg.instances < max(stages.values()):
        raise ValueError(f"top {pcfg.slug} has {pcfg.instances} instances of "
                         f"{pcfg.accel.slug}: {max(stages.values())} stages of {cfg.slug} "
                         f"do not fit it")
    mhz, source = clock or clock_for(cfg)
    ref = golden(compiled, x_int).reshape(m, -1)
    design = design_for(pcfg)
    single = single_instance(design, pcfg, compiled, x_int)
    return [_row(compiled, x_int, n, group, parts[n], design, pcfg, single, ref, (mhz, source),
                 shared_host_port) for n in counts]


def run_lanes(compiled, x_int, part, group: int, design, pcfg, shared_host_port: bool = False):
    """The samples ``x_int`` over ``group`` lanes of the stages of ``part`` (a
    :class:`.pp.Partition`), each lane's shard streamed through the top ``design`` of ``pcfg``:
    every sample's int8 outputs (in sample order, one row a sample), and per lane the measured
    and the modelled :class:`.pp_model.Timeline`."""
    from .dp import shards
    from .hybrid_dp_port import model_lanes, simulate_lanes
    from .pp import sample_inputs
    from .pp_model import model
    from .pp_sim import outputs_of, simulate

    inputs = sample_inputs(part, compiled, x_int)
    parts = shards(len(x_int), group)
    if shared_host_port:
        words, measured = simulate_lanes(design, pcfg, part, [inputs[s] for s in parts])
        predicted = model_lanes(part, [s.stop - s.start for s in parts], pcfg.link)
        got = np.concatenate([outputs_of(part, w).reshape(len(w), -1) for w in words])
        return got, measured, predicted
    measured, predicted, got = [], [], []
    for s in parts:
        words, t = simulate(design, pcfg, part, inputs[s])
        measured.append(t)
        predicted.append(model(part, s.stop - s.start, pcfg.link))
        got.append(outputs_of(part, words).reshape(s.stop - s.start, -1))
    return np.concatenate(got), measured, predicted


def _row(compiled, x_int, n, group, part, design, pcfg, single, ref, clock,
         shared) -> HybridDpRow:
    cfg, link, m = compiled.config, pcfg.link, len(x_int)
    mhz, source = clock
    t0 = time.perf_counter()
    got, measured, predicted = run_lanes(compiled, x_int, part, group, design, pcfg, shared)
    wall = time.perf_counter() - t0
    slowest = max(measured, key=lambda t: t.cycles)
    cycles = slowest.cycles
    p = len(part.stages)
    busy = sum(t.busy(k) for t in measured for k in range(p))
    moved = sum(s.output.words for s in part.stages[:-1]) * cfg.lanes * m
    util = moved / (group * (p - 1) * link.width * cycles) if p > 1 else 0.0
    speedup = single[0] / cycles
    return HybridDpRow(
        mode="hybrid", instances=n, batch=m, shared_host_port=shared, cycles=cycles,
        model_cycles=max(t.cycles for t in predicted), single_cycles=single[0],
        single_model_cycles=single[1], speedup=speedup, efficiency=speedup / n,
        mismatches=int(np.any(got != ref, axis=1).sum()),
        link_utilization=util, bubble_fraction=float(1 - Fraction(busy, n * cycles)),
        hw_samples_per_second=m * mhz * 1e6 / cycles, clock_mhz=mhz, clock_source=source,
        sim_samples_per_second=m / wall, wall_seconds=wall,
        note=f"{p} stages x {group}-way dp", group_kind="dp", dp_size=group,
        stages=[list(s.layers) for s in part.stages], fill=slowest.fill,
        period=slowest.period, link_latency=link.latency,
        shard_sizes=[t.samples for t in measured], lane_cycles=[t.cycles for t in measured],
        model_lane_cycles=[t.cycles for t in predicted])


def hybrid_dp_rows(args, compiled, x, counts, clock) -> list[HybridDpRow]:
    """``hwaccel parallel --mode hybrid --dp-size g``'s rows from its parsed ``args``."""
    from .pp_run import pp_link

    tp_only = [f"--{k.replace('_', '-')} {v}" for k, v, default in
               (("tp_size", args.tp_size, None), ("tp_split", args.tp_split, "auto"),
                ("tp_lstm", args.tp_lstm, "batch"), ("tp_backend", args.tp_backend, "golden"))
               if v != default]
    if tp_only:
        raise ValueError(f"{', '.join(tp_only)}: tp group options, and --dp-size {args.dp_size} "
                         f"asks for stages of dp groups (which run every stage whole, on the "
                         f"pipeline top's RTL)")
    link = pp_link(compiled.config, int(args.link_latency), args.link_buffer)
    return run_hybrid_dp(compiled, x, counts, group=args.dp_size, link=link, clock=clock,
                         shared_host_port=args.shared_host_port)
