"""The energy model (hwaccel.energy): its arithmetic on a hand-computed case, monotonicity in
every event, node scaling, the cited table and clear errors."""

from __future__ import annotations

import pytest

from hwaccel.energy import NODES, estimate, fpga_estimate
from hwaccel.energy.model import REQUIRED
from hwaccel.energy.sram import sram_range
from hwaccel.generators.accel.config import PRESETS

TINY = PRESETS["tiny"]

#: A small run on tiny (4 lanes x 4 blocks = 16 MACs, 32-bit activation words).
COUNTERS = {"cycles": 1000, "conv_busy": 600, "pool_busy": 50, "lstm_busy": 0,
            "eltwise_busy": 40, "mac_slots": 16 * 500, "load_cycles": 20, "stall_input": 3,
            "overhead": 310, "commands": 5, "act_reads": 700, "act_writes": 100,
            "weight_reads": 30}


def _run(counters=COUNTERS, **kw):
    kw = {"host_bits": 6400, "clock_mhz": 100.0, "flip_flops": 1000} | kw
    return estimate(TINY, counters, **kw)


def test_hand_computed_case():
    """Table entries (Horowitz, 45 nm): int8 multiply 0.2 pJ, int16 add 0.05 pJ, int32 add
    0.1 pJ, int32 multiply 3.1 pJ, DRAM 1300-2600 pJ per 64 bits; flip-flop clock 2-10 fJ
    (the table's estimate).

    mac:        8000 slots; low 6000 useful MACs x (0.2 + 0.05) = 1500 pJ,
                high 8000 x (0.2 + 0.1) = 2400 pJ
    requantize: 100 words x 4 lanes x 3.1 pJ = 1240 pJ (both ends)
    clock:      1000 cycles x 1000 flip-flops x 0.002 pJ = 2000 pJ; x 0.010 pJ = 10000 pJ
    host:       6400 bits = 100 x 64 bits: 130000 pJ to 260000 pJ
    act_sram:   700 reads + 100 writes of a 1024 x 32-bit bank (the SRAM ranges)
    static:     leakage of every macro x 1000 cycles / 100 MHz = 10 us
    (1 pJ = 1e-6 uJ)."""
    e = _run(macs=6000)
    b = e.breakdown
    assert b["mac"] == pytest.approx((1500e-6, 2400e-6))
    assert b["requantize"] == pytest.approx((1240e-6, 1240e-6))
    assert b["clock"] == pytest.approx((2000e-6, 10000e-6))
    assert b["host"] == pytest.approx((0.13, 0.26))
    bank = sram_range(1024 * 32, 32, 45)
    assert b["act_sram"] == pytest.approx(
        ((700 * bank["read_pj"][0] + 100 * bank["write_pj"][0]) * 1e-6,
         (700 * bank["read_pj"][1] + 100 * bank["write_pj"][1]) * 1e-6))
    weight = sram_range(512 * TINY.wgt_bits, TINY.wgt_bits, 45)
    assert b["weight_sram"] == pytest.approx((30 * weight["read_pj"][0] * 1e-6,
                                              30 * weight["read_pj"][1] * 1e-6))
    assert e.low_uj == pytest.approx(sum(lo for lo, _ in b.values()))
    assert e.high_uj == pytest.approx(sum(hi for _, hi in b.values()))
    assert 0 < e.low_uj < e.high_uj
    assert e.node == 45 and e.clock_mhz == 100.0
    assert set(b) == {"mac", "requantize", "act_sram", "weight_sram", "engine_sram", "clock",
                      "host", "static"}


def test_more_work_never_costs_less():
    base = _run()
    for name in REQUIRED:
        more = _run(COUNTERS | {name: COUNTERS[name] + 500})
        assert more.low_uj >= base.low_uj and more.high_uj >= base.high_uj, name
    for kw in ({"host_bits": 12800}, {"flip_flops": 2000}):
        more = _run(**kw)
        assert more.low_uj > base.low_uj and more.high_uj > base.high_uj, kw


def test_every_component_grows_with_its_events():
    base = _run().breakdown
    grows = {"mac_slots": "mac", "act_writes": "requantize", "act_reads": "act_sram",
             "weight_reads": "weight_sram", "load_cycles": "engine_sram", "cycles": "clock"}
    for counter, part in grows.items():
        more = _run(COUNTERS | {counter: COUNTERS[counter] * 2}).breakdown[part]
        assert more[0] > base[part][0] and more[1] > base[part][1], counter


def test_node_scaling_reduces_energy():
    by_node = [_run(node=n) for n in (45, 32, 28, 20, 16, 7)]
    for big, small in zip(by_node, by_node[1:]):
        assert small.high_uj < big.high_uj and small.low_uj < big.low_uj, small.node
        for part in ("mac", "clock", "act_sram", "static"):   # every on-chip part shrinks
            assert small.breakdown[part][1] < big.breakdown[part][1], (small.node, part)
        assert small.breakdown["host"] == big.breakdown["host"]   # off-chip DRAM


def test_default_clock_is_stated():
    e = estimate(TINY, COUNTERS)
    assert e.clock_mhz == 500.0 and any("assumed" in s for s in e.sources)


def test_unknown_node_is_named():
    with pytest.raises(ValueError, match="node must be one of 45, 32, 28"):
        estimate(TINY, COUNTERS, node=22)


def test_missing_counter_is_named():
    partial = {k: v for k, v in COUNTERS.items() if k != "weight_reads"}
    with pytest.raises(ValueError, match="counters lack weight_reads"):
        estimate(TINY, partial)
    with pytest.raises(ValueError, match="act_reads must be a non-negative integer"):
        estimate(TINY, COUNTERS | {"act_reads": -1})
    with pytest.raises(TypeError, match="cfg must be an AccelConfig"):
        estimate("tiny", COUNTERS)


def test_fpga_estimate_is_rough_and_above_the_asic_dynamic():
    res = {"lut": 28159, "ff": 10709, "dsp": 87, "bram": 25}
    f = fpga_estimate(TINY, COUNTERS, res, 33.1)
    a = estimate(TINY, COUNTERS, clock_mhz=33.1, flip_flops=10709)
    assert "rough" in f.label and any("LFE5U-85F typical standby" in s for s in f.sources)
    assert f.breakdown["mac"][0] == pytest.approx(14 * a.breakdown["mac"][0])
    assert f.breakdown["static"][0] > 0   # static power by default (tests/test_energy_fpga.py)
    with_static = fpga_estimate(TINY, COUNTERS, res, 33.1, static_mw=100.0)
    # 100 mW x 1000 cycles / 33.1 MHz
    assert with_static.breakdown["static"][0] == pytest.approx(0.1 * 1000 / 33.1e6 * 1e6)
    with pytest.raises(ValueError, match="resources lack bram"):
        fpga_estimate(TINY, COUNTERS, {"lut": 1, "ff": 1, "dsp": 1}, 33.1)


def test_nodes_listed():
    assert NODES == (45, 32, 28, 20, 16, 14, 10, 7)
