"""Readable figures for every hwaccel plot (matplotlib, Agg backend).

The plots of ``hwaccel sweep``, ``hwaccel parallel`` and ``hwaccel advise`` are read by people,
so each one goes through the same few helpers:

* :func:`readable_axes`: every axis carries at least two tick labels inside its range, log axes
  spanning less than a decade included (matplotlib's default labels only decades there, so an
  axis from 16 to 64 shows none), in compact numbers (``20``, ``150k``, ``0.002``);
* :func:`pareto_front` and :func:`staircase`: the indices of the points no other point beats on
  both axes (each axis minimized or maximized), and the front drawn as a staircase whose steps
  join the front's points only, its corners at the worse coordinate of two neighbours (the
  boundary of what the front dominates); :func:`draw_front` draws it;
* :func:`label_points`: one label per point (points on the same spot share one), placed greedily
  beside its point where it overlaps no other label, marker, legend or the axes' edge; when one
  does not fit, every point is numbered instead and a key table below the axes names them;
* :func:`add_notes`: what a figure leaves out and why (rows without a figure, failed points),
  written below everything else rather than dropped in silence;
* :func:`save`: the PNG, cropped to everything drawn (key tables and notes included).

Axis titles carry the unit in parentheses, e.g. ``"latency (µs)"``; :func:`axis_problems`
checks a figure's axes the way the tests do.
"""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.ticker import FixedLocator, Locator, MaxNLocator

from .pareto import known as _known
from .pareto import pareto_front, staircase

__all__ = ["pyplot", "pareto_front", "staircase", "draw_front", "readable_axes", "compact",
           "NiceLogLocator", "tick_labels", "axis_problems", "label_points", "add_notes", "save"]

#: Points of data space closer than this on screen (pixels) share one label.
SAME_SPOT_PX = 4.0
#: Clearance kept around each label, marker and obstacle (points).
PAD_PT = 1.5
#: Radius of a plotted marker as the labels avoid it (points): a ringed front point's.
MARKER_PT = 6.0
def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_front(ax, xs, ys, *, x: str = "min", y: str = "min", front=None,
               label: str = "Pareto front", color: str = "black") -> list[int]:
    """Draw the Pareto front of the points on ``ax``: its staircase, and a ring on each of its
    points; returns its indices (``front`` if given, else :func:`pareto_front`'s)."""
    front = pareto_front(xs, ys, x=x, y=y) if front is None else sorted(front)
    if not front:
        return front
    steps = staircase(xs, ys, front, x=x, y=y)
    ax.plot([p[0] for p in steps], [p[1] for p in steps], color=color, linewidth=1,
            label=label, zorder=1.5)
    ax.scatter([xs[i] for i in front], [ys[i] for i in front], s=120, facecolors="none",
               edgecolors=color, linewidths=1, zorder=1.6)
    return front


# ---- tick labels -----------------------------------------------------------------------------

def compact(v: float) -> str:
    """A tick value in few characters: ``20``, ``0.002``, ``1500``, ``150k``, ``2.5M``."""
    a = abs(v)
    if a == 0:
        return "0"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e4, "k")):
        if a >= div:
            div = 1e3 if suffix == "k" else div
            return f"{v / div:.3g}{suffix}"
    return f"{v:.4g}" if a >= 1e3 else f"{v:.3g}"


def _nice_log_ticks(lo: float, hi: float, nbins: int = 4) -> list[float]:
    """Ticks of a log axis from ``lo`` to ``hi``: decades over three decades or more, 1-2-5
    per decade over one to three, and evenly stepped round numbers (20, 40, 60) over less than
    a decade, where a log axis would have one label or none."""
    if not (lo > 0 and hi > lo):
        return []
    decades = math.log10(hi / lo)
    eps = 1e-9 * hi
    if decades >= 1:
        mantissas = (1,) if decades >= 3 else (1, 2, 5)
        k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
        ticks = [m * 10.0 ** k for k in range(k0, k1 + 1) for m in mantissas]
        ticks = [t for t in ticks if lo - eps <= t <= hi + eps]
        if len(ticks) >= 2:
            return ticks[::math.ceil(len(ticks) / 9)]   # many decades: every 2nd, 3rd, ...
    return [t for t in MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]).tick_values(lo, hi)
            if lo - eps <= t <= hi + eps]


