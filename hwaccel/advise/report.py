"""Views of ``hwaccel advise``'s rows: the recommendation for a goal and the table.

The recommendation ranks only rows that have the goal's figure (a row of ``None`` figures is
counted, not ranked) and names the deciding figures: the best row's figure and how it was
obtained, against the best row of each other kind.
"""

from __future__ import annotations

from .rows import AdviseRow

__all__ = ["GOALS", "best", "recommend", "format_table"]

#: goal -> (row field, True when larger is better, what it is called, unit)
GOALS = {
    "latency": ("latency_us", False, "lowest latency", "us"),
    "energy": ("energy_uj", False, "lowest energy", "uJ/inference"),
    "throughput": ("throughput_per_s", True, "highest throughput", "samples/s"),
}


def check_goal(goal: str) -> tuple:
    if goal not in GOALS:
        raise ValueError(f"--goal must be one of {', '.join(GOALS)}, not {goal!r}")
    return GOALS[goal]


def best(rows: list[AdviseRow], goal: str) -> AdviseRow | None:
    """The row with the best figure for ``goal`` (None when no row has it)."""
    key, larger, _, _ = check_goal(goal)
    ranked = [r for r in rows if getattr(r, key) is not None]
    if not ranked:
        return None
    return (max if larger else min)(ranked, key=lambda r: getattr(r, key))


def _num(v: float) -> str:
    """Four significant figures or more: 704,225; 871.3; 23.92; 0.0412."""
    v = float(v)
    if abs(v) >= 1e5:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:,.1f}"
    return f"{v:.2f}" if abs(v) >= 1 else f"{v:.3g}"


def _how(row: AdviseRow, goal: str) -> str:
    """How ``row``'s figure for ``goal`` was obtained, in a few words."""
    if row.kind == "measured":
        return f"measured on {row.device}" if row.device else "measured"
    if row.kind == "published":
        return "published: " + row.source.split(",")[0]
    if goal == "energy":
        lo, hi = row.energy_range_uj
        model = (f"energy model at {row.node_nm} nm" if row.node_nm
                 else "rough FPGA energy estimate")
        return f"{model}, range {_num(lo)}-{_num(hi)} uJ"
    clock = ("placed Fmax" if row.clock_source and "stated" not in row.clock_source
             else "stated clock")
    return f"model {row.cycles:,} cycles x {clock} {row.clock_mhz:g} MHz"


def recommend(rows: list[AdviseRow], goal: str) -> str:
    """A short recommendation for ``goal`` naming the deciding figures: the best row's, and
    the best of each kind it is not."""
    key, larger, title, unit = check_goal(goal)
    batches = {r.batch for r in rows if getattr(r, key) is not None}

    def name(r: AdviseRow) -> str:
        return f"{r.platform} (batch {r.batch})" if len(batches) > 1 else r.platform

    missing = list(dict.fromkeys(name(r) for r in rows if getattr(r, key) is None))
    tail = f" (not ranked, no {key}: {', '.join(missing)})" if missing else ""
    winner = best(rows, goal)
    if winner is None:
        return f"{title}: no row has {key}{tail}"
    others = []
    for kind in ("measured", "modelled", "published"):
        rival = best([r for r in rows if r.kind == kind and r.platform != winner.platform],
                     goal)
        if rival is not None:
            others.append(f"{name(rival)} {_num(getattr(rival, key))} {unit} "
                          f"({_how(rival, goal)})")
    line = (f"{title}: {name(winner)} at {_num(getattr(winner, key))} {unit} "
            f"({_how(winner, goal)})")
    if others:
        line += " vs " + "; ".join(others)
    if len(batches) > 1:
        line += (". Latency is a batch's, energy an inference's; published figures are "
                 "single-stream")
    return line + tail


COLUMNS = ["platform", "kind", "batch", "latency us", "samples/s", "energy uJ/inf",
           "area mm2 / resources", "src", "note"]


def _resources(row: AdviseRow) -> str:
    if row.area_mm2 is not None:
        return f"{row.area_mm2:.3f} mm2"
    if row.resources:
        return " ".join(f"{k} {v:,}" for k, v in row.resources.items()
                        if v is not None and k != "fmax_mhz")
    return "-"


def format_table(rows: list[AdviseRow], recommendation: str | None = None) -> str:
    """The rows as a table, their sources numbered under it, then the recommendation."""
    sources: list[str] = []
    cells = []
    for r in rows:
        if r.source not in sources:
            sources.append(r.source)
        cells.append([r.platform, r.kind, str(r.batch),
                      "-" if r.latency_us is None else _num(r.latency_us),
                      "-" if r.throughput_per_s is None else _num(r.throughput_per_s),
                      "-" if r.energy_uj is None else _num(r.energy_uj),
                      _resources(r), f"[{sources.index(r.source) + 1}]", r.note])
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(COLUMNS[:-1])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(COLUMNS, widths)) + "  note",
             "  ".join("-" * w for w in widths) + "  ----"]
    lines += ["  ".join(v.ljust(w) for v, w in zip(c, widths)) + "  " + c[-1] for c in cells]
    lines.append("")
    lines += [f"[{i + 1}] {s}" for i, s in enumerate(sources)]
    if recommendation:
        lines += ["", recommendation]
    return "\n".join(lines)
