"""``hwaccel bench accel --workload NAMES``: the trained reference models, compiled, on the RTL.

Each named workload (:data:`hwaccel.models.WORKLOADS`) is loaded trained (cached), compiled for
the preset (:func:`hwaccel.runtime.compile`, calibrated on 512 training samples as ``hwaccel
compare`` does), lowered for the first ``batch`` held-out samples and run program by program on
the accelerator's Verilog in the C++ harness (:class:`hwaccel.sim.host.HarnessHost`, as the
runtime's ``rtl`` backend runs it: a soft reset, the host writes, start, clock until idle). The
outputs are compared bit for bit with the golden interpreter's (``mismatches``).

A workload row's ``cycles`` is the hardware's own ``cycles`` counter summed over the model's
programs, plus ``host_cycles``: one cycle per word the host writes between programs (the next
weight group's weights and commands), as the runtime counts them; ``host_cycles`` is also shown
on its own. ``model_cycles`` is the same sum from the cycle model
(:func:`hwaccel.generators.accel.perf.program_perf` of every program, plus the same host words);
a difference is printed on stderr and makes ``cycles_match`` false. ``macs`` are the model's
real MACs per sample (the compiler's float IR, the counting of the published figures) times the
batch; ``utilization`` = macs / (cycles x mac_units).

Per-layer rows (``layer`` not ``all``) come from the cycle model's per-command figures, each
command attributed to the layer that emitted it (``source`` = ``perf model``); a ``DONE`` row
holds the programs' DONE commands and a ``host`` row the host words. A workload the preset
refuses gets one row whose ``note`` is the refusal (one line; a transformer on a preset without
attention units names both). A model with attention (``transformer``, ``transformer_tokens``, on
a preset of :data:`~hwaccel.generators.accel.config.MODEL_PRESETS`) also gets one row per op
class and the issue's figures in its whole row (:mod:`.ops`). ``--model-only`` skips the RTL
(the whole row has ``model_cycles`` and no ``cycles``): for ``default_attention``, whose
Verilator build takes about 20 minutes.
"""

from __future__ import annotations

import sys

import numpy as np

__all__ = ["run_workloads", "workload_rows", "model_rows", "layer_commands"]


def layer_commands(cm, x_int) -> tuple[object, list[list[str]]]:
    """``(lowered, names)``: the lowering of ``x_int`` and, per program, the layer that emitted
    each command (``"DONE"`` for the closing one), as the lowering records it
    (:attr:`hwaccel.compiler.lowered.Lowered.layer_pcs`)."""
    lowered = cm.lower(x_int)
    return lowered, [list(names) for names in lowered.layer_pcs]


def _golden(cfg, lowered) -> np.ndarray:
    from ..generators.accel.model import run_program

    act = lowered.builder.act
    for k, load in enumerate(lowered.loads()):
        res = run_program(cfg, act, load.wgt, load.commands)
        if res.error or not res.done:
            raise RuntimeError(f"golden: program {k + 1} faulted: {res.cause.name} at "
                               f"pc {res.pc}")
        act = res.act
    return lowered.ints(act)


def _rtl(host, cfg, lowered) -> tuple[np.ndarray, list[dict]]:
    """The outputs and each program's counters, the runtime's rtl way."""
    counters = []
    for k, load in enumerate(lowered.loads()):
        host.soft_reset()
        host.load(load)
        host.run(limit=500_000_000)
        status = host.status()
        if status["error"] or not status["done"]:
            raise RuntimeError(f"rtl: program {k + 1} faulted: {status['cause'].name} at "
                               f"pc {status['pc']}")
        counters.append(host.counters())
    first, words = lowered.span
    image = np.zeros((cfg.act_depth, cfg.lanes), dtype=np.int64)
    image[first:first + words] = host.read_act(first, words)
    return lowered.ints(image), counters


