"""``hwaccel advise``: every row says what it is and where it comes from, nothing unknown is
shown as a number, and the recommendation names the best row for each goal.

One run of the rows for the reference CNN (small calibration, two timed calls, no ASIC
synthesis) on ``tiny`` (which refuses the CNN: its activation scratchpad is too small),
``ecp5`` (an FPGA row) and ``default`` (an ASIC row).
"""

from __future__ import annotations

import json
from argparse import Namespace

import pytest

from hwaccel.advise.command import advise_rows
from hwaccel.advise.report import GOALS, best, recommend
from hwaccel.advise.rows import KINDS, AdviseRow, published_rows
from hwaccel.cli import main
from hwaccel.impl.asic import asic_report

FIGURES = ("latency_us", "throughput_per_s", "energy_uj", "area_mm2")
KEYS = ("platform", "kind", "batch", "latency_us", "throughput_per_s", "energy_uj", "source")


def _args(**changes) -> Namespace:
    args = dict(model="cnn", batch="1", presets="tiny,ecp5,default", node=28, asic_mhz=500.0,
                goal="latency", platforms="cpu,torch-cuda,torch-int8-cuda,accel,published",
                repeats=2, threads=1, calibration=16, no_synth=True, json=False, plot=None)
    return Namespace(**(args | changes))


@pytest.fixture(scope="module")
def rows() -> list[AdviseRow]:
    return advise_rows(_args(), log=None)


def test_every_row_has_a_kind_a_source_and_the_keys(rows):
    assert [r.platform for r in rows][:3] == ["cpu", "torch-cuda", "torch-int8-cuda"]
    for r in rows:
        assert r.kind in KINDS, r
        assert r.source.strip(), r
        j = r.to_json()
        assert all(k in j for k in KEYS), j
        assert "area_mm2" in j or "resources" in j
        json.dumps(j)   # the report is JSON


def test_no_figure_is_a_zero_standing_in_for_unknown(rows):
    for r in rows:
        for f in FIGURES:
            v = getattr(r, f)
            assert v is None or v > 0, (r.platform, f, v)
        if r.note.startswith(("not measured", "not modelled", "not placed")):
            assert all(getattr(r, f) is None for f in FIGURES), r
        if r.note.startswith(("not measured", "not modelled")):
            assert r.cycles is None, r


def test_measured_rows_are_timed_or_say_why_not(rows):
    import torch

    by = {r.platform: r for r in rows}
    cpu = by["cpu"]
    assert cpu.kind == "measured" and cpu.latency_us > 0
    assert cpu.throughput_per_s == pytest.approx(cpu.batch / cpu.latency_us * 1e6)
    assert "median of 2 timed" in cpu.source
    for gpu in ("torch-cuda", "torch-int8-cuda"):
        if torch.cuda.is_available():
            assert by[gpu].latency_us > 0
        else:
            assert by[gpu].latency_us is None and by[gpu].throughput_per_s is None
            assert by[gpu].energy_uj is None
            assert by[gpu].note.startswith("not measured: no GPU"), by[gpu].note


def test_modelled_rows_name_the_model_and_follow_it(rows):
    from hwaccel.bench.workloads import model_rows
    from hwaccel.models.train import load

    modelled = [r for r in rows if r.kind == "modelled"]
    assert len(modelled) == 3
    for r in modelled:
        assert "cycle model" in r.source, r
    refused, fpga, asic = modelled
    assert refused.preset == "accel_tiny" and "refused by accel_tiny" in refused.note
    assert refused.latency_us is None and refused.cycles is None
    # the cycles are the cycle model's, as hwaccel bench accel --model-only counts them
    module, split = load("cnn")
    for r in (fpga, asic):
        bench = model_rows("cnn", module, split.x_train[:16], split.x_test[:1],
                           r.preset.removeprefix("accel_"), layers=False, rtl=False)[0]
        assert r.cycles == bench["model_cycles"], r.platform
    assert asic.latency_us == pytest.approx(asic.cycles / 500.0)
    assert asic.node_nm == 28 and "stated clock of 500 MHz" in asic.source
    recorded = asic_report(asic.preset, 28, recorded=True)   # --no-synth: no Yosys run
    if recorded is None:
        assert asic.area_mm2 is None and "--no-synth) and none recorded" in asic.note
    else:
        assert asic.area_mm2 == recorded["area_mm2"] and recorded["recorded"] in asic.note
    if fpga.latency_us is None:   # neither a placed report nor a committed figure
        assert fpga.note.startswith("not placed: run `hwaccel synth --preset ecp5")
    else:
        assert fpga.latency_us == pytest.approx(fpga.cycles / fpga.clock_mhz)
        assert "placed Fmax" in fpga.source and fpga.resources
        seeds = fpga.extra.get("clock_seeds_mhz", {})   # ecp5's three seeds, when committed
        if len(seeds) >= 3:
            assert fpga.clock_mhz == seeds["1"]
            assert fpga.extra["clock_median_mhz"] == sorted(seeds.values())[1]
            assert fpga.extra["latency_median_us"] == pytest.approx(
                fpga.cycles / fpga.extra["clock_median_mhz"])


