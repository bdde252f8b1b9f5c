"""Hybrid parallelism: pipeline stages that are themselves tensor-parallel groups.

``N`` instances form ``N / g`` stages of ``g`` instances (``--tp-size g``); stage ``k`` holds a
consecutive range of the model's layers, spread over its ``g`` instances by :mod:`.tp` (its
collectives on the group's own ring). Samples stream through the stages one at a time, under
the pipeline's controller (:class:`.pp_model.Controller`): the host writes a sample's input into
stage 0's instances (one word a cycle, written to all ``g`` at once; when the first layer is
K-split, each instance's slice in turn), a stage's group computes
the sample (its layers and collectives: after the last all-gather each of its instances holds the
stage's whole output), instance ``i`` of stage ``k`` copies it to instance ``i`` of stage
``k + 1`` over its own link (``g`` equal copies side by side, so one copy's cycles), and the host
reads the last stage's output from its instance 0.

The cut into stages is the one whose slowest stage occupies its group the fewest cycles a sample
(input, group, output: :func:`.pp_model.occupancy` without mirrors), among every cut into
``N / g`` ranges of layers; ties go to the earliest cuts.

What is simulated and what is modelled: each stage's group is stepped by :func:`.tp_sim.simulate`
on one sample (its links beat by beat, its values through the ring: the stage outputs come from
what each group assembled, stage after stage, for every sample) and the pipeline is
:func:`.pp_model.model`'s controller fed those group cycles (``cycles``); ``model_cycles`` feeds
the same controller the groups' closed forms (:func:`.tp_sim.model`). The groups have no send
mirrors (their copies read the senders' scratchpads over their host ports), so the controller
runs with ``mirror=False``: every stage holds its output until it has left, and a copy occupies
both groups. The controller's timing is the one the pp tests prove equal to the Verilated
pipeline top (holding stages included: the last stage and those whose words overlap). Refused
(:class:`~.tp.TpError`): an instance count that is not a multiple of ``g``, more stages than
layers, and whatever :mod:`.tp` refuses for a stage.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from dataclasses import dataclass
from types import SimpleNamespace

from .pp_model import RUN_SEEN, occupancy
from .rows import ParallelRow
from .tp import TpError, layer_count, layer_inputs, plan

__all__ = ["HybridRow", "stage_plans", "hybrid_model", "run_hybrid", "hybrid_rows"]


@dataclass(frozen=True, kw_only=True)
class HybridRow(ParallelRow):
    """Beside :class:`.rows.ParallelRow`'s: the group size, each stage's layers and splits,
    the pipeline's fill and period, the link's latency and the kind of group (``tp``; stages of
    dp groups: :class:`.hybrid_dp.HybridDpRow`)."""

    tp_size: int
    stages: list
    fill: int
    period: int
    link_latency: int
    group_kind: str = "tp"


def _group_cycles(p, link, simulate_it: bool) -> int:
    """A stage group's cycles on one sample from its input present on every instance to its
    whole output on every instance."""
    from .tp_sim import model, simulate

    q = dataclasses.replace(p, input_words=(0,) * p.instances, output_words=0)
    return simulate(q, link)[1].cycles if simulate_it else model(q, link).cycles


def _partition(plans, link, simulate_it: bool):
    """A :func:`.pp_model.model` partition of the stage plans (each at batch 1)."""
    stages = []
    for k, p in enumerate(plans):
        if k == 0:   # the same input to every instance at once, or each its own K slice
            inp = (sum if p.layers[0].split == "k" else max)(p.input_words)
        else:
            inp = plans[k - 1].output_words
        stages.append(SimpleNamespace(cycles=_group_cycles(p, link, simulate_it) - RUN_SEEN,
                                      input=SimpleNamespace(words=inp),
                                      output=SimpleNamespace(words=p.output_words)))
    return SimpleNamespace(stages=tuple(stages))


def stage_plans(compiled, x_int, instances: int, group: int, split: str, link, *,
                lstm: str = "batch", run=None):
    """The balanced cut's per-stage :class:`~.tp.TpPlan` s at batch 1 (sample 0), and the
    cut's layer ranges."""
    if group < 1 or instances % group:
        raise TpError(f"--instances {instances} is not a multiple of --tp-size {group}: "
                      f"hybrid stages are groups of {group} instances")
    p, total = instances // group, layer_count(compiled)
    if p > total:
        raise TpError(f"{instances} instances in groups of {group} make {p} stages, and the "
                      f"model has {total} layers")
    one, _ = plan(compiled, x_int[:1], 1, "n", lstm=lstm, run=run)
    ins = [layer_inputs(compiled, x_int[:1])] + [la.output for la in one.layers]
    cache: dict = {}

    def stage(a, b):
        if (a, b) not in cache:
            cache[a, b] = plan(compiled, x_int[:1], group, split, link=link,
                               layers=slice(a, b), x_layer=ins[a], lstm=lstm, run=run)[0]
        return cache[a, b]

    best = None
    for cuts in itertools.combinations(range(1, total), p - 1):
        bounds = [0, *cuts, total]
        plans = [stage(a, b) for a, b in zip(bounds, bounds[1:])]
        part = _partition(plans, link, False)
        occ = occupancy(part, link, mirror=False)
        if best is None or max(occ) < best[0]:
            best = (max(occ), plans, list(zip(bounds, bounds[1:])))
    return best[1], best[2]


