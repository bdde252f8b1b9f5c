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
``ResetInserter``).

On a 1024 x 36 memory read into a register and on through a LUT (two DP16KD), nextpnr-ecp5
0.11 placed 145.35 MHz as Yosys left it and 387.60 MHz absorbed (seed 1, 85F, speed 6).
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["absorb", "absorb_file"]

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


def absorb(netlist: dict) -> list[str]:
    """Give every DP16KD port that reads into flip-flops alone its output register, in place;
    returns the ports (``cell.A`` / ``cell.B``)."""
    done = []
    for mod in netlist["modules"].values():
        cells = mod["cells"]
        if not any(c["type"] == "DP16KD" for c in cells.values()):
            continue
        ports = {b for p in mod.get("ports", {}).values() for b in p["bits"]}
        sinks = _sinks(cells)
        for name, ram in list(cells.items()):
            if ram["type"] != "DP16KD":
                continue
            con, par = ram["connections"], ram["parameters"]
            for x in "AB":
                if (str(par.get(f"REGMODE_{x}", "NOREG")).strip() != "NOREG"
                        or not isinstance(con.get(f"CLK{x}", ["0"])[0], int)
                        or str(par.get(f"CLK{x}MUX", f"CLK{x}")).strip() != f"CLK{x}"
                        or con.get(f"OCE{x}", ["1"]) != ["1"]
                        or con.get(f"RST{x}", ["0"]) != ["0"]):
                    continue
                used = [(i, con[f"DO{x}{i}"][0]) for i in range(_BITS)
                        if sinks.get(con.get(f"DO{x}{i}", ["x"])[0])]
                regs = []
                for i, bit in used:
                    s = sinks[bit]
                    if bit in ports or len(s) != 1 or s[0][1] != "DI" \
                            or not _takes(ram, x, cells[s[0][0]]):
                        break
                    regs.append((i, s[0][0]))
                else:
                    if not regs:
                        continue
                    par[f"REGMODE_{x}"] = "OUTREG"
                    for i, ff in regs:
                        con[f"DO{x}{i}"] = cells.pop(ff)["connections"]["Q"]
                    done.append(f"{name}.{x}")
    return done


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