def test_energy_is_the_energy_models_on_the_rows_counters(rows):
    from hwaccel.energy import estimate, fpga_estimate
    from hwaccel.generators.accel.config import PRESETS

    _, fpga, asic = [r for r in rows if r.kind == "modelled"]
    for row in (fpga, asic):
        if row is fpga and row.resources is None:
            assert row.energy_uj is None
            continue
        cfg = PRESETS[row.preset.removeprefix("accel_")]
        transfer = row.extra["host_transfer"]
        common = dict(host_words=transfer["words"], host_bits=transfer["bits"],
                      macs=row.extra["macs"])
        if row is asic:
            # The synthesized flip-flops' clock energy, once an area is recorded.
            flip_flops = row.extra["asic"]["flip_flops"] if "asic" in row.extra else None
            want = estimate(cfg, row.extra["counters"], node=28, clock_mhz=500.0,
                            flip_flops=flip_flops, **common)
            assert "hwaccel.energy.estimate" in row.source
        else:
            want = fpga_estimate(cfg, row.extra["counters"], row.resources, row.clock_mhz,
                                 **common)
            assert "fpga_estimate" in row.source and "rough" in row.note
        b = row.batch
        assert row.energy_range_uj == (want.low_uj / b, want.high_uj / b)   # per inference
        low, high = row.energy_range_uj
        assert 0 < low <= row.energy_uj <= high
        assert row.extra["batch_breakdown_uj"] == {k: list(v)
                                                   for k, v in want.breakdown.items()}


def test_the_recommendation_names_the_best_row_for_each_goal(rows):
    for goal, (key, larger, title, _) in GOALS.items():
        text = recommend(rows, goal)
        have = [r for r in rows if getattr(r, key) is not None]
        if not have:
            assert best(rows, goal) is None and f"no row has {key}" in text
            continue
        figure = (max if larger else min)(getattr(r, key) for r in have)
        winner = best(rows, goal)
        assert getattr(winner, key) == figure
        assert text.startswith(f"{title}: {winner.platform} at "), text
        missing = [r.platform for r in rows if getattr(r, key) is None]
        assert all(p in text for p in missing)


def test_the_recommendation_weighs_every_kind():
    def row(platform, kind, latency, energy):
        return AdviseRow(platform, kind, 1, "a source", latency_us=latency,
                         throughput_per_s=None if latency is None else 1e6 / latency,
                         energy_uj=energy, cycles=100, clock_mhz=1.0,
                         energy_range_uj=None if energy is None else (energy, energy),
                         note="energy: a model")
    rows = [row("a", "measured", 50.0, None), row("b", "modelled", 100.0, 2.0),
            row("c", "published", 20.0, 3.0), row("d", "measured", None, None)]
    assert recommend(rows, "latency").startswith("lowest latency: c at 20.00 us")
    assert "a 50.00 us" in recommend(rows, "latency") and "b 100.0 us" in recommend(rows,
                                                                                  "latency")
    assert recommend(rows, "energy").startswith("lowest energy: b at 2.00 uJ")
    assert recommend(rows, "throughput").startswith("highest throughput: c at 50,000.0")
    assert "not ranked, no throughput_per_s: d" in recommend(rows, "throughput")


def test_published_rows_are_cited_and_derived_from_their_throughput():
    rows = published_rows("resnet8", 1)
    assert len(rows) == 5
    for r in rows:
        assert r.kind == "published" and "https://github.com/mlcommons/tiny_results" in r.source
        assert r.latency_us == pytest.approx(1e6 / r.throughput_per_s, abs=0.05)
    assert published_rows("cnn", 1) == []
    assert all("not at batch 4" in r.note for r in published_rows("resnet8", 4))


