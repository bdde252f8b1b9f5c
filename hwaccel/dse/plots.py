"""PNG views of a sweep (matplotlib, Agg): latency against area with the Pareto front marked,
and the utilization of every layer at every point."""

from __future__ import annotations

from pathlib import Path

from .workloads import WORKLOADS

__all__ = ["write_plots"]

AXIS = {"dsp": "DSP blocks", "lut": "LUTs", "gates": "gates (generic)", "macs": "MAC units (PEs)"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _latency_plot(plt, results, fronts, metric: str, path: Path) -> None:
    from matplotlib.ticker import NullFormatter

    from .sweep import area_value, cost

    fig, axes = plt.subplots(1, len(WORKLOADS), figsize=(6 * len(WORKLOADS), 4.5))
    timed = any(r.latency_us for r in results)
    for ax, w in zip(axes, WORKLOADS):
        pts = [(area_value(r, metric), cost(r, w), r) for r in results]
        pts = [p for p in pts if p[0] is not None and p[1] is not None]
        front = set(fronts.get(f"{w}/{metric}", []))
        for df, marker in (("os", "o"), ("ws", "s"), ("", "^")):
            sel = [(a, c) for a, c, r in pts if r.point.dataflow == df]
            if sel:
                ax.scatter(*zip(*sel), marker=marker, label=df or "accelerator", alpha=0.7)
        edge = sorted((a, c) for a, c, r in pts if r.label in front)
        if edge:
            ax.step(*zip(*edge), where="post", color="black", linewidth=1, label="Pareto front")
            ax.scatter(*zip(*edge), facecolors="none", edgecolors="black", s=120)
        for a, c, r in pts:
            ax.annotate(r.label.split("_", 1)[1], (a, c), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):   # label decades only: minor labels collide
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(AXIS[metric])
        ax.set_ylabel("latency (µs)" if timed else "latency (cycles: no Fmax)")
        ax.set_title(f"{w.upper()}: latency vs {AXIS[metric]}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    failed = [r for r in results if r.error]
    notes = [f"not shown: {r.label}: {r.error[:110]}" for r in failed[:6]]
    if len(failed) > 6:
        notes.append(f"... and {len(failed) - 6} more failed points (see results.json)")
    for i, note in enumerate(notes):
        fig.text(0.01, 0.01 + 0.025 * (len(notes) - 1 - i), note, fontsize=7)
    fig.tight_layout(rect=(0, 0.03 + 0.025 * len(notes) if notes else 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _utilization_plot(plt, results, path: Path) -> None:
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
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.2 + 0.35 * len(rows)))
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
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(results, fronts: dict, out: Path) -> dict:
    """Write the PNGs into ``out``; returns ``{name: path}``."""
    from .sweep import area_metrics

    plt = _pyplot()
    files = {}
    for metric in area_metrics(results):
        path = out / f"latency_vs_{metric}.png"
        _latency_plot(plt, results, fronts, metric, path)
        files[f"latency_vs_{metric}"] = path
    path = out / "utilization.png"
    _utilization_plot(plt, results, path)
    files["utilization"] = path
    return files
