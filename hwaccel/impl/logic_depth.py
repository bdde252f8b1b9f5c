"""The deepest register-to-register paths of a flattened ECP5 netlist, estimated before placement.

Place and route of ``accel_ecp5`` takes about an hour of one core here; Yosys takes four
minutes. This reads the netlist Yosys writes (``build/impl/<preset>-ecp5/<top>.netlist.json``)
and estimates each path's delay from the cells on it and a fixed cost a net, so a change meant
to cut a path can be checked against the next ones in minutes. It is a ranking, not a timing
result: routing is a flat ``route_ns`` a net where nextpnr's routes take 0 to 3.7 ns, and the
cells' delays are those nextpnr-ecp5 0.11 reports at speed grade 6 (its critical path reports
in this project: a LUT4 0.24 ns, a PFUMX or L6MUX21 0.26, a CCU2C 0.45 in and 0.44 from its
carry, 0.07 a carry through two bits, a flip-flop's clock-to-out 0.52, a DP16KD's 5.8, 0.96
with its output register; a MULT18X18D is not modelled: a path through one starts at its output).
At 781df41 the routed critical path (the AVGPOOL accumulator, 21.6 ns) was this estimate's
second pair of registers (17.9 ns), behind the conv engine's issue logic.

    python -m hwaccel.impl.logic_depth build/impl/accel_ecp5-ecp5/accel_ecp5.netlist.json --top 20

``--cells`` lists each path's cells too (ABC names a cell after the nets around it, so the
types and the times say more than the names).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .netlist_owners import CELL_SUFFIX, top_module

__all__ = ["DepthPath", "deepest", "ROUTE_NS"]

#: The flat cost of a net between two cells (a carry chain's own links cost nothing).
ROUTE_NS = 0.8
CLK_TO_Q = {"TRELLIS_FF": 0.52, "DP16KD": 5.8}   # where a path starts (clocked outputs)
#: A DP16KD port with its output register (``REGMODE_A/B = "OUTREG"``, :mod:`.bram_outreg`).
OUTREG_TO_Q = 0.96


def _clk_to_q(cell: dict, port: str) -> float:
    """When a clocked cell's output ``port`` shows its value after the clock."""
    if cell["type"] == "DP16KD" and port[:3] in ("DOA", "DOB") and str(
            cell["parameters"].get(f"REGMODE_{port[2]}", "")).strip() == "OUTREG":
        return OUTREG_TO_Q
    return CLK_TO_Q.get(cell["type"], 0.0)
#: The clocked inputs where a path ends.
_ENDS = {"TRELLIS_FF": ("DI", "M", "CE", "LSR"), "DP16KD": ("AD", "DI", "CE", "WE", "CS")}


def _arcs(cell: dict) -> list[tuple[str, str, float]]:
    """``(input, output, ns)`` of a combinational cell; none for a clocked one."""
    t = cell["type"]
    if t == "LUT4":
        return [(i, "Z", 0.24) for i in "ABCD"]
    if t in ("PFUMX", "L6MUX21"):
        return [(i, "Z", 0.26) for i in ("ALUT", "BLUT", "C0", "D0", "D1", "SD")]
    if t == "CCU2C":
        arcs = [("CIN", "S0", 0.44), ("CIN", "S1", 0.44), ("CIN", "COUT", 0.07)]
        for i in "ABCD":
            arcs += [(f"{i}0", "S0", 0.45), (f"{i}0", "S1", 0.45), (f"{i}0", "COUT", 0.45),
                     (f"{i}1", "S1", 0.45), (f"{i}1", "COUT", 0.45)]
        return arcs
    if t == "TRELLIS_DPR16X4":   # distributed RAM: its read is combinational
        return [(f"RAD{i}", f"DO{j}", 0.6) for i in range(4) for j in range(4)]
    return []


@dataclass(frozen=True)
class DepthPath:
    """One estimated path: ``ns`` at ``end`` (``cell.port``), ``levels`` cells after ``start``;
    ``via`` the signals it passes, ``cells`` each cell on it from the start as ``(ns at its
    output, type, name)``."""

    ns: float
    levels: int
    start: str
    end: str
    via: tuple[str, ...]
    cells: tuple[tuple[float, str, str], ...] = ()


def _base(name: str) -> str:
    """A net's source signal: the name before the cell suffixes ABC adds, without its index."""
    return CELL_SUFFIX.split(name)[0].split("[")[0]


def _start_name(bit: int, names: dict, aliases: dict, driver: dict) -> str:
    """A path start's signal: of the bit's names, the one its driving cell is named after (a
    register's output may also carry a port's or another signal's name), else the first."""
    cell = driver.get(bit, ("",))[0]
    own = [n for n in aliases.get(bit, ()) if not n.startswith("$") and cell.startswith(_base(n))]
    return max(own, key=len) if own else names.get(bit, str(bit))


