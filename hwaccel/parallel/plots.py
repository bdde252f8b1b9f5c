"""``hwaccel parallel --plot DIR``: PNG views of the rows (matplotlib, Agg, through
:mod:`hwaccel.plotting`: tick labels in range on every axis, units in the axis titles).

* ``speedup.png``: speedup and efficiency (speedup / N) against the instance count N, one line
  per mode (per mode and link latency ``L`` when a mode's rows have several), beside the ideal
  (speedup N, efficiency 1);
* ``throughput_vs_latency.png`` (rows of one mode and N at several link latencies, as tp's
  ``--link-latency 0,16,64`` gives): hardware samples a second at the rows' clock against ``L``,
  one line per mode and N;
* ``pp_bubbles.png`` (rows that ran a pipeline): the measured bubble fraction against N, beside
  GPipe's ``(p - 1) / (m + p - 1)`` for the same ``m`` samples;
* ``pp_timeline_N<n>.png`` (each such row): every instance's cycles receiving, computing and
  (a strip under it) sending, sample by sample (the row's :class:`.pp_model.Timeline`); the
  gaps in the receive and compute bars are the bubbles;
* ``samples_vs_dsp.png`` (given a :class:`.hardware.Placement`): simulated-hardware samples a
  second at the preset's placed Fmax (the rows' cycles, the placement's clock) against the DSPs
  the N instances use, one line per mode (as the speedup plot's), each point named by its N.

The figures are views of the rows: :func:`figures` builds them (the values plotted are the
rows' own: ``speedup``, ``efficiency``, ``bubble_fraction`` and the timeline's cycles) and
:func:`write_plots` saves them.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

__all__ = ["figures", "write_plots", "series", "latency_series", "timeline_segments",
           "gpipe_bubbles", "dsp_points"]

#: The phases of an instance's sample in a timeline, with the Timeline fields that bound them.
PHASES = (("receive", "recv", "arrived"), ("compute", "start", "finish"),
          ("send", "send", "sent"))
COLORS = {"receive": "tab:blue", "compute": "tab:green", "send": "tab:orange"}


def gpipe_bubbles(stages: int, samples: int) -> Fraction:
    """GPipe's bubble fraction ``(p - 1) / (m + p - 1)``."""
    return Fraction(stages - 1, samples + stages - 1)


def _timeline(row):
    """A row's timeline (a list of :meth:`.pp_model.Timeline.rows` dicts), or ``None``."""
    return getattr(row, "timeline", None) or None


def timeline_segments(row) -> dict[str, list[tuple[int, int, int, int]]]:
    """Per phase, ``(instance, sample, start cycle, cycles)`` of every span the timeline plot
    draws, from the row's timeline; zero-length spans are left out."""
    out: dict[str, list] = {name: [] for name, _, _ in PHASES}
    for t in _timeline(row):
        for name, lo, hi in PHASES:
            if t[hi] > t[lo]:
                out[name].append((t["stage"], t["sample"], t[lo], t[hi] - t[lo]))
    return out


def _stages(row) -> int:
    return 1 + max(t["stage"] for t in _timeline(row))


def _integer_axis(ax, values) -> None:
    """Ticks at the instance counts, the axis a half step past them."""
    values = sorted(set(values))
    ax.set_xticks(values, [str(v) for v in values])
    ax.set_xlim(values[0] - 0.5, values[-1] + 0.5)


def series(rows) -> dict[str, list]:
    """The rows by line of the speedup plot, each in instance order: by mode, and by link
    latency too (label ``"<mode> L=<L>"``) for a mode whose rows have several."""
    out: dict[str, list] = {}
    for mode in dict.fromkeys(r.mode for r in rows):
        mine = [r for r in rows if r.mode == mode]
        lat = list(dict.fromkeys(getattr(r, "link_latency", None) for r in mine))
        for v in lat:
            label = mode if len(lat) == 1 else f"{mode} L={v}"
            out[label] = sorted((r for r in mine if getattr(r, "link_latency", None) == v),
                                key=lambda r: r.instances)
    return out


def latency_series(rows) -> dict[str, list]:
    """The rows by line of the throughput plot: ``"<mode> N=<n>"`` with rows at two link
    latencies or more, each in latency order."""
    groups: dict[str, list] = {}
    for r in rows:
        if getattr(r, "link_latency", None) is not None:
            groups.setdefault(f"{r.mode} N={r.instances}", []).append(r)
    return {k: sorted(v, key=lambda r: r.link_latency) for k, v in groups.items()
            if len({r.link_latency for r in v}) > 1}