def hybrid_model(compiled, x_int, instances: int, group: int, split: str, link, *,
                 lstm: str = "batch", run=None) -> tuple[int, list]:
    """The modelled cycles of the batch ``x_int`` through the balanced cut into ``instances /
    group`` stages of ``group``-way tp groups (the ``model_cycles`` :func:`run_hybrid`
    reports), and the cut's layer ranges."""
    from .pp_model import model as pp_model

    plans, ranges = stage_plans(compiled, x_int, instances, group, split, link, lstm=lstm,
                                run=run)
    modelled = pp_model(_partition(plans, link, False), len(x_int), link, mirror=False)
    return modelled.cycles, ranges


def run_hybrid(compiled, x, instances, *, group: int = 2, split: str = "auto", link=None,
               lstm: str = "batch", backend: str = "golden", clock=None) -> list[HybridRow]:
    """One :class:`HybridRow` per instance count on the samples ``x``, each share's program
    run on ``backend`` (:func:`.tp_run.runner`)."""
    from .tp_run import runner

    with runner(compiled.config, backend) as run:
        return _run_hybrid(compiled, x, instances, group, split, link, lstm, run, clock)


def _run_hybrid(compiled, x, instances, group, split, link, lstm, run, clock):
    from ..runtime.compare import clock_for
    from .pp_model import model as pp_model
    from .pp_sim import golden
    from .tp_run import _mismatches, link_for
    from .tp_sim import model as tp_model
    from .tp_sim import simulate

    cfg = compiled.config
    link = link or link_for(cfg, 2, None)
    x_int = compiled.quantize_input(x)
    m = len(x_int)
    mhz, source = clock or clock_for(cfg)
    ref = golden(compiled, x_int)
    one, _ = plan(compiled, x_int, 1, split, lstm=lstm, run=run)
    single = (simulate(one, link)[1].cycles, tp_model(one, link).cycles)
    rows = []
    for n in [int(v) for v in instances]:
        t0 = time.perf_counter()
        plans, ranges = stage_plans(compiled, x_int, n, group, split, link, lstm=lstm, run=run)
        x_k = layer_inputs(compiled, x_int)
        for a, b in ranges:             # every sample through each stage's group, in turn
            whole, _ = plan(compiled, x_int, group, split, link=link, layers=slice(a, b),
                            x_layer=x_k, lstm=lstm, run=run)
            x_k, _ = simulate(whole, link)
        measured = pp_model(_partition(plans, link, True), m, link, mirror=False)
        wall = time.perf_counter() - t0
        predicted = pp_model(_partition(plans, link, False), m, link, mirror=False)
        speedup = single[0] / measured.cycles
        copies = sum(p.output_words for p in plans[:-1]) * cfg.lanes * m * group
        links = group * (len(plans) - 1) + (len(plans) * group if group > 1 else 0)
        comm = copies + sum(_ring_bytes(p, link) for p in plans) * m
        util = comm / (links * link.width * measured.cycles) if links else 0.0
        rows.append(HybridRow(
            mode="hybrid", instances=n, batch=m, shared_host_port=False,
            cycles=measured.cycles, model_cycles=predicted.cycles, single_cycles=single[0],
            single_model_cycles=single[1], speedup=speedup, efficiency=speedup / n,
            mismatches=_mismatches(x_k, ref), link_utilization=util,
            bubble_fraction=measured.bubble_fraction, hw_samples_per_second=m * mhz * 1e6 /
            measured.cycles, clock_mhz=mhz, clock_source=source,
            sim_samples_per_second=m / wall, wall_seconds=wall,
            note=f"{len(plans)} stages x {group}-way tp", tp_size=group,
            stages=[[[la.name, la.split, la.gather] for la in p.layers] for p in plans],
            fill=measured.fill, period=measured.period, link_latency=link.latency))
    return rows


def _ring_bytes(p, link) -> int:
    from .tp_sim import simulate

    q = dataclasses.replace(p, input_words=(0,) * p.instances, output_words=0)
    return sum(simulate(q, link)[1].link_bytes)


def hybrid_rows(args, compiled, x, counts, clock) -> list[HybridRow]:
    """``hwaccel parallel --mode hybrid``'s rows from its parsed ``args``."""
    from .tp_run import link_for

    if args.shared_host_port:
        raise ValueError("--shared-host-port is an option of dp and of hybrid's dp groups "
                         "(--dp-size): a hybrid pipeline of tp groups has one external host "
                         "port")
    link = link_for(compiled.config, int(args.link_latency), args.link_buffer)
    group = 2 if args.tp_size is None else args.tp_size
    return run_hybrid(compiled, x, counts, group=group, split=args.tp_split,
                      link=link, lstm=args.tp_lstm, backend=args.tp_backend, clock=clock)

