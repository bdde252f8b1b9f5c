"""Energy per inference of the reference workloads: counters of the exact cycle model, priced.

``hwaccel bench energy --workload cnn --preset default [--node 45] [--batch 1] [--json]``
compiles each named workload for the preset (as ``hwaccel bench accel --workload`` does, cycle
model only: :func:`hwaccel.generators.accel.perf.program_perf` of every program, equal to the
RTL's counters), sums the programs' counters, counts the host's transfers (program image in,
outputs out: :func:`hwaccel.energy.host_transfer`) and prices them with
:func:`hwaccel.energy.estimate` at ``--node`` (ASIC, at ``--clock-mhz`` for static energy; the
default clock is stated). An ECP5 preset with a synthesis report (``hwaccel synth --preset P
--target ecp5``) also gets the rough FPGA estimate (:func:`hwaccel.energy.fpga_estimate`) at
its placed Fmax.

Rows: the whole workload (``component`` = ``all``: cycles, useful MACs, the energy range in µJ,
and ``chip_*``: the same without the host's DRAM traffic; with ``--json`` also µJ per
inference, the events counted, the breakdown and the sources), then one row per component of
the breakdown with its share of the high end.
"""

from __future__ import annotations

import sys

__all__ = ["add_arguments", "run", "workload_energy", "COLUMNS"]

COLUMNS = ["workload", "preset", "target", "node", "batch", "component", "cycles", "macs",
           "low_uj", "high_uj", "chip_low_uj", "chip_high_uj", "share_of_high", "note"]


def add_arguments(p) -> None:
    from ..energy import NODES
    from ..generators.accel.config import MODEL_PRESETS, PRESETS

    p.add_argument("--workload", default="cnn",
                   help="comma-separated reference models (cnn, lstm, resnet8, dscnn, "
                        "mobilenet, autoencoder, transformer, ...)")
    p.add_argument("--preset", default="default", choices=sorted(PRESETS | MODEL_PRESETS))
    p.add_argument("--node", type=int, default=45, choices=NODES, help="ASIC node in nm")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="ASIC clock for static energy (default: the model's stated clock)")
    p.add_argument("--flip-flops", type=int, default=None,
                   help="the design's flip-flop count (default: its recorded gate-level "
                        "synthesis, else the model's estimate)")


def _counters(cfg, programs) -> dict:
    from ..generators.accel.perf import program_perf

    total: dict = {}
    for p in programs:
        for k, v in program_perf(cfg, p.commands).counters.items():
            total[k] = total.get(k, 0) + v
    return total


def workload_energy(name: str, preset, *, batch: int = 1, node: int = 45,
                    clock_mhz: float | None = None, flip_flops: int | None = None,
                    calibration: int = 512) -> dict:
    """``{"cfg", "counters", "host", "macs", "energy", "refusal"}`` of reference workload
    ``name`` (trained, cached) compiled for ``preset`` and lowered for ``batch`` held-out
    samples; ``energy`` is None (and ``refusal`` says why) when the preset refuses it."""
    from ..energy import estimate, host_transfer
    from ..models import WORKLOADS
    from ..models.train import load
    from ..runtime import compile as compile_model

    if name not in WORKLOADS:
        raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, not {name!r}")
    module, split = load(name)
    x = split.x_test[:batch]
    cm = compile_model(module, split.x_train[:8], preset=preset,
                       calibration=split.x_train[:calibration], strict=False)
    cfg = cm.config
    macs = cm.macs_per_sample * len(x)
    if cm.refusal is not None:
        return {"cfg": cfg, "counters": None, "host": None, "macs": macs, "energy": None,
                "refusal": str(cm.refusal)}
    lowered = cm.lower(cm.quantize_input(x))
    counters = _counters(cfg, lowered.programs)
    host = host_transfer(cfg, lowered)
    energy = estimate(cfg, counters, node=node, host_words=host["words"],
                      host_bits=host["bits"], clock_mhz=clock_mhz, macs=macs,
                      flip_flops=flip_flops)
    return {"cfg": cfg, "counters": counters, "host": host, "macs": macs, "energy": energy,
            "refusal": None}


def _flip_flops(cfg, given: int | None) -> tuple[int | None, str]:
    """The flip-flops the clock term prices, and where the count came from: ``--flip-flops``,
    else the preset's recorded gate-level synthesis (as ``hwaccel advise`` reads it), else None
    (the energy model's estimate, a line through two small presets)."""
    from ..impl.asic_recorded import recorded_gates

    if given is not None:
        return given, f"flip-flops: {given:,} (--flip-flops)"
    gates, where = recorded_gates(cfg)
    if gates is None:
        return None, "flip-flops: the energy model's estimate (no gate-level synthesis recorded)"
    return gates["flip_flops"], f"flip-flops: {gates['flip_flops']:,} from the {where}"


def _report(cfg) -> dict | None:
    import json

    from ..impl.placed import ecp5_file

    path = ecp5_file(cfg)
    return json.loads(path.read_text()) if path.exists() else None


def _rows(name, cfg, r, e, batch, target, note: str = "") -> list[dict]:
    base = {"workload": name, "preset": cfg.name, "target": target, "node": e.node,
            "batch": batch}
    whole = base | {"component": "all", "cycles": r["counters"]["cycles"], "macs": r["macs"],
                    "low_uj": e.low_uj, "high_uj": e.high_uj,
                    "chip_low_uj": e.low_uj - e.breakdown["host"][0],
                    "chip_high_uj": e.high_uj - e.breakdown["host"][1],
                    "uj_per_inference": [e.low_uj / batch, e.high_uj / batch],
                    "note": e.label + f" at {e.clock_mhz:g} MHz" + (f"; {note}" if note else ""),
                    "energy": e.to_json(),
                    "host": r["host"], "counters": r["counters"]}
    rows = [whole]
    for k, (lo, hi) in sorted(e.breakdown.items(), key=lambda kv: -kv[1][1]):
        rows.append(base | {"component": k, "low_uj": lo, "high_uj": hi,
                            "share_of_high": hi / e.high_uj if e.high_uj else 0.0})
    return rows


def run(args) -> list[dict]:
    from ..energy import fpga_estimate
    from ..generators.accel.config import MODEL_PRESETS, PRESETS

    cfg = (PRESETS | MODEL_PRESETS)[args.preset]
    flip_flops, ff_note = _flip_flops(cfg, args.flip_flops)
    rows = []
    for name in [n.strip() for n in args.workload.split(",") if n.strip()]:
        r = workload_energy(name, cfg, batch=args.batch, node=args.node,
                            clock_mhz=args.clock_mhz, flip_flops=flip_flops)
        if r["energy"] is None:
            rows.append({"workload": name, "preset": cfg.name, "component": "all",
                         "note": f"refused by {cfg.slug}: {r['refusal']}"})
            continue
        rows += _rows(name, cfg, r, r["energy"], args.batch, f"asic {args.node} nm", ff_note)
        rep = _report(cfg)
        if rep is None:
            print(f"hwaccel bench energy: no FPGA estimate for {cfg.slug}: run `hwaccel synth "
                  f"--preset {cfg.name} --target ecp5` for its resources and Fmax",
                  file=sys.stderr)
            continue
        f = fpga_estimate(cfg, r["counters"], rep, rep["fmax_mhz"],
                          host_bits=r["host"]["bits"], macs=r["macs"])
        rows += _rows(name, cfg, r, f, args.batch, "ecp5 (rough)")
    return rows
