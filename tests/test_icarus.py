"""The four blocks' random benches on Icarus Verilog, an event-driven four-state simulator, must
give what Verilator gives: every result, every cycle count and every counter.

Icarus is not on PyPI (Debian's ``iverilog`` is; ``.ci/run`` installs it), so without it these
tests skip and say so -- unless ``HWACCEL_REQUIRE_ICARUS=1`` (set by ``.ci/run``), where a missing
``iverilog`` fails them. What they guard: the benches' port writes landing after every flip-flop
has sampled the edge (``sim/streams.py``), and the emitted Verilog evaluating every combinational
block at time zero (``hwaccel.emit.kick_combinational``). On the code without either fix, the
conv engine's ``k1n1`` corner returned a wrong pixel, the LSTM cell never took a weight beat and
every accelerator program stayed busy.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from amaranth import Module, Signal
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwaccel.emit import kick_combinational
from hwaccel.generators import accel, conv, lstm, systolic
from hwaccel.sim.runner import design_for, run_bench

if shutil.which("iverilog") is None:
    if os.environ.get("HWACCEL_REQUIRE_ICARUS", "") not in ("", "0"):
        raise RuntimeError("HWACCEL_REQUIRE_ICARUS is set but iverilog is not on PATH")
    pytest.skip("Icarus Verilog (iverilog) is not on PATH: Debian's `iverilog` package provides "
                "it; the second-simulator checks did not run", allow_module_level=True)

# Wall-clock fields differ between runs by nature; everything else must be equal.
_WALL = {"sim_seconds"}


def _without_wall(value):
    if isinstance(value, dict):
        return {k: _without_wall(v) for k, v in value.items() if k not in _WALL}
    if isinstance(value, list):
        return [_without_wall(v) for v in value]
    return value


def _both(config, module: str, params: dict, seed: int) -> dict:
    design = design_for(config)
    got = {sim: _without_wall(run_bench(design, module, params, seed=seed, simulator=sim))
           for sim in ("icarus", "verilator")}
    icarus, verilator = got["icarus"], got["verilator"]
    for key in verilator:
        assert icarus[key] == verilator[key], (
            f"{config.slug} {module} (seed {seed}): Icarus and Verilator disagree on {key!r}:\n"
            f"icarus    {icarus[key]}\nverilator {verilator[key]}")
    assert icarus == verilator
    return verilator


@pytest.mark.parametrize("dataflow", ["os", "ws"])
def test_systolic_3x5(dataflow, seed):
    cfg = systolic.SystolicConfig(rows=3, cols=5, dataflow=dataflow, name=f"{dataflow}_3x5")
    res = _both(cfg, "sim.tb_systolic", {"mode": "random", "count": 4, "idle": 0.3,
                                         "backpressure": 0.3, "seed": seed}, seed)
    assert len(res["cases"]) >= 4 and all(c["mismatches"] == 0 for c in res["cases"])
    assert all(c["cycles"] > 0 for c in res["cases"])


def test_conv_k1n1(seed):
    res = _both(conv.PRESETS["k1n1"], "sim.tb_conv", {"mode": "random", "count": 3, "idle": 0.2,
                                                      "backpressure": 0.3, "batch": 2,
                                                      "seed": seed}, seed)
    assert res["cases"][0]["layer"].startswith("ConvLayer(height=1, width=1, cin=1, cout=1")
    assert len(res["cases"]) >= 3 + 7 and all(c["mismatches"] == 0 for c in res["cases"])
    assert all(c["batch_cycles"] > 0 for c in res["cases"])


def test_lstm_small_p6(seed):
    loads = [["random", 3], ["saturating", 2]]
    res = _both(lstm.PRESETS["small_p6"], "sim.tb_lstm",
                {"mode": "random", "seed": seed, "loads": loads, "max_len": 12, "idle": 0.3,
                 "backpressure": 0.3}, seed)
    assert [c["style"] for c in res["cases"]] == ["random", "saturating"]
    assert all(c["mismatches"] == 0 and c["cycles"] > 0 for c in res["cases"])


def test_accel_tiny(seed):
    res = _both(accel.PRESETS["tiny"], "sim.tb_accel",
                {"seeds": [seed, seed + 1], "commands": 6, "seed": seed}, seed)
    assert [c["mismatches"] for c in res["programs"]] == [0, 0]
    assert all(c["counters"]["cycles"] > 0 for c in res["programs"])
    assert len(res["faults"]) >= 10 and all(c["cause"] for c in res["faults"])
    assert [c["reset_at"] for c in res["soft_reset"]] == [5, 40, 150]


class _CombIfElse(wiring.Component):
    """The pattern of amaranth-lang/amaranth#1629: a comb If/Else on a register, which Yosys
    writes as an ``always @*`` that nothing wakes at time zero."""

    def __init__(self):
        super().__init__({"data_in": In(1), "data_out": Out(3)})

    def elaborate(self, platform):
        m = Module()
        held = Signal()
        m.d.sync += held.eq(self.data_in)
        with m.If(held):
            m.d.comb += self.data_out.eq(2)
        with m.Else():
            m.d.comb += self.data_out.eq(7)
        return m


_TB = """`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 0, data_in = 0;
  wire [2:0] data_out;
  top dut(.clk(clk), .rst(rst), .data_in(data_in), .data_out(data_out));
  initial begin #5 $display("data_out=%b", data_out); $finish; end
endmodule
"""


@pytest.mark.parametrize("kicked", [False, True])
def test_time_zero_evaluation_on_icarus(kicked, tmp_path):
    """Amaranth's Verilog leaves data_out x on Icarus until an input changes; the emitted text
    (with :func:`kick_combinational`) gives 7 with no clock edge at all."""
    text = verilog.convert(_CombIfElse(), name="top", emit_src=False)
    (tmp_path / "top.v").write_text(kick_combinational(text) if kicked else text)
    (tmp_path / "tb.v").write_text(_TB)
    subprocess.run(["iverilog", "-g2012", "-o", "tb.vvp", "-s", "tb", "top.v", "tb.v"],
                   cwd=tmp_path, check=True, capture_output=True, text=True)
    out = subprocess.run(["vvp", "-n", "tb.vvp"], cwd=tmp_path, check=True,
                         capture_output=True, text=True).stdout
    assert ("data_out=111" if kicked else "data_out=xxx") in out, out
