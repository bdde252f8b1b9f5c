"""Run a design space on Dask and write its results: JSON (the data), CSV and PNG (views).

Each point is one Dask task (:func:`.evaluate.evaluate`), so synthesis runs of different points
proceed in parallel on the workers: a ``LocalCluster`` on this machine by default, or any
running cluster given its scheduler address (``tcp://host:8786``), whose workers need hwaccel
and the YoWASP tools installed. Results come back as they finish (a tqdm bar counts them) and
are written in the space's order.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..pareto import pareto_front
from .evaluate import PointResult, evaluate, source_digest
from .points import Space
from .workloads import WORKLOADS

__all__ = ["SweepResult", "run_sweep", "pareto", "area_metrics", "area_value", "cost",
           "CSV_COLUMNS"]

CSV_COLUMNS = ["label", "kind", "target", "rows", "cols", "dataflow", "preset", "batch", "macs",
               "status", "error", "lut", "ff", "dsp", "bram", "gates", "fmax_mhz",
               *[f"{w}_{k}" for w in WORKLOADS for k in ("cycles", "latency_us", "utilization")],
               "pareto"]


@dataclass(frozen=True)
class SweepResult:
    results: tuple[PointResult, ...]
    fronts: dict          # "<workload>/<metric>" -> labels on its Pareto front
    files: dict           # "json" / "csv" / plot name -> path

    def to_json(self) -> dict:
        return {"points": [r.to_json() for r in self.results], "pareto": self.fronts,
                "files": {k: str(v) for k, v in self.files.items()}}


def area_metrics(results) -> list[str]:
    """The area axes the results have: ``dsp`` and ``lut`` on FPGAs, ``gates`` on ``generic``,
    ``macs`` (the PE count) when nothing was synthesized."""
    have = [m for m in ("dsp", "lut", "gates")
            if any(r.synth and r.synth.get(m) is not None for r in results)]
    return have or ["macs"]


def area_value(r: PointResult, metric: str):
    return r.macs if metric == "macs" else (r.synth or {}).get(metric)


def cost(r: PointResult, workload: str):
    """The point's latency for ``workload``: microseconds when it has an Fmax, else cycles (a
    model-only sweep, or the ``generic`` target, which has no clock); ``None`` if it failed."""
    if r.error:
        return None
    if r.latency_us:
        return r.latency_us.get(workload)
    return r.workloads.get(workload, {}).get("cycles")


def pareto(results, workload: str, metric: str) -> list[str]:
    """Labels of the points no other point beats on both ``metric`` and latency (a point
    without either figure, a failed one, is no rival)."""
    xs = [area_value(r, metric) for r in results]
    ys = [cost(r, workload) for r in results]
    return [results[i].label for i in pareto_front(xs, ys)]


def _evaluate_all(space: Space, *, synth: bool, out_dir: Path, scheduler: str | None,
                  workers: int | None, processes: bool, progress: bool) -> list[PointResult]:
    from dask.distributed import as_completed
    from tqdm import tqdm

    from ..runtime.cluster import connect

    digests = {kind: source_digest(kind) for kind in {p.kind for p in space.points}}
    client, cluster = connect(scheduler, workers, processes=processes)
    try:
        futures = {client.submit(evaluate, p, synth=synth, out_dir=str(out_dir),
                                 digest=digests[p.kind], pure=False): i
                   for i, p in enumerate(space.points)}
        done: dict[int, PointResult] = {}
        bar = tqdm(total=len(futures), desc="sweep", unit="point", disable=not progress)
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                done[i] = fut.result()
            except Exception as exc:   # a worker lost or an unexpected bug: report the point
                p = space.points[i]
                done[i] = PointResult(p, p.label, p.config().macs, {}, None,
                                      f"evaluation failed: {type(exc).__name__}: {exc}")
            bar.update(1)
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return [done[i] for i in range(len(space.points))]


def _csv_row(r: PointResult, front: set[str]) -> dict:
    s = r.synth or {}
    row = {"label": r.label, "macs": r.macs, "status": r.status, "error": r.error or "",
           "pareto": r.label in front, **{k: v for k, v in r.point.to_json().items()}}
    row |= {k: s.get(k) for k in ("lut", "ff", "dsp", "bram", "gates", "fmax_mhz")}
    for w in WORKLOADS:
        wl = r.workloads.get(w, {})
        row[f"{w}_cycles"] = wl.get("cycles")
        row[f"{w}_utilization"] = wl.get("utilization")
        row[f"{w}_latency_us"] = r.latency_us.get(w)
    return row


def run_sweep(space: Space, *, synth: bool = True, out_dir: Path | str = "build/dse",
              scheduler: str | None = None, workers: int | None = None, processes: bool = True,
              progress: bool = True, plots: bool = True) -> SweepResult:
    """Evaluate every point of ``space`` on Dask; write ``results.json``, ``results.csv`` and
    the plots into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = _evaluate_all(space, synth=synth, out_dir=out, scheduler=scheduler,
                            workers=workers, processes=processes, progress=progress)
    fronts = {f"{w}/{m}": pareto(results, w, m) for w in WORKLOADS
              for m in area_metrics(results)}
    on_front = {label for labels in fronts.values() for label in labels}
    files = {"json": out / "results.json", "csv": out / "results.csv"}
    with open(files["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for r in results:
            writer.writerow(_csv_row(r, on_front))
    if plots:
        from .plots import write_plots

        files |= write_plots(results, fronts, out)
    res = SweepResult(tuple(results), fronts, files)
    files["json"].write_text(json.dumps(res.to_json(), indent=1) + "\n")
    return res
