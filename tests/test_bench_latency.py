"""``latency_us`` in ``hwaccel bench accel``: cycles at the preset's placed Fmax, read from the
synthesis report ``hwaccel synth`` writes (``build/impl/<slug>-ecp5/report.json``), else from a
placement committed with its source (``hwaccel/impl/data/placements.json``)."""

from __future__ import annotations

import json

from hwaccel.bench.accel import _with_latency
from hwaccel.generators.accel.config import MODEL_PRESETS, PRESETS
from hwaccel.impl.placed import committed_placements, placed_fmax

CFG = PRESETS["ecp5"]


def test_latency_is_cycles_at_the_reports_fmax(tmp_path, monkeypatch):
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    folder = tmp_path / "impl" / f"{CFG.slug}-ecp5"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"fmax_mhz": 80.0}))
    assert placed_fmax(CFG) == 80.0
    rows = _with_latency(CFG, [{"cycles": 4000}, {"model_cycles": 800}, {"cycles": None}])
    assert [r["latency_us"] for r in rows] == [50.0, 10.0, None]
    assert all(r["fmax_mhz"] == 80.0 and r["fmax_median_mhz"] is None for r in rows)
    # hwaccel synth --seeds 1,2,3 writes every seed's clock: the rows take their median too
    (folder / "report.json").write_text(json.dumps(
        {"fmax_mhz": 80.0, "seed": 1, "seeds": {"1": 80.0, "2": 100.0, "3": 90.0}}))
    rows = _with_latency(CFG, [{"cycles": 4500}])
    assert rows[0]["latency_us"] == 56.25 and rows[0]["latency_us_median"] == 50.0
    assert rows[0]["fmax_median_mhz"] == 90.0


def test_without_a_report_the_committed_placement_gives_the_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    committed = committed_placements()[CFG.slug]
    assert committed["source"] and committed["fmax_mhz"] > 0
    rows = _with_latency(CFG, [{"cycles": 6000}])
    assert rows[0]["fmax_mhz"] == committed["fmax_mhz"]
    assert rows[0]["latency_us"] == round(6000 / committed["fmax_mhz"], 3)


def test_a_committed_clock_is_seed_1s_and_three_seeds_give_a_median(tmp_path, monkeypatch):
    """The committed clock is nextpnr seed 1's (the figure issue 15 sets the bar with); with
    three or more seeds of the same netlist the rows carry their median and the latency at it,
    with fewer None."""
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    placed = committed_placements()
    for slug, entry in placed.items():
        assert entry["seeds"]["1"] == entry["fmax_mhz"], slug
    seeds = placed[CFG.slug]["seeds"]
    assert len(seeds) == 3
    median = sorted(seeds.values())[1]   # ecp5: seeds 1-3
    rows = _with_latency(CFG, [{"cycles": 6000}])
    assert rows[0]["fmax_median_mhz"] == median
    assert rows[0]["latency_us_median"] == round(6000 / median, 3)
    assert len(placed["accel_ecp5_144"]["seeds"]) == 2
    rows = _with_latency(MODEL_PRESETS["ecp5_144"], [{"cycles": 6000}])
    assert rows[0]["latency_us"] is not None
    assert rows[0]["fmax_median_mhz"] is None and rows[0]["latency_us_median"] is None


def test_a_preset_placed_nowhere_gives_none_and_names_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    tiny = PRESETS["tiny"]
    assert tiny.slug not in committed_placements() and placed_fmax(tiny) is None
    rows = _with_latency(tiny, [{"cycles": 4000}])
    assert rows[0]["latency_us"] is None and rows[0]["fmax_mhz"] is None
    assert "hwaccel synth --preset tiny --target ecp5" in capsys.readouterr().err
