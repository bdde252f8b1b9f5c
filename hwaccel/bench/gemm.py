"""GEMM cycles of the systolic array on the RTL (Verilator), against ideal and SCALE-Sim."""

from __future__ import annotations

from ..generators.systolic.cases import BENCH_SHAPES
from ..generators.systolic.config import SystolicConfig
from ..generators.systolic.model import ideal_cycles, scalesim_cycles
from ..sim.runner import design_for, run_bench

COLUMNS = ["shape", "dataflow", "rows", "cols", "cycles", "ideal_cycles", "scalesim_cycles",
           "utilization", "vs_scalesim"]


def add_arguments(p) -> None:
    p.add_argument("--rows", type=int, default=16)
    p.add_argument("--cols", type=int, default=16)
    p.add_argument("--dataflow", choices=["os", "ws"], default="os")
    p.add_argument("--shapes", default=",".join(BENCH_SHAPES),
                   help=f"comma-separated subset of {', '.join(BENCH_SHAPES)}")
    p.add_argument("--seed", type=int, default=0)


def run(args) -> list[dict]:
    cfg = SystolicConfig(rows=args.rows, cols=args.cols, dataflow=args.dataflow,
                         name=f"{args.dataflow}_{args.rows}x{args.cols}")
    names = [s.strip() for s in args.shapes.split(",") if s.strip()]
    unknown = [s for s in names if s not in BENCH_SHAPES]
    if unknown:
        raise ValueError(f"unknown shape(s) {', '.join(unknown)}; known: {', '.join(BENCH_SHAPES)}")
    shapes = {n: BENCH_SHAPES[n] for n in names}
    res = run_bench(design_for(cfg), "sim.tb_systolic",
                    {"mode": "shapes", "shapes": shapes, "seed": args.seed}, seed=args.seed)
    rows = []
    for case in res["cases"]:
        m, k, n = case["shape"]
        ideal = ideal_cycles(cfg, m, k, n)
        ss = scalesim_cycles(cfg.dataflow, cfg.rows, cfg.cols, m, k, n)
        rows.append({
            "shape": case["name"], "dataflow": cfg.dataflow, "rows": cfg.rows, "cols": cfg.cols,
            "M": m, "K": k, "N": n, "cycles": case["cycles"], "ideal_cycles": ideal,
            "scalesim_cycles": ss, "utilization": m * k * n / (case["cycles"] * cfg.macs),
            "vs_scalesim": case["cycles"] / ss, "mismatches": case["mismatches"],
        })
    return rows
