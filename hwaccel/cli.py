"""The ``hwaccel`` command (also ``python -m hwaccel``).

``hwaccel rtl [--list] [--lint] [--out DIR] [SLUG ...]``  emit Verilog + JSON sidecars
``hwaccel synth --preset P --target ecp5|ice40|generic|asic [--node N] [--json] [--bitstream]``
                                                            resources, Fmax (Yosys, nextpnr)
``hwaccel bench NAME [options] [--json]``                   run a benchmark on the RTL
``hwaccel compare --model NAME [--backends ...]``          one model on every backend
``hwaccel sweep [--space FILE | --rows ...] [--json]``      design-space sweep on Dask
``hwaccel verify [--component NAME] [--depth K] [--json]``  formal proofs (SymbiYosys)
``hwaccel parallel --model NAME --mode dp|pp|tp|hybrid|auto --instances N[,N...]``
                                                            one model over N instances
``hwaccel board [--board ulx3s|ecpix5] [--preset P] [--freq MHZ] [--baud B]``
                                                            a board's bitstream (UART bridge)
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

__all__ = ["main"]


def _cmd_rtl(args) -> int:
    from .emit import emit
    from .generators import presets
    from .toolchain import lint_verilog

    table = presets()
    if args.list:
        for slug, cfg in table.items():
            print(f"{slug:28s} {cfg!r}")
        return 0
    unknown = [s for s in args.slugs if s not in table]
    if unknown:
        raise ValueError(f"unknown preset(s) {', '.join(unknown)}; see `hwaccel rtl --list`")
    for slug in args.slugs or table:
        res = emit(table[slug], args.out)
        status = "written" if res.changed else "unchanged"
        if args.lint:
            lint_verilog(res.verilog, slug)
            status += ", lint clean"
        print(f"{res.verilog} ({status})")
    return 0


def _seed_list(text: str) -> list[int]:
    try:
        return [int(n) for n in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"seeds are integers separated by commas, not "
                                         f"{text!r}") from None


def _cmd_synth(args) -> int:
    from .generators import config_for
    from .impl import bitstream, synthesize
    from .impl.report import format_report

    config = config_for(args.preset)   # a bare preset name is enough when it is unambiguous
    for flag, name in (("--router", args.router), ("--placer", args.placer)):
        if name and (args.bitstream or args.target not in ("ecp5", "ice40")):
            raise ValueError(f"{flag} chooses nextpnr's {flag[2:]}: it needs --target ecp5 or "
                             "ice40, without --bitstream")
    if args.target == "asic":  # its own flow and report (hwaccel.impl.asic)
        from .impl.asic import asic_report_for, format_asic

        if args.bitstream:
            raise ValueError("--bitstream needs --target ecp5, not 'asic'")
        report = asic_report_for(config, args.node)
        print(json.dumps(report, indent=2) if args.json else format_asic(report))
        return 0
    if args.seed is not None and args.seeds is not None:
        raise ValueError("--seed and --seeds both choose nextpnr's seed: give one")
    seed = 1 if args.seed is None else args.seed
    if args.bitstream:
        if args.target != "ecp5":
            raise ValueError(f"--bitstream needs --target ecp5, not {args.target!r}")
        if args.seeds is not None:
            raise ValueError("--seeds places one netlist several times: not with --bitstream")
        bit, report = bitstream(config, freq_mhz=args.freq, seed=seed)
    else:
        bit, report = None, synthesize(config, args.target, freq_mhz=args.freq, seed=seed,
                                       router=args.router, placer=args.placer,
                                       seeds=args.seeds, jobs=args.jobs)
    if args.json:
        print(json.dumps(report.to_json() | ({"bitstream": str(bit)} if bit else {}), indent=2))
    else:
        print(format_report(report) + (f"\n  bitstream {bit}" if bit else ""))
    return 0


def _cmd_bench(args) -> int:
    from .bench import format_table

    rows = args.bench_module.run(args)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(format_table(rows, getattr(args.bench_module, "COLUMNS", None)))
    bad = [r.get("workload", r.get("layer", "?")) for r in rows
           if r.get("mismatches") or r.get("cycles_match") is False]
    if bad:  # a benchmark measures the hardware; wrong outputs or cycles are a failure
        print(f"hwaccel bench: outputs or cycle model wrong for {', '.join(map(str, bad))}",
              file=sys.stderr)
        return 1
    return 0


#: Commands that live with their stage: ``name -> module`` with ``HELP``, ``add_arguments(parser)``
#: and ``run(args) -> int``. Imported when the parser is built, so keep their imports lazy.
COMMANDS = {
    "compare": "hwaccel.runtime.command",
    "sweep": "hwaccel.dse.command",
    "verify": "hwaccel.formal.command",
    "parallel": "hwaccel.parallel.command",
    "board": "hwaccel.impl.board_command",
    "advise": "hwaccel.advise.command",
}


def _parser() -> argparse.ArgumentParser:
    from .bench import BENCHES, load

    p = argparse.ArgumentParser(prog="hwaccel", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    rtl = sub.add_parser("rtl", help="emit Verilog and JSON sidecars for presets")
    rtl.add_argument("slugs", nargs="*", help="presets to emit (default: all)")
    rtl.add_argument("--list", action="store_true", help="list the presets and exit")
    rtl.add_argument("--lint", action="store_true", help="verilator --lint-only -Wall each file")
    rtl.add_argument("--out", default="rtl", help="output folder (default: rtl)")
    rtl.set_defaults(func=_cmd_rtl)
    syn = sub.add_parser("synth", help="synthesize a preset: resources, Fmax, critical path")
    syn.add_argument("--preset", required=True, help="preset slug (see `hwaccel rtl --list`)")
    syn.add_argument("--target", choices=["ecp5", "ice40", "generic", "asic"], default="ecp5")
    syn.add_argument("--node", type=int, default=45,
                     help="asic: technology node in nm, 45|28|16|7 (default 45)")
    syn.add_argument("--freq", type=float, default=None, help="clock constraint in MHz")
    syn.add_argument("--seed", type=int, default=None, help="nextpnr placement seed (default 1)")
    syn.add_argument("--seeds", type=_seed_list, default=None, metavar="N,N,...",
                     help="place and route one netlist with each seed (the report: the first "
                          "seed's, with every seed's Fmax and their median from three on)")
    syn.add_argument("--jobs", type=int, default=1,
                     help="with --seeds: seeds placed at once (default 1)")
    syn.add_argument("--router", choices=["router1", "router2"], default=None,
                     help="nextpnr's router (default: nextpnr's own, router1)")
    syn.add_argument("--placer", choices=["heap", "static", "sa"], default=None,
                     help="nextpnr's placer (default: nextpnr's own, heap)")
    syn.add_argument("--bitstream", action="store_true",
                     help="write an ECP5 bitstream (the core inside a scan shell)")
    syn.add_argument("--json", action="store_true", help="print the report as JSON")
    syn.set_defaults(func=_cmd_synth)
    bench = sub.add_parser("bench", help="run a benchmark on the RTL")
    bsub = bench.add_subparsers(dest="bench", required=True)
    for name in BENCHES:
        try:
            module = load(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("hwaccel.bench"):
                continue  # a benchmark still being written is simply not offered
            raise
        bp = bsub.add_parser(name, help=(module.__doc__ or "").strip().split("\n")[0])
        module.add_arguments(bp)
        bp.add_argument("--json", action="store_true", help="print JSON instead of a table")
        bp.set_defaults(func=_cmd_bench, bench_module=module)
    for name, path in COMMANDS.items():
        try:
            module = importlib.import_module(path)
        except ModuleNotFoundError as exc:
            if exc.name and path.startswith(exc.name):
                continue  # a stage not yet installed in this tree is simply not offered
            raise
        cp = sub.add_parser(name, help=module.HELP)
        module.add_arguments(cp)
        cp.set_defaults(func=module.run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"hwaccel: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
