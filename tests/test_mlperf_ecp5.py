"""MLPerf Tiny's four reference models on the ``ecp5`` preset's RTL (the ECP5-85F build):
ResNet-8, DS-CNN (its 10 x 4 stem over im2col patches), MobileNetV1 (96 x 96 input: 48 x 48
maps, 12,288 activation words, a global pool over 32 blocks on AVGPOOL's 16 accumulator words)
and the FC autoencoder (Linears in parts of their outputs).

Each runs on the Verilated accelerator as ``hwaccel bench accel --preset ecp5 --workload W``
runs it (batch 1, 512 calibration samples): every output equal to the golden interpreter's,
the RTL's cycles equal to the cycle model's, and every counter of the model equal to the RTL's
summed over the programs.
"""

from __future__ import annotations

import pytest

from hwaccel.bench.workloads import workload_rows
from hwaccel.generators.accel import COUNTERS, PRESETS

HOST_CONFIG = PRESETS["ecp5"]   # the accelerator the `host` fixture (conftest) builds

PROGRAMS = {"resnet8": 1, "dscnn": 1, "mobilenet": 2, "autoencoder": 3}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_the_reference_model_runs_exactly_on_ecp5s_rtl(host, name):
    [row] = workload_rows(name, "ecp5", host=host, layers=False)
    assert "note" not in row, row.get("note")
    assert row["mismatches"] == 0
    assert row["programs"] == PROGRAMS[name]
    assert row["cycles"] == row["model_cycles"] and row["cycles_match"]
    summed = {k: sum(c[k] for c in row["counters"]) for k in COUNTERS}
    assert summed == row["model_counters"]
    assert row["cycles"] == summed["cycles"] + row["host_cycles"]
    assert (row["host_cycles"] > 0) == (PROGRAMS[name] > 1)
