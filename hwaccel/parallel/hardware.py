"""What N instances of a preset cost in DSPs and how fast they clock: the figures of
``hwaccel parallel --plot``'s samples-per-second-against-DSPs view.

* The clock is the preset's **placed** Fmax, found as ``hwaccel advise`` finds it
  (:func:`hwaccel.impl.placed.placed_report`: the ECP5 implementation report
  ``build/impl/<slug>-ecp5/report.json``, else the placed clock committed in ``published.json``
  with its source); never a nominal clock.
* DSPs per instance come from the same placement when it is build/impl's (the design as it is),
  else from the preset's Yosys statistics there (``yosys_stat.json``: its ``MULT18X18D``
  cells, the design as it is), else from the committed placement's resources (which may be an
  earlier revision's: its source says so); N instances use N times that. The
  links and the host-port arbiter use none (their ECP5 reports, ``hwaccel synth --preset
  link_tiny`` and ``link_arbiter_tiny``, map no multiplier), so a system's DSPs are the
  instances'. The two-instance top placed on the ECP5-85F (``pipeline_tiny_conv_x2``,
  docs/parallel-ecp5.md) bears it out: its 124 MULT18X18D are its instances' 62 each.
* Either figure may be stated instead (``--clock-mhz``, ``--dsps-per-instance``); the source
  then says so.

A preset with neither a placement nor stated figures has no such view: :func:`placement`
returns ``None`` and the reason, which names the command that places it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["Placement", "placement", "yosys_dsps", "DSP_CELL"]

#: The ECP5 DSP cell Yosys maps multipliers to (one per int8 MAC or wider product).
DSP_CELL = "MULT18X18D"


@dataclass(frozen=True)
class Placement:
    """A preset's clock and DSPs per instance, with where each figure comes from."""

    fmax_mhz: float
    dsp_per_instance: int
    source: str

    def __post_init__(self):
        if not self.fmax_mhz > 0:
            raise ValueError(f"the clock must be positive, not {self.fmax_mhz!r} MHz")
        if isinstance(self.dsp_per_instance, bool) or not isinstance(self.dsp_per_instance, int) \
                or self.dsp_per_instance < 1:
            raise ValueError(f"DSPs per instance must be an integer >= 1, not "
                             f"{self.dsp_per_instance!r}")

    def dsps(self, instances: int) -> int:
        """The DSPs of ``instances`` instances (links and arbiters use none)."""
        return self.dsp_per_instance * instances

    def samples_per_second(self, batch: int, cycles: int) -> float:
        """``batch`` samples in ``cycles`` cycles at :attr:`fmax_mhz`."""
        return batch * self.fmax_mhz * 1e6 / cycles


def yosys_dsps(cfg) -> tuple[int | None, str]:
    """``(MULT18X18D cells, where)`` of the preset's ECP5 Yosys statistics, or ``(None, why)``."""
    from ..impl.placed import ecp5_file

    path = ecp5_file(cfg, "yosys_stat.json")
    try:
        cells = json.loads(path.read_text())["design"].get("num_cells_by_type", {})
    except (OSError, ValueError, KeyError):
        return None, f"no Yosys statistics at {path}"
    return int(cells.get(DSP_CELL, 0)), f"{DSP_CELL} cells of {path} (Yosys)"


def _local_report(cfg) -> bool:
    """Whether build/impl holds the preset's placed ECP5 report (not only a committed one)."""
    from ..impl.placed import ecp5_file

    return ecp5_file(cfg).exists()


def placement(cfg, *, fmax_mhz: float | None = None,
              dsp_per_instance: int | None = None) -> tuple[Placement | None, str]:
    """``(Placement, where)`` of preset ``cfg`` (see the module docstring), figures given here
    taking the place of the found ones; ``(None, why)`` when a figure is found nowhere."""
    from ..impl.placed import placed_report

    report, where = placed_report(cfg)
    clock_from = "stated" if fmax_mhz is not None else where
    if fmax_mhz is None:
        if report is None:
            return None, f"no placed Fmax for {cfg.slug}: {where}, or give --clock-mhz"
        fmax_mhz = float(report["fmax_mhz"])
    dsp_from = "stated"
    if dsp_per_instance is None:
        placed = ((report or {}).get("resources") or {}).get("dsp")
        local = report is not None and _local_report(cfg)
        synthesized, dsp_from = yosys_dsps(cfg)
        if placed and (local or not synthesized):
            dsp_per_instance, dsp_from = int(placed), where
        elif synthesized:
            dsp_per_instance = synthesized
        else:
            return None, (f"no DSP count for {cfg.slug}: {dsp_from}; run `hwaccel synth "
                          f"--preset {cfg.name} --target ecp5` or give --dsps-per-instance")
    dsp_from = "the same placement" if dsp_from == clock_from else dsp_from
    source = (f"Fmax {fmax_mhz:g} MHz ({clock_from}); {dsp_per_instance} DSPs an instance "
              f"({dsp_from})")
    return Placement(float(fmax_mhz), int(dsp_per_instance), source), source
