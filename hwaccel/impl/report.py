"""The synthesis report: data first (JSON), a table is a view of it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["SynthReport", "format_report", "METRICS", "regressions"]

#: Metrics a baseline holds; for ``fmax_mhz`` higher is better, for the others lower.
METRICS = ("lut", "ff", "dsp", "bram", "gates", "fmax_mhz")


@dataclass(frozen=True)
class SynthReport:
    """Resources and timing of one preset on one target.

    ``lut``/``ff``/``dsp``/``bram`` are post-place-and-route counts on FPGA targets (see
    :class:`~hwaccel.impl.target.Target` for which cells count) and ``None`` for ``generic``,
    whose area proxy is ``gates`` (2-input gates and muxes after technology-independent mapping)
    plus ``ff``. ``fmax_mhz`` is nextpnr's achieved clock on ``clk`` (``None`` for ``generic``).
    """

    preset: str
    target: str
    device: str
    lut: int | None
    ff: int | None
    dsp: int | None
    bram: int | None
    fmax_mhz: float | None
    critical_path: dict | None
    constraint_mhz: float | None = None
    timing_met: bool | None = None
    gates: int | None = None
    io: str | None = None                   # "out-of-context", "scan shell" or None
    available: dict = field(default_factory=dict)   # resource -> available on the device
    yosys_cells: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    verilog_md5: str | None = None          # the placed netlist (flow.verilog_md5), FPGAs only
    emitted_with: dict = field(default_factory=dict)   # package -> version that emitted it
    config_sha: str | None = None           # the placed config (hwaccel.config.config_fingerprint)
    seed: int | None = None                 # nextpnr's seed for fmax_mhz and the critical path
    seeds: dict = field(default_factory=dict)   # str(seed) -> Fmax of each seed placed together
    fmax_median_mhz: float | None = None    # their median, with three or more seeds

    def to_json(self) -> dict:
        return asdict(self)

    def write(self, path: Path) -> None:
        """Write atomically, so an interrupted run never leaves a half report."""
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)


def format_report(r: SynthReport) -> str:
    """A short human-readable view of ``r``."""

    def res(name: str, value) -> str:
        avail = r.available.get(name)
        return f"{value}" + (f" / {avail}" if value is not None and avail else "")

    lines = [f"{r.preset} on {r.target} ({r.device})"]
    if r.target == "generic":
        lines.append(f"  gates {r.gates}   flip-flops {r.ff}")
    else:
        lines.append(f"  LUT {res('lut', r.lut)}   FF {res('ff', r.ff)}   DSP {res('dsp', r.dsp)}"
                     f"   BRAM {res('bram', r.bram)}   I/O: {r.io}")
        met = "met" if r.timing_met else "NOT met"
        seed = f", nextpnr seed {r.seed}" if r.seed is not None else ""
        lines.append(f"  Fmax {r.fmax_mhz} MHz (constraint {r.constraint_mhz:g} MHz, {met}{seed})")
        if r.seeds:
            median = (f"; median {r.fmax_median_mhz} MHz" if r.fmax_median_mhz is not None
                      else "")
            lines.append("  seeds " + ", ".join(f"{k}: {v} MHz" for k, v in r.seeds.items())
                         + median)
        if r.critical_path:
            cp = r.critical_path
            lines.append(f"  critical path {cp['delay_ns']} ns ({cp['logic_ns']} logic, "
                         f"{cp['routing_ns']} routing): {cp['start']} -> {cp['end']}")
    lines += [f"  note: {n}" for n in r.notes]
    lines.append(f"  {r.seconds:.0f} s")
    return "\n".join(lines)


def regressions(report: SynthReport, baseline: dict, tolerance: dict) -> list[str]:
    """How ``report`` leaves ``baseline`` by more than ``tolerance`` (relative, per metric).

    Worse (more area, less Fmax) is a regression; better by more than the tolerance is listed
    too, so that a baseline is kept tight rather than drifting into a loose bound.
    """
    problems = []
    for key in METRICS:
        if key not in baseline:
            continue
        want, got, tol = baseline[key], getattr(report, key), float(tolerance.get(key, 0.0))
        if got is None:
            problems.append(f"{key}: baseline {want}, report has none")
            continue
        lo, hi = want * (1 - tol), want * (1 + tol)
        if lo <= got <= hi:
            continue
        worse = got < lo if key == "fmax_mhz" else got > hi
        problems.append(f"{key}: {got} vs baseline {want} (tolerance {tol:.0%}): "
                        + ("REGRESSION" if worse else "better -- update the baseline"))
    return problems
