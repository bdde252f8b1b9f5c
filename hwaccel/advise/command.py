"""``hwaccel advise``: which platform for this model -- one row per platform, and a pick.

``hwaccel advise --model cnn [--batch B] [--presets P,...] [--node N] [--goal G]`` runs or
models a reference workload (:data:`hwaccel.models.WORKLOADS`, trained and cached), or a
user's model (``--model FILE.py:NAME``, :mod:`hwaccel.models.user_model`), on every platform
it can and prints one row each (:mod:`.rows`, :mod:`.accel_rows`):

* ``cpu``, ``torch-cuda``, ``torch-int8-cuda``, ``xla``: measured here through the runtime's
  backends (median of ``--repeats`` timed calls); without a GPU or JAX the row is there with no
  figures and says why.
* each FPGA preset in ``--presets`` (``ecp5``...): the exact cycle model at its placed Fmax,
  its resources and a rough energy estimate.
* each other preset: an ASIC at ``--node`` nm and the stated ``--asic-mhz``, its area
  (``--no-synth``: the recorded synthesis, :mod:`hwaccel.impl.asic_recorded`) and energy.
* published rows with their sources (MLPerf Tiny) where the model is one of theirs.

Latency is a batch's, energy an inference's (:mod:`.rows`). Then a recommendation for
``--goal`` naming the deciding figures. ``--json`` prints
``{model, batch, goal, node, rows, recommendation}``; ``--plot DIR`` writes the plots of
:func:`hwaccel.advise.plots.plot_report`. Exit status 0, or 2 on a usage error.
"""

from __future__ import annotations

import json
import sys

HELP = ("which platform for a model: measured CPU/GPU/XLA rows, modelled FPGA and ASIC rows, "
        "published references, and a recommendation")

#: ``--platforms`` groups, in the table's order
PLATFORMS = ("cpu", "torch-cuda", "torch-int8-cuda", "xla", "accel", "published")
NODES = (45, 28, 16, 7)


def add_arguments(p) -> None:
    p.add_argument("--model", required=True,
                   help="a reference workload (hwaccel.models.WORKLOADS): cnn, lstm, resnet8, "
                        "dscnn, mobilenet, autoencoder, transformer, transformer_tokens; or "
                        "your model, FILE.py:NAME: an nn.Module, or a function returning one "
                        "or (module, inputs) (hwaccel.models.user_model)")
    p.add_argument("--input-shape", default=None, metavar="SHAPE",
                   help="a user model's per-sample input shape, C,H,W or F or T,F, when "
                        "NAME gives no inputs: they are drawn at random (seeded)")
    p.add_argument("--batch", default="1",
                   help="samples a batch, or several batches comma-separated (rows for each; "
                        "the throughput plot is against them; default 1)")
    p.add_argument("--presets", default=None,
                   help="accelerator presets, comma-separated: ecp5* ones are FPGA rows, the "
                        "others ASIC rows (default: ecp5,default; ecp5_attention,"
                        "default_attention for the transformers)")
    p.add_argument("--node", type=int, default=28,
                   help=f"ASIC process node in nm, one of {', '.join(map(str, NODES))} "
                        f"(default 28)")
    p.add_argument("--asic-mhz", type=float, default=500.0,
                   help="the clock ASIC rows are stated at (default 500 MHz; not a timing "
                        "result)")
    p.add_argument("--goal", default="latency",
                   help="what the recommendation optimizes: latency, energy or throughput "
                        "(default latency)")
    p.add_argument("--platforms", default=",".join(PLATFORMS),
                   help=f"rows to make, comma-separated, of: {', '.join(PLATFORMS)} (accel: "
                        f"the --presets rows; default: all)")
    p.add_argument("--repeats", type=int, default=5,
                   help="timed calls a measured row takes the median of (default 5)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for the measured torch rows (default: torch's own "
                        "choice; 1 on a machine busier than its cores)")
    p.add_argument("--calibration", type=int, default=512,
                   help="training samples that calibrate activation scales (default: 512)")
    p.add_argument("--no-synth", action="store_true",
                   help="no gate-level synthesis (slow the first time): the ASIC area of the "
                        "preset's recorded synthesis (its newest here, else the committed "
                        "one, hwaccel/impl/data/asic_gates.json), or unknown")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help="write PNGs into DIR (hwaccel.advise.plots.plot_report): latency "
                        "against energy with the Pareto front, throughput against batch")


def _presets(text: str | None, model: str) -> list:
    from ..generators.accel.config import MODEL_PRESETS, PRESETS
    from ..models.user_model import is_user_model

    table = PRESETS | MODEL_PRESETS
    if text is None:   # a user's model: each placed FPGA preset, and the ASIC ones
        text = ("ecp5,ecp5_144,ecp5_128,ecp5_attention,default,default_attention"
                if is_user_model(model) else "ecp5_attention,default_attention"
                if model.startswith("transformer") else "ecp5,default")
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in table]
    if unknown or not names:
        raise ValueError(f"--presets must name presets of {', '.join(table)}, not {text!r}")
    return [table[n] for n in names]


