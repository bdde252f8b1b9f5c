"""Readable plots (hwaccel.plotting and the sweep and advise plots that use it): the Pareto front
and its staircase, tick labels in range on every axis, point labels that do not overlap, rows
without a figure noted rather than dropped."""

from __future__ import annotations

import itertools
import random
import re

import pytest

from hwaccel.plotting import (
    axis_problems,
    compact,
    draw_front,
    label_points,
    pareto_front,
    pyplot,
    readable_axes,
    staircase,
)

plt = pyplot()


@pytest.fixture
def figs():
    made = []
    yield made
    for fig in made:
        plt.close(fig)


# ---- the front -----------------------------------------------------------------------------

#   index:  0       1       2       3       4       5       6       7          8
XS = [1.0, 2.0, 2.0, 3.0, 3.0, 4.0, 6.0, None, 6.0]
YS = [9.0, 4.0, 5.0, 4.0, 4.0, 1.0, 1.0, 0.5, float("nan")]


def test_pareto_front_of_a_hand_made_set():
    # 2 loses to 1 (same x, worse y), 3 and 4 to 1 (same y, worse x), 6 to 5; 7 and 8 have an
    # unknown coordinate
    assert pareto_front(XS, YS) == [0, 1, 5]
    # identical points are both on the front: neither beats the other
    assert pareto_front([1, 1, 2], [3, 3, 1]) == [0, 1, 2]
    assert pareto_front([5, 5, 5], [2, 2, 2]) == [0, 1, 2]
    assert pareto_front([], []) == []
    # throughput (maximized) against energy (minimized): 1 beats 0; 2 costs more but does more
    assert pareto_front([10, 20, 40, 30], [5, 5, 9, 9], x="max") == [1, 2]
    assert pareto_front([1, 2, 3], [1, 2, 3], x="max", y="max") == [2]
    with pytest.raises(ValueError, match="x must be 'min' or 'max', not 'low'"):
        pareto_front([1], [1], x="low")
    with pytest.raises(ValueError, match="same length, not 2 and 1"):
        pareto_front([1, 2], [1])


def _points_of(vertices):
    return {tuple(map(float, v)) for v in vertices}


@pytest.mark.parametrize("sense", ["min", "max"])
def test_the_staircase_steps_through_the_front_points_only(sense):
    rng = random.Random(5)
    xs = [rng.choice(range(1, 30)) for _ in range(60)]
    ys = [rng.choice(range(1, 30)) for _ in range(60)]
    front = pareto_front(xs, ys, x=sense)
    steps = staircase(xs, ys, front, x=sense)
    on_front = {(xs[i], ys[i]) for i in front}
    others = {(x, y) for x, y in zip(xs, ys)} - on_front
    # every front point is a vertex, and no vertex is a point off the front
    assert on_front <= set(steps) and not set(steps) & others
    # in x order, every segment horizontal or vertical: a staircase
    assert [x for x, _ in steps] == sorted(x for x, _ in steps)
    for (x0, y0), (x1, y1) in itertools.pairwise(steps):
        assert x0 == x1 or y0 == y1
    # the corners are the worse corner of their two neighbours (min-min: y falls as x grows;
    # max x: y rises), so the line bounds exactly what the front dominates
    ys_along = [y for _, y in steps]
    assert ys_along == sorted(ys_along, reverse=(sense == "min"))
    for k in range(1, len(steps) - 1, 2):
        (xa, ya), (xc, yc), (xb, yb) = steps[k - 1], steps[k], steps[k + 1]
        assert (xc, yc) == ((xb, ya) if sense == "min" else (xa, yb))
        assert (xc, yc) not in on_front


def test_staircase_of_one_point_and_of_ties():
    assert staircase([3, 1], [1, 3], [0]) == [(3, 1)]
    # two identical front points give one vertex, not a zero-length step
    assert staircase([1, 1, 2], [3, 3, 1], [0, 1, 2]) == [(1, 3), (2, 3), (2, 1)]


def test_draw_front_draws_the_staircase(figs):
    fig, ax = plt.subplots()
    figs.append(fig)
    front = draw_front(ax, XS[:7], YS[:7])
    assert front == [0, 1, 5]
    (line,) = ax.lines
    assert [tuple(p) for p in line.get_xydata()] == [(1, 9), (2, 9), (2, 4), (4, 4), (4, 1)]


# ---- tick labels ---------------------------------------------------------------------------

def _labels_in_range(ax, which):
    """The visible, non-empty tick labels inside the axis's limits (after a draw)."""
    lo, hi = sorted(ax.get_xlim() if which == "x" else ax.get_ylim())
    ticks = ax.get_xticklabels() if which == "x" else ax.get_yticklabels()
    at = 0 if which == "x" else 1
    return [t.get_text() for t in ticks
            if t.get_visible() and t.get_text() and lo <= t.get_position()[at] <= hi]


