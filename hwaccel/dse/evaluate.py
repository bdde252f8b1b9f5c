"""Evaluate one design point: modelled cycles per workload, synthesized area and Fmax, latency.

Cycles come from the exact cycle models (they match the RTL cycle for cycle, so a sweep needs no
simulation). Resources and Fmax come from :func:`hwaccel.impl.synthesize`, cached under
``build/dse/cache/`` by a hash of the config, the target, the flow options and the source of the
generators and the flow (any change to them re-synthesizes). Latency = cycles / Fmax.

A point that cannot be built is reported with its error, never dropped: a systolic array needs
one hardware multiplier per PE, so a point with more PEs than the device has multiplier blocks is
refused before the tools run (``does not fit``); tool failures (place and route, a missing tool)
are caught and reported the same way. Failures the design causes are cached like results; a
missing tool or a tool killed by a signal is not (the next sweep tries again).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import config_to_json
from .points import DesignPoint
from .workloads import WORKLOADS, accel_program, gemm_layers

__all__ = ["PointResult", "evaluate", "model_workload", "DSP_CAPACITY", "source_digest"]

#: Multiplier blocks per device (nextpnr's utilization report gives the same totals).
DSP_CAPACITY = {"ecp5": ("MULT18X18D", 156), "ice40": ("SB_MAC16", 8)}

_PACKAGE = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PointResult:
    """Everything known about one point; ``error`` says why synthesis gave nothing."""

    point: DesignPoint
    label: str
    macs: int
    workloads: dict                       # name -> {cycles, macs, utilization, layers} | {error}
    synth: dict | None = None             # the SynthReport's fields (None: not run or failed)
    error: str | None = None
    cached: bool = False
    latency_us: dict = field(default_factory=dict)   # workload -> cycles / Fmax

    @property
    def status(self) -> str:
        if self.error:
            return "failed"
        return "ok" if self.synth else "model-only"

    def to_json(self) -> dict:
        out = asdict(self)
        out["status"] = self.status
        return out


def _systolic_workload(cfg, name: str, batch: int) -> dict:
    from ..generators.systolic.perf import gemm_perf

    layers = []
    for g in gemm_layers(name, batch):
        p = gemm_perf(cfg, g.m, g.k, g.n)
        cycles = g.repeat * p.cycles
        layers.append({"layer": g.name, "M": g.m, "K": g.k, "N": g.n, "repeat": g.repeat,
                       "cycles": cycles, "macs": g.macs,
                       "utilization": g.macs / (cycles * cfg.macs)})
    return _totals(layers, cfg.macs)


def _totals(layers: list[dict], units: int) -> dict:
    cycles = sum(r["cycles"] for r in layers)
    macs = sum(r["macs"] for r in layers)
    return {"cycles": cycles, "macs": macs, "utilization": macs / (cycles * units),
            "layers": layers}


def _accel_workload(cfg, name: str, batch: int) -> dict:
    from ..generators.accel.perf import program_perf
    from ..generators.conv.cases import CNN_LAYERS

    program, pcs = accel_program(cfg, name, batch)
    perf = program_perf(cfg, program)
    macs = {n: layer.macs * batch for n, layer in CNN_LAYERS.items()}
    macs |= {"fc1": 576 * 64 * batch, "fc2": 64 * 10 * batch, "fc": 64 * 10 * batch}
    layers = []
    for layer, where in pcs.items():
        cycles = sum(perf.commands[pc].cycles for pc in where)
        if layer.startswith("lstm"):
            n, units = cfg.lstm.macs_per_step * _steps(), cfg.lstm.lanes
            n *= batch
        else:
            n, units = macs[layer], cfg.macs
        layers.append({"layer": layer, "cycles": cycles, "macs": n,
                       "utilization": n / (cycles * units)})
    out = _totals(layers, cfg.macs)
    out["cycles"] = perf.cycles   # the program's own count (FENCE/DONE included)
    return out


def _steps() -> int:
    from ..models.data import SEQ_LEN

    return SEQ_LEN


def model_workload(point: DesignPoint, name: str) -> dict:
    """Modelled cycles of workload ``name`` on ``point`` (or ``{"error": ...}`` if it cannot
    run there)."""
    cfg = point.config()
    try:
        if point.kind == "systolic":
            return _systolic_workload(cfg, name, point.batch)
        return _accel_workload(cfg, name, point.batch)
    except ValueError as exc:
        return {"error": str(exc)}


#: Generator modules that never reach the hardware (models, drivers, test cases): editing them
#: keeps cached synthesis results.
SOFTWARE_ONLY = {"perf.py", "model.py", "cases.py", "driver.py", "host.py"}


#: The generator packages a point's hardware is built from.
PACKAGES = {"systolic": ("systolic",), "accel": ("accel", "conv", "lstm")}


def source_digest(kind: str) -> str:
    """A hash of the sources a ``kind`` point's synthesis result depends on: its generator
    packages, the shared hardware library and the flow."""
    h = hashlib.sha256()
    gen = _PACKAGE / "generators"
    roots = [gen / name for name in PACKAGES[kind]] + [_PACKAGE / n for n in ("hdl", "impl",
                                                                              "numerics")]
    files = sorted(p for r in roots for p in r.rglob("*.py") if p.name not in SOFTWARE_ONLY)
    files += sorted(gen.glob("*.py")) + [_PACKAGE / "emit.py"]
    for p in files:
        h.update(p.relative_to(_PACKAGE).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def cache_key(point: DesignPoint, seed: int, freq_mhz: float | None, digest: str) -> str:
    spec = {"config": config_to_json(point.config()), "kind": point.kind,
            "target": point.target, "seed": seed, "freq_mhz": freq_mhz, "source": digest}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:20]


def _fit_error(point: DesignPoint) -> str | None:
    """Refuse a point whose multipliers alone exceed the device's multiplier blocks."""
    if point.target not in DSP_CAPACITY:
        return None
    cell, have = DSP_CAPACITY[point.target]
    cfg = point.config()
    if point.kind == "systolic":
        need, what = cfg.macs, f"{cfg.rows}x{cfg.cols} = {cfg.macs} PEs need {cfg.macs}"
    else:
        need = cfg.conv.macs + (cfg.lstm.lanes if cfg.lstm is not None else 0)
        what = f"its MAC lanes need at least {need}"
    if need <= have:
        return None
    return f"does not fit: {what} {cell}, the {point.target} device has {have}"


