"""``hwaccel parallel --plot``: the PNGs are written, and what they plot is the rows' figures.

dp and pp rows of a small CNN on tiny instances (pp on the pp tests' three-instance top); the
figures' lines hold the rows' speedup, efficiency and bubble fraction, the timeline's bars the
cycles of the row's timeline, the DSP view the rows' samples/s at a placement's clock against
N times its DSPs, and every axis has a title, a label and tick labels inside its range.
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
from hwaccel.parallel.hardware import Placement
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
            # compute spans are the programs; receive and compute spans are every instance's
            # busy time, and the last one's read-back (the others send from their mirrors)
            assert len(segs["compute"]) == r.instances * r.batch
            last = r.instances - 1
            busy = [sum(c for name, spans in segs.items() for k, _, _, c in spans
                        if k == i and (name != "send" or i == last))
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


def test_samples_per_second_against_dsps(rows):
    """The DSP view: each point is N instances' DSPs and the row's batch over its simulated
    cycles at the placement's clock; one line per mode, a tick label at every DSP count."""
    import matplotlib.pyplot as plt

    from hwaccel.plotting import axis_problems, tick_labels

    placed = Placement(40.0, 9, "stated: 40 MHz, 9 DSPs an instance")
    figs = figures(rows, placed)
    try:
        assert "samples_vs_dsp" in figs
        fig = figs["samples_vs_dsp"]
        assert axis_problems(fig) == []
        (ax,) = fig.axes
        for mode in ("dp", "pp"):
            mine = [r for r in rows if r.mode == mode]
            xs, ys = _line(ax, mode)
            assert xs == [9 * r.instances for r in mine]
            assert ys == [r.batch * 40e6 / r.cycles for r in mine]
            assert len(xs) == 3
        assert tick_labels(ax.xaxis) == ["9", "18", "27"]
        assert "40 MHz" in ax.get_ylabel()
        named = "\n".join(t.get_text() for t in ax.texts)   # labels, or a numbered key
        assert all(f"N={n}" in named for n in (1, 2, 3)), named
    finally:
        for f in figs.values():
            plt.close(f)


def test_placement_is_the_placed_report(tmp_path, monkeypatch):
    """The clock and DSPs of advise's placed report; Yosys's DSP cells without one; a preset
    placed nowhere has no DSP view, and the reason names the command that places it."""
    import json

    from hwaccel.impl.placed import placed_report
    from hwaccel.parallel.hardware import placement

    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    ecp5 = PRESETS["ecp5"]
    report, where = placed_report(ecp5)
    got, source = placement(ecp5)
    assert (got.fmax_mhz, got.dsp_per_instance) == (report["fmax_mhz"],
                                                    report["resources"]["dsp"])
    assert where in source and got.dsps(4) == 4 * report["resources"]["dsp"]
    folder = tmp_path / "impl" / "accel_ecp5-ecp5"
    folder.mkdir(parents=True)
    # the design as it is synthesized counts before a committed placement's resources
    (folder / "yosys_stat.json").write_text(json.dumps(
        {"design": {"num_cells_by_type": {"MULT18X18D": 135}}}))
    got, source = placement(ecp5)
    assert (got.fmax_mhz, got.dsp_per_instance) == (report["fmax_mhz"], 135)
    assert where in source and "Yosys" in source
    # a placement in build/impl gives both
    (folder / "report.json").write_text(json.dumps({"fmax_mhz": 61.5, "dsp": 133}))
    got, source = placement(ecp5)
    assert (got.fmax_mhz, got.dsp_per_instance) == (61.5, 133) and "report.json" in source

    tiny = PRESETS["tiny"]
    got, why = placement(tiny)
    assert got is None and "hwaccel synth --preset tiny --target ecp5" in why
    got, why = placement(tiny, fmax_mhz=50.0)
    assert got is None and "--dsps-per-instance" in why
    folder = tmp_path / "impl" / "accel_tiny-ecp5"
    folder.mkdir(parents=True)
    (folder / "yosys_stat.json").write_text(json.dumps(
        {"design": {"num_cells_by_type": {"MULT18X18D": 7, "LUT4": 900}}}))
    got, source = placement(tiny, fmax_mhz=50.0)
    assert (got.fmax_mhz, got.dsp_per_instance) == (50.0, 7) and "Yosys" in source
    assert placement(tiny, fmax_mhz=50.0, dsp_per_instance=3)[0].dsp_per_instance == 3
    with pytest.raises(ValueError, match="DSPs per instance must be an integer >= 1"):
        Placement(50.0, 0, "stated")
