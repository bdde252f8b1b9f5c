"""Design-space sweeps: points, the Dask sweep with real synthesis, outputs, failed points."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from hwaccel.cli import main
from hwaccel.dse import DesignPoint, evaluate, load_space, make_space, pareto, run_sweep
from hwaccel.dse.evaluate import PointResult
from hwaccel.dse.sweep import area_metrics
from hwaccel.dse.workloads import gemm_layers
from hwaccel.generators.conv.cases import CNN_LAYERS
from hwaccel.generators.systolic.perf import gemm_cycles


def test_sweep_on_a_local_cluster_synthesizes_and_reports_a_point_that_does_not_fit(tmp_path):
    """A 1x1 array synthesized for real on ECP5 and a 16x16 one (256 PEs > 156 MULT18X18D),
    through a LocalCluster: every output file, the failed point with its reason."""
    space = make_space(rows="1,16", dataflow="os", target="ecp5")
    res = run_sweep(space, out_dir=tmp_path, processes=False, workers=1, progress=False)
    ok, big = res.results
    assert (ok.status, big.status) == ("ok", "failed")
    assert "does not fit" in big.error and "256" in big.error and "156" in big.error
    assert ok.synth["dsp"] == 1 and ok.synth["fmax_mhz"] > 0
    for w in ("cnn", "lstm"):
        assert ok.latency_us[w] == pytest.approx(ok.workloads[w]["cycles"] / ok.synth["fmax_mhz"])
    assert big.workloads["cnn"]["cycles"] > 0 and not big.latency_us   # modelled, not dropped
    for name in ("json", "csv", "latency_vs_dsp", "latency_vs_lut", "utilization"):
        assert res.files[name].exists() and res.files[name].stat().st_size > 0, name
    data = json.loads(res.files["json"].read_text())
    assert [p["status"] for p in data["points"]] == ["ok", "failed"]
    rows = list(csv.DictReader(res.files["csv"].open()))
    assert [r["label"] for r in rows] == ["systolic_os_1x1", "systolic_os_16x16"]
    assert "does not fit" in rows[1]["error"] and rows[0]["pareto"] == "True"
    # A second run takes the synthesis from the cache.
    again = evaluate(space.points[0], out_dir=tmp_path)
    assert again.cached and again.synth == ok.synth


def test_model_only_sweep_from_the_cli_and_its_workload_cycles(tmp_path, capsys):
    space = tmp_path / "space.json"
    space.write_text(json.dumps({"rows": [2, 4], "cols": [3], "dataflow": ["os", "ws"],
                                 "accel": ["tiny"], "batch": 2}))
    out = tmp_path / "out"
    assert main(["sweep", "--space", str(space), "--no-synth", "--out", str(out), "--json",
                 "--workers", "1", "--no-progress"]) == 0
    data = json.loads(capsys.readouterr().out)
    labels = [p["label"] for p in data["points"]]
    assert labels == ["systolic_os_2x3", "systolic_os_4x3", "systolic_ws_2x3",
                      "systolic_ws_4x3", "accel_tiny"]
    point = load_space(space).points[0]
    cfg = point.config()
    cnn = data["points"][0]["workloads"]["cnn"]
    expect = sum(g.repeat * gemm_cycles(cfg, g.m, g.k, g.n) for g in gemm_layers("cnn", 2))
    assert cnn["cycles"] == expect
    assert cnn["macs"] == 2 * (sum(lay.macs for lay in CNN_LAYERS.values()) + 576 * 64 + 640)
    # The tiny accelerator runs neither model; the reasons are reported, not dropped.
    tiny = data["points"][-1]["workloads"]
    assert "max_" in tiny["cnn"]["error"] and "64 -> 64" in tiny["lstm"]["error"]
    assert (out / "latency_vs_macs.png").exists() and (out / "utilization.png").exists()


def test_tool_failures_are_reported_and_cached_unless_interrupted(tmp_path, monkeypatch):
    import hwaccel.impl
    from hwaccel.impl import ImplError

    point = DesignPoint("systolic", "ecp5", 2, 2, "ws")
    for code, cached in ((-15, False), (1, True)):
        def fail(*args, code=code, **kwargs):
            raise ImplError(f"nextpnr-ecp5 place and route failed (exit {code}): ERROR: no route")

        monkeypatch.setattr(hwaccel.impl, "synthesize", fail)
        r = evaluate(point, out_dir=tmp_path / str(code))
        assert r.status == "failed" and f"(exit {code})" in r.error
        assert r.workloads["cnn"]["cycles"] > 0 and not r.latency_us
        assert any((tmp_path / str(code) / "cache").glob("*.json")) == cached


def test_sweep_on_an_existing_scheduler(tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        res = run_sweep(make_space(rows="2", dataflow="ws"), synth=False, plots=False,
                        scheduler=cluster.scheduler_address, out_dir=tmp_path, progress=False)
    (r,) = res.results
    assert r.status == "model-only" and r.workloads["lstm"]["cycles"] > 0


def test_pareto_front_keeps_only_undominated_points():
    def fake(label, macs, cycles, **kw):
        p = DesignPoint("systolic", rows=1, cols=macs, dataflow="os")
        return PointResult(p, label, macs, {"cnn": {"cycles": cycles}}, **kw)

    results = [fake("a", 4, 100), fake("b", 8, 60), fake("c", 8, 70), fake("d", 16, 60),
               fake("e", 32, 10), fake("f", 2, 5, error="does not fit")]
    assert pareto(results, "cnn", "macs") == ["a", "b", "e"]   # a failed point is no rival
    # generic has gates but no clock: latency stays in cycles
    gates = [fake("g", 4, 100, synth={"gates": 900, "fmax_mhz": None}),
             fake("h", 8, 50, synth={"gates": 800, "fmax_mhz": None})]
    assert area_metrics(gates) == ["gates"] and pareto(gates, "cnn", "gates") == ["h"]


@pytest.mark.parametrize("kwargs, text", [
    ({}, "the space is empty"),
    ({"rows": "4,x"}, "rows must be comma-separated integers, not '4,x'"),
    ({"rows": "4", "dataflow": "is"}, "dataflow must be one of 'os', 'ws', not 'is'"),
    ({"rows": "4", "target": "asic"}, "target must be one of"),
    ({"accel": "nope"}, "preset must be one of"),
])
def test_bad_spaces_name_the_problem(kwargs, text):
    with pytest.raises(ValueError, match=text):
        make_space(**kwargs)


def test_bad_space_file_names_the_key(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"rows": [4], "colums": [4]}))
    with pytest.raises(ValueError, match="unknown key\\(s\\) colums"):
        load_space(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_space(tmp_path / "missing.json")


def test_the_lstm_sweep_workload_runs_on_any_cell_that_holds_it():
    """The reference LSTM (64 -> 64, sizes as command fields) runs on a larger cell with the same
    results as on a 64 -> 64 one, and a cell too small for it is refused naming both sizes."""
    from hwaccel.dse.workloads import accel_program
    from hwaccel.generators.accel import PRESETS

    base = PRESETS["default"]
    bigger = dataclasses.replace(base, lstm=base.lstm.with_(input_size=80, hidden_size=72))
    results = []
    for cfg in (base, bigger):
        commands, layers = accel_program(cfg, "lstm", batch=1)
        assert len(layers["lstm1"]) == len(layers["lstm2"]) == 1
        results.append(commands)
    assert results[0] == results[1]   # the same commands: the sizes are the reference's
    small = dataclasses.replace(base, lstm=base.lstm.with_(input_size=32))
    with pytest.raises(ValueError, match="runs up to 32 -> 64, the reference LSTM needs 64 -> 64"):
        accel_program(small, "lstm")
