"""The cited per-event energy table (``data/events.json``) and its node scaling, read once.

Every entry of the table has ``low`` and ``high`` values and a ``source`` (a key of the
file's ``sources``); an entry that is not a published figure carries ``"estimate": true`` and
a note on how it was derived. :func:`event` returns an entry's ``(low, high)``;
:func:`energy_factor` and :func:`area_factor` scale a 45 nm figure to another node
(Stillmaker & Baas 2017: the energy polynomial of each node at its supply range, over the
45 nm one at the 0.9 V of Horowitz's table; 28 nm interpolated between 32 and 20 nm).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

__all__ = ["NODES", "check_node", "event", "entry", "energy_factor", "area_factor", "table",
           "source_text"]

DATA = Path(__file__).parent / "data"


@cache
def table() -> dict:
    """The parsed ``data/events.json``."""
    return json.loads((DATA / "events.json").read_text())


NODES: tuple[int, ...] = tuple(table()["nodes"]["supported"])


def check_node(node) -> int:
    """``node`` as an int, or ValueError naming the supported nodes."""
    if isinstance(node, bool) or not isinstance(node, int) or node not in NODES:
        raise ValueError(f"node must be one of {', '.join(map(str, NODES))} (nm), not {node!r}")
    return node


def entry(name: str) -> dict:
    """The table entry ``name`` (ValueError naming the known ones if there is none)."""
    events = table()["events"]
    if name not in events:
        raise ValueError(f"no energy table entry {name!r}; entries: {', '.join(events)}")
    return events[name]


def event(name: str) -> tuple[float, float]:
    """``(low, high)`` of table entry ``name``, in its own unit (at 45 nm)."""
    e = entry(name)
    return float(e["low"]), float(e["high"])


def source_text(key: str) -> str:
    return table()["sources"][key]


def _poly(node: int, vdd: float) -> float:
    p = table()["nodes"]["energy_poly"][str(node)]
    return p["a"] * vdd * vdd + p["b"] * vdd + p["c"]


def _factors(node: int) -> tuple[float, float]:
    n = table()["nodes"]
    base = _poly(45, n["vdd"]["45"]["low"])
    v = n["vdd"][str(node)]
    ends = sorted((_poly(node, v["low"]) / base, _poly(node, v["high"]) / base))
    return ends[0], ends[1]


def energy_factor(node: int) -> tuple[float, float]:
    """``(low, high)`` factor from a 45 nm energy to ``node``'s (1, 1 at 45 nm)."""
    node = check_node(node)
    interp = table()["nodes"]["interpolated"].get(str(node))
    if interp is None:
        return _factors(node)
    big, small = interp["between"]
    t = (big - node) / (big - small)
    (bl, bh), (sl, sh) = _factors(big), _factors(small)
    return bl + t * (sl - bl), bh + t * (sh - bh)


def area_factor(node: int) -> float:
    """Factor from a 45 nm area to ``node``'s."""
    node = check_node(node)
    n = table()["nodes"]
    interp = n["interpolated"].get(str(node))
    if interp is None:
        return float(n["area_from_45"][str(node)]["factor"])
    big, small = interp["between"]
    t = (big - node) / (big - small)
    a, b = (float(n["area_from_45"][str(k)]["factor"]) for k in (big, small))
    return a + t * (b - a)