def _layer_rows(cm, lowered, names, base: dict) -> tuple[int, list[dict]]:
    """The cycle model's total and its per-layer rows."""
    from ..compiler import ir
    from ..compiler.lower_attention import projection_groups
    from ..generators.accel.perf import program_perf

    cfg, shapes = cm.config, cm.qgraph.shapes()
    per: dict[str, dict] = {}
    total = 0
    for p, who in zip(lowered.programs, names):
        perf = program_perf(cfg, p.commands)
        total += perf.cycles
        for cmd in perf.commands:
            r = per.setdefault(who[cmd.pc], {"cycles": 0, "commands": 0, "mac_slots": 0,
                                             "load_cycles": 0})
            r["cycles"] += cmd.cycles
            r["commands"] += 1
            r["mac_slots"] += cmd.mac_slots
            r["load_cycles"] += cmd.load_cycles
    ops = {op.name: op for op in cm.qgraph.ops}
    # Projections joined into one GEMM (lower_attention.projection_groups): the GEMM is its
    # group's first layer's, so the others' MACs are counted there.
    joint = projection_groups(cm.qgraph, cfg.lanes)
    rows = []
    for name, r in sorted(per.items(), key=lambda kv: kv[0] == "DONE"):  # DONE last
        mine = [name, *(m.name for m in joint.get(name, ()) if m.name not in per)]
        macs = (sum(ir.macs(ops[n], shapes[ops[n].inputs[0]]) for n in mine) * base["batch"]
                if name in ops else 0)
        rows.append(base | {"layer": name, "model_cycles": r["cycles"], "macs": macs,
                            "utilization": macs / (r["cycles"] * cfg.macs),
                            "commands": r["commands"], "load_cycles": r["load_cycles"],
                            "source": "perf model", "note": "cycle model"})
    host = lowered.host_words
    if host:
        rows.append(base | {"layer": "host", "model_cycles": host, "macs": 0,
                            "utilization": 0.0, "source": "host words",
                            "note": "host writes between programs"})
    return total + host, rows


def workload_rows(name: str, preset, batch: int = 1, *, host=None, layers: bool = True,
                  calibration: int = 512, rtl: bool = True) -> list[dict]:
    """The rows of reference workload ``name`` (trained, cached) on ``preset`` (a name or an
    AccelConfig) at ``batch``, on its first ``batch`` held-out samples: see :func:`model_rows`."""
    from ..models import WORKLOADS
    from ..models.train import load

    if name not in WORKLOADS:
        raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, not {name!r}")
    module, split = load(name)
    return model_rows(name, module, split.x_train[:calibration], split.x_test[:batch], preset,
                      host=host, layers=layers, published=WORKLOADS[name].published_macs,
                      rtl=rtl)


def _refusal(name: str, cfg, refusal) -> str:
    """The note of a refused workload: one line naming the workload and the preset."""
    from ..compiler.lower import AttentionNotLowered

    if isinstance(refusal, AttentionNotLowered):
        from ..generators.accel.config import MODEL_PRESETS

        with_units = [k for k, c in MODEL_PRESETS.items() if c.attention is not None]
        return (f"refused: workload {name} needs attention units ({refusal.where} is "
                f"{refusal.op}) and preset {cfg.name} has none; presets with them: "
                f"{', '.join(with_units)}")
    return f"refused by {cfg.slug}: {refusal}"


