"""Where a flattened ECP5 netlist's LUTs go: cells counted by the module, or signal, they drive.

``synth_ecp5`` flattens the design, and ABC names the cells it makes after nothing, so Yosys'
``stat`` has one module. The nets keep names, though: a net of the source keeps its hierarchical
name (``hdlname`` "conv engine acc_n0"), and the nets ABC makes with ``-dress`` are named after a
neighbour (``conv.engine.$2193_CCU2C_S0_A0_LUT4_Z_D``). This counts each LUT4, CCU2C (two LUT4
slots), flip-flop, distributed RAM, DSP and block RAM cell by the name of the net on its output:
by module path (``--depth`` levels), or, inside one module (``--signals PATH``), by the source
signal the name starts with. Names a neighbour lends are an attribution, not a proof: logic shared
by two signals counts under one of them.

    python -m hwaccel.impl.netlist_owners build/impl/accel_ecp5_144-ecp5/accel_ecp5_144.netlist.json
    python -m hwaccel.impl.netlist_owners NETLIST --signals conv.engine --top 20
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

__all__ = ["owners", "CELL_OUTPUTS", "CELL_SUFFIX", "slots", "top_module"]

#: The output ports a cell is attributed by, per cell type.
CELL_OUTPUTS = {"LUT4": ("Z",), "CCU2C": ("S0", "S1", "COUT"), "TRELLIS_FF": ("Q",),
                "TRELLIS_DPR16X4": ("DO",), "MULT18X18D": ("P",), "DP16KD": ("DOA", "DOB")}
#: The suffixes ABC and the ECP5 cell mapping add to a net's name (cell types, block-RAM ports).
CELL_SUFFIX = re.compile(
    r"_(TRELLIS|LUT4|CCU2C|PFUMX|L6MUX|MULT18|DP16KD|DO[AB]?\d|DI\b|AD[AB])")


def top_module(netlist: dict) -> dict:
    mods = netlist.get("modules", {})
    tops = [m for m in mods.values() if int(str(m.get("attributes", {}).get("top", "0")), 2)]
    if len(tops) != 1:
        raise ValueError(f"expected one top module in the netlist, found {len(tops)}")
    return tops[0]


def owners(netlist: dict, *, depth: int = 2, signals: str | None = None) -> Counter:
    """``Counter`` of ``(owner, cell type)``: the owner a module path (``depth`` levels, "<top>"
    for the top's own nets), or with ``signals`` a signal of that module path."""
    mod = top_module(netlist)
    insts = set()
    for n in mod["netnames"].values():
        hd = n.get("attributes", {}).get("hdlname")
        if hd:
            p = hd.split(" ")[:-1]
            insts.update(".".join(p[:i]) for i in range(1, len(p) + 1))

    def owner(name: str, net: dict) -> str | None:
        hd = net.get("attributes", {}).get("hdlname")
        name = name.lstrip("\\")
        if signals is not None:
            if not name.startswith(signals + "."):
                return None
            rest = name[len(signals) + 1:]
            base = CELL_SUFFIX.split(rest)[0]
            return None if hd and len(hd.split(" ")) != signals.count(".") + 2 else base
        if hd:
            path = hd.split(" ")[:-1]
        elif name.startswith("$"):
            return None                    # a name of Yosys' own: no module in it
        else:
            parts, path = name.split("."), []
            for i in range(1, len(parts)):
                if ".".join(parts[:i]) in insts:
                    path = parts[:i]
        return ".".join(path[:depth]) or "<top>"

    by_bit: dict[int, tuple[int, str]] = {}
    for name, net in mod["netnames"].items():
        who = owner(name, net)
        if who is None:
            continue
        rank = (0 if net.get("hide_name") else 1, -len(who)) if signals else \
            (0 if net.get("hide_name") else 1, who.count("."))
        for b in net["bits"]:
            if isinstance(b, int) and (b not in by_bit or rank > by_bit[b][0]):
                by_bit[b] = (rank, who)
    count: Counter = Counter()
    for cell in mod["cells"].values():
        ports = CELL_OUTPUTS.get(cell["type"])
        if ports is None:
            continue
        who = next((by_bit[b][1] for port, bits in cell["connections"].items()
                    if port.startswith(ports) for b in bits if b in by_bit), None)
        if who is not None or signals is None:
            count[(who or "?", cell["type"])] += 1
    return count


def slots(count: Counter, who: str) -> int:
    """LUT4 slots of an owner: its LUT4 cells and two a CCU2C."""
    return count[(who, "LUT4")] + 2 * count[(who, "CCU2C")]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hwaccel.impl.netlist_owners", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("netlist", type=Path, help="a Yosys JSON netlist (synth_ecp5 -json)")
    ap.add_argument("--depth", type=int, default=2, help="module path levels (default 2)")
    ap.add_argument("--signals", metavar="PATH", help="count by signal inside this module path")
    ap.add_argument("--top", type=int, default=40, help="rows to print (default 40)")
    args = ap.parse_args(argv)
    if args.depth < 1:
        ap.error(f"--depth must be at least 1, not {args.depth}")
    count = owners(json.loads(args.netlist.read_text()), depth=args.depth, signals=args.signals)
    types = list(CELL_OUTPUTS)
    names = sorted({w for w, _ in count}, key=lambda w: (-slots(count, w), w))
    print(f"{'owner':<40} {'slots':>7} " + " ".join(f"{t[:10]:>10}" for t in types))
    for w in names[:args.top]:
        print(f"{w:<40} {slots(count, w):>7} " + " ".join(f"{count[(w, t)]:>10}" for t in types))
    total = sum(slots(count, w) for w in names)
    print(f"{'total':<40} {total:>7} "
          + " ".join(f"{sum(count[(w, t)] for w in names):>10}" for t in types))


if __name__ == "__main__":
    main()
