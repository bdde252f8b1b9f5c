"""One model on several backends, side by side: accuracy, agreement, exactness and speed.

:func:`compare` loads a trained reference model (:func:`hwaccel.models.train.load`), compiles it
for a preset (calibrated on training samples), runs every requested backend on the same
held-out samples and returns one :class:`Row` per backend. The float ``nn.Module`` on the CPU
is the reference for top-1 agreement and logit error; ``golden`` is the reference for the
integer backends, whose outputs are compared as integers (``mismatches``: samples whose int8
logits differ in any class). Reports are data first: :func:`format_rows` is a view.

It also counts, per layer, the int8 values that saturate on those samples
(:mod:`.saturation`: the input's quantization and every requantizer, values whose exact integer
lay beyond [-128, 127]; from the integer twin, so the hardware's own count). The held-out inputs
must be finite (:class:`.errors.NonFiniteError` before anything runs).

Hardware latency is the hardware's cycles per sample at a stated clock: the Fmax of an
implementation report under ``build/impl`` when one exists for the preset (``hwaccel synth``),
else a nominal clock, labelled as such.

With ``workers`` or ``scheduler`` the program backends (``golden``, ``rtl``) run their batches
as Dask tasks (:mod:`.shards`): on a loopback ``LocalCluster`` of ``workers`` processes, or on
the running cluster at ``scheduler``. The same batches run, so every figure but the wall times
(``seconds``, ``latency_s``, ``throughput``) and ``workers`` is the same whatever the number of
workers.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cache

import numpy as np

from ..compiler.saturation import Clipped, format_saturation
from .backends import BackendRun, BackendUnavailable, get
from .cluster import close

__all__ = ["Row", "Comparison", "compare", "clock_for", "format_rows", "NOMINAL_MHZ"]

#: The clock hardware latency is stated at when no implementation report gives an Fmax.
NOMINAL_MHZ = 100.0
DEFAULT_BACKENDS = ("golden", "rtl", "torch-cpu", "torch-int8", "xla")


@dataclass(frozen=True)
class Row:
    """One backend's results (``None`` where a figure does not apply or the backend did not
    run; ``skipped`` and ``error`` say why)."""

    backend: str
    samples: int
    accuracy: float | None = None
    agreement: float | None = None
    mismatches: int | None = None
    max_abs_logit_error: float | None = None
    latency_s: float | None = None
    throughput: float | None = None
    cycles_per_sample: float | None = None
    clock_mhz: float | None = None
    clock_source: str | None = None
    hw_latency_s: float | None = None
    seconds: float | None = None
    device: str | None = None
    skipped: str | None = None
    error: str | None = None
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    model: str
    preset: str
    rows: list[Row]
    float_accuracy: float | None   # None: a user's model, no labels
    macs_per_sample: int
    saturation: list[Clipped] = field(default_factory=list)
    workers: int | None = None   # Dask workers the program backends ran on; None: in-process

    def to_json(self) -> dict:
        return {"model": self.model, "preset": self.preset, "samples": self.rows[0].samples,
                "float_accuracy": self.float_accuracy, "macs_per_sample": self.macs_per_sample,
                "workers": self.workers, "rows": [r.to_json() for r in self.rows],
                "saturation": [c.to_json() for c in self.saturation]}

    @property
    def failures(self) -> list[str]:
        """Backends that raised, and integer backends that differ from ``golden``."""
        out = [f"{r.backend}: {r.error}" for r in self.rows if r.error]
        out += [f"{r.backend} differs from golden on {r.mismatches} of {r.samples} samples"
                for r in self.rows if r.mismatches]
        return out


def clock_for(config) -> tuple[float, str]:
    """``(MHz, source)``: the Fmax of an implementation report for ``config``'s preset when
    there is one (ECP5 first), else :data:`NOMINAL_MHZ`."""
    from ..sim.runner import build_root

    reports = sorted((build_root() / "impl").glob(f"{config.slug}-*/report.json"),
                     key=lambda p: (not p.parent.name.endswith("-ecp5"), p.parent.name))
    for path in reports:
        try:
            rep = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if rep.get("fmax_mhz"):
            return float(rep["fmax_mhz"]), f"Fmax of the {rep.get('target')} implementation " \
                                              f"report ({path})"
    return NOMINAL_MHZ, f"nominal (no implementation report for {config.slug}; see " \
                        f"`hwaccel synth --preset {config.slug}`)"


def _row(run: BackendRun, backend, task, x, y, ref, golden_ints, clock) -> Row:
    mismatches, notes = None, list(run.notes)
    if backend.integer and golden_ints is not None and run.backend != "golden":
        mismatches = int(np.any(run.int_logits != golden_ints, axis=1).sum())
    elif run.backend == "golden":
        notes.append("the reference for mismatches")
    hw = {}
    if run.cycles_per_sample is not None:
        mhz, source = clock
        hw = {"cycles_per_sample": run.cycles_per_sample, "clock_mhz": mhz,
              "clock_source": source, "hw_latency_s": run.cycles_per_sample / (mhz * 1e6)}
    agreement = None  # top-1 agreement with the float model: classifiers only
    if task.task == "classify":
        agreement = float(np.mean(run.logits.argmax(axis=1) == ref.argmax(axis=1)))
    err = np.abs(run.logits - ref).reshape(len(ref), -1)
    return Row(run.backend, run.samples, accuracy=task.score(x, run.logits, y),
               agreement=agreement, mismatches=mismatches,
               max_abs_logit_error=float(err.max()),
               latency_s=run.latency_s, throughput=run.throughput, seconds=run.seconds,
               device=run.device, notes=notes, **hw)


def compare(model: str, backends=DEFAULT_BACKENDS, *, samples: int | None = None,
            preset: str = "default", calibration: int = 512, clock_mhz: float | None = None,
            progress: bool = False, log=None, workers: int | None = None,
            scheduler: str | None = None, backend_options: dict | None = None,
            input_shape: tuple | None = None) -> Comparison:
    """Run ``model`` (a name of :data:`hwaccel.models.WORKLOADS`, or a user's ``FILE.py:NAME``
    with ``input_shape`` where it gives no inputs: :mod:`hwaccel.models.user_model`) on every
    backend in ``backends``. ``accuracy`` is the workload's score: top-1 accuracy, or for the
    autoencoder the ROC AUC of the reconstruction error (``agreement`` is then ``None``); a
    user's model has none (no labels), and its samples are its inputs (64 random ones by
    default, :data:`~hwaccel.models.user_model.USER_SAMPLES`), which calibrate it too.

    ``samples``: the first N held-out samples (default: all). ``calibration``: training samples
    that set the activation scales. ``clock_mhz`` overrides the clock hardware latency is
    stated at. ``log`` (default stderr) gets one line per skipped or failing backend.
    ``workers`` / ``scheduler``: shard the program backends' batches over Dask workers (a
    LocalCluster of ``workers``, or the cluster at ``scheduler``).
    """
    import torch

    from ..compiler.errors import check_finite
    from ..models import workload
    from ..models.train import load
    from ..models.user_model import USER_SAMPLES, Unlabelled, is_user_model, user_split
    from .runnable import compile

    log = log or sys.stderr
    backends = list(backends)
    options = backend_options or {}   # per backend: fpga's port and baud
    # unknown names fail before any work
    chosen = {name: get(name, **options.get(name, {})) for name in backends}
    user = is_user_model(model)
    task = None if user else workload(model)
    # the cluster (if any) starts and its workers import what a shard needs while this process
    # loads and compiles the model
    with _executor(workers, scheduler, progress) as start:
        module, split = (user_split(model, input_shape, samples, calibration) if user else
                         load(model))
        held = len(split.x_test)
        n = (min(USER_SAMPLES, held) if user else held) if samples is None else samples
        if not 1 <= n <= held:
            where = "the inputs it was given" if user else "the held-out split"
            raise ValueError(f"samples must be 1..{held} ({where}), not {samples!r}")
        x = split.x_test[:n]
        y = None if user else split.y_test[:n].numpy()
        check_finite(x, "input")  # before compiling or running anything
        # strict=False: a model the preset refuses (a depthwise conv) still runs on the integer
        # twin and the float backends; golden and rtl then fail with the refusal, by name
        compiled = compile(module, split.x_train[:8], preset=preset,
                           calibration=split.x_train[:calibration], strict=False)
        with torch.inference_mode():
            ref = module.eval()(x).to(torch.float64).numpy()
        task = task or Unlabelled(ref.ndim)
        clock = (clock_mhz, "given") if clock_mhz else clock_for(compiled.config)
        runner = start(compiled)
        rows, reference = {}, None   # reference: () -> golden's int outputs
        if (any(chosen[b].integer for b in backends) and "golden" not in backends
                and compiled.refusal is None):  # a refused model has no golden to compare with
            # behind the other backends on the cluster when they all run there too (its shards
            # fill the workers' gaps, and nothing this process times runs beside them); else
            # first, as a backend of its own
            background = all(runner.sharded(chosen[b]) for b in backends)
            later = runner.submit(get("golden"), x, background=background)
            reference = cache(lambda: later().int_logits)
            if not background:
                reference()
        # golden first: the integer backends are compared with it
        for name in sorted(backends, key=lambda name: name != "golden"):
            reference = _run_backend(name, chosen[name], runner, rows, reference, log,
                                     (task, x, y, ref, clock, n))
    float_acc = task.score(x, ref, y)
    return Comparison(model, compiled.config.slug, [rows[b] for b in backends], float_acc,
                      compiled.macs_per_sample, compiled.saturation(x), runner.workers)


@contextmanager
def _executor(workers, scheduler, progress):
    """``start(compiled) -> runner``: a :class:`_Local` runner, or a :class:`_Sharded` one whose
    program backends run their batches on a Dask cluster. The cluster is started (and its
    workers warmed, :func:`.shards.warm`) in a thread from entering the block, so it overlaps
    what the block does before ``start``; ``start`` waits for it and raises its error. Leaving
    the block closes it, started or failing."""
    if workers is None and not scheduler:
        yield lambda compiled: _Local(compiled, progress)
        return
    from concurrent.futures import ThreadPoolExecutor
    from contextvars import copy_context

    with ThreadPoolExecutor(1, thread_name_prefix="hwaccel-cluster") as pool:
        # in this context, so the thread's connect sees the TLS choice of cluster.using_tls
        started = pool.submit(copy_context().run, _start_cluster, scheduler, workers)
        try:
            yield lambda compiled: _Sharded(started.result()[0], compiled, progress)
        finally:
            try:
                client, cluster = started.result()  # waits for a start still under way
            except Exception:  # noqa: BLE001 - its error was raised by start(), or the block's is
                pass
            else:
                close(client, cluster)


def _start_cluster(scheduler, workers):
    """``(client, cluster)`` of :func:`.cluster.connect`, every worker warmed; closed again if
    warming fails."""
    from .cluster import connect
    from .shards import warm

    client, cluster = connect(scheduler, workers)
    try:
        client.run(warm)
    except BaseException:
        close(client, cluster)
        raise
    return client, cluster


class _Local:
    """Runs every backend in this process: :meth:`submit` returns ``() -> BackendRun``, which
    runs it when called."""

    workers = None

    def __init__(self, compiled, progress):
        self.compiled, self.progress = compiled, progress

    def sharded(self, backend) -> bool:
        return False

    def submit(self, backend, x, *, background: bool = False):
        return lambda: backend.run(self.compiled, x, progress_bar=self.progress)


class _Sharded(_Local):
    """The program backends' batches as Dask tasks (:mod:`.shards`), the rest in this process
    as :class:`_Local` runs them. A ``background`` run is submitted right behind the next
    other one, at a lower priority, so the workers take its shards only when that run's are
    all handed out (or when its result is asked for first)."""

    def __init__(self, client, compiled, progress):
        from .cluster import worker_count

        super().__init__(compiled, progress)
        self.client = client
        self.remote = client.scatter(compiled, broadcast=True)
        self.workers = worker_count(client)
        self._behind = []   # background runs' submit-once functions

    def sharded(self, backend) -> bool:
        from .backends.programs import ProgramBackend

        return isinstance(backend, ProgramBackend) and getattr(backend, "shardable", True)

    def submit(self, backend, x, *, background: bool = False):
        from .shards import submit_sharded

        if not self.sharded(backend):
            return super().submit(backend, x)
        run = _Submitted(lambda: submit_sharded(self.client, backend, self.compiled, x,
                                                compiled_future=self.remote,
                                                priority=-1 if background else 0), self.progress)
        if background:
            self._behind.append(run)
        else:
            run.pending()
            for later in self._behind:
                later.pending()
            self._behind.clear()
        return run


class _Submitted:
    """A sharded run: called, its :class:`BackendRun`; :meth:`pending` submits it (once) and
    returns its :class:`.shards.Pending`."""

    def __init__(self, submit, progress):
        self.pending, self.progress = cache(submit), progress

    def __call__(self):
        return self.pending().result(self.progress)


def _run_backend(name, backend, runner, rows, reference, log, context):
    """Run one backend into ``rows[name]``; returns the reference, ``() -> golden's int
    outputs`` (set by ``golden``)."""
    task, x, y, ref, clock, n = context
    try:
        backend.check()
        run = runner.submit(backend, x)()
    except BackendUnavailable as exc:
        print(f"hwaccel compare: skipped {exc}", file=log)
        rows[name] = Row(name, n, skipped=str(exc))
        return reference
    except Exception as exc:  # noqa: BLE001 - a failing backend must not hide the others
        print(f"hwaccel compare: {name} failed: {type(exc).__name__}: {exc}", file=log)
        rows[name] = Row(name, n, error=f"{type(exc).__name__}: {exc}")
        return reference
    if name == "golden":
        reference = lambda ints=run.int_logits: ints  # noqa: E731
    golden_ints = reference() if reference is not None and backend.integer else None
    rows[name] = _row(run, backend, task, x, y, ref, golden_ints, clock)
    return reference


# --- views ---------------------------------------------------------------------------------------
def _si(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds:.3g} s"


def _cells(r: Row) -> list[str]:
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    return [r.backend, r.device or "-", str(r.samples), num(r.accuracy, ".4f"),
            num(r.agreement, ".4f"), num(r.mismatches, "d"), num(r.max_abs_logit_error, ".3g"),
            _si(r.latency_s), num(r.throughput, ",.1f"), num(r.cycles_per_sample, ",.0f"),
            _si(r.hw_latency_s), num(r.seconds, ".2f")]


COLUMNS = ["backend", "device", "samples", "accuracy", "agreement", "mismatches",
           "max|dlogit|", "latency", "samples/s", "cycles/sample", "hw latency", "seconds"]


def format_rows(c: Comparison) -> str:
    """A plain table of ``c``, with skipped and failed backends and the clock under it."""
    ran = [r for r in c.rows if not (r.skipped or r.error)]
    cells = [_cells(r) for r in ran]
    # max of a list: with no backend run (every one skipped or failed) there are no cells
    widths = [max([len(h), *(len(row[i]) for row in cells)]) for i, h in enumerate(COLUMNS)]
    from ..models import workload

    if c.float_accuracy is None:   # a user's model: no labels
        head = (f"{c.model} on {c.preset}: {c.rows[0].samples} samples (no labels: agreement "
                f"with the float model and mismatches), {c.macs_per_sample:,} MACs per sample")
    else:
        head = (f"{c.model} on {c.preset}: {c.rows[0].samples} held-out samples, float model "
                f"{workload(c.model).metric} {c.float_accuracy:.4f}, {c.macs_per_sample:,} MACs "
                f"per sample")
    lines = [head,
             "  ".join(h.rjust(w) for h, w in zip(COLUMNS, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    lines += [f"  skipped {r.skipped}" for r in c.rows if r.skipped]  # names the backend
    lines += [f"  {r.backend}: FAILED: {r.error}" for r in c.rows if r.error]
    if c.workers:
        lines.append(f"golden and rtl ran their batches on {c.workers} Dask worker(s)")
    hw = [r for r in ran if r.clock_mhz]
    if hw:
        lines.append(f"hw latency at {hw[0].clock_mhz:.1f} MHz: {hw[0].clock_source}")
    lines.append("latency: median batch-1 wall time (torch, xla, torch-int8); wall time per "
                 "sample of the batched programs (golden, rtl)")
    lines += [f"MISMATCH: {f}" for f in c.failures if "differs" in f]
    lines += format_saturation(c.saturation, c.rows[0].samples)
    return "\n".join(lines)
