"""A preset's recorded gate-level result (hwaccel.impl.asic_recorded): the newest synthesis in
its build folder wins over the committed one, nothing recorded names the command, and the
committed results give the same report the synthesis would (area_report of the same gates)."""

from __future__ import annotations

import json
import os

import pytest

import hwaccel.impl.asic_recorded as recorded
from hwaccel.generators.accel.config import PRESETS
from hwaccel.impl.asic import area_report, asic_report_for
from hwaccel.impl.asic_recorded import committed_gates, recorded_gates


def _gates(ffs: int) -> dict:
    return {"cells": {"$_NAND_": 1000, "$_DFF_P_": ffs}, "flip_flops": ffs, "logic_depth": 7,
            "memories": [], "modules": {"conv": {"instances": 1, "logic_depth": 5,
                                                 "cells": {"$_NAND_": 400}}}}


def _write(path, gates, mtime):
    path.write_text(json.dumps(gates))
    os.utime(path, (mtime, mtime))


def test_the_newest_local_synthesis_wins_then_the_committed_one(tmp_path, monkeypatch):
    cfg = PRESETS["tiny"]
    committed = tmp_path / "committed.json"
    committed.write_text(json.dumps({"gates": {cfg.slug: _gates(5)},
                                     "sources": {cfg.slug: "commit abc, 61 min"}}))
    monkeypatch.setattr(recorded, "COMMITTED", committed)
    out = tmp_path / "impl"
    gates, where = recorded_gates(cfg, out)
    assert gates["flip_flops"] == 5 and where.endswith("asic_gates.json: commit abc, 61 min")

    folder = out / f"{cfg.slug}-asic"
    folder.mkdir(parents=True)
    _write(folder / "asic_stat.json", {"not": "a result"}, 3e9)      # not a cache name
    _write(folder / ("asic_" + "0" * 16 + ".json"), _gates(10), 1e9)
    _write(folder / ("asic_" + "1" * 16 + ".json"), _gates(20), 2e9)   # the newest
    (folder / ("asic_" + "2" * 16 + ".json")).write_text("{half-writ")   # broken: skipped
    os.utime(folder / ("asic_" + "2" * 16 + ".json"), (2.5e9, 2.5e9))
    gates, where = recorded_gates(cfg, out)
    assert gates["flip_flops"] == 20 and gates["cached"] and "1" * 16 in where

    report = asic_report_for(cfg, 28, out_dir=out, recorded=True)
    assert report["recorded"] == where
    expect = area_report(_gates(20), 28, sram=None)
    assert report["nand2_gates"] == expect["nand2_gates"]
    assert report["logic_area_mm2"] == expect["logic_area_mm2"]
    assert report["mac_array_area_um2"] == pytest.approx(400 * expect["nand2_um2"], abs=0.05)


def test_nothing_recorded_names_the_command(tmp_path, monkeypatch):
    committed = tmp_path / "committed.json"
    committed.write_text(json.dumps({"gates": {}, "sources": {}}))
    monkeypatch.setattr(recorded, "COMMITTED", committed)
    gates, why = recorded_gates(PRESETS["tiny"], tmp_path)
    assert gates is None
    assert why.startswith("not synthesized: run `hwaccel synth --preset accel_tiny --target asic")
    assert asic_report_for(PRESETS["tiny"], 28, out_dir=tmp_path, recorded=True) is None


def test_every_committed_result_is_a_whole_gate_level_result():
    for slug, (gates, source) in committed_gates().items():
        assert source.strip(), slug
        assert {"cells", "flip_flops", "logic_depth", "memories", "modules"} <= set(gates)
        report = area_report(gates, 28, sram=None)
        assert report["nand2_gates"] > 0 and report["flip_flops"] == gates["flip_flops"], slug
