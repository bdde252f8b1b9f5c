"""Reference-CNN conv layers on the convolution engine's RTL (Verilator), against SCALE-Sim.

Per layer: ``cycles`` from the first ``activations`` transfer to the last ``result`` transfer
(weights and requantizers are already on chip: loading them is a separate phase, reported as
``load_cycles``), the layer's MACs, the engine's MAC units, utilization = MACs / (cycles x MAC
units), ``input_reads_ratio`` = input pixels the engine accepted / input pixels, and the best
SCALE-Sim dataflow's cycles for the layer as an im2col GEMM on a square array of as many MACs.
Pooling is off, so the figures are the convolution's own; outputs are checked bit-exactly.
"""

from __future__ import annotations

from ..generators.conv.cases import CNN_LAYERS
from ..generators.conv.config import PRESETS
from ..generators.conv.layer import descriptor
from ..generators.conv.model import im2col_shape, scalesim_best
from ..sim.runner import design_for, run_bench

COLUMNS = ["layer", "cycles", "macs", "mac_units", "utilization", "input_reads_ratio",
           "scalesim_cycles", "scalesim_dataflow", "vs_scalesim", "load_cycles"]


def add_arguments(p) -> None:
    p.add_argument("--preset", default="cnn", choices=sorted(PRESETS),
                   help="engine preset (default: cnn, 16 x 16 = 256 MACs)")
    p.add_argument("--layers", default=",".join(CNN_LAYERS),
                   help=f"comma-separated subset of {', '.join(CNN_LAYERS)}")
    p.add_argument("--seed", type=int, default=0)


def run(args) -> list[dict]:
    cfg = PRESETS[args.preset]
    names = [s.strip() for s in args.layers.split(",") if s.strip()]
    unknown = [s for s in names if s not in CNN_LAYERS]
    if unknown:
        raise ValueError(f"unknown layer(s) {', '.join(unknown)}; known: {', '.join(CNN_LAYERS)}")
    for name in names:
        descriptor(cfg, CNN_LAYERS[name])  # raises naming the limit if the preset is too small
    res = run_bench(design_for(cfg), "sim.tb_conv",
                    {"mode": "bench", "layers": names, "seed": args.seed}, seed=args.seed)
    rows = []
    for case in res["cases"]:
        layer = CNN_LAYERS[case["name"]]
        groups = descriptor(cfg, layer)["groups"]
        dataflow, ss = scalesim_best(layer, cfg.macs)
        m, k, n = im2col_shape(layer)
        rows.append({
            "layer": case["name"], "cycles": case["cycles"], "macs": layer.macs,
            "mac_units": cfg.macs, "utilization": layer.macs / (case["cycles"] * cfg.macs),
            "input_reads_ratio": case["activation_beats"] / groups
            / (layer.height * layer.width),
            "scalesim_cycles": ss, "scalesim_dataflow": dataflow,
            "vs_scalesim": case["cycles"] / ss, "load_cycles": case["load_cycles"],
            "weight_words": case["weight_words"], "M": m, "K": k, "N": n,
            "mismatches": case["mismatches"],
        })
    return rows
