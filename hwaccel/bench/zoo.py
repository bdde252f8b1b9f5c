"""``hwaccel bench zoo``: mobile ImageNet-class networks (:mod:`hwaccel.models.zoo`), compiled.

Each model (untrained, a fixed seed's weights) is compiled for each preset, calibrated on 16
random inputs of ``side x side``, and lowered for one. A row gives the model's real MACs a
sample, ``model_cycles`` (the cycle model of every program, :func:`hwaccel.generators.accel.
perf.program_perf`: exact to the RTL's counters, which the suite checks on the small presets),
``golden_twin`` (the golden interpreter's outputs equal the integer twin's on two inputs) and
``rel_err`` (the twin's largest error against the float model, a share of its largest output).
A model the preset refuses gets one row whose ``note`` is the refusal, in one line. No RTL run:
``default``'s Verilator build takes tens of minutes.
"""

from __future__ import annotations

import time

import numpy as np
import torch

__all__ = ["run"]

COLUMNS = ["workload", "preset", "width", "side", "macs", "model_cycles", "utilization",
           "golden_twin", "rel_err", "seconds", "note"]


def add_arguments(p) -> None:
    from ..models.zoo import ZOO

    p.add_argument("--preset", default="default,default_attention",
                   help="comma-separated accelerator presets")
    p.add_argument("--model", default=",".join(ZOO),
                   help=f"comma-separated models: {', '.join(ZOO)}")
    p.add_argument("--width", type=float, default=1.0, help="width multiplier")
    p.add_argument("--side", type=int, default=96, help="input side (RGB, side x side)")
    p.add_argument("--seed", type=int, default=0)


def zoo_row(name: str, preset: str, width: float, side: int, seed: int = 0) -> dict:
    """One model on one preset: see the module docstring."""
    import hwaccel

    from ..compiler import DoesNotFit, LoweringError, UnsupportedOp
    from ..generators.accel.perf import program_perf
    from ..models.zoo import zoo_model

    model = zoo_model(name, width, seed=seed)
    x = torch.randn(16, 3, side, side, generator=torch.Generator().manual_seed(seed + 1))
    row = {"workload": name, "preset": preset, "width": width, "side": side}
    t0 = time.perf_counter()
    try:
        cm = hwaccel.compile(model, x[:2], preset=preset, calibration=x)
        x_int = cm.quantize_input(x[:2])
        gold = cm.execute("golden", x[:2]).int_logits
        twin = cm.int8_forward(x_int)
        lowered = cm.lower(x_int[:1])
        cycles = sum(program_perf(cm.config, load.commands).cycles for load in lowered.loads())
    except (UnsupportedOp, LoweringError, DoesNotFit) as exc:
        return row | {"note": " ".join(str(exc).split()), "seconds": time.perf_counter() - t0}
    with torch.no_grad():
        ref = model(x[:2]).numpy()
    err = np.abs(twin * cm.qgraph.output_scale - ref).max() / np.abs(ref).max()
    return row | {"macs": cm.macs_per_sample, "model_cycles": cycles,
                  "utilization": cm.macs_per_sample / (cycles * cm.config.macs),
                  "golden_twin": bool(np.array_equal(gold, twin)), "rel_err": float(err),
                  "mismatches": int(np.count_nonzero(gold != twin)),
                  "seconds": time.perf_counter() - t0, "note": ""}


def run(args) -> list[dict]:
    return [zoo_row(name, preset, args.width, args.side, args.seed)
            for name in args.model.split(",") for preset in args.preset.split(",")]
