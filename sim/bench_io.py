"""What every cocotb bench reads and writes: its inputs from the runner, its result JSON, and
the first smoke test that the sidecar's ports resolve on the DUT.

:func:`hwaccel.sim.runner.run_bench` sets ``$HWACCEL_SIDECAR``, ``$HWACCEL_PARAMS`` and
``$HWACCEL_RESULT``; benches use only these helpers to touch them.
"""

from __future__ import annotations

import json
import os

from hwaccel.emit import read_sidecar

from .streams import check_ports

__all__ = ["bench_inputs", "write_result", "assert_ports_match_sidecar"]


def bench_inputs() -> tuple[dict, dict]:
    """``(sidecar, params)`` of the design under test."""
    return read_sidecar(os.environ["HWACCEL_SIDECAR"]), json.loads(os.environ["HWACCEL_PARAMS"])


def write_result(result) -> None:
    with open(os.environ["HWACCEL_RESULT"], "w") as f:
        json.dump(result, f)


def assert_ports_match_sidecar(dut, meta: dict) -> None:
    missing = check_ports(dut, meta)
    assert not missing, f"ports in {meta['slug']}.json that do not resolve: {missing}"