def deepest(netlist: dict, *, top: int = 20, route_ns: float = ROUTE_NS) -> list[DepthPath]:
    """The ``top`` latest-arriving paths, one per start signal and end signal (an end's
    indices folded: ``acc0`` .. ``acc15`` are one). A path from a top-level input (no driver)
    starts at 0 ns: out of context nextpnr does not time it, behind a board's bridge it is
    real."""
    mod = top_module(netlist)
    cells = mod["cells"]
    if not any(c["type"] in CLK_TO_Q for c in cells.values()):
        raise ValueError("no TRELLIS_FF or DP16KD cells: not a synth_ecp5 netlist")
    names: dict[int, str] = {}
    aliases: dict[int, list[str]] = {}
    for net, v in mod["netnames"].items():
        for k, b in enumerate(v["bits"]):
            if isinstance(b, int):
                label = net if len(v["bits"]) == 1 else f"{net}[{k}]"
                aliases.setdefault(b, []).append(label)
                if b not in names or names[b].startswith("$"):
                    names[b] = label
    driver: dict[int, tuple[str, str]] = {}
    for cn, c in cells.items():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "output":
                driver.update({b: (cn, port) for b in bits if isinstance(b, int)})
    arcs = {cn: _arcs(c) for cn, c in cells.items()}
    memo: dict[int, tuple[float, int | None]] = {}

    def arrival(bit: int) -> tuple[float, int | None]:
        """Latest arrival at ``bit`` and the input bit it came through (iterative DFS)."""
        stack = [bit]
        while stack:
            b = stack[-1]
            if b in memo:
                stack.pop()
                continue
            cn, port = driver.get(b, (None, None))
            if cn is None or not arcs[cn]:
                memo[b] = (_clk_to_q(cells[cn], port) if cn else 0.0, None)
                stack.pop()
                continue
            con = cells[cn]["connections"]
            ins = [(con[i][0], i, ns) for i, o, ns in arcs[cn]
                   if o == port and i in con and isinstance(con[i][0], int)]
            todo = [i for i, _, _ in ins if i not in memo]
            if todo:
                for i in todo:
                    if i in stack:   # a combinational loop: cut it there
                        memo[i] = (0.0, None)
                stack.extend(i for i in todo if i not in memo)
                continue
            best = (0.0, None)
            for i, name, ns in ins:
                t = memo[i][0] + ns + (0.0 if name == "CIN" or i not in driver else route_ns)
                if t > best[0]:
                    best = (t, i)
            memo[b] = best
            stack.pop()
        return memo[bit]

    found = []
    for cn, c in cells.items():
        ends = _ENDS.get(c["type"], ())
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) != "input" or not port.startswith(ends):
                continue
            for b in bits:
                if isinstance(b, int) and b in driver:
                    found.append((arrival(b)[0] + route_ns, cn, port, b))
    found.sort(key=lambda f: -f[0])
    out, seen = [], set()
    for ns, cn, port, b in found:
        chain = [b]
        while memo.get(chain[-1], (0, None))[1] is not None:
            chain.append(memo[chain[-1]][1])
        start, end = _base(_start_name(chain[-1], names, aliases, driver)), _base(cn)
        if chain[-1] not in driver:
            start = f"(input) {start}"
        key = (start, re.sub(r"\d+", "#", end))
        if key in seen:
            continue
        seen.add(key)
        via = []
        for x in reversed(chain[:-1]):
            n = _base(names.get(x, str(x)))
            if not via or via[-1] != n:
                via.append(n)
        steps = tuple((round(memo[x][0], 2), cells[driver[x][0]]["type"], driver[x][0])
                      for x in reversed(chain) if x in driver)
        out.append(DepthPath(round(ns, 2), len(chain) - 1, start, f"{end}.{port}", tuple(via),
                             steps))
        if len(out) == top:
            break
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hwaccel.impl.logic_depth", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("netlist", type=Path, help="a synth_ecp5 JSON netlist")
    ap.add_argument("--top", type=int, default=20, help="paths to list (default: 20)")
    ap.add_argument("--cells", action="store_true",
                    help="also list each path's cells, with the time at each one's output")
    ap.add_argument("--route", type=float, default=ROUTE_NS,
                    help=f"ns a net between two cells (default: {ROUTE_NS})")
    args = ap.parse_args(argv)
    try:
        paths = deepest(json.loads(args.netlist.read_text()), top=args.top, route_ns=args.route)
    except (OSError, ValueError) as exc:
        sys.exit(f"logic_depth: {args.netlist}: {exc}")
    for p in paths:
        print(f"{p.ns:6.2f} ns  {p.levels:2d} cells  {p.start} -> {p.end}")
        if p.via:
            print("          via " + " > ".join(p.via[:8]) + (" > ..." if len(p.via) > 8 else ""))
        if args.cells:
            for ns, kind, name in p.cells:
                print(f"          {ns:6.2f}  {kind:<11} {name}")


if __name__ == "__main__":
    main()
