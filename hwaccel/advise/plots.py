"""``hwaccel advise --plot DIR``: PNG views of the advise rows (matplotlib, Agg, through
:mod:`hwaccel.plotting`).

* ``latency_vs_energy.png``: latency (µs) against energy (µJ), log-log, one marker per kind
  (measured, modelled, published), every point labelled with its platform, and the Pareto front
  (least latency, least energy) as a staircase through its points. Rows without an energy or a
  latency figure are listed in a note under the plot, never dropped in silence.
* ``throughput_vs_batch.png`` (when the rows hold more than one batch): throughput (inferences
  a second) against the batch, one line per platform.

The rows are the JSON rows of ``hwaccel advise`` (:meth:`.rows.AdviseRow.to_json`): dicts with
``platform``, ``kind``, ``batch``, ``latency_us``, ``throughput_per_s``, ``energy_uj`` (``None``
when unknown) and ``source``.
"""

from __future__ import annotations

from numbers import Real
from pathlib import Path

__all__ = ["plot_report", "figures", "KIND_STYLE"]

#: Marker and colour of each kind of row.
KIND_STYLE = {"measured": ("o", "tab:blue"), "modelled": ("s", "tab:orange"),
              "published": ("^", "tab:green")}
REQUIRED = ("platform", "kind", "batch", "latency_us", "throughput_per_s", "energy_uj", "source")
FIGURES = ("latency_vs_energy", "throughput_vs_batch")


def _check(rows) -> list[dict]:
    rows = list(rows)
    if not rows:
        raise ValueError("rows must hold at least one advise row to plot, not none")
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise ValueError(f"row {i} must be a dict, not {type(r).__name__}")
        name = r.get("platform", f"#{i}")
        missing = [k for k in REQUIRED if k not in r]
        if missing:
            raise ValueError(f"row {name!r} lacks the key(s) {', '.join(missing)}")
        if r["kind"] not in KIND_STYLE:
            raise ValueError(f"row {name!r}: kind must be one of {', '.join(KIND_STYLE)}, not "
                             f"{r['kind']!r}")
        if not (isinstance(r["batch"], int) and r["batch"] >= 1):
            raise ValueError(f"row {name!r}: batch must be an integer >= 1, not {r['batch']!r}")
        for key in ("latency_us", "throughput_per_s", "energy_uj"):
            v = r[key]
            if v is not None and not (isinstance(v, Real) and v > 0):
                raise ValueError(f"row {name!r}: {key} must be a positive number or None, not "
                                 f"{v!r}")
    return rows


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _what(r, multi_batch: bool) -> str:
    return f"{r['platform']} (b={r['batch']})" if multi_batch else r["platform"]


def _latency_energy_figure(plt, rows):
    from ..plotting import add_notes, draw_front, label_points, readable_axes

    batches = sorted({r["batch"] for r in rows})
    multi = len(batches) > 1
    pts = [r for r in rows if r["latency_us"] is not None and r["energy_uj"] is not None]
    notes = []
    for r in rows:
        lacking = [k for k, key in (("energy", "energy_uj"), ("latency", "latency_us"))
                   if r[key] is None]
        if lacking:
            has = (f", {_num(r['latency_us'])} µs" if r["latency_us"] is not None else
                   f", {_num(r['energy_uj'])} µJ" if r["energy_uj"] is not None else "")
            notes.append(f"{_what(r, multi)} ({r['kind']}{has})")
    fig, ax = plt.subplots(figsize=(8.5, 5.5))
    per = "batch" if multi else ("inference" if batches == [1] else f"batch of {batches[0]}")
    ax.set_xlabel("energy per inference (µJ)")   # advise rows' energy_uj is per inference
    ax.set_ylabel(f"latency per {per} (µs)")
    ax.set_title("latency against energy (lower left is better)")
    if not pts:
        ax.text(0.5, 0.5, "no row has both a latency and an energy figure",
                ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])
    else:
        xs, ys = [r["energy_uj"] for r in pts], [r["latency_us"] for r in pts]
        for kind, (marker, color) in KIND_STYLE.items():
            sel = [(r["energy_uj"], r["latency_us"]) for r in pts if r["kind"] == kind]
            if sel:
                ax.scatter(*zip(*sel), marker=marker, color=color, label=kind, zorder=2)
        draw_front(ax, xs, ys, label="Pareto front (latency, energy)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.margins(0.15)
        readable_axes(ax)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        label_points(ax, xs, ys, [_what(r, multi) for r in pts], key_title="platforms")
    if notes:
        add_notes(fig, ["not plotted, without an energy or a latency figure: "
                        + "; ".join(notes)], width=120)
    return fig


def _throughput_figure(plt, rows):
    from ..plotting import add_notes, readable_axes

    fig, ax = plt.subplots(figsize=(8.5, 5.0))
    platforms = list(dict.fromkeys(r["platform"] for r in rows))
    markers = {p: KIND_STYLE[next(r["kind"] for r in rows if r["platform"] == p)][0]
               for p in platforms}
    missing = []
    for p in platforms:
        mine = sorted((r for r in rows if r["platform"] == p), key=lambda r: r["batch"])
        sel = [(r["batch"], r["throughput_per_s"]) for r in mine
               if r["throughput_per_s"] is not None]
        missing += [f"{p} (b={r['batch']})" for r in mine if r["throughput_per_s"] is None]
        if sel:
            ax.plot(*zip(*sel), marker=markers[p], linestyle="-", label=p)
    batches = sorted({r["batch"] for r in rows})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.margins(x=0.08, y=0.12)
    readable_axes(ax, xvalues=batches)
    ax.set_xlabel("batch (inferences per run)")
    ax.set_ylabel("throughput (inferences/s)")
    ax.set_title("throughput against batch (o measured, s modelled, ^ published)")
    ax.grid(True, which="major", alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    if missing:
        add_notes(fig, ["not plotted, without a throughput figure: " + "; ".join(missing)],
                  width=120)
    return fig


def figures(rows) -> dict:
    """``{name: matplotlib Figure}`` of the module docstring for the advise rows; the caller
    closes them."""
    from ..plotting import pyplot

    rows = _check(rows)
    plt = pyplot()
    out = {"latency_vs_energy": _latency_energy_figure(plt, rows)}
    if len({r["batch"] for r in rows}) > 1:
        out["throughput_vs_batch"] = _throughput_figure(plt, rows)
    return out


def plot_report(rows: list[dict], folder) -> list[Path]:
    """Write :func:`figures` of ``rows`` into ``folder`` (made if missing) as PNGs; returns
    their paths."""
    from ..plotting import save

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"--plot must name a folder, not the file {str(folder)!r}")
    figs = figures(rows)
    folder.mkdir(parents=True, exist_ok=True)
    return [save(fig, folder / f"{name}.png") for name, fig in figs.items()]
