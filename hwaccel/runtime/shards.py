"""The program backends (``golden``, ``rtl``) with their samples sharded over Dask workers.

:func:`run_sharded` cuts the quantized inputs into shards of whole batches (cut at multiples of
the batch a program holds; by default :data:`PER_WORKER` shards a worker), runs each shard
as one Dask task
(:func:`run_shard`: the backend opened on the worker once, its batches run, closed) and joins the
outputs in sample order. The batches are the ones a single process runs, so the outputs and
cycles are identical whatever the number of workers or shards or the order the shards finish
in; only the wall time differs.

The compiled model goes to the workers once (scattered). The rtl backend's Verilog is emitted
and its Verilator harness built (or found in the cache under ``build/harness``, keyed by a hash
of the Verilog) here, before any task runs, and the design goes with every shard, so no worker
emits or builds it. :func:`warm` imports what a shard needs, for a worker to do while this
process is still compiling.
"""

from __future__ import annotations

import time

import numpy as np

from .backends import BackendRun, get, progress
from .backends.programs import ProgramBackend, batch_size

__all__ = ["run_shard", "run_sharded", "submit_sharded", "Pending", "shard_slices", "prepare",
           "warm", "PER_WORKER"]

#: Shards a worker thread by default: a few, so a worker slowed by another process on its core
#: hands the last shards to the others, while opening the backend once a shard stays cheap
#: (rtl: about 20 ms to load the cached harness and make the model).
PER_WORKER = 4
#: Task priorities of one run's shards lie in ``priority * _RUN_STEP + (1 .. shards)``.
_RUN_STEP = 1 << 20


def shard_slices(n: int, size: int, shards: int) -> list[slice]:
    """``n`` samples in at most ``shards`` consecutive slices of whole batches of ``size``
    (the last batch may be short), as even as whole batches allow."""
    if shards < 1:
        raise ValueError(f"shards must be at least 1, not {shards!r}")
    batches = -(-n // size)
    k = min(shards, batches)
    bounds = [round(i * batches / k) * size for i in range(k + 1)]
    return [slice(lo, min(hi, n)) for lo, hi in zip(bounds, bounds[1:])]


def prepare(backend_name: str, compiled):
    """What a backend needs on disk before workers open it: rtl's harness, built once here.
    Returns what every shard is given (rtl's design), else ``None``."""
    if backend_name == "rtl":
        from ..sim.harness import build_harness
        from .backends.rtl import _design

        design = _design(compiled.config)
        build_harness(design)
        return design
    return None


def warm() -> None:
    """On a worker: import what a shard needs (:data:`.cluster.PRELOAD`), so the first shard
    does not wait for it (a LocalCluster's workers have it from their fork server)."""
    import importlib

    from .cluster import PRELOAD

    for name in PRELOAD:
        importlib.import_module(name)


def run_shard(backend_name: str, compiled, x_int, size: int, first: int = 0, design=None):
    """On a worker: ``(int outputs, float outputs, cycles)`` of ``x_int`` on the backend
    (``design``: what :func:`prepare` returned)."""
    backend = get(backend_name)
    backend.check()
    if design is not None:
        backend.design = design
    backend.open(compiled)
    try:
        return backend.batches(compiled, x_int, size, first=first)
    finally:
        backend.close()


class Pending:
    """A sharded run under way (:func:`submit_sharded`): :meth:`result` waits for its shards
    and joins them."""

    def __init__(self, client, backend: ProgramBackend, device: str, size: int, parts, futures):
        self.client, self.backend, self.device, self.size = client, backend, device, size
        self.parts, self.futures = parts, futures
        self.t0 = time.perf_counter()

    def result(self, progress_bar: bool = False) -> BackendRun:
        """The :class:`BackendRun` of every shard in sample order (``seconds``: from submission
        to the last shard's end); a failing shard raises its error and cancels the rest."""
        from dask.distributed import as_completed

        index = {f: i for i, f in enumerate(self.futures)}
        done = {}
        try:
            for fut in progress(as_completed(self.futures), total=len(self.futures),
                                desc=self.backend.name, enabled=progress_bar):
                done[index[fut]] = fut.result()  # a failing shard raises its error here
        finally:
            self.client.cancel(self.futures)  # the rest of a failed run, not left to run on
        seconds = time.perf_counter() - self.t0
        ints, floats, cycles = zip(*(done[i] for i in range(len(self.parts))))
        return self.backend.result(self.device, np.concatenate(ints), np.concatenate(floats),
                                   sum(cycles), seconds, self.size)


def submit_sharded(client, backend: ProgramBackend, compiled, x, *, batch: int | None = None,
                   shards: int | None = None, compiled_future=None,
                   priority: int = 0) -> Pending:
    """Submit ``backend.run(compiled, x)``'s batches to ``client``'s workers as ``shards``
    shards (default: :data:`PER_WORKER` a worker thread; a shard opens the backend once) and
    return at once. ``compiled_future``: ``compiled`` already scattered to the workers.
    ``priority``: a run of higher priority has all its shards handed out before a lower one's
    (a background run fills the workers' gaps); within a run the longer shards go first, so
    the short ones even out the end."""
    x_int = compiled.quantize_input(x)  # refuses NaN and inf before any set-up
    device = backend.check()
    size = batch_size(compiled, batch)
    design = prepare(backend.name, compiled)
    threads = max(1, sum(client.nthreads().values()))
    parts = shard_slices(len(x_int), size, shards or PER_WORKER * threads)
    remote = compiled_future if compiled_future is not None else \
        client.scatter(compiled, broadcast=True, hash=False)  # a key of this call's own
    longest = sorted(range(len(parts)), key=lambda i: (parts[i].start - parts[i].stop, i))
    rank = {i: len(parts) - r for r, i in enumerate(longest)}   # len(parts) .. 1
    futures = [client.submit(run_shard, backend.name, remote, x_int[s], size, s.start // size,
                             design, pure=False, priority=priority * _RUN_STEP + rank[i])
               for i, s in enumerate(parts)]
    return Pending(client, backend, device, size, parts, futures)


def run_sharded(client, backend: ProgramBackend, compiled, x, *, batch: int | None = None,
                shards: int | None = None, compiled_future=None,
                progress_bar: bool = False) -> BackendRun:
    """``backend.run(compiled, x)`` with its batches sharded over ``client``'s workers
    (:func:`submit_sharded`, then waiting for the result)."""
    return submit_sharded(client, backend, compiled, x, batch=batch, shards=shards,
                          compiled_future=compiled_future).result(progress_bar)