class NiceLogLocator(Locator):
    """Major ticks of a log axis that are labelled in any range (see :func:`_nice_log_ticks`),
    or the given data values when two or more are in range."""

    def __init__(self, values=None):
        self.values = sorted({float(v) for v in values or () if _known(v) and v > 0})

    def __call__(self):
        lo, hi = sorted(self.axis.get_view_interval())
        return self.tick_values(lo, hi)

    def tick_values(self, vmin, vmax):
        lo, hi = sorted((vmin, vmax))
        mine = [v for v in self.values if lo <= v <= hi]
        if len(mine) >= 2:
            stride = math.ceil(len(mine) / 10)
            return mine[::stride]
        # more round numbers fit up a y axis than along an x axis
        return _nice_log_ticks(lo, hi, 6 if getattr(self.axis, "axis_name", "x") == "y" else 4)


def readable_axes(ax, *, xvalues=None, yvalues=None) -> None:
    """Give each log axis of ``ax`` labelled major ticks in any range (at ``xvalues`` /
    ``yvalues``, e.g. the MAC counts of a sweep, when two or more are in range) and no minor
    labels; linear axes keep matplotlib's ticks, which always label two or more."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for axis, values in ((ax.xaxis, xvalues), (ax.yaxis, yvalues)):
        if axis.get_scale() == "log":
            axis.set_major_locator(NiceLogLocator(values))
            axis.set_major_formatter(FuncFormatter(lambda v, _pos: compact(v)))
            axis.set_minor_formatter(NullFormatter())


def tick_labels(axis) -> list[str]:
    """The visible, non-empty major tick labels of ``axis`` inside its range (after a draw)."""
    lo, hi = sorted(axis.get_view_interval())
    span = (hi - lo) * 1e-9
    out = []
    for t in axis.get_major_ticks():
        if lo - span <= t.get_loc() <= hi + span:   # labels on either side (a colorbar's right)
            out += [lab.get_text() for lab in (t.label1, t.label2)
                    if lab.get_visible() and lab.get_text()][:1]
    return out


def axis_problems(fig, *, need: int = 2) -> list[str]:
    """What a reader would miss on ``fig``: an axes without a title or an axis title, or an
    axis with fewer than ``need`` tick labels in its range (a colorbar: its long axis only; an
    axis of named ticks, such as one row of a timeline: as many as it names, one at least)."""
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        bar = getattr(ax, "_colorbar", None)
        if bar is not None:
            axes = [ax.yaxis if bar.orientation == "vertical" else ax.xaxis]
        else:
            axes = [ax.xaxis, ax.yaxis]
            if not (ax.get_title() and ax.get_xlabel() and ax.get_ylabel()):
                out.append(f"{ax.get_title()!r}: a title or an axis title is missing")
        for axis in axes:
            labels = tick_labels(axis)
            least = need
            if isinstance(axis.get_major_locator(), FixedLocator):   # named ticks: one may do
                least = min(need, max(1, len(axis.get_major_locator().locs)))
            if len(labels) < least:
                out.append(f"{ax.get_title()!r}: {axis.axis_name} axis has {labels} in "
                           f"{axis.get_view_interval().tolist()}")
    return out


# ---- point labels ----------------------------------------------------------------------------

def _directions():
    """(dx, dy, ha, va) unit offsets, the text on the side away from its point."""
    return [(1, 1, "left", "bottom"), (-1, 1, "right", "bottom"), (1, -1, "left", "top"),
            (-1, -1, "right", "top"), (1, 0, "left", "center"), (-1, 0, "right", "center"),
            (0, 1, "center", "bottom"), (0, -1, "center", "top")]


def _groups(px, texts) -> list[tuple[list[int], str]]:
    """Points on the same spot (within :data:`SAME_SPOT_PX`) gathered under one label."""
    groups: list[list[int]] = []
    for i, (u, v) in enumerate(px):
        for g in groups:
            u0, v0 = px[g[0]]
            if math.hypot(u - u0, v - v0) <= SAME_SPOT_PX:
                g.append(i)
                break
        else:
            groups.append([i])
    return [(g, ", ".join(dict.fromkeys(texts[i] for i in g))) for g in groups]


def _place(ax, renderer, anchors, texts, hard, soft, fontsize) -> list:
    """Greedy placement: each text at the first candidate spot (nearest first) inside the axes
    overlapping nothing in ``hard`` (which grows with each label placed) nor in ``soft`` (lines),
    else at the first clear of ``hard`` alone; ``None`` where none is."""
    from matplotlib.transforms import Bbox

    scale = ax.figure.dpi / 72.0
    frame = ax.get_window_extent(renderer)
    pad = PAD_PT * scale
    placed = []
    for (x, y), text in zip(anchors, texts):
        probe = ax.annotate(text, (x, y), xytext=(0, 0), textcoords="offset points",
                            fontsize=fontsize, annotation_clip=False)
        spots = []
        for dist in (4, 9, 16, 26):
            for dx, dy, ha, va in _directions():
                norm = math.hypot(dx, dy)
                probe.xyann = (dist * dx / norm, dist * dy / norm)
                probe.set_ha(ha)
                probe.set_va(va)
                box = _text_box(probe, renderer).padded(pad)
                if (box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0
                        and box.y1 <= frame.y1 and not any(box.overlaps(b) for b in hard)):
                    spots.append((box, probe.xyann, ha, va, dist))
        probe.remove()
        clear = [sp for sp in spots if not any(sp[0].overlaps(b) for b in soft)]
        if not (clear or spots):
            placed.append(None)
            continue
        box, offset, ha, va, dist = (clear or spots)[0]
        # a label set apart from its point gets a leader line to it
        arrow = (dict(arrowstyle="-", color="0.5", linewidth=0.5, shrinkA=0,
                      shrinkB=MARKER_PT / 2) if dist > 9 else None)
        placed.append(ax.annotate(text, (x, y), xytext=offset, textcoords="offset points",
                                  ha=ha, va=va, fontsize=fontsize, arrowprops=arrow,
                                  annotation_clip=False))
        hard.append(Bbox(box.get_points()))
    return placed


def _text_box(text, renderer):
    """The extent of a text alone (an annotation's includes its leader line)."""
    from matplotlib.text import Annotation, Text

    if isinstance(text, Annotation):
        text.update_positions(renderer)
    return Text.get_window_extent(text, renderer)


def _obstacles(ax, renderer, px) -> list:
    """What no label may cover: the markers, the legend, the texts already on the axes."""
    from matplotlib.transforms import Bbox

    r = MARKER_PT * ax.figure.dpi / 72.0
    out = [Bbox([[u - r, v - r], [u + r, v + r]]) for u, v in px]
    legend = ax.get_legend()
    if legend is not None:   # held where it is: a "best" legend would flee the labels
        box = legend.get_window_extent(renderer)
        corner = ax.transAxes.inverted().transform((box.x0, box.y0))
        legend.set_loc(tuple(corner))
        out.append(box)
    return out + [_text_box(t, renderer) for t in ax.texts]


def _line_pieces(ax) -> list:
    """The axes' lines (a front's staircase) as boxes around short straight pieces: labels keep
    clear of them where they can."""
    from matplotlib.transforms import Bbox

    step = 4 * MARKER_PT * ax.figure.dpi / 72.0
    out = []
    for line in ax.lines:
        path = line.get_transform().transform(line.get_xydata())
        for (u0, v0), (u1, v1) in zip(path, path[1:]):
            n = max(1, math.ceil(math.hypot(u1 - u0, v1 - v0) / step))
            for k in range(n):
                a, b = k / n, (k + 1) / n
                us, vs = (u0 + a * (u1 - u0), u0 + b * (u1 - u0)), (v0 + a * (v1 - v0),
                                                                      v0 + b * (v1 - v0))
                out.append(Bbox.from_extents(min(us) - 1, min(vs) - 1, max(us) + 1,
                                             max(vs) + 1))
    return out


def label_points(ax, xs, ys, texts, *, fontsize: float = 7, max_labels: int = 24,
                 key_title: str = "points") -> list:
    """Label each point ``(xs[i], ys[i])`` with ``texts[i]`` so no two labels overlap.

    Call it once the figure's layout is final (after ``tight_layout``; a later layout change
    moves the points under their labels). Points on the same spot share one label. A label
    keeps clear of the axes' lines too where it can. When more than ``max_labels`` labels are
    needed or one finds no free spot, each spot is numbered
    instead, and a key table below the axes' x-axis title names the points of every number
    (with its coordinates where even the number found no room). Returns the texts added.
    """
    if not (len(xs) == len(ys) == len(texts)):
        raise ValueError(f"xs, ys and texts must have the same length, not {len(xs)}, "
                         f"{len(ys)} and {len(texts)}")
    keep = [i for i in range(len(xs)) if _known(xs[i]) and _known(ys[i])]
    if not keep:
        return []
    fig = ax.figure
    fig.canvas.draw()   # the final limits and the legend's place
    renderer = fig.canvas.get_renderer()
    px = [tuple(ax.transData.transform((xs[i], ys[i]))) for i in keep]
    groups = _groups(px, [texts[i] for i in keep])
    anchors = [(xs[keep[g[0]]], ys[keep[g[0]]]) for g, _ in groups]
    hard, soft = _obstacles(ax, renderer, px), _line_pieces(ax)
    if len(groups) <= max_labels:
        placed = _place(ax, renderer, anchors, [t for _, t in groups], list(hard), soft,
                        fontsize)
        if all(placed):
            return placed
        for ann in placed:
            if ann is not None:
                ann.remove()
    numbers = _place(ax, renderer, anchors, [str(k + 1) for k in range(len(groups))],
                     list(hard), soft, fontsize)
    lines = []
    for k, ((_, text), ann) in enumerate(zip(groups, numbers)):
        x, y = anchors[k]
        where = "" if ann is not None else f"  (not marked: at {compact(x)}, {compact(y)})"
        lines.append(f"{k + 1:>3}  {text}{where}")
    rows = 10
    cols = [lines[i:i + rows] for i in range(0, len(lines), rows)]
    width = [max(len(s) for s in c) for c in cols]
    table = "\n".join("   ".join(c[r].ljust(w) for c, w in zip(cols, width) if r < len(c))
                      for r in range(min(rows, len(lines))))
    key = ax.annotate(f"{key_title}:\n{table}", (0.5, 0), xycoords=ax.xaxis.label,
                      xytext=(0, -6), textcoords="offset points", ha="center", va="top",
                      multialignment="left", fontsize=fontsize, family="monospace")
    return [n for n in numbers if n is not None] + [key]


def add_notes(fig, notes, *, width: int = 130, fontsize: float = 7):
    """Write ``notes`` (lines: what is not plotted and why) below everything drawn on ``fig``
    (axes, key tables), wrapped at ``width`` characters; call it last. Returns the text, or
    ``None`` without notes."""
    import textwrap

    lines = [w for note in notes
             for w in textwrap.wrap(note, width, subsequent_indent="    ", break_on_hyphens=False)]
    if not lines:
        return None
    fig.canvas.draw()
    box = fig.get_tightbbox(fig.canvas.get_renderer())   # inches
    w, h = fig.get_size_inches()
    return fig.text(max(box.x0, 0) / w, (box.y0 - 0.08) / h, "\n".join(lines), ha="left",
                    va="top", fontsize=fontsize)


def save(fig, path: Path | str, *, dpi: int = 110) -> Path:
    """Write ``fig`` as a PNG cropped to everything drawn (key tables below an axes included)
    and close it; returns the path."""
    path = Path(path)
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.15)
    pyplot().close(fig)
    return path
