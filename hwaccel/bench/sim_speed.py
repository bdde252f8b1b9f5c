"""Simulated cycles per wall second: the 16x16 array under cocotb, Python driving every cycle.

Reports the median of ``--repeats`` GEMMs (Python drives both input streams and reads the result
stream every cycle) and, measured right after on the same build, the rate of a bench that only
awaits the clock: their ratio is stable on a noisy machine even when the absolute rates are not.
"""

from __future__ import annotations

from ..generators.systolic.config import SystolicConfig
from ..sim.runner import design_for, run_bench

COLUMNS = ["design", "cycles", "seconds", "cycles_per_second", "clock_only_cycles_per_second",
           "fraction_of_clock_only"]


def add_arguments(p) -> None:
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--cols", type=int, default=16)
    p.add_argument("--dataflow", choices=["os", "ws"], default="os")
    p.add_argument("--size", type=int, default=256, help="GEMM size M = K = N (default 256)")
    p.add_argument("--repeats", type=int, default=3, help="runs; the median is reported")


def run(args) -> list[dict]:
    cfg = SystolicConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                         name=f"{args.dataflow}_{args.rows}x{args.cols}")
    design = design_for(cfg)
    shapes = {f"{args.size}^3#{i}": [args.size] * 3 for i in range(args.repeats)}
    res = run_bench(design, "sim.tb_systolic", {"mode": "shapes", "shapes": shapes})
    runs = sorted(res["cases"], key=lambda c: c["sim_cycles"] / c["sim_seconds"])
    mid = runs[len(runs) // 2]
    # The same design with Python only awaiting the clock, measured right after: the ceiling.
    clock = run_bench(design, "sim.tb_systolic",
                      {"mode": "clock", "cycles": mid["sim_cycles"]})["cases"][0]
    clock_rate = clock["sim_cycles"] / clock["sim_seconds"]
    rate = mid["sim_cycles"] / mid["sim_seconds"]
    return [{
        "design": design.top,
        "cycles": mid["sim_cycles"],
        "seconds": mid["sim_seconds"],
        "cycles_per_second": rate,
        "clock_only_cycles_per_second": clock_rate,
        "fraction_of_clock_only": rate / clock_rate,
        "runs": len(runs),
        "all_cycles_per_second": [c["sim_cycles"] / c["sim_seconds"] for c in runs],
    }]