def _synthesize(point: DesignPoint, cache_dir: Path, seed: int, freq_mhz: float | None,
                digest: str) -> tuple[dict | None, str | None, bool]:
    from ..impl import ImplError, synthesize
    from ..toolchain import MissingToolError

    key = cache_key(point, seed, freq_mhz, digest)
    path = cache_dir / f"{point.label}-{point.target}-{key}.json"
    if path.exists():
        data = json.loads(path.read_text())
        return data["synth"], data["error"], True
    try:
        report = synthesize(point.config(), point.target, freq_mhz=freq_mhz, seed=seed,
                            out_dir=cache_dir.parent / "impl")
        synth, error = report.to_json(), None
    except MissingToolError as exc:
        return None, f"tool missing: {exc}", False   # not cached: installing the tool fixes it
    except ImplError as exc:
        error = f"synthesis failed: {exc}"
        if "(exit -" in str(exc):   # a tool killed by a signal: not the design's fault, retry
            return None, error, False
        synth = None
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"synth": synth, "error": error}, indent=1))
    tmp.replace(path)
    return synth, error, False


def evaluate(point: DesignPoint, *, synth: bool = True, out_dir: Path | str = "build/dse",
             seed: int = 1, freq_mhz: float | None = None, digest: str | None = None
             ) -> PointResult:
    """Model, and unless ``synth`` is false synthesize, ``point``; never raises for a point
    that cannot be built (its result carries the error)."""
    workloads = {name: model_workload(point, name) for name in WORKLOADS}
    report, error, cached = None, None, False
    if synth:
        error = _fit_error(point)
        if error is None:
            report, error, cached = _synthesize(point, Path(out_dir) / "cache", seed, freq_mhz,
                                                digest or source_digest(point.kind))
    latency = {}
    fmax = report.get("fmax_mhz") if report else None
    if fmax:
        latency = {n: w["cycles"] / fmax for n, w in workloads.items() if "cycles" in w}
    return PointResult(point, point.label, point.config().macs, workloads, report, error, cached,
                       latency)
