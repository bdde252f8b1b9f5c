"""``modelled`` rows of ``hwaccel advise``: the accelerator on an FPGA and as an ASIC.

Cycles come from the exact cycle model on the programs the compiler emits for the batch
(:func:`hwaccel.generators.accel.perf.program_perf` of every program, plus one cycle per word
the host writes between programs, as ``hwaccel bench accel --model-only`` counts them; a batch
larger than one program holds runs as consecutive programs, as the runtime runs it). The
counters summed over those programs feed the energy models.

* An FPGA preset (its name starts with ``ecp5``): latency = cycles / the placed Fmax of its
  ECP5 implementation report (``build/impl/<slug>-ecp5/report.json``, written by ``hwaccel
  synth --preset P --target ecp5``), resources from the same report. Without one, a placed
  clock committed with its source (:mod:`hwaccel.impl.placed`) when there is one,
  else latency ``None`` and a note naming the command that places it. Energy from
  :func:`hwaccel.energy.fpga_estimate` (rough, as it says).
* Any other preset is an ASIC configuration at ``node`` nm and a stated clock: latency =
  cycles / clock, area from :func:`hwaccel.impl.asic.asic_report` (a gate-level synthesis, slow
  the first time; ``synth=False`` reads the recorded one, :mod:`hwaccel.impl.asic_recorded`,
  or leaves it ``None``), energy from
  :func:`hwaccel.energy.estimate`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..impl.placed import placed_report
from .rows import AdviseRow

__all__ = ["Modelled", "is_fpga", "model_batch", "fpga_row", "asic_row", "preset_row",
           "MODEL_SOURCE"]

MODEL_SOURCE = ("cycle model: hwaccel.generators.accel.perf.program_perf on the compiled "
                "programs (equal to the RTL's counters)")


def is_fpga(cfg) -> bool:
    """Presets sized for an ECP5 part (``ecp5``, ``ecp5_attention``) are FPGA rows."""
    return cfg.name.startswith("ecp5")


@dataclass(frozen=True)
class Modelled:
    """What the cycle model says of one batch on one preset."""

    cycles: int            # the programs' cycles plus the host's words between them
    counters: dict         # summed over the programs
    host_cycles: int       # words the host writes between programs, a cycle each
    programs: int
    macs: int
    transfer: dict         # hwaccel.energy.host_transfer summed: words and bits moved
    batches: int = 1       # lowerings of at most the preset's max_batch samples, in turn
    max_batch: int = 1

    def extra(self, cfg) -> dict:
        """The figures the row's numbers come from (the JSON report's ``extra``)."""
        return {"macs": self.macs, "mac_units": cfg.macs, "programs": self.programs,
                "host_cycles": self.host_cycles, "counters": dict(self.counters),
                "host_transfer": self.transfer}

    @property
    def note(self) -> str:
        if self.batches == 1:
            return ""
        return (f"{self.batches} programs of at most {self.max_batch} samples (the preset's "
                f"limit) in turn; the host's loads between them are not in the cycles")


def model_batch(cm, x) -> Modelled:
    """The exact model of the batch ``x`` (float inputs) on ``cm``'s preset; raises what
    lowering raises (``cm.refusal``, or a batch that does not fit)."""
    from ..energy import host_transfer
    from ..generators.accel.perf import program_perf

    counters: dict[str, int] = {}
    transfer: dict[str, int] = {}
    host = programs = 0
    batches = 0
    for _, lowered in cm.lower_batches(cm.quantize_input(x)):
        batches += 1
        for p in lowered.programs:
            for k, v in program_perf(cm.config, p.commands).counters.items():
                counters[k] = counters.get(k, 0) + v
            programs += 1
        host += lowered.host_words
        for k, v in host_transfer(cm.config, lowered).items():
            transfer[k] = transfer.get(k, 0) + v
    return Modelled(counters["cycles"] + host, counters, host, programs,
                    cm.macs_per_sample * len(x), transfer, batches, cm.max_batch)


def per_inference(energy, batch: int) -> dict:
    """``energy_uj`` (the middle of the range) and ``energy_range_uj`` per inference: the
    batch's energy over its samples (``None`` without an energy)."""
    if energy is None:
        return {"energy_uj": None, "energy_range_uj": None}
    low, high = energy.low_uj / batch, energy.high_uj / batch
    return {"energy_uj": (low + high) / 2, "energy_range_uj": (low, high)}


# --- FPGA ------------------------------------------------------------------------------------
def _fpga_energy(cfg, model: Modelled, fmax_mhz: float, resources: dict | None):
    """``(Energy, note)`` of :func:`hwaccel.energy.fpga_estimate`, or ``(None, why not)``."""
    from ..energy import fpga_estimate

    if not resources:
        return None, "energy not modelled: no placed resources for the FPGA estimate"
    try:
        est = fpga_estimate(cfg, model.counters, resources, fmax_mhz,
                            host_words=model.transfer["words"],
                            host_bits=model.transfer["bits"], macs=model.macs)
    except ValueError as exc:   # e.g. a counter the model needs is not counted yet
        return None, f"energy not modelled: {exc}"
    return est, f"energy: {getattr(est, 'label', 'rough FPGA estimate')}"


