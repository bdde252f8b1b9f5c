"""``hwaccel parallel --mode tp``: rows of a model's layers spread over N instances.

For each link latency in ``--link-latency`` and each instance count ``N`` in ``--instances``:
the :mod:`.tp` plan over ``N`` instances (``--tp-split``), stepped over a ring of links by
:func:`.tp_sim.simulate` (``cycles``; its outputs against the golden interpreter on one
instance, ``mismatches``) and its closed form :func:`.tp_sim.model` (``model_cycles``). The
one-instance reference (``single_cycles``) is the same layers' programs on one instance, the
whole batch, with no link (the plan at ``N = 1``). ``link_utilization``: bytes the ring's links
carried over their capacity (``N`` links of ``W`` bytes a cycle) during the run; the row also
gives the cycles spent in collectives (``comm_cycles``) and each layer's split.

``backend``: what runs each share's program -- ``golden`` (the golden interpreter for its
values, :func:`~hwaccel.generators.accel.perf.program_perf` for its cycles; the default) or
``rtl`` (the Verilated accelerator: its outputs and its ``cycles`` counter, while
``model_cycles`` keeps the cycle model's). ``wall_seconds`` covers planning (every share's
run) and the ring's simulation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .rows import ParallelRow

__all__ = ["TpRow", "run_tp", "tp_rows", "link_for", "latencies", "runner", "BACKENDS"]

#: What runs each share's program.
BACKENDS = ("golden", "rtl")


@dataclass(frozen=True, kw_only=True)
class TpRow(ParallelRow):
    """One (instance count, link) configuration: beside :class:`.rows.ParallelRow`'s, the
    link's latency and buffer, the cycles in collectives, and each layer's ``[name, split,
    gathered]`` (``gathered`` false: the next layer reads the parts where they are)."""

    link_latency: int
    link_buffer: int
    comm_cycles: int
    splits: list
    split: str
    backend: str


def link_for(accel, latency: int, buffer: int | None):
    """The ring's link: ``lanes`` bytes a beat, ``latency``, ``buffer`` bytes (default five
    words, as ``--mode pp``'s)."""
    from .tp_sim import default_ring_link

    return default_ring_link(accel, latency, 5 * accel.lanes if buffer is None else buffer)


def latencies(value) -> list[int]:
    """``--link-latency`` as a list (an int, or comma-separated ints >= 0)."""
    if isinstance(value, int):
        return [value]
    try:
        out = [int(v) for v in str(value).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--link-latency must be comma-separated integers, not {value!r}") \
            from None
    if not out or min(out) < 0:
        raise ValueError(f"--link-latency must name latencies >= 0, not {value!r}")
    return out


def _mismatches(got, ref) -> int:
    m = len(ref)
    return int(np.any(np.asarray(got).reshape(m, -1) != np.asarray(ref).reshape(m, -1),
                      axis=1).sum())


def runner(cfg, backend: str):
    """The runner of each share's program: ``golden`` (the golden interpreter and the cycle
    model) or ``rtl`` (:class:`.tp_rtl.RtlRunner`, a context manager)."""
    from contextlib import nullcontext

    from .tp_layers import golden_runner
    from .tp_rtl import RtlRunner

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    return RtlRunner(cfg) if backend == "rtl" else nullcontext(golden_runner(cfg))


def run_tp(compiled, x, instances, latency_values=(2,), *, buffer=None, split="auto",
           lstm="batch", backend="golden", clock=None) -> list[TpRow]:
    """One :class:`TpRow` per link latency and instance count on the samples ``x``, each
    share's program run on ``backend`` (:func:`runner`)."""
    from ..runtime.compare import clock_for
    from .pp_sim import golden
    from .tp import plan
    from .tp_sim import model, simulate

    cfg = compiled.config
    x_int = compiled.quantize_input(x)
    mhz, source = clock or clock_for(cfg)
    ref = golden(compiled, x_int)
    counts = [int(v) for v in instances]
    if not counts or min(counts) < 1:
        raise ValueError(f"instances must be counts >= 1, not {instances!r}")
    with runner(cfg, backend) as run:
        one, _ = plan(compiled, x_int, 1, split, run=run)
        rows = []
        for latency in latency_values:
            link = link_for(cfg, latency, buffer)
            _, t1 = simulate(one, link)
            single = (t1.cycles, model(one, link).cycles)
            for n in counts:
                t0 = time.perf_counter()
                p = plan(compiled, x_int, n, split, link=link, lstm=lstm, run=run)[0]
                out, measured = simulate(p, link)
                wall = time.perf_counter() - t0
                rows.append(_row(p, out, measured, model(p, link), single, ref, wall, latency,
                                 link, split, backend, (mhz, source)))
    return rows


def _row(p, out, measured, predicted, single, ref, wall, latency, link, split, backend,
         clock) -> TpRow:
    mhz, source = clock
    n, m = p.instances, len(ref)
    util = sum(measured.link_bytes) / (n * link.width * measured.cycles) if n > 1 else 0.0
    speedup = single[0] / measured.cycles
    return TpRow(
        mode="tp", instances=n, batch=m, shared_host_port=False, cycles=measured.cycles,
        model_cycles=predicted.cycles, single_cycles=single[0], single_model_cycles=single[1],
        speedup=speedup, efficiency=speedup / n, mismatches=_mismatches(out, ref),
        link_utilization=util, bubble_fraction=None,
        hw_samples_per_second=m * mhz * 1e6 / measured.cycles, clock_mhz=mhz,
        clock_source=source, sim_samples_per_second=m / wall, wall_seconds=wall,
        note=f"L={latency}: comm {measured.comm_cycles:,} of {measured.cycles:,} cycles",
        link_latency=latency, link_buffer=link.buffer, comm_cycles=measured.comm_cycles,
        split=split, backend=backend, splits=[[la.name, la.split, la.gather] for la in p.layers])


def tp_rows(args, compiled, x, counts, clock) -> list[TpRow]:
    """``hwaccel parallel --mode tp``'s rows from its parsed ``args``."""
    if args.shared_host_port:
        raise ValueError("--shared-host-port is a dp option: each tp instance has its own "
                         "host port")
    return run_tp(compiled, x, counts, latencies(args.link_latency), buffer=args.link_buffer,
                  split=args.tp_split, lstm=args.tp_lstm, backend=args.tp_backend,
                  clock=clock)
