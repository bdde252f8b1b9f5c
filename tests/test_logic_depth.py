"""hwaccel.impl.logic_depth on hand-made ECP5 netlists: arrival times add up cell by cell and
net by net, a carry's own links cost no routing, paths are ranked and named by their signals,
and a netlist without ECP5 cells is refused."""

from __future__ import annotations

import json

import pytest

from hwaccel.impl.logic_depth import ROUTE_NS, deepest, main


def _cell(kind, **ports):
    """A cell whose ports are ``name=(direction, bit)``."""
    return {"type": kind, "parameters": {}, "attributes": {},
            "port_directions": {p: d for p, (d, _) in ports.items()},
            "connections": {p: [b] for p, (_, b) in ports.items()}}


def _netlist():
    """``a`` -> two LUTs -> ``deep``; ``a`` -> one LUT -> ``shallow``; ``a`` -> a two-cell carry
    chain -> ``sum``; the input port ``x`` -> ``fromin``."""
    i, o = "input", "output"
    cells = {
        "a_ff": _cell("TRELLIS_FF", CLK=(i, 2), DI=(i, 3), Q=(o, 10)),
        "l1": _cell("LUT4", A=(i, 10), Z=(o, 11)),
        "l2": _cell("LUT4", B=(i, 11), Z=(o, 12)),
        "deep_ff": _cell("TRELLIS_FF", CLK=(i, 2), DI=(i, 12), Q=(o, 13)),
        "l3": _cell("LUT4", C=(i, 10), Z=(o, 14)),
        "shallow_ff": _cell("TRELLIS_FF", CLK=(i, 2), DI=(i, 14), Q=(o, 15)),
        "c0": _cell("CCU2C", A0=(i, 10), COUT=(o, 16)),
        "c1": _cell("CCU2C", CIN=(i, 16), S0=(o, 17)),
        "sum_ff": _cell("TRELLIS_FF", CLK=(i, 2), DI=(i, 17), Q=(o, 18)),
        "l4": _cell("LUT4", D=(i, 4), Z=(o, 19)),
        "fromin_ff": _cell("TRELLIS_FF", CLK=(i, 2), DI=(i, 19), Q=(o, 20)),
    }
    nets = {"clk": 2, "a": 10, "a_n": 11, "a_nn": 12, "deep": 13, "a_s": 14, "shallow": 15,
            "c": 16, "s": 17, "sum": 18, "x": 4, "x_n": 19, "fromin": 20, "d": 3}
    return {"modules": {"top": {"attributes": {"top": "00000000000000000000000000000001"},
                                "cells": cells,
                                "netnames": {n: {"bits": [b]} for n, b in nets.items()}}}}


def test_arrival_times_add_up_and_rank_the_paths():
    paths = deepest(_netlist(), top=10)
    got = {(p.start, p.end): (p.ns, p.levels) for p in paths}
    r = ROUTE_NS
    assert got[("a", "deep_ff.DI")] == (round(0.52 + 2 * (r + 0.24) + r, 2), 2)
    assert got[("a", "shallow_ff.DI")] == (round(0.52 + r + 0.24 + r, 2), 1)
    # into the chain's first cell from a net, then along the carry (no routing), then out
    assert got[("a", "sum_ff.DI")] == (round(0.52 + r + 0.45 + 0.44 + r, 2), 2)
    assert got[("(input) x", "fromin_ff.DI")] == (round(0.24 + r, 2), 1)
    assert [p.ns for p in paths] == sorted((p.ns for p in paths), reverse=True)
    assert (paths[0].start, paths[0].end) == ("a", "deep_ff.DI")
    assert paths[0].via == ("a_n", "a_nn")
    # every cell from the start, with the time at its output
    assert paths[0].cells == ((0.52, "TRELLIS_FF", "a_ff"),
                              (round(0.52 + r + 0.24, 2), "LUT4", "l1"),
                              (round(0.52 + 2 * (r + 0.24), 2), "LUT4", "l2"))
    fromin = next(p for p in paths if p.start == "(input) x")
    assert fromin.cells == ((0.24, "LUT4", "l4"),)   # an input port is no cell
    assert len(deepest(_netlist(), top=2)) == 2


def test_a_netlist_without_ecp5_cells_is_refused_and_a_good_one_listed(tmp_path, capsys):
    other = {"modules": {"top": {"attributes": {"top": 1}, "netnames": {},
                                 "cells": {"g": _cell("$_AND_", A=("input", 1), Y=("output", 2))}}}}
    with pytest.raises(ValueError, match="not a synth_ecp5 netlist"):
        deepest(other)
    f = tmp_path / "n.json"
    f.write_text(json.dumps(other))
    with pytest.raises(SystemExit, match="not a synth_ecp5 netlist"):
        main([str(f)])
    f.write_text(json.dumps(_netlist()))
    main([str(f), "--top", "1"])
    assert "a -> deep_ff.DI" in capsys.readouterr().out
    main([str(f), "--top", "1", "--cells"])
    out = capsys.readouterr().out
    assert "LUT4        l2" in out and "TRELLIS_FF  a_ff" in out


def test_a_start_is_named_after_the_register_that_drives_it():
    """A register's output bit may carry several names (a port, another signal): the path
    starts at the name its driving cell is named after, whatever the netnames' order."""
    n = _netlist()
    top = n["modules"]["top"]
    top["netnames"] = {"host__rdata": {"bits": [10]}, **top["netnames"]}
    top["cells"]["a_TRELLIS_FF_Q"] = top["cells"].pop("a_ff")
    starts = {p.start for p in deepest(n, top=10)}
    assert "a" in starts and "host__rdata" not in starts


def test_a_block_ram_read_starts_later_without_its_output_register():
    """A DP16KD's word shows 5.8 ns after the clock, 0.96 ns from its output register
    (``REGMODE_B = "OUTREG"``, :mod:`hwaccel.impl.bram_outreg`)."""
    n = _netlist()
    cells = n["modules"]["top"]["cells"]
    cells["ram"] = _cell("DP16KD", CLKB=("input", 2), DOB0=("output", 30))
    cells["l5"] = _cell("LUT4", A=("input", 30), Z=("output", 31))
    cells["word_ff"] = _cell("TRELLIS_FF", CLK=("input", 2), DI=("input", 31), Q=("output", 32))
    n["modules"]["top"]["netnames"].update({"rd": {"bits": [30]}, "rd_n": {"bits": [31]}})

    def word():
        return next(p.ns for p in deepest(n, top=20) if p.end == "word_ff.DI")

    assert word() == round(5.8 + ROUTE_NS + 0.24 + ROUTE_NS, 2)
    cells["ram"]["parameters"]["REGMODE_B"] = "OUTREG"
    assert word() == round(0.96 + ROUTE_NS + 0.24 + ROUTE_NS, 2)
