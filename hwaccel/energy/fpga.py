"""A rough FPGA (ECP5) energy estimate: the ASIC event model times the FPGA/ASIC gap.

ROUGH, and labelled so: no per-resource ECP5 energy is in the cited table, so the dynamic
energy is the 45 nm ASIC event model of :mod:`.model` (the ECP5 is a 40 nm part) with the
design's own flip-flops (``resources["ff"]`` from its synthesis report) clocked every cycle at
``fmax_mhz``, times Kuon & Rose's measured FPGA/ASIC dynamic power ratio (14 for LUT logic and
flip-flops; smaller with hard multipliers and memories, which the accelerator uses, so the
range is pessimistic). The host's DRAM traffic is added as for the ASIC (it is off-chip either
way). Static power x run time is added by default: the table's ``ecp5_85f_static_power``
(the LFE5U-85F's typical standby supply currents times its supplies, 298.2-313.11 mW; the
entry shows the arithmetic), over ``cycles / fmax_mhz`` seconds, so a long, slow run pays
for its idle fabric. ``static_mw=`` overrides it (one figure for both ends, 0 to leave it
out); the result's sources say which was used.
"""

from __future__ import annotations

from .model import Energy, estimate
from .table import entry, event, source_text

__all__ = ["fpga_estimate"]

_RESOURCES = ("lut", "ff", "dsp", "bram")
_STATIC = "ecp5_85f_static_power"   # the presets' device (impl/target.py: LFE5U-85F)


def fpga_estimate(cfg, counters: dict, resources: dict, fmax_mhz: float, *,
                  host_words: int = 0, host_bits: int | None = None, macs: int | None = None,
                  static_mw: float | None = None) -> Energy:
    """The rough energy range of the run ``counters`` on ``cfg`` built for the ECP5 with
    ``resources`` (``lut``, ``ff``, ``dsp``, ``bram``: a synthesis report's) at ``fmax_mhz``,
    with the device's static power over the run's time (``static_mw`` in mW overrides the
    table's figure)."""
    if not isinstance(resources, dict):
        raise TypeError(f"resources must be a dict with {', '.join(_RESOURCES)}, not "
                        f"{resources!r}")
    missing = [k for k in _RESOURCES if k not in resources]
    if missing:
        raise ValueError(f"resources lack {', '.join(missing)} (a synthesis report's "
                         f"{', '.join(_RESOURCES)})")
    ff = resources["ff"]
    if isinstance(ff, bool) or not isinstance(ff, int) or ff < 0:
        raise ValueError(f"resources['ff'] must be a non-negative integer, not {ff!r}")
    if not isinstance(fmax_mhz, (int, float)) or isinstance(fmax_mhz, bool) or fmax_mhz <= 0:
        raise ValueError(f"fmax_mhz must be a positive number, not {fmax_mhz!r}")
    if static_mw is not None and (isinstance(static_mw, bool) or
                                  not isinstance(static_mw, (int, float)) or static_mw < 0):
        raise ValueError(f"static_mw must be a non-negative number, not {static_mw!r}")
    asic = estimate(cfg, counters, node=45, host_words=host_words, host_bits=host_bits,
                    clock_mhz=float(fmax_mhz), macs=macs, flip_flops=ff)
    glo, ghi = event("fpga_dynamic_gap")
    breakdown = {k: (lo * glo, hi * ghi) for k, (lo, hi) in asic.breakdown.items()
                 if k not in ("static", "host")}
    breakdown["host"] = asic.breakdown["host"]
    seconds = counters["cycles"] / (fmax_mhz * 1e6)
    if static_mw is None:
        slo, shi = event(_STATIC)
        static_text = (f"static {slo:g}-{shi:g} mW (LFE5U-85F typical standby, "
                       f"{source_text(entry(_STATIC)['source'])})")
    else:
        slo = shi = float(static_mw)
        static_text = f"static {static_mw:g} mW as given"
    breakdown["static"] = (slo * 1e-3 * seconds * 1e6, shi * 1e-3 * seconds * 1e6)   # uJ
    sources = [source_text("kuon2007"), source_text("horowitz2014"), source_text("cacti7"),
               f"flip-flops: {ff} (the synthesis report's), clocked at {fmax_mhz:g} MHz",
               "rough: the 45 nm ASIC event model x the FPGA/ASIC dynamic gap; "
               + static_text + f" x {seconds:.6g} s"]
    events = dict(asic.events) | {"resources": {k: resources[k] for k in _RESOURCES},
                                  "fpga_gap": [glo, ghi], "seconds": seconds}
    return Energy(sum(lo for lo, _ in breakdown.values()),
                  sum(hi for _, hi in breakdown.values()), 45, breakdown, sources,
                  float(fmax_mhz), events,
                  label="FPGA estimate (rough, static power included)")
