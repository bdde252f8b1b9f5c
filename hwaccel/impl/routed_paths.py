"""The slowest register-to-register paths of a placed and routed ECP5 design, from its SDF.

nextpnr reports one critical path a clock; after a placement of ``accel_ecp5`` (an hour or two
here) the next paths stay unknown, and :mod:`.logic_depth`'s estimate before placement ranks
them with a flat cost a net, where the routes of one design take 0 to 4 ns. nextpnr writes every
cell's delays and every routed connection's into the SDF file the flow asks for
(``--sdf``, beside the report: ``build/impl/<preset>-ecp5/<top>.sdf``); this reads it, works
out the latest arrival at every clocked input (a static timing analysis of the routed design,
clock-to-out, cell and route delays, then the input's setup), and lists the slowest path to
each end, one a start and end signal (an end's bit indices folded), with its cells and routes.
Its slowest path is nextpnr's critical path (``tests/test_routed_paths.py`` checks a placement
of a small design against nextpnr's own report).

    python -m hwaccel.impl.routed_paths build/impl/accel_ecp5-ecp5/accel_ecp5.sdf --top 20

With ``--over NS`` it counts instead the clocked inputs (each bit) that arrive later than
``NS`` ns, by the units their paths start and end in: how much a clock of ``1000 / NS`` MHz
leaves to fix, and where, beyond the slowest path of each end.

With ``--start SIGNAL`` both look only at the paths from that start signal (as listed: the
cell's source signal; a name ending in ``.`` takes every start in that unit or module), so a
path is listed even where another start's is slower at the same end: after a cut, how far the
paths from the signal it aimed at moved, in a placement whose slowest paths are elsewhere.

    python -m hwaccel.impl.routed_paths accel_ecp5_144.sdf --start conv.engine.room --top 5
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .netlist_owners import CELL_SUFFIX

__all__ = ["RoutedPath", "slowest", "over", "read_sdf"]

_UNTIMED = float("-inf")
#: Clock inputs: an arc from one is a clock-to-out, where a path starts.
_CLOCKS = ("CLK", "CLK0", "CLK1", "CLK2", "CLK3", "CLKA", "CLKB", "WCK")
_INSTANCE = re.compile(r"\(INSTANCE ([^)]*)\)")
_TRIPLE = r"\(([\d.]+):([\d.]+):([\d.]+)\)"
_IOPATH = re.compile(r"\(IOPATH (\S+) (\S+) " + _TRIPLE)
_INTERCONNECT = re.compile(r"\(INTERCONNECT (\S+) (\S+) " + _TRIPLE)
_SETUPHOLD = re.compile(r"\(SETUPHOLD \((?:pos|neg)edge (\S+)\) \(posedge (\S+)\) "
                        + _TRIPLE + " " + _TRIPLE)
_TIMESCALE = re.compile(r"\(TIMESCALE (\d+)(ps|ns)\)")


@dataclass(frozen=True)
class RoutedPath:
    """One routed path: ``ns`` at ``end`` (its setup included), from ``start``; ``steps`` each
    cell output or route on it as ``(ns after it, "cell" or "route", instance/port)``."""

    ns: float
    start: str
    end: str
    steps: tuple[tuple[float, str, str], ...]

    @property
    def routing_ns(self) -> float:
        prev, total = 0.0, 0.0
        for t, kind, _ in self.steps:
            total += (t - prev) if kind == "route" else 0.0
            prev = t
        return total


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", r"\1", name)


def _pin(ref: str) -> tuple[str, str]:
    """``instance/port`` (the divider is the last unescaped ``/``) as two unescaped names."""
    cut = max(i for i, ch in enumerate(ref) if ch == "/" and (i == 0 or ref[i - 1] != "\\"))
    return _unescape(ref[:cut]), ref[cut + 1:]


def read_sdf(text: str):
    """The SDF's timing graph, in ns at the slow corner (each triple's third value): cell arcs
    ``{(inst, out): [(inst, in, ns)]}`` (clock-to-out arcs apart, as start times), route arcs
    ``{(inst, in): [(inst, out, ns)]}``, start times ``{(inst, out): ns}``, setups
    ``{(inst, in): ns}``."""
    m = _TIMESCALE.search(text)
    per_ns = (1000 if m is None or m.group(2) == "ps" else 1) / (int(m.group(1)) if m else 1)
    cell_arcs: dict = {}
    route_arcs: dict = {}
    starts: dict = {}
    setups: dict = {}
    inst = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("(INTERCONNECT"):
            r = _INTERCONNECT.match(line)
            src, dst = _pin(r.group(1)), _pin(r.group(2))
            route_arcs.setdefault(dst, []).append((*src, float(r.group(5)) / per_ns))
        elif line.startswith("(INSTANCE"):
            inst = _unescape(_INSTANCE.match(line).group(1))
        elif line.startswith("(IOPATH"):
            r = _IOPATH.match(line)
            i, o, ns = r.group(1), r.group(2), float(r.group(5)) / per_ns
            if i in _CLOCKS:
                starts[(inst, o)] = max(ns, starts.get((inst, o), 0.0))
            else:
                cell_arcs.setdefault((inst, o), []).append((inst, i, ns))
        elif line.startswith("(SETUPHOLD"):
            r = _SETUPHOLD.match(line)
            ns = float(r.group(5)) / per_ns   # the setup (then the hold)
            key = (inst, r.group(1))
            setups[key] = max(ns, setups.get(key, 0.0))
    return cell_arcs, route_arcs, starts, setups


def _from(starts: dict, start: str | None) -> dict:
    """The clocked outputs whose source signal (:func:`_base`) is ``start`` (or, for a name
    ending in ``.``, lies under it); all of them without one."""
    if start is None:
        return starts

    def chosen(signal: str) -> bool:
        return signal.startswith(start) if start.endswith(".") else signal == start

    picked = {p: t for p, t in starts.items() if chosen(_base(p[0]))}
    if not picked:
        raise ValueError(f"no clocked output of start signal {start!r} in the SDF")
    return picked


def _arrivals(text: str, start: str | None = None):
    """Every timed clocked input ``(arrival + setup, pin)``, latest first, and the analysis'
    memo: ``pin -> (arrival, the pin it came from or None at a start, "cell" or "route")``;
    with ``start``, of the paths from that start signal only (:func:`_from`: the other clocked
    outputs start nothing, like constants)."""
    cell_arcs, route_arcs, starts, setups = read_sdf(text)
    starts = _from(starts, start)
    memo: dict = {}

    def arrival(pin):
        """Latest arrival at an output pin ``(inst, port)`` or input pin, and where from."""
        stack = [pin]
        while stack:
            p = stack[-1]
            if p in memo:
                stack.pop()
                continue
            if p in starts:
                memo[p] = (starts[p], None, "cell")
                stack.pop()
                continue
            # an input pin is driven by a route; an output pin by the cell's arcs
            arcs = route_arcs.get(p) or cell_arcs.get(p) or []
            kind = "route" if p in route_arcs else "cell"
            todo = [(a, b) for a, b, _ in arcs if (a, b) not in memo]
            if todo:
                for q in todo:
                    if q in stack:   # a combinational loop: cut it there
                        memo[q] = (_UNTIMED, None, "cell")
                stack.extend(q for q in todo if q not in memo)
                continue
            best = (_UNTIMED, None, kind)   # a constant or unclocked source starts no path
            for a, b, ns in arcs:
                t = memo[(a, b)][0] + ns
                if t > best[0]:
                    best = (t, (a, b), kind)
            memo[p] = best
            stack.pop()
        return memo[pin]

    ends = sorted(((arrival(p)[0] + s, p) for p, s in setups.items() if p in route_arcs),
                  key=lambda e: -e[0])
    return [(ns, p) for ns, p in ends if ns > _UNTIMED], memo


def _chain(memo, pin) -> list:
    """The pins of the latest path into ``pin``, from it back to its start."""
    chain = [pin]
    while memo[chain[-1]][1] is not None:
        chain.append(memo[chain[-1]][1])
    return chain


def slowest(text: str, *, top: int = 20, start: str | None = None) -> list[RoutedPath]:
    """The ``top`` slowest paths of an SDF, one per start and end signal (from ``start``
    only: :func:`_from`)."""
    ends, memo = _arrivals(text, start)
    out, seen = [], set()
    for ns, pin in ends:
        chain = _chain(memo, pin)
        start, end = _base(chain[-1][0]), _base(pin[0])
        key = (start, re.sub(r"\d+", "#", end))
        if key in seen:
            continue
        seen.add(key)
        steps = tuple((round(memo[p][0], 3), memo[p][2], f"{p[0]}/{p[1]}")
                      for p in reversed(chain))
        out.append(RoutedPath(round(ns, 3), start, f"{pin[0]}/{pin[1]}", steps))
        if len(out) == top:
            break
    return out


def _unit(signal: str) -> str:
    """The unit a signal belongs to: its first hierarchy level (the top's own: ``(top)``)."""
    return signal.split(".")[0] if "." in signal else "(top)"


def over(text: str, ns: float, *, start: str | None = None) -> dict[tuple[str, str], int]:
    """How many clocked inputs (every bit's) a path reaches later than ``ns`` (setup
    included), by the units of its start and end (:func:`_unit`), most first: the work a
    clock period of ``ns`` leaves, where one path's list shows its worst (from ``start``
    only: :func:`_from`)."""
    ends, memo = _arrivals(text, start)
    counts: dict[tuple[str, str], int] = {}
    for t, pin in ends:
        if t <= ns:
            break
        key = (_unit(_base(_chain(memo, pin)[-1][0])), _unit(_base(pin[0])))
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


_PACKED = re.compile(r"\$(DPRAM_COMB\d|RAMW_SLICE|CCU2_COMB\d)$")


def _base(inst: str) -> str:
    """A cell's source signal: its name before the suffixes the mapping and packing add."""
    return CELL_SUFFIX.split(_PACKED.sub("", inst))[0].split("[")[0]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m hwaccel.impl.routed_paths", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sdf", type=Path, help="the SDF nextpnr wrote (--sdf)")
    ap.add_argument("--top", type=int, default=20, help="paths to list (default: 20)")
    ap.add_argument("--steps", action="store_true", help="also list each path's cells and routes")
    ap.add_argument("--over", type=float, metavar="NS",
                    help="instead count the clocked inputs reached later than NS ns, by the "
                         "units of the path's start and end")
    ap.add_argument("--start", metavar="SIGNAL",
                    help="only the paths from this start signal (a name ending in '.': every "
                         "start under it)")
    args = ap.parse_args(argv)
    try:
        text = args.sdf.read_text()
        if args.over is not None:
            counts = over(text, args.over, start=args.start)
            where = f" from {args.start}" if args.start else ""
            print(f"{sum(counts.values())} clocked inputs later than {args.over:g} ns "
                  f"({1000 / args.over:.1f} MHz){where}, by start unit -> end unit:")
            for (a, b), n in counts.items():
                print(f"{n:8d}  {a} -> {b}")
            return
        paths = slowest(text, top=args.top, start=args.start)
    except (OSError, ValueError, AttributeError) as exc:
        sys.exit(f"routed_paths: {args.sdf}: {exc}")
    for p in paths:
        print(f"{p.ns:7.3f} ns  ({p.routing_ns:6.3f} routing)  {p.start} -> {p.end}")
        if args.steps:
            for ns, kind, name in p.steps:
                print(f"          {ns:7.3f}  {kind:<5}  {name}")


if __name__ == "__main__":
    main()
