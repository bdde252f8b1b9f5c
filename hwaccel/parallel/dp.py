"""Data parallelism: a batch split over N accelerator instances that run the same program.

The batch's samples are cut into N consecutive shards (sizes differing by at most one); each
instance runs the compiled model on its shard as one lowered batch, and the outputs are joined
in sample order. Every instance is a Dask task (:func:`run_instance`: the accelerator's Verilog
in the C++ harness, driven as the runtime's ``rtl`` backend drives it), so the shards simulate in
parallel on the workers and the results never depend on how many there are or which finishes
first.

An instance's cycles are its phases (:mod:`.dp_port`): host-port words (its inputs and the first
program's weights and commands; each later program's weights and commands; its outputs read
back), one a cycle, and each program's run (the hardware's own ``cycles`` counter, start to
DONE). Control accesses (reset, start, status) are not counted, as the runtime does not count
them. With its own host port an instance takes the sum; with one port shared by the N
instances, a round-robin arbiter grants one word a cycle (:func:`.dp_port.shared_port`).

* ``cycles`` (simulated): the slowest instance's, from the phases measured on the RTL -- the
  harness's clock over each transfer and the hardware's counter over each run -- composed by
  the shared port's arbiter model (:func:`.dp_port.simulate_shared`) when it is shared;
* ``model_cycles``: the same from the cycle model alone -- words counted from the lowering, runs
  from :func:`hwaccel.generators.accel.perf.program_perf` -- composed by the port's recurrence.

``speedup`` and ``efficiency`` (speedup / N) are against one instance running the whole batch
(own port, simulated the same way; a batch larger than one program holds runs as consecutive
programs of at most ``max_batch`` samples); ``mismatches`` counts samples whose integer
outputs differ from the golden interpreter's on one instance. A dp row has no link traffic
(``link_utilization`` 0) and no pipeline (``bubble_fraction`` ``None``). Hardware throughput
(samples a second at the preset's clock) and simulator throughput (samples a wall-clock second)
are separate figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .dp_port import Phase, finish, simulate_shared
from .rows import ParallelRow

__all__ = ["DpRow", "run_dp", "shards", "model_phases", "run_instance", "EFFICIENT"]

#: Efficiency below this is flagged in a row's note.
EFFICIENT = 0.9


@dataclass(frozen=True, kw_only=True)
class DpRow(ParallelRow):
    """One configuration's figures (see the module docstring): beside :class:`.rows.
    ParallelRow`'s, each shard's size and each instance's simulated and modelled cycles."""

    shard_sizes: list
    instance_cycles: list
    model_instance_cycles: list
    host_words: int


def shards(batch: int, instances: int) -> list[slice]:
    """``batch`` samples over ``instances`` consecutive shards, sizes differing by at most one
    (the larger ones first)."""
    if instances < 1:
        raise ValueError(f"instances must be at least 1, not {instances!r}")
    if batch < instances:
        raise ValueError(f"a batch of {batch} cannot be split over {instances} instances: each "
                         f"instance needs at least one sample (give --batch >= {instances})")
    q, r = divmod(batch, instances)
    bounds = np.cumsum([0] + [q + (i < r) for i in range(instances)])
    return [slice(int(lo), int(hi)) for lo, hi in zip(bounds, bounds[1:])]


def model_phases(compiled, x_int) -> tuple[Phase, ...]:
    """An instance's phases on the batch ``x_int`` from the cycle model alone."""
    from ..generators.accel.perf import program_perf

    lowered = compiled.lower(x_int)
    out = []
    for load, prog in zip(lowered.loads(), lowered.programs):
        out.append(Phase("host", load.act_top + prog.host_words))   # inputs with program 1
        out.append(Phase("run", program_perf(compiled.config, prog.commands).cycles))
    out.append(Phase("host", lowered.span[1]))
    return tuple(out)


def run_instance(compiled, x_int, limit: int = 200_000_000):
    """On a worker: ``(int outputs, phases)`` of one instance running ``x_int`` on the RTL."""
    from ..runtime.backends.programs import ProgramFault
    from ..runtime.backends.rtl import _design
    from ..sim.host import HarnessHost

    cfg = compiled.config
    lowered = compiled.lower(x_int)
    host = HarnessHost(_design(cfg), cfg)
    clock, phases = host.h, []
    try:
        for k, load in enumerate(lowered.loads()):
            host.soft_reset()
            c0 = clock.cycles
            host.load(load)
            phases.append(Phase("host", clock.cycles - c0))
            host.run(limit=limit)
            status = host.status()
            if status["error"] or not status["done"]:
                raise ProgramFault(f"dp instance: program {k + 1} faulted: cause "
                                   f"{status['cause'].name} at pc {status['pc']}")
            phases.append(Phase("run", host.counters()["cycles"]))
        first, words = lowered.span
        image = np.zeros((cfg.act_depth, cfg.lanes), dtype=np.int64)
        c0 = clock.cycles
        image[first:first + words] = host.read_act(first, words)
        phases.append(Phase("host", clock.cycles - c0))
    finally:
        host.close()
    return np.asarray(lowered.ints(image), dtype=np.int64), tuple(phases)


def _gather(client, calls) -> tuple[list, float]:
    """Results of ``(function, *args)`` calls, in order, as Dask tasks (in this process when
    ``client`` is None); and the wall seconds they took."""
    t0 = time.perf_counter()
    if client is None:
        out = [fn(*args) for fn, *args in calls]
    else:
        futures = [client.submit(fn, *args, pure=False) for fn, *args in calls]
        try:
            out = client.gather(futures)
        finally:
            client.cancel(futures)
    return out, time.perf_counter() - t0


def run_dp(compiled, x, instances, *, shared_host_port: bool = False, client=None,
           clock: tuple[float, str] | None = None) -> list[DpRow]:
    """One :class:`DpRow` for each instance count in ``instances``, on the batch ``x`` (float
    inputs, or token ids). ``client``: a Dask client to run the instances on (``None``: one
    after another in this process)."""
    from ..runtime.cluster import worker_count
    from ..runtime.compare import clock_for
    from ..runtime.shards import prepare, run_shard

    counts = [int(n) for n in instances]
    x_int = compiled.quantize_input(x)   # refuses NaN and inf before any work
    batch = len(x_int)
    for n in counts:
        shards(batch, n)                   # refuse a split before any work
    most = compiled.max_batch
    for n in counts:
        if -(-batch // n) > most:
            raise ValueError(f"a shard of {-(-batch // n)} samples ({batch} over {n} instances) "
                             f"does not fit one instance of {compiled.config.slug} (at most "
                             f"{most} a program)")
    mhz, source = clock or clock_for(compiled.config)
    prepare("rtl", compiled)   # the harness built here, once, never on a worker
    remote = compiled if client is None else client.scatter(compiled, broadcast=True)
    # one instance: the whole batch, as consecutive programs of at most max_batch samples
    chunks = [slice(i, min(i + most, batch)) for i in range(0, batch, most)]
    (golden, *single), _ = _gather(client, [(run_shard, "golden", remote, x_int, min(batch, most))]
                                   + [(run_instance, remote, x_int[s]) for s in chunks])
    single_cycles = sum(p.cycles for _, phases in single for p in phases)
    single_model = sum(p.cycles for s in chunks for p in model_phases(compiled, x_int[s]))
    workers = None if client is None else worker_count(client)
    rows = []
    for n in counts:
        parts = shards(batch, n)
        runs, wall = _gather(client, [(run_instance, remote, x_int[s]) for s in parts])
        sim = _compose([phases for _, phases in runs], shared_host_port, step=True)
        model = _compose([model_phases(compiled, x_int[s]) for s in parts], shared_host_port)
        got = np.concatenate([ints for ints, _ in runs])
        cycles = max(sim)
        speedup = single_cycles / cycles
        note = f"efficiency below {EFFICIENT}" if speedup / n < EFFICIENT else ""
        rows.append(DpRow(
            mode="dp", instances=n, batch=batch, shared_host_port=shared_host_port,
            cycles=cycles, model_cycles=max(model), single_cycles=single_cycles,
            single_model_cycles=single_model, speedup=speedup, efficiency=speedup / n,
            mismatches=int(np.any((got != golden[0]).reshape(batch, -1), axis=1).sum()),
            link_utilization=0.0, bubble_fraction=None,
            shard_sizes=[s.stop - s.start for s in parts], instance_cycles=sim,
            model_instance_cycles=model,
            host_words=sum(p.cycles for _, ph in runs for p in ph if p.kind == "host"),
            hw_samples_per_second=batch * mhz * 1e6 / cycles, clock_mhz=mhz,
            clock_source=source, sim_samples_per_second=batch / wall, wall_seconds=wall,
            workers=workers, note=note))
    return rows


def _compose(traces, shared: bool, step: bool = False) -> list[int]:
    """Each instance's finishing cycle: own ports, or the shared port simulated (``step``)
    or by its recurrence."""
    return simulate_shared(traces) if shared and step else finish(traces, shared)
