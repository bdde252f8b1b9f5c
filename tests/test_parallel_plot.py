"""``hwaccel parallel --plot``: the PNGs are written, and what they plot is the rows' figures.

dp and pp rows of a small CNN on tiny instances (pp on the pp tests' three-instance top); the
figures' lines hold the rows' speedup, efficiency and bubble fraction, the timeline's bars the
cycles of the row's timeline, and every axis has a title, a label and tick labels inside its
range.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
import torch

import hwaccel
from hwaccel.compiler.cases import make
from hwaccel.generators.accel.config import PRESETS
from hwaccel.generators.link.config import PRESETS as LINKS
from hwaccel.generators.multi import PipelineConfig
from hwaccel.parallel.dp import run_dp
from hwaccel.parallel.plots import figures, gpipe_bubbles, timeline_segments, write_plots
from hwaccel.parallel.pp_run import run_pp
from hwaccel.parallel.tp_run import run_tp

TOP = PipelineConfig(PRESETS["tiny"], 3, LINKS["tiny"], name="tiny3")
CLOCK = (50.0, "given")


@pytest.fixture(scope="module")
def compiled():
    net, inputs = make("sequential")
    x = inputs(6, torch.Generator().manual_seed(14))
    return hwaccel.compile(net, x, preset="tiny"), x


@pytest.fixture(scope="module")
def rows(compiled):
    cm, x = compiled
    return (run_dp(cm, x, [1, 2, 3], clock=CLOCK)
            + run_pp(cm, x, [1, 2, 3], top=TOP, clock=CLOCK))


def _line(ax, label):
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return line.get_xdata().tolist(), line.get_ydata().tolist()


def _axes_are_labelled(fig):
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), ax
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            labels = [t.label1.get_text() for t in axis.get_major_ticks()
                      if lo <= t.get_loc() <= hi and t.label1.get_visible()]
            assert all(labels), (ax.get_title(), axis.axis_name, labels)
            # a numeric axis shows at least two ticks in its range; named ones (instances) one
            need = 1 if labels and labels[0].startswith("instance") else 2
            assert len(labels) >= need, (ax.get_title(), axis.axis_name, lo, hi, labels)


def test_plotted_values_are_the_rows(rows):
    import matplotlib.pyplot as plt

    for r in rows:
        assert r.cycles == r.model_cycles and r.mismatches == 0, r
    figs = figures(rows)
    try:
        assert set(figs) == {"speedup", "pp_bubbles", "pp_timeline_N1", "pp_timeline_N2",
                             "pp_timeline_N3"}
        for fig in figs.values():
            _axes_are_labelled(fig)
        sp, ef = figs["speedup"].axes
        for mode in ("dp", "pp"):
            mine = [r for r in rows if r.mode == mode]
            assert _line(sp, mode) == ([r.instances for r in mine], [r.speedup for r in mine])
            assert _line(ef, mode) == ([r.instances for r in mine],
                                       [r.efficiency for r in mine])
        pp = [r for r in rows if r.mode == "pp"]
        (bub,) = figs["pp_bubbles"].axes
        assert _line(bub, "measured") == ([1, 2, 3], [r.bubble_fraction for r in pp])
        assert _line(bub, "GPipe (p - 1) / (m + p - 1)")[1] == \
            [float(Fraction(n - 1, 6 + n - 1)) for n in (1, 2, 3)]
        for r in pp:
            segs = timeline_segments(r)
            # compute spans are the programs; all spans together are every instance's busy time
            assert len(segs["compute"]) == r.instances * r.batch
            busy = [sum(c for spans in segs.values() for k, _, _, c in spans if k == i)
                    for i in range(r.instances)]
            idle = r.instances * r.cycles - sum(busy)
            assert float(Fraction(idle, r.instances * r.cycles)) == r.bubble_fraction
            (ax,) = figs[f"pp_timeline_N{r.instances}"].axes
            drawn = sorted((float(x), float(w)) for coll in ax.collections
                           for x, w in _bars(coll))
            assert drawn == sorted((float(s), float(c)) for spans in segs.values()
                                   for _, _, s, c in spans)
            assert ax.get_xlim() == (0, r.cycles)
        assert gpipe_bubbles(3, 8) == Fraction(1, 5)
    finally:
        for fig in figs.values():
            plt.close(fig)


def _bars(coll):
    """``(x, width)`` of each rectangle of a broken_barh collection."""
    for path in coll.get_paths():
        xs = path.vertices[:, 0]
        yield xs.min(), xs.max() - xs.min()


def test_several_link_latencies_plot_throughput_against_latency(compiled):
    """tp rows at L = 0 and 16: one speedup line per latency, one throughput line per N."""
    import matplotlib.pyplot as plt

    cm, x = compiled
    rows = run_tp(cm, x, [1, 2], (0, 16), clock=CLOCK)
    for r in rows:
        assert r.cycles == r.model_cycles and r.mismatches == 0, r
    figs = figures(rows)
    try:
        assert set(figs) == {"speedup", "throughput_vs_latency"}
        for fig in figs.values():
            _axes_are_labelled(fig)
        sp, ef = figs["speedup"].axes
        for lat in (0, 16):
            mine = [r for r in rows if r.link_latency == lat]
            assert _line(sp, f"tp L={lat}") == ([1, 2], [r.speedup for r in mine])
            assert _line(ef, f"tp L={lat}") == ([1, 2], [r.efficiency for r in mine])
        (ax,) = figs["throughput_vs_latency"].axes
        for n in (1, 2):
            mine = [r for r in rows if r.instances == n]
            assert _line(ax, f"tp N={n}") == ([0, 16], [r.hw_samples_per_second for r in mine])
    finally:
        for fig in figs.values():
            plt.close(fig)


def test_the_files_are_written(rows, tmp_path):
    files = write_plots(rows, tmp_path / "plots")
    assert set(files) == {"speedup", "pp_bubbles", "pp_timeline_N1", "pp_timeline_N2",
                          "pp_timeline_N3"}
    for path in files.values():
        data = path.read_bytes()
        assert path.parent == tmp_path / "plots" and data[:8] == b"\x89PNG\r\n\x1a\n"
        assert len(data) > 10_000, path
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="must name a folder, not the file"):
        write_plots(rows, tmp_path / "file")
    with pytest.raises(ValueError, match="at least one row"):
        write_plots([], tmp_path / "plots")
