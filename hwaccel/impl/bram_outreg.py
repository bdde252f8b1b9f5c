"""ECP5 block RAM output registers: a DP16KD read that feeds only flip-flops takes them in.

A DP16KD read without its output register (``REGMODE_A/B = "NOREG"``) shows its word 5.8 ns
after the clock at speed grade 6: a block RAM read into a register alone is 6.9 ns, so no design
that reads block RAM and uses the word in the next cycle reaches 150 MHz. With the output
register (``"OUTREG"``) the word is a cycle later and 0.96 ns after the clock (nextpnr-ecp5's
timing for both modes). Yosys' ``synth_ecp5`` never sets ``OUTREG``: its memory mapping takes a
read port's address register into the block RAM, not a register after it.

:func:`absorb` does, on the netlist ``synth_ecp5`` writes: where every used output bit of a
port drives exactly one thing, the data input of a ``TRELLIS_FF`` clocked by the port's own
clock, always enabled, never reset and starting at 0, the port gets ``OUTREG`` and drives the
flip-flops' outputs itself, and the flip-flops go. That is the same cycle behaviour (the word a
cycle after the read, held by a register of its own), so the Verilog that Verilator checks is
still the design; the flow (:func:`hwaccel.impl.flow.synthesize`) runs it between Yosys and
nextpnr and notes how many ports took it. A design gets it by reading block RAM into a
register with nothing else on the read data (``Signal(..., reset_less=True)`` under a
``ResetInserter``). ``python -m hwaccel.impl.bram_outreg NETLIST`` lists every read port of a
netlist, by memory, and what keeps it from its register.

On a 1024 x 36 memory read into a register and on through a LUT (two DP16KD), nextpnr-ecp5
0.11 placed 145.35 MHz as Yosys left it and 387.60 MHz absorbed (seed 1, 85F, speed 6).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["absorb", "absorb_file", "survey", "main"]

_BITS = 18   # a DP16KD port's DO0 .. DO17


def _sinks(cells: dict) -> dict[int, list[tuple[str, str]]]:
    out: dict[int, list[tuple[str, str]]] = {}
    for name, c in cells.items():
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) != "output":
                for b in bits:
                    out.setdefault(b, []).append((name, port))
    return out


def _takes(ram: dict, x: str, ff: dict) -> bool:
    """Whether flip-flop ``ff`` is what port ``x``'s output register would be."""
    p, con = ff["parameters"], ff["connections"]
    return (ff["type"] == "TRELLIS_FF" and con.get("CLK") == ram["connections"][f"CLK{x}"]
            and str(p.get("CLKMUX", "CLK")).strip() == "CLK"
            and str(p.get("CEMUX", "")).strip() == "1"
            and con.get("LSR", ["0"]) == ["0"]
            and str(p.get("REGSET", "RESET")).strip() == "RESET")


def _int(value) -> int:
    """A parameter as Yosys' JSON writes it: a binary string, or already a number."""
    return int(value, 2) if isinstance(value, str) else int(value)


def _verdict(ram: dict, x: str, cells: dict, sinks: dict, ports: set) -> tuple[str, list]:
    """Why port ``x`` of ``ram`` keeps its read as it is (empty: it can take its register),
    and the ``(bit, flip-flop)`` pairs it would take."""
    con, par = ram["connections"], ram["parameters"]
    if str(par.get(f"REGMODE_{x}", "NOREG")).strip() != "NOREG":
        return "has its output register", []
    used = [(i, con[f"DO{x}{i}"][0]) for i in range(_BITS)
            if sinks.get(con.get(f"DO{x}{i}", ["x"])[0])]
    if not used:
        return "reads nothing", []
    if any(_int(par.get(f"DATA_WIDTH_{p}", 18)) == 36 for p in "AB"):
        # 512 x 36: one read spans both ports' outputs, which a port's register would split.
        return "36 bits wide (its read spans both ports)", []
    if (not isinstance(con.get(f"CLK{x}", ["0"])[0], int)
            or str(par.get(f"CLK{x}MUX", f"CLK{x}")).strip() != f"CLK{x}"
            or con.get(f"OCE{x}", ["1"]) != ["1"] or con.get(f"RST{x}", ["0"]) != ["0"]):
        return "clock, output enable or reset in use", []
    regs = []
    for i, bit in used:
        s = sinks[bit]
        if bit in ports or len(s) != 1:
            return "the read data has more than one load", []
        cell = cells[s[0][0]]
        if cell["type"] != "TRELLIS_FF" or s[0][1] != "DI":
            return f"the read data goes into a {cell['type']}", []
        if not _takes(ram, x, cell):
            return "the register has an enable, a reset, another clock or starts at 1", []
        regs.append((i, s[0][0]))
    return "", regs


def _rams(netlist: dict):
    """``(cells, sinks, top-level port bits)`` of each module with block RAM."""
    for mod in netlist["modules"].values():
        cells = mod["cells"]
        if any(c["type"] == "DP16KD" for c in cells.values()):
            ports = {b for p in mod.get("ports", {}).values() for b in p["bits"]}
            yield cells, _sinks(cells), ports


def absorb(netlist: dict) -> list[str]:
    """Give every DP16KD port that reads into flip-flops alone its output register, in place;
    returns the ports (``cell.A`` / ``cell.B``)."""
    done = []
    for cells, sinks, ports in _rams(netlist):
        for name, ram in [(n, c) for n, c in cells.items() if c["type"] == "DP16KD"]:
            for x in "AB":
                why, regs = _verdict(ram, x, cells, sinks, ports)
                if why:
                    continue
                ram["parameters"][f"REGMODE_{x}"] = "OUTREG"
                for i, ff in regs:
                    ram["connections"][f"DO{x}{i}"] = cells.pop(ff)["connections"]["Q"]
                done.append(f"{name}.{x}")
    return done


def survey(netlist: dict) -> dict[tuple[str, str], int]:
    """``(memory, verdict) -> ports``: every DP16KD read port, by the memory Yosys split it
    from (its cell name without the split's ``.row.column``), and whether it can take its
    output register (``"takes it"``) or why not."""
    out: dict[tuple[str, str], int] = {}
    for cells, sinks, ports in _rams(netlist):
        for name, ram in cells.items():
            if ram["type"] != "DP16KD":
                continue
            for x in "AB":
                why, _ = _verdict(ram, x, cells, sinks, ports)
                if why != "reads nothing":
                    key = (name.rsplit(".", 2)[0], why or "takes it")
                    out[key] = out.get(key, 0) + 1
    return out


def absorb_file(path: Path | str) -> list[str]:
    """:func:`absorb` on a JSON netlist file, rewritten only when a port took its register."""
    path = Path(path)
    netlist = json.loads(path.read_text())
    done = absorb(netlist)
    if done:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(netlist))
        tmp.replace(path)
    return done


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m hwaccel.impl.bram_outreg",
                                description="Which DP16KD read ports of a synth_ecp5 netlist "
                                            "can take their output register, and why not.")
    p.add_argument("netlist", help="a synth_ecp5 JSON netlist (build/impl/<slug>-ecp5/...)")
    args = p.parse_args(argv)
    rows = survey(json.loads(Path(args.netlist).read_text()))
    if not rows:
        raise SystemExit(f"{args.netlist}: no DP16KD read ports")
    for (memory, why), n in sorted(rows.items()):
        print(f"{n:4d}  {memory:32s} {why}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
