"""A preset's placed clock and resources: its own ECP5 implementation report, else a placement
measured earlier and committed with its source (``data/placements.json``).

``hwaccel bench accel`` (``latency_us``), ``hwaccel advise`` (the FPGA rows) and ``hwaccel
parallel`` (samples a second at the placed clock, DSPs) all read the clock here, so they agree.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from ..config import config_fingerprint

__all__ = ["PLACEMENTS", "ecp5_file", "committed_placements", "placed_report", "placed_fmax",
           "seed_median", "MEDIAN_SEEDS"]

#: Seeds of one netlist a median of placed clocks needs (the issue's "median of three seeds").
MEDIAN_SEEDS = 3

#: Placements measured with ``hwaccel synth --target ecp5`` and committed with their source.
PLACEMENTS = Path(__file__).parent / "data" / "placements.json"


def ecp5_file(cfg, name: str = "report.json") -> Path:
    """A file of the preset's ECP5 implementation folder (``hwaccel synth --preset P --target
    ecp5`` writes ``report.json`` and Yosys's ``yosys_stat.json`` there)."""
    from .flow import impl_folder
    from .target import get_target

    return impl_folder(cfg, get_target("ecp5")) / name


def committed_placements() -> dict[str, dict]:
    """``slug -> {"fmax_mhz", "resources", "source"}`` of the committed placements."""
    return json.loads(PLACEMENTS.read_text())["placements"]


def placed_report(cfg) -> tuple[dict | None, str]:
    """``(report, where)``: the preset's ECP5 implementation report (``hwaccel synth --preset P
    --target ecp5`` writes ``build/impl/<slug>-ecp5/report.json``), else its committed placement,
    else ``(None, why)`` naming the command that places it. ``report`` has ``fmax_mhz``
    (a committed placement's is nextpnr seed 1's), ``resources``, ``seeds`` (the clock of every
    seed placed of that netlist) and ``fmax_median_mhz`` (their median, :func:`seed_median`).
    A report or placement of another config of the same name (its ``config_sha``,
    :func:`hwaccel.config.config_fingerprint`, differs) is not this one's; a local report
    written before reports carried ``config_sha`` is taken as it is."""
    sha = config_fingerprint(cfg)
    path = ecp5_file(cfg)
    stale = []
    if path.exists():
        rep = json.loads(path.read_text())
        if rep.get("config_sha", sha) != sha:
            stale.append(str(path))
        elif rep.get("fmax_mhz"):
            res = {k: rep.get(k) for k in ("lut", "ff", "dsp", "bram")}
            seeds = rep.get("seeds") or {}
            return ({"fmax_mhz": rep["fmax_mhz"], "resources": res, "seeds": seeds,
                     "fmax_median_mhz": seed_median(seeds)}, f"placed Fmax of {path} (nextpnr)")
    committed = committed_placements().get(cfg.slug)
    if committed and committed.get("config_sha") != sha:
        stale.append("hwaccel/impl/data/placements.json")
    elif committed:
        seeds = committed.get("seeds", {})
        return ({"fmax_mhz": committed["fmax_mhz"], "resources": committed.get("resources"),
                 "seeds": seeds, "fmax_median_mhz": seed_median(seeds)},
                f"placed Fmax committed in hwaccel/impl/data/placements.json: "
                f"{committed['source']}")
    other = f" ({' and '.join(stale)} placed another config of this name)" if stale else ""
    return None, (f"not placed{other}: run `hwaccel synth --preset {cfg.name} --target ecp5` "
                  f"(writes {path})")


def seed_median(seeds: dict) -> float | None:
    """The median of a placement's clocks by nextpnr seed (``{"1": MHz, ...}``, every one of
    the same netlist), or None with fewer than :data:`MEDIAN_SEEDS` seeds."""
    return statistics.median(seeds.values()) if len(seeds) >= MEDIAN_SEEDS else None


def placed_fmax(cfg) -> float | None:
    """The preset's placed Fmax in MHz (:func:`placed_report`'s), or None."""
    report, _ = placed_report(cfg)
    return report["fmax_mhz"] if report else None
