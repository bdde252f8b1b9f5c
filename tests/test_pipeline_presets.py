"""The pipeline tops as generator presets (kind ``pipeline`` in
:data:`hwaccel.generators.KINDS`): ``hwaccel rtl`` and ``make rtl`` emit them, ``hwaccel synth
--preset pipeline_ecp5_x2 --target ecp5`` synthesizes two ecp5 instances and their link, and
tests/test_emit.py lints every preset. Their behaviour is tested in test_parallel_pp.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwaccel.emit import emit, read_sidecar
from hwaccel.generators import KINDS, config_for, presets
from hwaccel.generators.accel import PRESETS as ACCEL
from hwaccel.generators.link import PRESETS as LINKS
from hwaccel.generators.multi import PRESETS, PipelineConfig
from hwaccel.impl.yosys import LUT_MULTIPLIERS


def test_presets_are_registered():
    assert KINDS["pipeline"] == "hwaccel.generators.multi"
    table = presets()
    assert {"pipeline_tiny_x2", "pipeline_ecp5_x2"} <= set(table)
    tiny, ecp5 = config_for("pipeline_tiny_x2"), config_for("pipeline_ecp5_x2")
    assert tiny is PRESETS["tiny_x2"] and ecp5 is PRESETS["ecp5_x2"]
    assert isinstance(tiny, PipelineConfig) and tiny.kind == "pipeline"
    assert (tiny.accel, tiny.instances, tiny.link) == (ACCEL["tiny"], 2, LINKS["tiny"])
    assert (ecp5.accel, ecp5.instances) == (ACCEL["ecp5"], 2)
    # one 8-lane activation word a beat, and the buffer that keeps the link at a beat a cycle
    assert ecp5.link.width == ACCEL["ecp5"].lanes == 8
    assert ecp5.link.buffer == ecp5.link.full_rate_buffer == 40 and ecp5.link.bandwidth == 8


def test_tiny_x2_elaborates_with_its_ports(tmp_path, monkeypatch):
    monkeypatch.setenv("HWACCEL_BUILD", str(tmp_path / "build"))
    cfg = config_for("pipeline_tiny_x2")
    meta = read_sidecar(emit(cfg, tmp_path).sidecar)
    assert meta["kind"] == "pipeline" and meta["slug"] == "pipeline_tiny_x2"
    assert meta["derived"]["links"] == 1 and meta["derived"]["link"]["credits"] == 4
    members = meta["ports"]["members"]
    a = cfg.accel
    widths = {n: members[n]["width"] for n in ("sel", "start", "busy", "done", "error",
                                                "copying", "stalled")}
    assert widths == {"sel": 1, "start": 2, "busy": 2, "done": 2, "error": 2, "copying": 1,
                      "stalled": 1}
    copy = members["copy0"]["members"]
    assert {n: copy[n]["width"] for n in ("start", "src", "dst", "count")} == \
        {"start": 1, "src": a.addr_bits, "dst": a.addr_bits,
         "count": a.act_depth.bit_length()}
    host = members["host"]["members"]
    assert host["rdata"]["dir"] == "out" and host["rdata"]["width"] == a.data_bits
    assert "copy1" not in members
    text = (tmp_path / "pipeline_tiny_x2.v").read_text()
    # two accelerator instances, one sender, link and writer
    for sub in ("accel0", "accel1", "sender0", "link0", "writer0"):
        assert f"module \\pipeline_tiny_x2.{sub} " in text, sub
    assert "pipeline_tiny_x2.accel2" not in text and "pipeline_tiny_x2.link1" not in text


def test_tiny_conv_x2_is_tiny_x2_without_lstm_cells():
    cfg = config_for("pipeline_tiny_conv_x2")
    assert cfg is PRESETS["tiny_conv_x2"] and cfg.instances == 2 and cfg.link == LINKS["tiny"]
    assert cfg.accel.lstm is None and ACCEL["tiny"].lstm is not None
    assert cfg.accel == ACCEL["tiny"].with_(lstm=None, name="tiny_conv")
    assert not cfg.lut_multipliers


class _Stop(Exception):
    pass


@pytest.mark.parametrize("flow", ["synthesize", "bitstream"])
@pytest.mark.parametrize("lut", [True, False])
def test_a_pipelines_lut_multipliers_reach_the_synthesis_script(tmp_path, monkeypatch, flow,
                                                                lut):
    """The flow reads ``lut_multipliers`` from the top's config: a pipeline's is its instances'
    (no Yosys: the script is read where Yosys would be started)."""
    from hwaccel.impl import flow as flow_mod
    from hwaccel.impl import yosys as yosys_mod

    cfg = PRESETS["tiny_conv_x2"].with_(accel=ACCEL["tiny"].with_(lut_multipliers=lut))
    assert cfg.lut_multipliers is lut

    def fake_verilog(config, target, folder, *, shell):
        assert config is cfg
        path = folder / f"{config.slug}.v"
        path.write_text("module top(); endmodule\n")
        return path, "top"

    scripts = []

    def fake_tool(tool, args, *, cwd, **kw):
        assert tool == "yosys" and args == ["-s", "synth.ys"]
        scripts.append((Path(cwd) / "synth.ys").read_text())
        raise _Stop

    monkeypatch.setattr(flow_mod, "write_verilog", fake_verilog)
    monkeypatch.setattr(yosys_mod, "run_tool", fake_tool)
    with pytest.raises(_Stop):
        if flow == "synthesize":
            flow_mod.synthesize(cfg, "ecp5", out_dir=tmp_path)
        else:
            flow_mod.bitstream(cfg, out_dir=tmp_path)
    (script,) = scripts
    prelude = LUT_MULTIPLIERS.format(top="top")
    assert (prelude in script) is lut
    if lut:  # before the target's synthesis, after reading the design
        assert script.index("read_verilog") < script.index(prelude) < script.index("synth_ecp5")
