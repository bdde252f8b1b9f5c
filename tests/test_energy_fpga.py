"""The FPGA estimate's static term (hwaccel.energy.fpga_estimate): the cited LFE5U-85F standby
power times the run's time, worked out by hand from the table entry, and more time costing
more."""

from __future__ import annotations

import pytest

from hwaccel.energy import fpga_estimate
from hwaccel.energy.table import entry, source_text
from hwaccel.generators.accel.config import PRESETS

TINY = PRESETS["tiny"]
RES = {"lut": 28159, "ff": 10709, "dsp": 87, "bram": 25}
COUNTERS = {"cycles": 1000, "conv_busy": 600, "pool_busy": 50, "lstm_busy": 0,
            "eltwise_busy": 40, "mac_slots": 16 * 500, "load_cycles": 20, "stall_input": 3,
            "overhead": 310, "commands": 5, "act_reads": 700, "act_writes": 100,
            "weight_reads": 30}


def test_static_entry_is_cited_and_its_arithmetic_holds():
    """The entry's typical standby currents (ICC 212 mA, ICCAUX 26 mA) times the supplies:
    1.1 V and 2.5 V nominal give 233.2 + 65.0 = 298.2 mW; 1.155 V and 2.625 V (the top of
    the recommended ranges) give 244.86 + 68.25 = 313.11 mW."""
    e = entry("ecp5_85f_static_power")
    assert e["unit"] == "mW" and e["estimate"] is True and e["device"] == "LFE5U-85F"
    assert "FPGA-DS-02012" in source_text(e["source"])
    assert e["low"] == pytest.approx(212 * 1.1 + 26 * 2.5, abs=1e-9)   # mA x V = mW
    assert e["high"] == pytest.approx(212 * 1.155 + 26 * 2.625, abs=1e-9)
    assert "298.2" in e["note"] and "313.11" in e["note"]


def test_static_term_hand_computed():
    """1,000 cycles at 33.1 MHz last 1000 / 33.1e6 = 30.2115 us; 298.2 mW x 30.2115 us =
    9.00906 uJ and 313.11 mW x 30.2115 us = 9.45952 uJ. The total is the dynamic terms plus
    exactly that (static_mw=0 leaves it out)."""
    f = fpga_estimate(TINY, COUNTERS, RES, 33.1)
    assert f.breakdown["static"] == pytest.approx((9.009063, 9.459517), rel=1e-6)
    none = fpga_estimate(TINY, COUNTERS, RES, 33.1, static_mw=0)
    assert none.breakdown["static"] == (0.0, 0.0)
    assert f.low_uj - none.low_uj == pytest.approx(9.009063, rel=1e-6)
    assert f.high_uj - none.high_uj == pytest.approx(9.459517, rel=1e-6)
    assert any("298.2-313.11 mW" in s and "FPGA-DS-02012" in s for s in f.sources)
    assert "static power included" in f.label and "rough" in f.label


def test_override_replaces_the_table_figure():
    """static_mw=150 for the same 30.2115 us: 150 mW x 30.2115 us = 4.53172 uJ, both ends."""
    f = fpga_estimate(TINY, COUNTERS, RES, 33.1, static_mw=150)
    assert f.breakdown["static"] == pytest.approx((4.531722, 4.531722), rel=1e-6)
    assert any("static 150 mW as given" in s for s in f.sources)
    with pytest.raises(ValueError, match="static_mw must be a non-negative number"):
        fpga_estimate(TINY, COUNTERS, RES, 33.1, static_mw=-1)
    with pytest.raises(ValueError, match="static_mw must be a non-negative number"):
        fpga_estimate(TINY, COUNTERS, RES, 33.1, static_mw=True)


def test_longer_runs_cost_more():
    """The same work stretched over more cycles (more idle overhead) or run at a lower clock
    costs more: the static term grows with the time and nothing else shrinks."""
    base = fpga_estimate(TINY, COUNTERS, RES, 33.1)
    slow_clock = fpga_estimate(TINY, COUNTERS, RES, 16.55)
    assert slow_clock.breakdown["static"][0] == pytest.approx(2 * base.breakdown["static"][0])
    assert slow_clock.low_uj > base.low_uj and slow_clock.high_uj > base.high_uj
    longer = dict(COUNTERS, cycles=2000, overhead=1310)
    more = fpga_estimate(TINY, longer, RES, 33.1)
    assert more.breakdown["static"][0] == pytest.approx(18.018127, rel=1e-6)
    assert more.low_uj > base.low_uj and more.high_uj > base.high_uj
