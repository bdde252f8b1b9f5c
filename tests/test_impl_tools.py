"""Running a synthesis tool: the log is written as it runs and kept when the run is stopped."""

from __future__ import annotations

import pytest

from hwaccel.impl.tools import TIMEOUT_ENV, ImplError, run_tool, tool_timeout


def test_a_run_writes_its_output_and_command_to_the_log(tmp_path):
    log = tmp_path / "tool.log"
    proc = run_tool("sh", ["-c", "echo placed; echo routed >&2"], cwd=tmp_path, log=log)
    text = log.read_text()
    assert text.startswith("$ ") and "placed" in text and "routed" in text
    assert proc.returncode == 0 and "placed" in proc.stdout and not proc.stdout.startswith("$ ")


def test_a_failing_run_names_its_error_lines_and_the_log(tmp_path):
    log = tmp_path / "tool.log"
    with pytest.raises(ImplError, match=r"exit 3\): ERROR: no BELs left .*tool\.log"):
        run_tool("sh", ["-c", "echo 'ERROR: no BELs left'; exit 3"], cwd=tmp_path, log=log)


def test_a_run_past_its_limit_keeps_what_it_wrote(tmp_path):
    log = tmp_path / "tool.log"
    with pytest.raises(ImplError, match=f"did not finish in 1 s .*{TIMEOUT_ENV}"):
        run_tool("sh", ["-c", "echo 'Info: placing'; sleep 30"], cwd=tmp_path, log=log,
                 timeout_s=1)
    assert "Info: placing" in log.read_text()


def test_the_limit_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(TIMEOUT_ENV, raising=False)
    assert tool_timeout(3600) == 3600
    monkeypatch.setenv(TIMEOUT_ENV, "7200")
    assert tool_timeout(3600) == 7200
    monkeypatch.setenv(TIMEOUT_ENV, "0")
    assert tool_timeout(3600) is None
    for bad in ("an hour", "-5"):
        monkeypatch.setenv(TIMEOUT_ENV, bad)
        with pytest.raises(ImplError, match=TIMEOUT_ENV):
            tool_timeout(3600)
