"""``hwaccel synth --seeds``: one netlist from Yosys, placed and routed with each nextpnr seed in a
folder of its own, a report per seed, and the run's report the first seed's with every seed's
Fmax and their median (issue 15's clock is seed 1's, "and the median of three seeds")."""

from __future__ import annotations

import json
import statistics

import pytest

from hwaccel.cli import main
from hwaccel.generators.systolic import PRESETS
from hwaccel.impl import synthesize
from hwaccel.impl.report import SynthReport, format_report


def test_three_seeds_of_one_netlist(tmp_path):
    report = synthesize(PRESETS["os_1x1"], "ecp5", out_dir=tmp_path, seeds=[1, 2, 3], jobs=2)
    folder = tmp_path / "systolic_os_1x1-ecp5"
    assert report.seed == 1 and list(report.seeds) == ["1", "2", "3"]
    assert report.fmax_mhz == report.seeds["1"]
    assert report.fmax_median_mhz == statistics.median(report.seeds.values())
    assert json.loads((folder / "report.json").read_text())["seeds"] == report.seeds
    assert len(list(folder.glob("*.netlist.json"))) == 1   # Yosys ran once
    for n in (1, 2, 3):
        each = json.loads((folder / f"seed{n}" / "report.json").read_text())
        assert each["seed"] == n and each["fmax_mhz"] == report.seeds[str(n)]
        assert each["verilog_md5"] == report.verilog_md5
        assert f"--seed {n}" in (folder / f"seed{n}" / "nextpnr.log").read_text()
        assert (folder / f"seed{n}" / "systolic_os_1x1.sdf").exists()
    text = format_report(report)
    assert "nextpnr seed 1" in text and "median" in text


def test_two_seeds_have_no_median():
    rep = SynthReport(preset="p", target="ecp5", device="d", lut=1, ff=1, dsp=0, bram=0,
                      fmax_mhz=100.0, critical_path=None, constraint_mhz=50.0,
                      timing_met=True, seed=1, seeds={"1": 100.0, "2": 90.0})
    assert "seeds 1: 100.0 MHz, 2: 90.0 MHz" in format_report(rep)
    assert "median" not in format_report(rep)


def test_bad_seeds_are_refused_before_any_tool_runs(tmp_path):
    cfg = PRESETS["os_1x1"]
    for seeds, jobs, msg in (([1, 1], 1, r"seeds must be distinct integers >= 0, not \[1, 1\]"),
                             ([], 1, "seeds must be distinct"),
                             ([-1], 1, "seeds must be distinct"),
                             ([1, 2], 0, "jobs must be a positive integer, not 0")):
        with pytest.raises(ValueError, match=msg):
            synthesize(cfg, "ecp5", out_dir=tmp_path, seeds=seeds, jobs=jobs)
    with pytest.raises(ValueError, match="the generic target is not placed and routed"):
        synthesize(cfg, "generic", out_dir=tmp_path, seeds=[1, 2])
    assert not list(tmp_path.iterdir())


def test_the_cli_names_a_bad_seed_list(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--preset", "systolic_os_1x1", "--seeds", "1,x"])
    assert exc.value.code == 2
    assert "seeds are integers separated by commas, not '1,x'" in capsys.readouterr().err
    assert main(["synth", "--preset", "systolic_os_1x1", "--seeds", "1,2",
                 "--bitstream"]) == 2
    assert "--seeds places one netlist several times" in capsys.readouterr().err
    assert main(["synth", "--preset", "systolic_os_1x1", "--seed", "2", "--seeds", "1,2"]) == 2
    assert "--seed and --seeds both choose nextpnr's seed: give one" in capsys.readouterr().err
