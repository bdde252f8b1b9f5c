"""The rows of ``hwaccel advise``: what one platform does with one model at one batch.

Every row says how its figures were obtained (``kind``) and from where (``source``):

* ``measured``: timed here, on this machine's CPU, a CUDA device or JAX's device, through the
  runtime's backends (:mod:`hwaccel.runtime.backends`). A platform that is not here (no GPU, no
  JAX) still has its row, with every figure ``None`` and a note saying why: never a guess.
* ``modelled``: the accelerator's exact cycle model on the compiled programs
  (:func:`hwaccel.generators.accel.perf.program_perf`, equal to the RTL's counters) at a clock,
  with energy and area from the cited tables of :mod:`hwaccel.energy` and
  :mod:`hwaccel.impl.asic` (:mod:`.accel_rows`).
* ``published``: a submitter's own figures, cited in ``published.json`` (:func:`published_rows`).

``latency_us`` is a batch's latency (every inference in it has its result when the batch is
done), ``throughput_per_s`` inferences a second, ``energy_uj`` the energy per inference (the
batch's over its samples): the middle of the energy model's range, which ``energy_range_uj``
holds; ``None`` wherever nothing measured or modelled it.
"""

from __future__ import annotations

import json
import os
import statistics
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

__all__ = ["AdviseRow", "KINDS", "MEASURED", "measured_rows", "published_rows", "published_data"]

KINDS = ("measured", "modelled", "published")

#: platform -> the runtime backend that measures it
MEASURED = {"cpu": "torch-cpu", "torch-cuda": "torch-cuda", "torch-int8-cuda": "torch-int8-cuda",
            "xla": "xla"}

PUBLISHED = Path(__file__).with_name("published.json")


@dataclass(frozen=True)
class AdviseRow:
    """One platform's figures for the model at ``batch`` (``None``: not known; ``note`` says
    why)."""

    platform: str
    kind: str
    batch: int
    source: str
    latency_us: float | None = None          # one batch, start to result
    throughput_per_s: float | None = None    # samples a second
    energy_uj: float | None = None           # per inference
    energy_range_uj: tuple[float, float] | None = None
    area_mm2: float | None = None
    resources: dict | None = None
    device: str | None = None
    preset: str | None = None
    cycles: int | None = None
    clock_mhz: float | None = None
    clock_source: str | None = None
    node_nm: int | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not self.source:
            raise ValueError(f"row {self.platform!r} needs a source")

    def to_json(self) -> dict:
        out = asdict(self)
        if out["energy_range_uj"] is not None:
            out["energy_range_uj"] = list(out["energy_range_uj"])
        return out

    def with_note(self, more: str) -> AdviseRow:
        return replace(self, note="; ".join(n for n in (self.note, more) if n))


# --- measured --------------------------------------------------------------------------------
def _cpu_name() -> str:
    import platform

    import torch

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    n = torch.get_num_threads()
    return f"{name}, {n} torch thread{'s' if n != 1 else ''}"


def _median_latency(backend, compiled, x, batch: int, repeats: int) -> float:
    """Median wall seconds of one batch-``batch`` call of ``backend`` on ``compiled``.

    At batch 1 this is the backend's own ``latency_s`` (the median of ``repeats`` batch-1 calls
    after a warm-up); at a larger batch each of ``repeats`` runs times one batch-``batch`` call
    after its own warm-up, and the median of those is taken."""
    if batch == 1:
        return backend.run(compiled, x[:repeats], batch=1, latency_samples=repeats).latency_s
    return statistics.median(
        backend.run(compiled, x[:batch], batch=batch, latency_samples=1).seconds
        for _ in range(repeats))


def measured_rows(compiled, x, batch: int, platforms, *, repeats: int = 5,
                  threads: int | None = None, log=None) -> list[AdviseRow]:
    """One ``measured`` row per name in ``platforms`` (keys of :data:`MEASURED`): ``compiled``
    (a :class:`hwaccel.runtime.runnable.Runnable`) timed on the backend behind it on the
    held-out inputs ``x`` (at least ``max(batch, repeats)`` of them). A backend that cannot run
    here gives a row of ``None`` figures whose note is its one-line reason. ``threads``: torch's
    intra-op threads for the torch rows (default: torch's own choice); on a machine busier than
    its cores, threads that wait for each other can make every call many times slower."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _measured(compiled, x, batch, platforms, repeats, log)
    finally:
        torch.set_num_threads(before)


def _measured(compiled, x, batch, platforms, repeats, log) -> list[AdviseRow]:
    from ..runtime.backends import BackendUnavailable, get

    rows = []
    for platform in platforms:
        name = MEASURED[platform]
        backend = get(name)
        source = (f"measured here: hwaccel.runtime backend {name}, median of {repeats} timed "
                  f"batch-{batch} calls after a warm-up")
        try:
            device = backend.check()
        except BackendUnavailable as exc:
            why = (f"no GPU here ({str(exc).split('(', 1)[-1]}" if "no CUDA device" in str(exc)
                   else str(exc))
            rows.append(AdviseRow(platform, "measured", batch, source,
                                  note=f"not measured: {why}"))
            continue
        if platform == "cpu":
            device = _cpu_name()
        seconds = _median_latency(backend, compiled, x, batch, repeats)
        note = ("float32" if name in ("torch-cpu", "torch-cuda", "xla") else
                "int8: the accelerator's integer arithmetic in torch")
        load = os.getloadavg()[0]   # a busy machine's timings are slower: say how busy
        rows.append(AdviseRow(platform, "measured", batch, source, latency_us=seconds * 1e6,
                              throughput_per_s=batch / seconds, device=device,
                              note=f"{note}; load average {load:.1f} on {os.cpu_count()} "
                                   f"CPUs; energy not measured (no power meter here)"))
        if log is not None:
            print(f"hwaccel advise: {platform}: {seconds * 1e6:,.1f} us a batch of {batch}",
                  file=log)
    return rows


# --- published -------------------------------------------------------------------------------
def published_data() -> dict:
    """``published.json``: the cited rows and the committed placed clocks."""
    return json.loads(PUBLISHED.read_text())


def published_rows(model: str, batch: int) -> list[AdviseRow]:
    """The cited rows for ``model`` (none for a model no one published). Published figures are
    single-stream (batch 1): at a larger ``batch`` their latency is per sample, as published,
    and the note says so."""
    rows = []
    for r in published_data()["rows"]:
        if r["model"] != model:
            continue
        tput = r["throughput_per_s"]
        note = "; ".join(n for n in (
            "single-stream (batch 1): latency = 1e6 / median throughput",
            r.get("note", ""),
            f"not at batch {batch}" if batch != 1 else "") if n)
        rows.append(AdviseRow(r["platform"], "published", 1, r["source"],
                              latency_us=round(1e6 / tput, 1), throughput_per_s=tput,
                              energy_uj=r.get("energy_uj"), resources=r.get("resources"),
                              note=note))
    return rows