def model_rows(name: str, module, calibration, x, preset, *, host=None, layers: bool = True,
               published: str | None = None, rtl: bool = True) -> list[dict]:
    """The rows of ``module`` compiled for ``preset`` (calibrated on ``calibration``) and run
    on the batch ``x``: the whole model first (``layer`` = ``all``), then, for a model with
    attention, one row per op class (:func:`.ops.op_summary`, ``layer`` = ``ops: CLASS``; the
    whole row gets :func:`.ops.headline`'s figures and ``ops``), then its layers.
    ``host``: a HarnessHost of the preset's design (opened, and closed, here when None).
    ``rtl=False``: the cycle model only (no Verilator build, no ``cycles``; the outputs are
    the golden interpreter's, not compared)."""
    from ..runtime import compile as compile_model
    from .ops import headline, op_summary

    cm = compile_model(module, calibration[:8], preset=preset, calibration=calibration,
                       strict=False)
    cfg, batch = cm.config, len(x)
    base = {"workload": name, "batch": batch, "mac_units": cfg.macs}
    macs = cm.macs_per_sample * batch
    if cm.refusal is not None:
        return [base | {"layer": "all", "macs": macs, "published_macs": published,
                        "note": _refusal(name, cfg, cm.refusal)}]
    lowered, names = layer_commands(cm, cm.quantize_input(x))
    model_cycles, layer_rows = _layer_rows(cm, lowered, names, base)
    from ..generators.accel.perf_events import program_counters

    counted = program_counters(cfg, lowered.programs)   # the model's counters, all programs
    attention = any(type(op).__name__ in ("QSoftmax", "QMatMul") for op in cm.qgraph.ops)
    summary = ([base | r for r in op_summary(cm, layer_rows, model_cycles, cfg.macs)]
               if attention else [])
    if not rtl:
        row = base | {"layer": "all", "model_cycles": model_cycles,
                      "host_cycles": lowered.host_words, "programs": len(lowered.programs),
                      "macs": macs, "published_macs": published,
                      "utilization": macs / (model_cycles * cfg.macs), "source": "perf model",
                      "note": "cycle model only (--model-only): not run on the RTL",
                      "model_counters": counted}
        if summary:
            row |= headline(summary, row["utilization"]) | {"ops": _ops(summary)}
        return [row] + summary + (layer_rows if layers else [])
    expect = _golden(cfg, lowered)
    own = host is None
    if own:
        from ..sim.host import HarnessHost
        from ..sim.runner import design_for

        host = HarnessHost(design_for(cfg), cfg)
    try:
        got, counters = _rtl(host, cfg, lowered)
    finally:
        if own:
            host.close()
    cycles = sum(c["cycles"] for c in counters) + lowered.host_words
    if cycles != model_cycles:
        print(f"hwaccel bench accel: MISMATCH {name}: the RTL counted {cycles:,} cycles, the "
              f"cycle model {model_cycles:,}", file=sys.stderr)
    wrong = int((got != expect).sum())
    if wrong:
        print(f"hwaccel bench accel: MISMATCH {name}: {wrong} output values of the RTL differ "
              f"from the golden interpreter's", file=sys.stderr)
    row = base | {"layer": "all", "cycles": cycles, "model_cycles": model_cycles,
                  "cycles_match": cycles == model_cycles, "host_cycles": lowered.host_words,
                  "programs": len(lowered.programs), "macs": macs, "published_macs": published,
                  "utilization": macs / (cycles * cfg.macs),
                  "mismatches": wrong,
                  "counters": [dict(c) for c in counters], "model_counters": counted}
    if summary:   # shares of the cycle model's total, equal to the RTL's when cycles_match
        row |= headline(summary, row["utilization"]) | {"ops": _ops(summary)}
    return [row] + summary + (layer_rows if layers else [])


def _ops(summary: list[dict]) -> dict:
    """The per-op breakdown of the whole row: class -> cycles, share, MACs, utilization."""
    return {r["op_class"]: {k: r[k] for k in ("model_cycles", "share", "macs", "utilization")
                            if k in r} for r in summary}


class _SharedHost:
    """One HarnessHost of ``cfg``'s design, built and opened when a workload first runs on it:
    a workload the preset refuses is reported without waiting for a Verilator build."""

    def __init__(self, cfg):
        self.cfg, self._host = cfg, None

    def __getattr__(self, name):
        if self._host is None:
            from ..sim.host import HarnessHost
            from ..sim.runner import design_for

            self._host = HarnessHost(design_for(self.cfg), self.cfg)
        return getattr(self._host, name)

    def close(self) -> None:
        if self._host is not None:
            self._host.close()


def run_workloads(args) -> list[dict]:
    """``--workload`` rows for every name in ``args.workload``, at ``args.batch``; one Verilator
    harness for them all, built when the first workload that compiles runs."""
    from ..generators.accel.config import MODEL_PRESETS, PRESETS

    cfg = (PRESETS | MODEL_PRESETS)[args.preset]
    names = [n.strip() for n in args.workload.split(",") if n.strip()]
    host = _SharedHost(cfg)
    rows = []
    try:
        for name in names:
            rows += workload_rows(name, cfg, args.batch, host=host, layers=not args.no_layers,
                                  rtl=not getattr(args, "model_only", False))
    finally:
        host.close()
    return rows