def _speedup_figure(plt, rows):
    fig, (sp, ef) = plt.subplots(1, 2, figsize=(11, 4.2))
    counts = [r.instances for r in rows]
    ideal = sorted(set(counts))
    sp.plot(ideal, ideal, "k--", linewidth=1, label="ideal (N)")
    ef.plot(ideal, [1.0] * len(ideal), "k--", linewidth=1, label="ideal (1)")
    for label, sel in series(rows).items():
        n = [r.instances for r in sel]
        sp.plot(n, [r.speedup for r in sel], "o-", label=label)
        ef.plot(n, [r.efficiency for r in sel], "o-", label=label)
    batch = sorted({r.batch for r in rows})
    what = f"batch {', '.join(map(str, batch))}"
    for ax, top in ((sp, max([*counts, *(r.speedup for r in rows)])),
                    (ef, max([1.0, *(r.efficiency for r in rows)]))):
        _integer_axis(ax, counts)
        ax.set_ylim(0, top * 1.1)
        ax.set_xlabel("instances N")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    sp.set_ylabel("speedup (one instance's cycles / N instances' cycles)")
    sp.set_title(f"speedup against instances ({what})")
    ef.set_ylabel("efficiency (speedup / N)")
    ef.set_title(f"efficiency against instances ({what})")
    fig.tight_layout()
    return fig


def _latency_figure(plt, lines):
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    lat = sorted({r.link_latency for sel in lines.values() for r in sel})
    for label, sel in lines.items():
        ax.plot([r.link_latency for r in sel], [r.hw_samples_per_second for r in sel], "o-",
                label=label)
    ax.set_xticks(lat, [str(v) for v in lat])
    pad = max(1, (lat[-1] - lat[0]) * 0.05)
    ax.set_xlim(lat[0] - pad, lat[-1] + pad)
    ax.set_ylim(0, max(r.hw_samples_per_second for sel in lines.values() for r in sel) * 1.1)
    mhz = ", ".join(f"{v:.1f}" for v in sorted({r.clock_mhz for sel in lines.values()
                                                for r in sel}))
    ax.set_xlabel("link latency L (cycles each way)")
    ax.set_ylabel(f"hardware throughput (samples/s at {mhz} MHz)")
    ax.set_title("throughput against link latency")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _bubbles_figure(plt, rows):
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    sel = sorted(rows, key=lambda r: r.instances)
    n = [r.instances for r in sel]
    ax.plot(n, [r.bubble_fraction for r in sel], "o-", label="measured")
    law = [float(gpipe_bubbles(_stages(r), r.batch)) for r in sel]
    ax.plot(n, law, "s--", label="GPipe (p - 1) / (m + p - 1)")
    _integer_axis(ax, n)
    ax.set_ylim(0, max(1e-3, *law, *(r.bubble_fraction for r in sel)) * 1.15)
    ax.set_xlabel("instances N (pipeline stages p)")
    ax.set_ylabel("bubble fraction (idle instance-cycles / all)")
    m = ", ".join(str(b) for b in sorted({r.batch for r in sel}))
    ax.set_title(f"pp bubbles against stages (m = {m} samples)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _timeline_figure(plt, row):
    p = _stages(row)
    segs = timeline_segments(row)
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.7 * p))
    for name, spans in segs.items():
        for k in range(p):
            mine = [(s, c) for i, _, s, c in spans if i == k]
            if mine:
                # A send is drawn as a strip under the lane: with send mirrors it overlaps the
                # instance's next receive (:mod:`.pp_model`).
                band = (k + 0.2, 0.15) if name == "send" else (k - 0.35, 0.55)
                ax.broken_barh(mine, band, facecolors=COLORS[name],
                               edgecolor="white", linewidth=0.5,
                               label=name if k == min(i for i, *_ in spans) else None)
    numbers = [ax.text(s + c / 2, k, str(sample), ha="center", va="center", fontsize=7)
               for k, sample, s, c in segs["compute"]]   # the sample each compute span runs
    end = max(s + c for spans in segs.values() for _, _, s, c in spans)
    ax.set_xlim(0, end)
    ax.set_ylim(p - 0.5, -0.5)
    ax.set_yticks(range(p), [f"instance {k}" for k in range(p)])
    ax.set_xlabel("time (cycles)")
    ax.set_ylabel("pipeline stage")
    ax.set_title(f"pp timeline, {p} stage{'s' if p > 1 else ''}, {row.batch} samples: bubble "
                 f"fraction {row.bubble_fraction:.3f} (GPipe "
                 f"{float(gpipe_bubbles(p, row.batch)):.3f}), period {row.period:,} cycles")
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    _keep_fitting(ax, numbers, [c for *_, c in segs["compute"]])
    return fig


