"""The cited energy table and the CACTI SRAM figures behind hwaccel.energy."""

from __future__ import annotations

import json

import pytest

from hwaccel.energy.sram import SramMacro, horowitz_read_pj, sram_macro, sram_range
from hwaccel.energy.table import DATA, NODES, area_factor, energy_factor, table


def _entries():
    t = table()
    yield from t["events"].items()
    n = t["nodes"]
    for group in ("energy_poly", "vdd", "area_from_45", "interpolated"):
        for node, e in n[group].items():
            yield f"{group}[{node}]", e


def test_every_entry_has_a_source_and_estimates_say_so():
    sources = table()["sources"]
    count = 0
    for name, e in _entries():
        count += 1
        assert e.get("source") in sources, name
        if e.get("estimate"):
            assert "estimate" in e["note"], name
        if "low" in e:
            assert 0 <= e["low"] <= e["high"], name
    assert count > 30
    hand = table()["events"]
    # Horowitz's 45 nm figures, as published
    assert (hand["int8_mult"]["low"], hand["int32_add"]["low"], hand["int32_mult"]["low"]) \
        == (0.2, 0.1, 3.1)
    assert (hand["dram_64b"]["low"], hand["dram_64b"]["high"]) == (1300.0, 2600.0)


def test_cacti_runs_recorded_with_settings():
    d = json.loads((DATA / "cacti.json").read_text())
    assert "-cache type \"ram\"" in d["settings"] and d["commit"]
    ok = [r for r in d["runs"] if "error" not in r]
    assert len(ok) >= 60
    assert {r["node"] for r in ok} >= {45, 32, 22}


def test_sram_macro_is_cacti_at_grid_points():
    d = json.loads((DATA / "cacti.json").read_text())
    run = next(r for r in d["runs"] if (r["node"], r["width"], r["depth"], r["cell"])
               == (45, 128, 1024, "itrs-lop"))
    m = sram_macro(128 * 1024, 128, 45)
    assert isinstance(m, SramMacro)
    assert m.read_pj == pytest.approx(run["read_nj"] * 1000)
    assert m.write_pj == pytest.approx(run["write_nj"] * 1000)
    assert m.area_mm2 == pytest.approx(run["area_mm2"])
    assert m.leakage_mw == pytest.approx(run["leakage_mw"])
    assert "CACTI" in m.source


def test_sram_macro_grows_with_size():
    for width in (32, 128, 216, 2048):
        prev = None
        for depth in (64, 200, 1024, 3000, 16384, 32768):
            m = sram_macro(width * depth, width, 45)
            if prev is not None:
                assert m.area_mm2 > prev.area_mm2, (width, depth)
                assert m.leakage_mw > prev.leakage_mw, (width, depth)
            prev = m
    # wider words cost more per access at the same depth
    assert sram_macro(256 * 1024, 256, 45).read_pj > sram_macro(64 * 1024, 64, 45).read_pj


def test_node_factors_shrink():
    assert energy_factor(45) == (1.0, 1.0) and area_factor(45) == 1.0
    prev = (1.0, 1.0, 1.0)
    for node in NODES[1:]:
        lo, hi = energy_factor(node)
        a = area_factor(node)
        assert 0 < lo <= hi < prev[1] and a < prev[2], node
        prev = (lo, hi, a)
    m45, m7 = sram_macro(1 << 20, 128, 45), sram_macro(1 << 20, 128, 7)
    assert m7.area_mm2 == pytest.approx(m45.area_mm2 * 0.059)
    assert m7.read_pj < m45.read_pj and "Stillmaker" in m7.source


def test_horowitz_interpolation_hits_the_table():
    """64-bit reads: 10 pJ at 8 KB, 20 pJ at 32 KB, 100 pJ at 1 MB; a 128-bit word costs twice;
    16 KB lies halfway (log-log) between 8 and 32 KB: 10 x 2**0.5."""
    assert horowitz_read_pj(8 * 1024 * 8, 64) == pytest.approx((10.0, 10.0))
    assert horowitz_read_pj(32 * 1024 * 8, 128) == pytest.approx((40.0, 40.0))
    assert horowitz_read_pj(1 << 23, 64) == pytest.approx((100.0, 100.0))
    assert horowitz_read_pj(16 * 1024 * 8, 64)[0] == pytest.approx(10 * 2 ** 0.5)


def test_sram_range_spans_cacti_and_horowitz():
    r = sram_range(16384 * 128, 128, 45)
    lo, hi = r["read_pj"]
    assert lo <= sram_macro(16384 * 128, 128, 45).read_pj <= hi
    assert lo <= horowitz_read_pj(16384 * 128, 128)[0] <= hi


def test_sram_errors_are_named():
    with pytest.raises(ValueError, match="whole number of 128-bit words"):
        sram_macro(1000, 128, 45)
    with pytest.raises(ValueError, match="node must be one of"):
        sram_macro(128 * 64, 128, 65)
    with pytest.raises(ValueError, match="width must be a positive integer"):
        sram_macro(128, 0, 45)