def _check_ticks(fig, need=2):
    fig.canvas.draw()
    for ax in fig.axes:
        bar = getattr(ax, "_colorbar", None)
        named = {"x": len(ax.get_xticks()) if ax.xaxis.get_major_locator().__class__.__name__
                 == "FixedLocator" else None,
                 "y": len(ax.get_yticks()) if ax.yaxis.get_major_locator().__class__.__name__
                 == "FixedLocator" else None}
        for which in ("y",) if bar is not None else ("x", "y"):
            got = _labels_in_range(ax, which)
            want = need if named[which] is None else min(need, named[which])
            assert len(got) >= want, (ax.get_title(), which, got)
    assert axis_problems(fig) == []


@pytest.mark.parametrize("lo, hi", [(16, 64), (14, 73), (1.2, 1.9), (180_000, 195_000),
                                    (3, 900), (1e-3, 1e4), (0.02, 0.05)])
def test_log_axes_have_tick_labels_in_any_range(figs, lo, hi):
    fig, ax = plt.subplots(figsize=(4, 3))
    figs.append(fig)
    ax.plot([lo, hi], [hi, lo], "o")
    ax.set_xscale("log")
    ax.set_yscale("log")
    readable_axes(ax)
    ax.set_title("t")
    ax.set_xlabel("x (units)")
    ax.set_ylabel("y (units)")
    _check_ticks(fig)


def test_log_axis_ticks_at_data_values(figs):
    fig, ax = plt.subplots(figsize=(4, 3))
    figs.append(fig)
    ax.plot([16, 64, 256], [3, 2, 1], "o")
    ax.set_xscale("log")
    readable_axes(ax, xvalues=[16, 64, 256])
    fig.canvas.draw()
    assert _labels_in_range(ax, "x") == ["16", "64", "256"]


def test_compact_numbers():
    assert [compact(v) for v in (0, 20, 0.002, 1500, 5000, 1024, 150_000, 2.5e6, -40_000)] == \
        ["0", "20", "0.002", "1500", "5000", "1024", "150k", "2.5M", "-40k"]


# ---- point labels --------------------------------------------------------------------------

def _text_boxes(fig, ax):
    from matplotlib.text import Text

    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    return [(t.get_text(), Text.get_window_extent(t, r)) for t in ax.texts]


def _no_overlap(fig, ax):
    boxes = _text_boxes(fig, ax)
    for (ta, a), (tb, b) in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), (ta, tb)
    return boxes


def test_labels_of_close_points_do_not_overlap(figs):
    fig, ax = plt.subplots(figsize=(6, 4.5))
    figs.append(fig)
    xs, ys = [1, 1.08, 1.16, 2, 2.05, 3, 1, 3], [1, 1.02, 1.04, 2, 2.1, 1.5, 1, 1.5]
    names = [f"point_{k}" for k in range(len(xs))]
    ax.scatter(xs, ys)
    ax.legend(["data"])
    fig.tight_layout()
    label_points(ax, xs, ys, names)
    boxes = _no_overlap(fig, ax)
    legend = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert not any(b.overlaps(legend) for _, b in boxes)
    # points on one spot share one label; every name is written once
    written = " ".join(t for t, _ in boxes)
    assert all(written.count(n) == 1 for n in names)
    assert "point_0, point_6" in written and "point_5, point_7" in written


def test_too_many_labels_fall_back_to_numbers_and_a_key(figs):
    rng = random.Random(3)
    fig, ax = plt.subplots(figsize=(4, 3))
    figs.append(fig)
    xs = [rng.uniform(0, 1) for _ in range(40)]
    ys = [rng.uniform(0, 1) for _ in range(40)]
    names = [f"design_point_{k}" for k in range(40)]
    ax.scatter(xs, ys)
    fig.tight_layout()
    label_points(ax, xs, ys, names)
    boxes = _no_overlap(fig, ax)
    (key,) = [t for t, _ in boxes if t.startswith("points:")]
    assert all(re.search(rf"\b{n}\b", key) for n in names)
    marks = [t for t, _ in boxes if not t.startswith("points:")]
    assert marks and all(t.isdigit() for t in marks)


# ---- the sweep's and advise's plots --------------------------------------------------------

def test_the_sweep_plot_of_rows_4_8_is_readable(figs, tmp_path):
    """``hwaccel sweep --rows 4,8 --no-synth``: 16 and 64 MAC units, which a log axis left
    without a single tick label; each axes has its ticks, labels apart, the front's staircase."""
    from hwaccel.dse import evaluate, make_space, pareto
    from hwaccel.dse.plots import figures
    from hwaccel.dse.sweep import area_metrics, cost
    from hwaccel.dse.workloads import WORKLOADS

    space = make_space(rows="4,8", dataflow="os,ws", target="ecp5")
    results = [evaluate(p, synth=False, out_dir=tmp_path) for p in space.points]
    assert area_metrics(results) == ["macs"]
    fronts = {f"{w}/macs": pareto(results, w, "macs") for w in WORKLOADS}
    out = figures(results, fronts)
    figs.extend(out.values())
    assert set(out) == {"latency_vs_macs", "utilization"}
    for fig in out.values():
        _check_ticks(fig)
    fig = out["latency_vs_macs"]
    for ax, w in zip(fig.axes, WORKLOADS):
        assert _labels_in_range(ax, "x") == ["16", "64"]
        assert "(MAC units)" in ax.get_xlabel() and "(cycles" in ax.get_ylabel()
        boxes = _no_overlap(fig, ax)
        written = " ".join(t for t, _ in boxes)
        assert all(r.label.split("_", 1)[1] in written for r in results)
        (line,) = [ln for ln in ax.lines if ln.get_label() == "Pareto front"]
        vertices = _points_of(line.get_xydata())
        points = {(float(r.macs), float(cost(r, w))): r.label for r in results}
        assert {lab for p, lab in points.items() if p in vertices} == set(fronts[f"{w}/macs"])


