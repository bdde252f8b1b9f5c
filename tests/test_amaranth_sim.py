"""A second simulator: the small presets on Amaranth's own simulator, straight from the
Components, must give Verilator's results and cycle counts exactly.

Each test runs the same bench parameters through ``sim.amaranth_benches.run_amaranth`` (no
Verilog) and through cocotb on Verilator (``run_bench``); both benches already assert their
outputs against the golden models, so equal results mean: both simulators agree with the golden
model and with each other, cycle for cycle. Amaranth's simulator runs several hundred times
slower than Verilator, hence few cases, short sequences and small K.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from hwaccel.generators.accel.config import PRESETS as ACCEL
from hwaccel.generators.conv.config import PRESETS as CONV
from hwaccel.generators.lstm.config import PRESETS as LSTM
from hwaccel.generators.systolic.config import PRESETS as SYSTOLIC
from hwaccel.sim.runner import bench_root, design_for, run_bench

bench_root()  # the ``sim`` package of benches sits beside ``hwaccel`` in the checkout
from sim.amaranth_benches import run_amaranth  # noqa: E402
from sim.streams import StreamTimeout  # noqa: E402

# Wall time of one simulator, not a result: the only field allowed to differ.
_WALL = ("sim_seconds",)


def _strip(case: dict) -> dict:
    return {k: v for k, v in case.items() if k not in _WALL}


def _assert_same(amaranth: list[dict], verilator: list[dict], what: str, seed: int) -> None:
    """Field by field, naming the first case that differs and the seed that reproduces it."""
    assert len(amaranth) == len(verilator), (
        f"{what} (seed {seed}): {len(amaranth)} cases on Amaranth, {len(verilator)} on Verilator")
    for a, v in zip(amaranth, verilator):
        a, v = _strip(a), _strip(v)
        diff = {k: (a.get(k), v.get(k)) for k in sorted(a.keys() | v.keys())
                if a.get(k) != v.get(k)}
        assert not diff, (f"{what} case {a.get('name', a)} (seed {seed}): Amaranth != Verilator "
                          f"in {diff} (field: (amaranth, verilator))")


def _both(cfg, tb: str, params: dict, seed: int) -> tuple[dict, dict]:
    amaranth = run_amaranth(cfg, params)
    verilator = run_bench(design_for(cfg), tb, params, seed=seed)
    print(f"{cfg.slug} seed {seed}: amaranth {amaranth}\nverilator {verilator}")
    return amaranth, verilator


@pytest.mark.parametrize("preset", ["os_3x5", "ws_3x5"])
def test_systolic_same_on_both_simulators(preset, seed):
    """The directed GEMMs and two random ones; every other case with idle and back-pressure."""
    cfg = SYSTOLIC[preset]
    params = {"mode": "random", "count": 2, "seed": seed, "idle": 0.3, "backpressure": 0.3}
    a, v = _both(cfg, "sim.tb_systolic", params, seed)
    _assert_same(a["cases"], v["cases"], cfg.slug, seed)
    assert any(c["stalls"] for c in a["cases"]) and all(c["cycles"] > 0 for c in a["cases"])


def test_conv_same_on_both_simulators(seed):
    """k1n1 (one MAC): the directed layers and two random ones, in batches of four."""
    cfg = CONV["k1n1"]
    params = {"mode": "random", "count": 2, "seed": seed, "idle": 0.2, "backpressure": 0.3,
              "batch": 4}
    a, v = _both(cfg, "sim.tb_conv", params, seed)
    # Each case carries its batch's stream cycles on both simulators.
    assert all(c["batch_cycles"] > 0 for c in v["cases"])
    _assert_same(a["cases"], v["cases"], cfg.slug, seed)
    assert len(a["cases"]) >= 9 and all(c["mismatches"] == 0 for c in a["cases"])


def test_lstm_same_on_both_simulators(seed):
    """small_p6: three weight loads (random, extremes, saturating), short sequences with
    lengths 1 and max_len among them, with idle and back-pressure."""
    cfg = LSTM["small_p6"]
    params = {"mode": "random", "seed": seed, "loads": [["random", 3], ["extremes", 2],
                                                        ["saturating", 2]],
              "max_len": 6, "idle": 0.3, "backpressure": 0.3}
    a, v = _both(cfg, "sim.tb_lstm", params, seed)
    _assert_same(a["cases"], v["cases"], cfg.slug, seed)
    assert [c["style"] for c in a["cases"]] == ["random", "extremes", "saturating"]


def test_accel_same_on_both_simulators(seed):
    """tiny: two short random programs through the host port; the scratchpad, STATUS and every
    performance counter (``cycles`` among them) equal on both simulators."""
    cfg = ACCEL["tiny"]
    params = {"seeds": [seed, seed + 1], "commands": 4}
    a, v = _both(cfg, "sim.tb_accel", params, seed)
    _assert_same(a["programs"], v["programs"], cfg.slug, seed)
    assert all(c["counters"]["cycles"] > 0 for c in a["programs"])


def test_hang_names_streams_and_seed(seed):
    """One result beat more than the array produces: a StreamTimeout naming the stuck stream
    and the seed, as the cocotb bench raises it (test_systolic_rtl holds Verilator to that)."""
    params = {"mode": "random", "count": 0, "seed": seed, "extra_results": 1}
    with pytest.raises(StreamTimeout, match=rf"seed {seed * 1000}\).*result: \d+/\d+ received"):
        run_amaranth(SYSTOLIC["os_3x5"], params)


def test_shared_bench_code_needs_no_cocotb():
    """The stream loop and the block checks both simulators share, and the Amaranth benches on
    top of them, import without cocotb: they run in a plain interpreter."""
    code = ("import sys; import sim.amaranth_benches, sim.checks, sim.stream_loop; "
            "assert 'cocotb' not in sys.modules, sorted(m for m in sys.modules if 'cocotb' in m)")
    subprocess.run([sys.executable, "-c", code], cwd=bench_root(), check=True)
