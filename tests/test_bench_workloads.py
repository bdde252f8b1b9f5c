"""``hwaccel bench accel --workload``: compiled models on the RTL (tiny preset, small models).

Each row's cycles are the Verilator harness's own counters; the test holds the cycle model's
prediction equal to them, the RTL's outputs equal to the golden interpreter's, and a model the
preset refuses reported as a row with the reason.
"""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

from hwaccel.bench import accel
from hwaccel.bench.workloads import model_rows
from hwaccel.generators.accel import PRESETS

KEYS = {"workload", "batch", "cycles", "macs", "mac_units", "utilization", "model_cycles",
        "mismatches"}


class Mixed(nn.Module):
    """A conv, a depthwise conv, a residual ADD, a fused pool and a Linear, all on tiny."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, 3, padding=1)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = self.c1(x).relu()
        x = (x + self.dw(x)).relu()
        x = nn.functional.max_pool2d(self.c2(x).relu(), 2)
        return self.fc(x.flatten(1))


def _deep() -> nn.Module:
    """16 convs whose weights overflow tiny's weight scratchpad: two programs."""
    return nn.Sequential(*[nn.Conv2d(8 if i else 1, 8, 3, padding=1) for i in range(16)])


def _wide() -> nn.Module:
    """A Linear of a flattened 4 x 8 x 8 map (a 1 x 1 conv's, 64 words of 4 lanes) into 48
    outputs: 12 output blocks of 64 K words and a requantizer word, 780 words, more than tiny's
    weight scratchpad (512). It runs in two parts of 6 blocks, each a program (the next
    Linear's 325 words a third)."""
    return nn.Sequential(nn.Conv2d(1, 4, 1), nn.Flatten(), nn.Linear(256, 48), nn.ReLU(),
                         nn.Linear(48, 100))


def _pointwise() -> nn.Module:
    """1x1 convs wider than tiny's conv engine (16 output channels against its ``max_cout`` of
    8, then 16 input channels against ``max_cin`` 12): GEMMs of their pixels."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 1),
                         nn.ReLU(), nn.Conv2d(16, 8, 1))


HOST_CONFIG = PRESETS["tiny"]   # the accelerator the `host` fixture (conftest) builds


@pytest.mark.parametrize("make, programs",
                         [(Mixed, 1), (_deep, 2), (_wide, 3), (_pointwise, 1)])
def test_a_compiled_model_on_the_rtl_equals_golden_and_the_cycle_model(host, make, programs):
    torch.manual_seed(0)
    model = make().eval()
    cal = torch.randn(32, 1, 8, 8)
    rows = model_rows("m", model, cal, cal[:2], "tiny", host=host)
    whole, layers = rows[0], rows[1:]
    assert KEYS <= set(whole) and whole["layer"] == "all" and whole["batch"] == 2
    assert whole["programs"] == programs
    assert whole["mismatches"] == 0
    assert whole["model_cycles"] == whole["cycles"] and whole["cycles_match"]
    hw = sum(c["cycles"] for c in whole["counters"])
    assert whole["cycles"] == hw + whole["host_cycles"]
    assert (whole["host_cycles"] > 0) == (programs > 1)
    macs = 0
    for m in model.modules():
        if isinstance(m, nn.Conv2d):  # every conv keeps its 8x8 map ('same' padding)
            macs += 8 * 8 * m.out_channels * (m.in_channels // m.groups) * m.kernel_size[0] \
                * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            macs += m.in_features * m.out_features
    assert whole["macs"] == 2 * macs
    cfg = PRESETS["tiny"]
    assert whole["mac_units"] == cfg.macs
    assert whole["utilization"] == whole["macs"] / (whole["cycles"] * cfg.macs)
    # the per-layer rows add up to the whole, and their MACs to the model's
    assert sum(r["model_cycles"] for r in layers) == whole["model_cycles"]
    assert sum(r["macs"] for r in layers) == whole["macs"]
    assert all(r["source"] in ("perf model", "host words") for r in layers)


def test_a_refused_workload_is_a_row_with_the_reason(host):
    """A Linear whose weights do not fit tiny's weight scratchpad even one output block at a
    time."""
    model = nn.Sequential(nn.Linear(2100, 4)).eval()
    cal = torch.randn(8, 2100)
    [row] = model_rows("big", model, cal, cal[:1], "tiny", host=host)
    assert row["workload"] == "big" and "cycles" not in row
    assert row["note"].startswith("refused by accel_tiny: the weights of layer '0' do not fit "
                                  "the weight scratchpad of accel_tiny (512 words) even one "
                                  "output block at a time")
    assert row["macs"] == 2100 * 4


def test_the_cli_flag_runs_a_reference_workload_and_reports_a_refusal(monkeypatch):
    """``--workload lstm --preset ecp5``: the trained model, refused (ecp5 has no LSTM cell),
    through the benchmark's own argument parser -- and at once: the harness is only built for
    a workload that compiles (a refusal never waits for a Verilator build)."""
    import hwaccel.sim.host

    def no_build(*args):
        raise AssertionError("a refused workload built the harness")

    monkeypatch.setattr(hwaccel.sim.host, "HarnessHost", no_build)
    p = argparse.ArgumentParser()
    accel.add_arguments(p)
    args = p.parse_args(["--workload", "lstm", "--preset", "ecp5", "--no-layers"])
    [row] = accel.run(args)
    assert row["workload"] == "lstm" and row["batch"] == 1 and "cycles" not in row
    assert row["note"] == ("refused by accel_ecp5: layer 'lstm1' is an LSTM and accel_ecp5 has "
                           "no LSTM cell (lstm=None)")
    assert row["macs"] > 0


def test_bench_command_fails_on_a_wrong_row(capsys):
    """``hwaccel bench`` measures the hardware: a row with mismatched outputs or an inexact cycle
    model makes the command fail, a clean table does not."""
    from types import SimpleNamespace

    from hwaccel.cli import _cmd_bench

    def args(rows):
        module = SimpleNamespace(run=lambda a: rows, COLUMNS=["workload", "mismatches"])
        return SimpleNamespace(bench_module=module, json=False)

    good = [{"workload": "cnn", "mismatches": 0, "cycles_match": True}]
    assert _cmd_bench(args(good)) == 0
    assert _cmd_bench(args([*good, {"workload": "dscnn", "mismatches": 3}])) == 1
    assert "dscnn" in capsys.readouterr().err
    assert _cmd_bench(args([{"workload": "lstm", "mismatches": 0, "cycles_match": False}])) == 1