def _keep_fitting(ax, texts, widths) -> None:
    """Remove each text wider than its bar (``widths`` in cycles): a number spilling over its
    neighbours' is unreadable, so only the spans wide enough keep theirs."""
    if not texts:
        return
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    scale = ax.transData.transform((1, 0))[0] - ax.transData.transform((0, 0))[0]
    for text, cycles in zip(texts, widths):
        if text.get_window_extent(renderer).width + 2 > cycles * scale:
            text.remove()


def dsp_points(rows, placement) -> dict[str, list[tuple[int, float, int]]]:
    """Per line of the DSP plot (:func:`series`' labels), ``(DSPs, samples/s, N)`` of each row:
    the N instances' DSPs and the row's batch over its simulated cycles at the placed Fmax."""
    return {label: [(placement.dsps(r.instances),
                     placement.samples_per_second(r.batch, r.cycles), r.instances) for r in sel]
            for label, sel in series(rows).items()}


def _dsp_figure(plt, rows, placement):
    from matplotlib.ticker import FuncFormatter

    from ..plotting import add_notes, compact, label_points

    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    lines = dsp_points(rows, placement)
    xs, ys, names = [], [], []
    for label, pts in lines.items():
        ax.plot([d for d, _, _ in pts], [s for _, s, _ in pts], "o-", label=label)
        xs += [d for d, _, _ in pts]
        ys += [s for _, s, _ in pts]
        names += [f"N={n}" for _, _, n in pts]
    ticks = sorted(set(xs))
    ax.set_xticks(ticks, [compact(v) for v in ticks])
    pad = max(1.0, (ticks[-1] - ticks[0]) * 0.08)
    ax.set_xlim(ticks[0] - pad, ticks[-1] + pad)
    ax.set_ylim(0, max(ys) * 1.15)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
    ax.set_xlabel(f"DSPs used (N instances x {placement.dsp_per_instance} MULT18X18D)")
    ax.set_ylabel(f"hardware throughput (samples/s at {placement.fmax_mhz:g} MHz)")
    batch = ", ".join(str(b) for b in sorted({r.batch for r in rows}))
    ax.set_title(f"samples per second against DSPs (batch {batch})")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    label_points(ax, xs, ys, names)
    add_notes(fig, [f"clock and DSPs: {placement.source}; links and arbiters use no DSPs; "
                    f"cycles simulated (each equal to its model's)"])
    return fig


def figures(rows, placement=None) -> dict:
    """``{name: matplotlib Figure}`` of the module docstring for ``rows`` (any mode's rows,
    auto's included), the DSP view given a :class:`.hardware.Placement`; the caller closes
    them."""
    from ..plotting import pyplot

    rows = list(rows)
    if not rows:
        raise ValueError("rows must hold at least one row to plot, not none")
    plt = pyplot()
    out = {"speedup": _speedup_figure(plt, rows)}
    lines = latency_series(rows)
    if lines:
        out["throughput_vs_latency"] = _latency_figure(plt, lines)
    piped = [r for r in rows if _timeline(r) is not None]
    if piped:
        out["pp_bubbles"] = _bubbles_figure(plt, piped)
    for r in piped:
        out[f"pp_timeline_N{r.instances}"] = _timeline_figure(plt, r)
    if placement is not None:
        out["samples_vs_dsp"] = _dsp_figure(plt, rows, placement)
    return out


def write_plots(rows, out: Path | str, placement=None) -> dict[str, Path]:
    """Write :func:`figures` into the folder ``out`` (made if missing) as PNGs; returns
    ``{name: path}``."""
    from ..plotting import save

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--plot must name a folder, not the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    return {name: save(fig, out / f"{name}.png") for name, fig in figures(rows, placement).items()}
