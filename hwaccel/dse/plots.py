"""PNG views of a sweep (matplotlib, Agg, through :mod:`hwaccel.plotting`): latency against
area with the Pareto front drawn as a staircase through its points and every point labelled,
and the utilization of every layer at every point."""

from __future__ import annotations

from pathlib import Path

from .workloads import WORKLOADS

__all__ = ["figures", "write_plots"]

#: The area axes' titles, unit in parentheses.
AXIS = {"dsp": "area (DSP blocks)", "lut": "area (LUTs)", "gates": "area (generic gates)",
        "macs": "array size (MAC units)"}
#: Marker and legend entry of each dataflow ("" is an accelerator preset).
KINDS = (("os", "o", "os"), ("ws", "s", "ws"), ("", "^", "accelerator"))


def _pyplot():
    from ..plotting import pyplot

    return pyplot()


def _latency_figure(plt, results, fronts, metric: str):
    from ..plotting import add_notes, draw_front, label_points, readable_axes
    from .sweep import area_value, cost

    fig, axes = plt.subplots(1, len(WORKLOADS), figsize=(6 * len(WORKLOADS), 4.5))
    timed = any(r.latency_us for r in results)
    placed = []
    for ax, w in zip(axes, WORKLOADS):
        pts = [(area_value(r, metric), cost(r, w), r) for r in results]
        pts = [p for p in pts if p[0] is not None and p[1] is not None]
        xs, ys = [a for a, _, _ in pts], [c for _, c, _ in pts]
        for df, marker, name in KINDS:
            sel = [(a, c) for a, c, r in pts if r.point.dataflow == df]
            if sel:
                ax.scatter(*zip(*sel), marker=marker, label=name, alpha=0.7, zorder=2)
        front = set(fronts.get(f"{w}/{metric}", []))
        draw_front(ax, xs, ys, front=[i for i, p in enumerate(pts) if p[2].label in front])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.margins(0.12)
        readable_axes(ax, xvalues=xs if metric == "macs" else None)
        ax.set_xlabel(AXIS[metric])
        ax.set_ylabel("latency (µs)" if timed else "latency (cycles; model only, no Fmax)")
        ax.set_title(f"{w.upper()}: latency vs {AXIS[metric].split(' (')[0]}")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
        placed.append((ax, xs, ys, [r.label.split("_", 1)[1] for _, _, r in pts]))
    failed = [f"{r.label}: {r.error}" for r in results if r.error]
    failed += [f"{r.label} on {w.upper()}: {r.workloads[w]['error']}" for w in WORKLOADS
               for r in results if not r.error and "error" in r.workloads.get(w, {})]
    notes = [f"not shown: {why[:160]}" for why in failed[:6]]
    if len(failed) > 6:
        notes.append(f"... and {len(failed) - 6} more points not shown (see results.json)")
    fig.tight_layout()
    for ax, xs, ys, texts in placed:   # once the layout is final
        label_points(ax, xs, ys, texts)
    add_notes(fig, notes)
    return fig


def _utilization_figure(plt, results):
    rows = [r for r in results if r.workloads]
    cols = []
    for w in WORKLOADS:
        for r in rows:
            for layer in r.workloads.get(w, {}).get("layers", []):
                key = f"{w}:{layer['layer']}"
                if key not in cols:
                    cols.append(key)
    grid = [[None] * len(cols) for _ in rows]
    for i, r in enumerate(rows):
        for w in WORKLOADS:
            for layer in r.workloads.get(w, {}).get("layers", []):
                grid[i][cols.index(f"{w}:{layer['layer']}")] = layer["utilization"]
    fig, ax = plt.subplots(figsize=(1.5 + 0.75 * len(cols), 2.0 + 0.35 * len(rows)))
    data = [[float("nan") if v is None else v for v in row] for row in grid]
    im = ax.imshow(data, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if v is not None:
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if v < 0.6 else "black")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), [r.label for r in rows], fontsize=8)
    ax.set_title("utilization per layer (MACs / (cycles x MAC units))")
    ax.set_xlabel("workload:layer")
    ax.set_ylabel("design point")
    fig.colorbar(im, ax=ax, label="utilization (fraction of MAC slots)")
    fig.tight_layout()
    return fig


def figures(results, fronts: dict) -> dict:
    """``{name: matplotlib Figure}``: ``latency_vs_<metric>`` for each area metric the results
    have, and ``utilization``; the caller closes them."""
    from .sweep import area_metrics

    plt = _pyplot()
    out = {f"latency_vs_{m}": _latency_figure(plt, results, fronts, m)
           for m in area_metrics(results)}
    out["utilization"] = _utilization_figure(plt, results)
    return out


def write_plots(results, fronts: dict, out: Path) -> dict:
    """Write the PNGs into ``out``; returns ``{name: path}``."""
    from ..plotting import save

    return {name: save(fig, Path(out) / f"{name}.png")
            for name, fig in figures(results, fronts).items()}
