"""Benchmarks behind ``hwaccel bench <name>``: each module measures on the RTL and returns rows.

A benchmark module defines ``add_arguments(parser)`` and ``run(args) -> list[dict]``; the CLI
prints the rows as a table, or as JSON with ``--json`` (reports are data first).
"""

from __future__ import annotations

import importlib

__all__ = ["BENCHES", "load", "format_table"]

BENCHES = {
    "gemm": "hwaccel.bench.gemm",
    "sim-speed": "hwaccel.bench.sim_speed",
    "conv": "hwaccel.bench.conv",
    "lstm": "hwaccel.bench.lstm",
    "accel": "hwaccel.bench.accel",
    "parallel": "hwaccel.bench.parallel",
    "energy": "hwaccel.bench.energy",
    "zoo": "hwaccel.bench.zoo",
}


def load(name: str):
    return importlib.import_module(BENCHES[name])


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A plain aligned text table of ``rows`` (dicts) over ``columns``."""
    if not rows:
        return "(no rows)"
    cols = columns or list(rows[0])
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
