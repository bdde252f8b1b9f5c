"""``latency_us`` in ``hwaccel bench accel``: cycles at the preset's placed Fmax, read from the
synthesis report ``hwaccel synth`` writes (``build/impl/<slug>-ecp5/report.json``)."""

from __future__ import annotations

import json

from hwaccel.bench.accel import _with_latency, placed_fmax
from hwaccel.generators.accel.config import PRESETS

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


def test_no_report_gives_none_and_names_the_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    assert placed_fmax(CFG) is None
    rows = _with_latency(CFG, [{"cycles": 4000}])
    assert rows[0]["latency_us"] is None and rows[0]["fmax_mhz"] is None
    assert "hwaccel synth --preset ecp5 --target ecp5" in capsys.readouterr().err
