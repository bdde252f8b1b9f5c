"""``hwaccel compare``: the JSON keys and values, skipped backends, loud failure on a mismatch
against golden, and where the hardware clock comes from. A few samples only."""

from __future__ import annotations

import json

import numpy as np
import torch

from hwaccel.cli import main
from hwaccel.generators.accel import PRESETS
from hwaccel.runtime.compare import NOMINAL_MHZ, clock_for

KEYS = {"backend", "samples", "accuracy", "agreement", "mismatches", "max_abs_logit_error",
        "latency_s", "cycles_per_sample", "seconds", "device"}


def _compare(capsys, *args) -> tuple[int, str, str]:
    rc = main(["compare", "--no-progress", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_compare_json_keys_and_values(capsys):
    rc, out, err = _compare(capsys, "--model", "cnn", "--samples", "5", "--calibration", "128",
                            "--backends", "golden,torch-cpu,torch-int8,xla", "--json")
    assert rc == 0, err
    report = json.loads(out)
    assert {"model", "preset", "samples", "rows", "saturation"} <= set(report)
    rows = {r["backend"]: r for r in report["rows"]}
    assert list(rows) == ["golden", "torch-cpu", "torch-int8", "xla"]
    for name, r in rows.items():
        assert KEYS <= set(r), f"{name} lacks {KEYS - set(r)}"
        assert r["samples"] == 5 and r["skipped"] is None and r["error"] is None
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["agreement"] <= 1
        assert r["latency_s"] > 0 and r["seconds"] > 0 and r["cycles_per_sample"] is None
    assert rows["torch-cpu"]["agreement"] == 1.0 and rows["torch-cpu"]["max_abs_logit_error"] == 0
    assert rows["torch-int8"]["mismatches"] == 0
    assert rows["golden"]["mismatches"] is None  # it is the reference
    assert rows["xla"]["mismatches"] is None and rows["xla"]["max_abs_logit_error"] < 1e-4
    assert rows["golden"]["max_abs_logit_error"] == rows["torch-int8"]["max_abs_logit_error"]


def test_compare_table_and_unavailable_backend(capsys, monkeypatch):
    """A backend that cannot run here is skipped with its reason; the rest runs; exit 0."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc, out, err = _compare(capsys, "--model", "lstm", "--samples", "4", "--calibration", "64",
                            "--backends", "torch-cuda,torch-cpu,torch-int8")
    assert rc == 0, err
    assert "  skipped torch-cuda: no CUDA device" in out
    assert "skipped torch-cuda: no CUDA device" in err
    lines = out.splitlines()
    assert lines[0].startswith("lstm on accel_default: 4 held-out samples")
    assert any(line.split()[:1] == ["torch-int8"] for line in lines)


def test_compare_fails_loudly_when_an_integer_backend_differs(capsys, monkeypatch):
    """torch-int8 made to differ from golden on one sample: counted, and the exit status is 1."""
    from hwaccel.compiler.program import CompiledModel

    real = CompiledModel.int8_forward

    def off_by_one(self, x_int, device="cpu"):
        out = np.array(real(self, x_int, device))
        out[0, 0] += 1
        return out

    monkeypatch.setattr(CompiledModel, "int8_forward", off_by_one)
    rc, out, err = _compare(capsys, "--model", "lstm", "--samples", "3", "--calibration", "64",
                            "--backends", "torch-int8", "--json")
    assert rc == 1
    (row,) = json.loads(out)["rows"]
    # batches of 256 and batch-1 latency calls both hit sample 0 of their batch: only sample 0
    assert row["mismatches"] == 1
    assert "FAILED: torch-int8 differs from golden on 1 of 3 samples" in err


def test_compare_rejects_bad_requests(capsys):
    rc, _, err = _compare(capsys, "--model", "cnn", "--backends", "golden,tpu")
    assert rc == 2 and "unknown backend 'tpu'" in err
    for bad in ("0", "-1", "100000"):
        rc, _, err = _compare(capsys, "--model", "lstm", "--backends", "golden", "--samples", bad)
        assert rc == 2 and "samples must be 1..1000 (the held-out split)" in err


def test_clock_from_implementation_report_else_nominal(tmp_path, monkeypatch):
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path))
    cfg = PRESETS["ecp5"]
    mhz, source = clock_for(cfg)
    assert mhz == NOMINAL_MHZ and source.startswith("nominal (no implementation report")
    folder = tmp_path / "impl" / f"{cfg.slug}-ecp5"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"target": "ecp5", "fmax_mhz": 87.5}))
    mhz, source = clock_for(cfg)
    assert mhz == 87.5 and source.startswith("Fmax of the ecp5 implementation report")


def test_compare_autoencoder_scores_roc_auc_across_two_programs(capsys):
    """The autoencoder's weights overflow default's weight scratchpad: golden runs it as two
    programs and equals the twin; ``accuracy`` is the ROC AUC of the reconstruction error
    (the models' own score), agreement does not apply."""
    from hwaccel.models import load, workload

    rc, out, err = _compare(capsys, "--model", "autoencoder", "--samples", "120",
                            "--calibration", "128", "--backends", "golden,torch-cpu,torch-int8",
                            "--json")
    assert rc == 0, err
    report = json.loads(out)
    rows = {r["backend"]: r for r in report["rows"]}
    assert rows["torch-int8"]["mismatches"] == 0
    assert all(r["agreement"] is None for r in rows.values())
    module, split = load("autoencoder")
    x, y = split.x_test[:120], split.y_test[:120]
    with torch.no_grad():
        float_auc = workload("autoencoder").score(x, module(x), y)
    assert report["float_accuracy"] == rows["torch-cpu"]["accuracy"] == float_auc
    assert 0.5 < rows["golden"]["accuracy"] <= 1


def test_compare_names_what_the_preset_refuses(capsys):
    """MobileNet at 96 x 96 does not fit ecp5_144's activation scratchpad (ecp5's holds it):
    its stem's im2col patches (6,912 words; the input itself is 9,216) and the stem's output
    are not both held, and golden fails naming the tensor and the shortfall (exit 1); the
    integer twin still runs."""
    rc, out, err = _compare(capsys, "--model", "mobilenet", "--samples", "3", "--calibration",
                            "16", "--preset", "ecp5_144", "--backends", "golden,torch-int8",
                            "--json")
    assert rc == 1
    rows = {r["backend"]: r for r in json.loads(out)["rows"]}
    assert "DoesNotFit: tensor 'conv output' (2304 words) does not fit the activation " \
        "scratchpad of accel_ecp5_144 (8192 words): the largest free range is 1280 words " \
        "while 'input' (6912 words) is live" in rows["golden"]["error"]
    assert "short by 1024 words" in rows["golden"]["error"]
    assert rows["torch-int8"]["error"] is None and rows["torch-int8"]["accuracy"] is not None
    assert "FAILED: golden: DoesNotFit" in err


def test_mobilenet_runs_on_default(capsys):
    """default holds MobileNet's 96 x 96 maps and 256 channels: the golden accelerator (two
    weight groups) equals the integer twin on every output."""
    rc, out, err = _compare(capsys, "--model", "mobilenet", "--samples", "2", "--calibration",
                            "16", "--backends", "golden,torch-int8", "--json")
    assert rc == 0, err
    rows = {r["backend"]: r for r in json.loads(out)["rows"]}
    assert rows["golden"]["error"] is None and rows["torch-int8"]["mismatches"] == 0