def check_args(args) -> tuple[list, list[str], list[int]]:
    """``(presets, platforms, batches)``; every usage error raised before any work, by
    name."""
    from ..models import WORKLOADS
    from ..models.user_model import is_user_model, parse_shape
    from .report import check_goal

    if args.model not in WORKLOADS and not is_user_model(args.model):
        raise ValueError(f"--model must be one of {', '.join(WORKLOADS)} or FILE.py:NAME (your "
                         f"model), not {args.model!r}")
    parse_shape(getattr(args, "input_shape", None))
    check_goal(args.goal)
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, not {args.threads!r}")
    if args.repeats < 1:
        raise ValueError(f"--repeats must be at least 1, not {args.repeats!r}")
    if args.node not in NODES:
        raise ValueError(f"--node must be one of {', '.join(map(str, NODES))}, not "
                         f"{args.node!r}")
    if not args.asic_mhz > 0:
        raise ValueError(f"--asic-mhz must be positive, not {args.asic_mhz!r}")
    if args.plot:
        import importlib.util

        if importlib.util.find_spec("hwaccel.advise.plots") is None:
            raise ValueError("--plot needs hwaccel.advise.plots, which this tree does not have")
    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()]
    bad = [p for p in platforms if p not in PLATFORMS]
    if bad or not platforms:
        raise ValueError(f"--platforms must name some of {', '.join(PLATFORMS)}, not "
                         f"{args.platforms!r}")
    return _presets(args.presets, args.model), platforms, _batches(args.batch)


def _batches(text) -> list[int]:
    try:
        batches = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--batch must be comma-separated integers, not {text!r}") from None
    if not batches or min(batches) < 1:
        raise ValueError(f"--batch must be at least 1, not {text!r}")
    return sorted(set(batches))


def advise_rows(args, log=sys.stderr) -> list:
    """Every row for ``args`` (see the module docstring), in the table's order: each batch's
    measured and accelerator rows, then the published ones."""
    from ..models.train import load
    from ..models.user_model import is_user_model, load_user_model, parse_shape
    from ..runtime import compile as compile_model
    from .accel_rows import preset_row
    from .rows import MEASURED, measured_rows, published_rows

    presets, platforms, batches = check_args(args)
    published = published_rows(args.model, min(batches)) if "published" in platforms else []
    if not any(p in MEASURED or p == "accel" for p in platforms):
        return published   # nothing to run: no model to load
    need = max(*batches, args.repeats)
    if is_user_model(args.model):
        module, x = load_user_model(args.model, parse_shape(getattr(args, "input_shape", None)),
                                    max(need, args.calibration))
        x_train = x_test = x
    else:
        module, split = load(args.model)
        x_train, x_test = split.x_train, split.x_test
    if need > len(x_test):
        raise ValueError(f"--batch and --repeats must be at most {len(x_test)} (the held-out "
                         f"split, or the inputs the model's file gives), not {need}")
    calibration = x_train[:args.calibration]
    compiled = {}

    def compiled_for(cfg):
        if cfg.slug not in compiled:
            compiled[cfg.slug] = compile_model(module, x_train[:8], preset=cfg,
                                               calibration=calibration, strict=False)
        return compiled[cfg.slug]

    rows = []
    measured = [p for p in platforms if p in MEASURED]
    for batch in batches:
        if measured:
            rows += measured_rows(compiled_for(presets[0]), x_test, batch, measured,
                                  repeats=args.repeats, threads=args.threads, log=log)
        if "accel" in platforms:
            for cfg in presets:
                row = preset_row(compiled_for(cfg), x_test[:batch], batch,
                                 node=args.node, clock_mhz=args.asic_mhz,
                                 synth=not args.no_synth)
                if log is not None:
                    print(f"hwaccel advise: {row.platform}, batch {batch}: "
                          f"{row.cycles or '-'} cycles", file=log)
                rows.append(row)
    return rows + published


def run(args) -> int:
    from .report import recommend

    check_args(args)   # a usage error before the model loads
    rows = advise_rows(args)
    text = recommend(rows, args.goal)
    if args.json:
        print(json.dumps({"model": args.model, "batch": _batches(args.batch), "goal": args.goal,
                          "node": args.node, "rows": [r.to_json() for r in rows],
                          "recommendation": text}, indent=2))
    else:
        from .report import format_table

        print(f"{args.model}, batch {args.batch}, goal {args.goal}:")
        print(format_table(rows, text))
    if args.plot:
        from .plots import plot_report

        for path in plot_report([r.to_json() for r in rows], args.plot):
            print(f"wrote {path}", file=sys.stderr)
    return 0
