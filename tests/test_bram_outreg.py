"""hwaccel.impl.bram_outreg: a DP16KD read port that feeds flip-flops alone (same clock, always
enabled, never reset) takes them in as its output register, all of a port's or none; anything
else on the read data leaves the port as Yosys wrote it. On the real tools, a block RAM read
into a register and a LUT then places above 150 MHz, which a read without the output register
(5.8 ns from the clock) cannot."""

from __future__ import annotations

import copy
import json

import pytest

from hwaccel.impl.bram_outreg import absorb, main, survey

I, O = "input", "output"


def _cell(kind, params=None, **ports):
    """A cell whose ports are ``name=(direction, bits)``."""
    return {"type": kind, "parameters": dict(params or {}), "attributes": {},
            "port_directions": {p: d for p, (d, _) in ports.items()},
            "connections": {p: list(b) for p, (_, b) in ports.items()}}


def _ff(di, q, clk=2, **params):
    return _cell("TRELLIS_FF", {"CEMUX": "1 ", "CLKMUX": "CLK", "LSRMUX": "LSR",
                                "REGSET": "RESET", "GSR": "DISABLED", **params},
                 CLK=(I, [clk]), DI=(I, [di]), LSR=(I, ["0"]), Q=(O, [q]))


def _netlist(**ffs):
    """One DP16KD whose port B reads bits 100 and 101 (DOB0, DOB1) into the flip-flops ``ffs``
    (default: ``r0`` and ``r1``, onto nets 20 and 21, then a LUT); port A writes."""
    ram = _cell("DP16KD", {"REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "CLKBMUX": "CLKB"},
                CLKA=(I, [2]), CLKB=(I, [2]), OCEB=(I, ["1"]), RSTB=(I, ["0"]),
                **{f"DOB{i}": (O, [100 + i]) for i in range(18)},
                **{f"DOA{i}": (O, [200 + i]) for i in range(18)})
    cells = {"ram": ram, "r0": _ff(100, 20), "r1": _ff(101, 21),
             "use": _cell("LUT4", A=(I, [20]), B=(I, [21]), Z=(O, [30]))}
    cells.update(ffs)
    return {"modules": {"top": {"attributes": {}, "ports": {}, "cells": cells,
                                "netnames": {}}}}


def test_a_read_into_registers_takes_them_in():
    n = _netlist()
    assert absorb(n) == ["ram.B"]
    cells = n["modules"]["top"]["cells"]
    assert set(cells) == {"ram", "use"}
    ram = cells["ram"]
    assert ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["parameters"]["REGMODE_A"] == "NOREG"      # port A reads nothing
    assert (ram["connections"]["DOB0"], ram["connections"]["DOB1"]) == ([20], [21])
    assert ram["connections"]["DOB2"] == [102]             # unused bits as they were
    assert absorb(n) == []                                 # nothing left to take


@pytest.mark.parametrize("why, change", [
    ("a LUT beside the register", {"more": _cell("LUT4", A=(I, [100]), Z=(O, [31]))}),
    ("a clock enable", {"r1": _ff(101, 21, CEMUX="CE")}),
    ("another clock", {"r1": _ff(101, 21, clk=3)}),
    ("an inverted clock", {"r1": _ff(101, 21, CLKMUX="INV")}),
    ("a register that starts at 1", {"r1": _ff(101, 21, REGSET="SET")}),
    ("a LUT instead of a register", {"r1": _cell("LUT4", A=(I, [101]), Z=(O, [21]))}),
])
def test_anything_else_on_the_read_data_leaves_the_port(why, change):
    n = _netlist(**change)
    before = copy.deepcopy(n)
    assert absorb(n) == [], why
    assert n == before, why


def test_a_36_bit_read_is_left():
    """512 x 36: one read spans DOA and DOB, and a port's register would split the word."""
    n = _netlist()
    n["modules"]["top"]["cells"]["ram"]["parameters"]["DATA_WIDTH_B"] = f"{36:032b}"
    assert survey(n) == {("ram", "36 bits wide (its read spans both ports)"): 1}
    assert absorb(n) == []


def test_a_reset_register_or_a_read_onto_a_port_is_left():
    n = _netlist()
    n["modules"]["top"]["cells"]["r0"]["connections"]["LSR"] = [5]
    assert absorb(n) == []
    n = _netlist()
    n["modules"]["top"]["ports"] = {"peek": {"direction": "output", "bits": [100]}}
    assert absorb(n) == []
    n = _netlist()
    n["modules"]["top"]["cells"]["ram"]["parameters"]["REGMODE_B"] = "OUTREG"
    assert absorb(n) == []                                 # it has one already


def test_the_survey_names_what_keeps_each_port_from_its_register(tmp_path, capsys):
    assert survey(_netlist()) == {("ram", "takes it"): 1}
    lut = {"r1": _cell("LUT4", A=(I, [101]), Z=(O, [21]))}
    assert survey(_netlist(**lut)) == {("ram", "the read data goes into a LUT4"): 1}
    both = {"more": _cell("LUT4", A=(I, [100]), Z=(O, [31]))}
    assert survey(_netlist(**both)) == {("ram", "the read data has more than one load"): 1}
    assert survey(_netlist(r1=_ff(101, 21, CEMUX="CE"))) == {
        ("ram", "the register has an enable, a reset, another clock or starts at 1"): 1}
    f = tmp_path / "n.json"
    f.write_text(json.dumps(_netlist(**lut)))
    assert main([str(f)]) == 0
    assert capsys.readouterr().out.split() == ["1", "ram", *"the read data goes into a "
                                                            "LUT4".split()]
    f.write_text(json.dumps({"modules": {"top": {"cells": {}}}}))
    with pytest.raises(SystemExit, match="no DP16KD read ports"):
        main([str(f)])


def test_the_flow_places_a_block_ram_read_above_150_mhz(tmp_path):
    """Yosys, then nextpnr-ecp5 out of context (85F, speed 6, seed 1): a 1024 x 36 memory read
    into a register (``reset_less`` under a reset) and on through a LUT."""
    from amaranth.back import verilog
    from amaranth.hdl import Elaboratable, Module, ResetInserter, Signal
    from amaranth.lib import memory

    from hwaccel.impl.nextpnr import run_nextpnr
    from hwaccel.impl.target import get_target
    from hwaccel.impl.yosys import run_yosys

    class Reader(Elaboratable):
        def __init__(self):
            self.raddr, self.waddr = Signal(10), Signal(10)
            self.wdata, self.we, self.out = Signal(36), Signal(), Signal(36)

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = memory.Memory(shape=36, depth=1024, init=[],
                                                   attrs={"no_rw_check": 1})
            rd, wr = mem.read_port(), mem.write_port()
            word = Signal(36, reset_less=True)
            m.d.comb += [rd.addr.eq(self.raddr), wr.addr.eq(self.waddr),
                         wr.data.eq(self.wdata), wr.en.eq(self.we)]
            m.d.sync += [word.eq(rd.data), self.out.eq(word ^ word.rotate_left(1))]
            return m

    top = Reader()
    rst = Signal()
    path = tmp_path / "reader.v"
    path.write_text(verilog.convert(ResetInserter(rst)(top), name="reader",
                                    ports=[top.raddr, top.waddr, top.wdata, top.we, top.out,
                                           rst]))
    t = get_target("ecp5")
    ys = run_yosys(path, "reader", t, tmp_path)
    assert any("took their output register" in note for note in ys.notes), ys.notes
    pnr = run_nextpnr(ys.netlist, t, tmp_path, freq_mhz=150, seed=1,
                      extra=("--out-of-context",))
    assert pnr.fmax_mhz > 150, pnr.critical_path
