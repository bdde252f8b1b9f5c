"""LSTM cell engine cycles per step on the RTL (Verilator), against ideal and SCALE-Sim.

For I = H = 64 and each lane count P: one load of trained-range weights, then a T = 1 and a
T = 50 sequence, each measured from its first x beat accepted to its last h beat out.
``cycles_per_step`` is the steady state, ``(cycles(T=50) - cycles(T=1)) / 49``;
``sequence_cycles`` is cycles(T=50); ``ideal_cycles_per_step`` is ``4H (I + H) / P``;
``scalesim_cycles_per_step`` is SCALE-Sim's best of OS/WS/IS for the same product on a 16x16
array (M = 1, K = I + H, N = 4H). ``target`` is the issue's bound, 1.25 x ideal plus the fixed
latency of the MAC and gate pipelines.
"""

from __future__ import annotations

from ..generators.lstm.cell import MAC_LATENCY
from ..generators.lstm.config import LstmConfig
from ..generators.lstm.gate_unit import GATE_LATENCY
from ..generators.systolic.model import scalesim_cycles
from ..sim.runner import design_for, run_bench

COLUMNS = ["lanes", "cycles_per_step", "ideal_cycles_per_step", "utilization", "target",
           "scalesim_cycles_per_step", "speedup_vs_scalesim", "first_step_cycles",
           "sequence_cycles"]

SEQUENCE_LENGTH = 50


def add_arguments(p) -> None:
    p.add_argument("--lanes", default="16,64,256", help="comma-separated lane counts P")
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)


def scalesim_step(cfg: LstmConfig, rows: int = 16, cols: int = 16) -> int:
    """SCALE-Sim's best compute cycles for one step's gate product on a rows x cols array."""
    k, n = cfg.input_size + cfg.hidden_size, cfg.rows
    return min(scalesim_cycles(df, rows, cols, 1, k, n) for df in ("os", "ws", "is"))


def run(args) -> list[dict]:
    rows = []
    for lanes in (int(v) for v in str(args.lanes).split(",") if v.strip()):
        cfg = LstmConfig(input_size=args.input_size, hidden_size=args.hidden_size, lanes=lanes,
                         name=f"i{args.input_size}_h{args.hidden_size}_p{lanes}")
        if (args.input_size, args.hidden_size) == (64, 64):
            cfg = cfg.with_(name=f"ref_p{lanes}")   # the preset's RTL, already emitted
        res = run_bench(design_for(cfg), "sim.tb_lstm",
                        {"mode": "timing", "seed": args.seed, "lengths": [1, SEQUENCE_LENGTH]},
                        seed=args.seed)
        spans = {c["length"]: c["cycles"] for c in res["cases"]}
        per_step = (spans[SEQUENCE_LENGTH] - spans[1]) / (SEQUENCE_LENGTH - 1)
        ideal = cfg.ideal_cycles_per_step
        ss = scalesim_step(cfg)
        rows.append({
            "lanes": lanes, "input_size": cfg.input_size, "hidden_size": cfg.hidden_size,
            "cycles_per_step": per_step, "ideal_cycles_per_step": ideal,
            "utilization": cfg.macs_per_step / (per_step * lanes),
            "target": 1.25 * ideal + MAC_LATENCY + GATE_LATENCY,
            "scalesim_cycles_per_step": ss, "speedup_vs_scalesim": ss / per_step,
            "first_step_cycles": spans[1], "sequence_cycles": spans[SEQUENCE_LENGTH],
            "load_cycles": res["load_cycles"],
        })
    return rows
