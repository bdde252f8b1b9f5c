"""Every synthesis run ends with Yosys' ``check -assert``: a netlist with a multiply driven net
fails there, with the net named, instead of in place and route (or not at all). When a target has
a fallback mapping, a first mapping that left such nets is replaced by the fallback's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from hwaccel.impl.target import get_target
from hwaccel.impl.tools import ImplError
from hwaccel.impl.yosys import run_yosys

# Two drivers for `n` unless ONE_DRIVER is defined.
TWO_DRIVERS = """module twodrive(input clk, input a, input b, output reg y);
  wire n;
  assign n = a;
`ifndef ONE_DRIVER
  assign n = b;
`endif
  always @(posedge clk) y <= n;
endmodule
"""


@pytest.fixture
def verilog(tmp_path):
    path = tmp_path / "twodrive.v"
    path.write_text(TWO_DRIVERS)
    return path


def test_multiply_driven_net_fails_synthesis_naming_it(verilog, tmp_path):
    problem = r"fails `check`: multiple conflicting drivers for twodrive\."
    with pytest.raises(ImplError, match=problem):
        run_yosys(verilog, "twodrive", get_target("generic"), tmp_path)
    assert not (tmp_path / "yosys_stat.json").exists()


def test_fallback_replaces_a_mapping_with_multiply_driven_nets(verilog, tmp_path):
    generic = get_target("generic")
    # A stand-in for a mapper that gets it right: the fallback reads the design without the bug.
    target = replace(generic, synth_fallback="design -reset; read_verilog -DONE_DRIVER "
                                             f"{verilog.name}; {generic.synth}")
    result = run_yosys(verilog, "twodrive", target, tmp_path)
    assert result.ff == 1 and result.notes and "multiply driven" in result.notes[0]
    assert "multiple conflicting drivers" in (tmp_path / "yosys_abc9_conflict.log").read_text()
