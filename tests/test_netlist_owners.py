"""hwaccel.impl.netlist_owners: a flattened netlist's cells counted by the module or signal of
the net they drive (a hand-made netlist in Yosys' JSON form)."""

from __future__ import annotations

import json

import pytest

from hwaccel.impl.netlist_owners import main, owners, slots


def _net(bits, hdlname=None, hidden=0):
    return {"hide_name": hidden, "bits": bits,
            "attributes": {"hdlname": hdlname} if hdlname else {}}


def _cell(kind, **conn):
    return {"type": kind, "connections": conn}


NETLIST = {"modules": {"top": {
    "attributes": {"top": "00000000000000000000000000000001"},
    "netnames": {
        "conv.engine.acc": _net([2, 3], "conv engine acc"),
        "conv.engine.$5_LUT4_Z_C": _net([4]),          # an ABC net named after a neighbour
        "elt.v$1_CCU2C_S0": _net([5]),
        "elt.busy": _net([10], "elt busy"),
        "busy": _net([6]),
        "$abc$9$new": _net([7], hidden=1),
    },
    "cells": {
        "a": _cell("LUT4", A=[4], Z=[2]), "b": _cell("LUT4", A=[2], Z=[4]),
        "c": _cell("CCU2C", A0=[2], S0=[5], S1=[8], COUT=[9]),
        "d": _cell("TRELLIS_FF", DI=[5], Q=[6]), "e": _cell("LUT4", A=[6], Z=[7]),
        "f": _cell("PFUMX", ALUT=[2], Z=[3]),     # not a counted type
    }}}}


def test_cells_are_counted_by_the_module_of_their_output_net():
    count = owners(NETLIST, depth=2)
    assert count[("conv.engine", "LUT4")] == 2
    assert count[("elt", "CCU2C")] == 1 and slots(count, "elt") == 2
    assert count[("<top>", "TRELLIS_FF")] == 1
    assert count[("?", "LUT4")] == 1          # a LUT whose output has no usable name
    assert owners(NETLIST, depth=1)[("conv", "LUT4")] == 2


def test_signals_of_one_module():
    count = owners(NETLIST, signals="conv.engine")
    assert count == {("acc", "LUT4"): 1, ("$5", "LUT4"): 1}


def test_command_line(tmp_path, capsys):
    path = tmp_path / "n.json"
    path.write_text(json.dumps(NETLIST))
    main([str(path), "--depth", "1"])
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:2] == ["conv", "2"] and out[-1].split()[:2] == ["total", "5"]
    with pytest.raises(SystemExit):
        main([str(path), "--depth", "0"])
