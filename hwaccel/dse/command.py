"""``hwaccel sweep``: a design space on Dask -- modelled cycles, resources, Fmax, latency.

Prints one line per point (Pareto-front points starred) or, with ``--json``, the whole result;
writes ``results.json``, ``results.csv`` and the PNG plots into ``--out``. ``--tls`` (or
``--tls-ca/--tls-cert/--tls-key`` for a ``tls://`` scheduler) encrypts the Dask cluster's
connections (:mod:`hwaccel.runtime.cluster`). Exit status 0 when every point was evaluated
(failed points are results too: they are reported, with their error), 2 on a usage error.
"""

from __future__ import annotations

import json
import sys

from ..runtime.cluster import add_tls_arguments, tls_from_args, using_tls

HELP = "design-space sweep: modelled cycles, synthesized area and Fmax, latency, Pareto front"


def add_arguments(p) -> None:
    p.add_argument("--space", help="JSON file with rows/cols/dataflow/accel/target/batch keys")
    p.add_argument("--rows", help="systolic array rows, comma-separated (e.g. 4,8,16,32)")
    p.add_argument("--cols", help="columns, comma-separated (default: square arrays)")
    p.add_argument("--dataflow", default="os,ws", help="os, ws or os,ws (default: os,ws)")
    p.add_argument("--accel", help="accelerator presets to add as points, comma-separated")
    p.add_argument("--target", choices=["ecp5", "ice40", "generic"], default=None,
                   help="synthesis target (default: ecp5, or the space file's)")
    p.add_argument("--batch", type=int, default=None, help="inputs per inference (default 1)")
    p.add_argument("--no-synth", action="store_true",
                   help="cycle models only (latency in cycles, area axis = MAC units)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (default: a "
                                       "LocalCluster on this machine)")
    p.add_argument("--workers", type=int, default=None, help="LocalCluster workers")
    add_tls_arguments(p)
    p.add_argument("--out", default="build/dse", help="output folder (default: build/dse)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _space(args):
    from .points import load_space, make_space

    if args.space and args.rows:
        raise ValueError("give either --space FILE or --rows ..., not both")
    if args.space:
        space = load_space(args.space, target=args.target)
        if args.batch is not None:
            raise ValueError("--batch goes into the space file when --space is given")
        return space
    return make_space(rows=args.rows, cols=args.cols, dataflow=args.dataflow, accel=args.accel,
                      target=args.target or "ecp5", batch=args.batch or 1)


def format_results(res) -> str:
    """One line per point: area, Fmax, cycles and latency per workload, Pareto star."""
    front = {label for labels in res.fronts.values() for label in labels}
    head = (f"{'':2}{'point':22} {'status':10} {'lut':>7} {'ff':>7} {'dsp':>4} {'gates':>8} "
            f"{'fmax':>7} {'cnn cyc':>9} {'cnn us':>9} {'lstm cyc':>9} {'lstm us':>9}")
    lines = [head]

    def f(v, fmt):
        width = int(fmt.rstrip("df").split(".")[0])
        return format(v, fmt) if v is not None else "-".rjust(width)

    for r in res.results:
        s = r.synth or {}
        cyc = {w: r.workloads.get(w, {}).get("cycles") for w in ("cnn", "lstm")}
        lines.append(
            f"{'*' if r.label in front else ' ':2}{r.label:22} {r.status:10} "
            f"{f(s.get('lut'), '7d')} {f(s.get('ff'), '7d')} {f(s.get('dsp'), '4d')} "
            f"{f(s.get('gates'), '8d')} {f(s.get('fmax_mhz'), '7.1f')} "
            f"{f(cyc['cnn'], '9d')} {f(r.latency_us.get('cnn'), '9.1f')} "
            f"{f(cyc['lstm'], '9d')} {f(r.latency_us.get('lstm'), '9.1f')}")
        if r.error:
            lines.append(f"{'':4}error: {r.error}")
        lines += [f"{'':4}{w}: {wl['error']}" for w, wl in r.workloads.items() if "error" in wl]
    lines.append("* on a Pareto front (" + ", ".join(res.fronts) + ")")
    lines += [f"  {name}: {path}" for name, path in res.files.items()]
    return "\n".join(lines)


def run(args) -> int:
    from .sweep import run_sweep

    tls = tls_from_args(args)
    space = _space(args)
    with using_tls(tls):
        res = run_sweep(space, synth=not args.no_synth, out_dir=args.out,
                        scheduler=args.scheduler, workers=args.workers,
                        progress=not args.no_progress and sys.stderr.isatty())
    if args.json:
        print(json.dumps(res.to_json(), indent=2))
    else:
        print(format_results(res))
    return 0