@pytest.mark.parametrize("argv, message", [
    (["--model", "resnet9"], "--model must be one of cnn, lstm"),
    (["--model", "cnn", "--goal", "cost"], "--goal must be one of latency, energy, throughput"),
    (["--model", "cnn", "--presets", "ecp6"], "--presets must name presets of"),
    (["--model", "cnn", "--node", "5"], "--node must be one of 45, 28, 16, 7, not 5"),
    (["--model", "cnn", "--platforms", "tpu"], "--platforms must name some of"),
    (["--model", "cnn", "--batch", "0"], "--batch must be at least 1, not '0'"),
    (["--model", "cnn", "--batch", "1,x"], "--batch must be comma-separated integers"),
])
def test_bad_arguments_are_named(capsys, argv, message):
    assert main(["advise", *argv]) == 2
    assert message in capsys.readouterr().err


def test_json_report(capsys):
    """The published rows alone need no model run: the report's JSON end to end."""
    assert main(["advise", "--model", "resnet8", "--platforms", "published", "--goal",
                 "energy", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "resnet8" and report["goal"] == "energy"
    rows = report["rows"]
    assert {r["kind"] for r in rows} == {"published"}
    with_energy = [r for r in rows if r["energy_uj"] is not None]
    lowest = min(with_energy, key=lambda r: r["energy_uj"])
    assert report["recommendation"].startswith(f"lowest energy: {lowest['platform']} at ")
    assert all(r["platform"] in report["recommendation"] for r in rows
               if r["energy_uj"] is None)


def test_several_batches_give_rows_for_each():
    from hwaccel.generators.accel.config import PRESETS

    rows = advise_rows(_args(batch="9,1", presets="ecp5", platforms="accel"), log=None)
    assert [(r.platform, r.batch) for r in rows] == [("FPGA ecp5 (ECP5-85F)", 1),
                                                     ("FPGA ecp5 (ECP5-85F)", 9)]
    one, nine = rows
    assert nine.cycles > one.cycles
    # ecp5's activation scratchpad holds 8 CNN samples: a batch of 9 runs as two programs
    assert nine.extra["programs"] == 2 and one.extra["programs"] == 1
    assert "2 programs of at most 8 samples (the preset's limit)" in nine.note
    assert "programs of at most" not in one.note
    assert nine.extra["macs"] == 9 * one.extra["macs"]
    if nine.energy_uj is not None:   # per inference: the batch's energy over its 9 samples
        from hwaccel.energy import fpga_estimate

        t = nine.extra["host_transfer"]
        want = fpga_estimate(PRESETS["ecp5"], nine.extra["counters"], nine.resources,
                             nine.clock_mhz, host_words=t["words"], host_bits=t["bits"],
                             macs=nine.extra["macs"])
        assert nine.energy_range_uj == (want.low_uj / 9, want.high_uj / 9)
    assert PRESETS["ecp5"].slug == one.preset
    text = recommend(rows, "throughput")
    if nine.throughput_per_s is not None:
        winner = max(rows, key=lambda r: r.throughput_per_s)
        assert text.startswith(f"highest throughput: {winner.platform} (batch {winner.batch})")


def test_plot_writes_the_report_plots(tmp_path, capsys):
    assert main(["advise", "--model", "resnet8", "--platforms", "published", "--plot",
                 str(tmp_path)]) == 0
    err = capsys.readouterr().err
    pngs = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in pngs] == ["latency_vs_energy.png"]   # one batch: no batch plot
    assert all(p.stat().st_size > 0 and f"wrote {p}" in err for p in pngs)


def test_a_failed_asic_synthesis_leaves_area_unknown(monkeypatch):
    import hwaccel.impl.asic as asic
    from hwaccel.advise.accel_rows import _asic_area
    from hwaccel.generators.accel.config import PRESETS
    from hwaccel.impl.tools import ImplError

    def fails(preset, node):
        raise ImplError(f"yosys gate-level synthesis of {preset} for asic failed (exit 1): "
                        f"trap [log: build/impl/{preset}-asic/asic_pass2.log]")

    monkeypatch.setattr(asic, "asic_report", fails)
    area, report, note = _asic_area(PRESETS["default"], 28, True)
    assert area is None and report is None
    assert note == ("area not synthesized: the gate-level synthesis failed (log: "
                    "build/impl/accel_default-asic/asic_pass2.log)")