def _row(platform, kind, batch, lat, thr, energy):
    return {"platform": platform, "kind": kind, "batch": batch, "latency_us": lat,
            "throughput_per_s": thr, "energy_uj": energy, "source": "hand-made for the test"}


ROWS = [
    _row("cpu", "measured", 1, 900.0, 1111.0, None),
    _row("torch-cuda", "measured", 1, None, None, None),
    _row("FPGA default (ECP5-85F)", "modelled", 1, 300.0, 3333.0, 40.0),
    _row("FPGA ecp5 (ECP5-85F)", "modelled", 1, 350.0, 2857.0, 38.0),
    _row("ASIC default (28 nm)", "modelled", 1, 60.0, 16667.0, 2.1),
    _row("GAP9", "published", 1, 1200.0, 830.0, 1.5),
    _row("STM32", "published", 1, 98000.0, 10.2, 5200.0),
]


def test_advise_latency_against_energy(figs, tmp_path):
    from hwaccel.advise.plots import figures, plot_report

    out = figures(ROWS)
    figs.extend(out.values())
    assert set(out) == {"latency_vs_energy"}       # one batch: no throughput plot
    fig = out["latency_vs_energy"]
    _check_ticks(fig)
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert "(µJ)" in ax.get_xlabel() and "(µs)" in ax.get_ylabel()
    boxes = _no_overlap(fig, ax)
    plotted = [r for r in ROWS if r["energy_uj"] is not None and r["latency_us"] is not None]
    written = " ".join(t for t, _ in boxes)
    assert all(r["platform"] in written for r in plotted)
    # the rows without an energy figure are named in a note on the figure
    notes = " ".join(t.get_text() for t in fig.texts)
    assert "cpu (measured, 900 µs)" in notes and "torch-cuda (measured)" in notes
    # front: least latency and least energy; ASIC (60 µs, 2.1 µJ) and GAP9 (1200, 1.5)
    (line,) = [ln for ln in ax.lines if ln.get_label().startswith("Pareto front")]
    assert [tuple(p) for p in line.get_xydata()] == [(1.5, 1200.0), (2.1, 1200.0), (2.1, 60.0)]
    # one marker per kind
    assert sorted(t.get_text() for t in ax.get_legend().get_texts()) == \
        ["Pareto front (latency, energy)", "modelled", "published"]
    paths = plot_report(ROWS, tmp_path / "plots")
    assert [p.name for p in paths] == ["latency_vs_energy.png"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_advise_throughput_against_batch(figs):
    from hwaccel.advise.plots import figures

    rows = [dict(r, batch=b, throughput_per_s=r["throughput_per_s"] and r["throughput_per_s"] * b)
            for b in (1, 8) for r in ROWS[:3]]
    out = figures(rows)
    figs.extend(out.values())
    assert set(out) == {"latency_vs_energy", "throughput_vs_batch"}
    fig = out["throughput_vs_batch"]
    _check_ticks(fig)
    (ax,) = fig.axes
    assert "(inferences/s)" in ax.get_ylabel()
    lines = {ln.get_label(): ln.get_xydata().tolist() for ln in ax.lines}
    assert lines == {"cpu": [[1, 1111.0], [8, 8888.0]],
                     "FPGA default (ECP5-85F)": [[1, 3333.0], [8, 26664.0]]}
    assert "torch-cuda (b=1); torch-cuda (b=8)" in " ".join(t.get_text() for t in fig.texts)
    labels = " ".join(t for t, _ in _no_overlap(fig, out["latency_vs_energy"].axes[0]))
    assert "(b=8)" in labels


def test_advise_plot_errors(tmp_path):
    from hwaccel.advise.plots import plot_report

    with pytest.raises(ValueError, match="at least one advise row"):
        plot_report([], tmp_path)
    bad = {k: v for k, v in ROWS[0].items() if k != "source"}
    with pytest.raises(ValueError, match="row 'cpu' lacks the key"):
        plot_report([bad], tmp_path)
    with pytest.raises(ValueError, match="kind must be one of measured, modelled, published, "
                                         "not 'guessed'"):
        plot_report([dict(ROWS[0], kind="guessed")], tmp_path)
    with pytest.raises(ValueError, match="energy_uj must be a positive number or None, not 0"):
        plot_report([dict(ROWS[0], energy_uj=0)], tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="must name a folder, not the file"):
        plot_report(ROWS, tmp_path / "file")