def fpga_row(cm, model: Modelled, batch: int) -> AdviseRow:
    """The FPGA row of ``cm``'s preset (see the module docstring)."""
    cfg = cm.config
    placed, where = placed_report(cfg)
    base = dict(platform=f"FPGA {cfg.name} (ECP5-85F)", kind="modelled", batch=batch,
                preset=cfg.slug, cycles=model.cycles,
                extra=model.extra(cfg))
    if placed is None:
        return AdviseRow(source=MODEL_SOURCE, note=where, **base)
    fmax = placed["fmax_mhz"]
    latency = model.cycles / fmax
    if placed.get("fmax_median_mhz"):   # three or more seeds of the netlist placed
        median = placed["fmax_median_mhz"]
        base["extra"] |= {"clock_median_mhz": median,
                          "latency_median_us": model.cycles / median,
                          "clock_seeds_mhz": placed["seeds"]}
    energy, note = _fpga_energy(cfg, model, fmax, placed["resources"])
    source = f"{MODEL_SOURCE} x {where}"
    if energy is not None:
        source += f"; energy: hwaccel.energy.fpga_estimate ({'; '.join(energy.sources)})"
        base["extra"]["batch_breakdown_uj"] = {k: list(v) for k, v in energy.breakdown.items()}
    return AdviseRow(source=source, latency_us=latency,
                     throughput_per_s=batch / latency * 1e6, clock_mhz=fmax,
                     clock_source=where, resources=placed["resources"],
                     **per_inference(energy, batch),
                     note="; ".join(n for n in (model.note, note) if n), **base)


# --- ASIC ------------------------------------------------------------------------------------
def _asic_area(cfg, node: int, synth: bool):
    """``(mm2, report or None, note)`` of :func:`hwaccel.impl.asic.asic_report`."""
    from ..impl.asic import asic_report
    from ..impl.tools import ImplError

    if not synth:   # no Yosys run: the recorded synthesis (its own here, else committed)
        rep = asic_report(cfg.slug, node, recorded=True)
        if rep is None:
            return None, None, "area not synthesized (--no-synth) and none recorded"
        return (rep.get("area_mm2"), rep,
                f"area: pre-layout estimate (hwaccel.impl.asic) of the {rep['recorded']}")

    try:
        rep = asic_report(cfg.slug, node)
    except ImplError as exc:   # the tool failed: the row keeps its other figures, says so
        log = str(exc).rsplit("[log: ", 1)
        where = f" (log: {log[1].rstrip(']')})" if len(log) == 2 else ""
        return None, None, f"area not synthesized: the gate-level synthesis failed{where}"
    return rep.get("area_mm2"), rep, "area: pre-layout estimate (hwaccel.impl.asic)"


def _asic_energy(cfg, model: Modelled, node: int, clock_mhz: float, flip_flops: int | None):
    """``(Energy, note)``: :func:`hwaccel.energy.estimate` of the counters at ``node`` (static
    energy at the stated clock; the host's transfers counted), or ``(None, why not)``."""
    from ..energy import estimate

    try:
        est = estimate(cfg, model.counters, node=node, host_words=model.transfer["words"],
                       host_bits=model.transfer["bits"], clock_mhz=clock_mhz, macs=model.macs,
                       flip_flops=flip_flops)
    except ValueError as exc:   # e.g. a counter the model needs is not counted yet
        return None, f"energy not modelled: {exc}"
    return est, f"energy: hwaccel.energy.estimate at {node} nm, host transfers included"


def asic_row(cm, model: Modelled, batch: int, *, node: int, clock_mhz: float,
             synth: bool) -> AdviseRow:
    """The ASIC row of ``cm``'s preset at ``node`` nm and the stated ``clock_mhz``."""
    cfg = cm.config
    area, rep, area_note = _asic_area(cfg, node, synth)
    energy, energy_note = _asic_energy(cfg, model, node, clock_mhz,
                                       None if rep is None else rep.get("flip_flops"))
    latency = model.cycles / clock_mhz
    sources = [MODEL_SOURCE, f"at a stated clock of {clock_mhz:g} MHz (--asic-mhz; not a "
                             f"timing result)"]
    if energy is not None:
        sources.append(f"energy: hwaccel.energy.estimate ({'; '.join(energy.sources)})")
    if rep is not None:
        sources.append(f"area: hwaccel.impl.asic.asic_report({cfg.slug!r}, {node}), "
                       f"{rep.get('label', 'pre-layout estimate')}")
    return AdviseRow(
        platform=f"ASIC {cfg.name} ({node} nm)", kind="modelled", batch=batch,
        source="; ".join(sources), latency_us=latency, throughput_per_s=batch / latency * 1e6,
        **per_inference(energy, batch),
        area_mm2=area, preset=cfg.slug, cycles=model.cycles, clock_mhz=clock_mhz,
        clock_source="stated (--asic-mhz)", node_nm=node,
        note="; ".join(n for n in (model.note, area_note, energy_note) if n),
        extra={**model.extra(cfg),
               **({"batch_breakdown_uj": {k: list(v) for k, v in energy.breakdown.items()}}
                  if energy is not None else {}),
               **({"asic": rep} if rep is not None else {})})


def preset_row(cm, x, batch: int, *, node: int, clock_mhz: float, synth: bool) -> AdviseRow:
    """The FPGA or ASIC row of ``cm``'s preset for the batch ``x``; a preset that cannot run
    the model (or the batch) gets a row of ``None`` figures whose note is the refusal."""
    from ..compiler.lower import LoweringError
    from ..compiler.memory import DoesNotFit

    cfg = cm.config
    platform = (f"FPGA {cfg.name} (ECP5-85F)" if is_fpga(cfg)
                else f"ASIC {cfg.name} ({node} nm)")
    try:
        model = model_batch(cm, x)
    except (LoweringError, DoesNotFit) as exc:
        first = str(exc).splitlines()[0]
        return AdviseRow(platform, "modelled", batch, MODEL_SOURCE, preset=cfg.slug,
                         node_nm=None if is_fpga(cfg) else node,
                         note=f"not modelled: refused by {cfg.slug}: {first}")
    if is_fpga(cfg):
        return fpga_row(cm, model, batch)
    return asic_row(cm, model, batch, node=node, clock_mhz=clock_mhz, synth=synth)
