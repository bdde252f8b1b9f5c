"""``latency_us`` in ``hwaccel bench accel``: cycles at the preset's placed Fmax, read from the
synthesis report ``hwaccel synth`` writes (``build/impl/<slug>-ecp5/report.json``), else from a
placement committed with its source (``hwaccel/impl/data/placements.json``)."""

from __future__ import annotations

import json

from hwaccel.bench.accel import _with_latency
from hwaccel.generators.accel.config import PRESETS
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
    assert all(r["fmax_mhz"] == 80.0 for r in rows)


def test_without_a_report_the_committed_placement_gives_the_clock(tmp_path, monkeypatch):
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    committed = committed_placements()[CFG.slug]
    assert committed["source"] and committed["fmax_mhz"] > 0
    rows = _with_latency(CFG, [{"cycles": 6000}])
    assert rows[0]["fmax_mhz"] == committed["fmax_mhz"]
    assert rows[0]["latency_us"] == round(6000 / committed["fmax_mhz"], 3)


def test_a_preset_placed_nowhere_gives_none_and_names_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    tiny = PRESETS["tiny"]
    assert tiny.slug not in committed_placements() and placed_fmax(tiny) is None
    rows = _with_latency(tiny, [{"cycles": 4000}])
    assert rows[0]["latency_us"] is None and rows[0]["fmax_mhz"] is None
    assert "hwaccel synth --preset tiny --target ecp5" in capsys.readouterr().err
