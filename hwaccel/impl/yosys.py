"""Yosys: the synthesis script of a target, and the cell counts of its result."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .target import Target
from .tools import ImplError, run_tool

__all__ = ["YosysResult", "run_yosys", "GATE_CELLS", "FF_PREFIXES", "LUT_MULTIPLIERS",
           "DSP_ATTR"]

#: Yosys' internal gate cells that make up the ``generic`` gate count (after ``abc -g``).
GATE_CELLS = ("$_AND_", "$_NAND_", "$_OR_", "$_NOR_", "$_XOR_", "$_XNOR_", "$_MUX_", "$_NOT_",
              "$_ANDNOT_", "$_ORNOT_")
#: Flip-flop cell names start with one of these (internal $_*DFF*_ cells, SB_DFF*, TRELLIS_FF).
FF_PREFIXES = ("$_DFF", "$_SDFF", "$_DFFE", "$_SDFFE", "$_SDFFCE", "$_ALDFF", "$_DLATCH",
               "SB_DFF", "TRELLIS_FF")


@dataclass(frozen=True)
class YosysResult:
    cells: dict[str, int]     # cell type -> count in the flattened design
    netlist: Path | None      # the JSON netlist for nextpnr (None for ``generic``)
    log: Path
    notes: tuple[str, ...] = ()

    def count(self, types) -> int:
        return sum(self.cells.get(t, 0) for t in types)

    @property
    def ff(self) -> int:
        return sum(n for t, n in self.cells.items() if t.startswith(FF_PREFIXES))

    @property
    def gates(self) -> int:
        return self.count(GATE_CELLS)


#: The attribute of a signal whose driving multiply keeps a DSP block under ``lut_multipliers``.
DSP_ATTR = "hwaccel_dsp"
#: Run before the target's script when only int8 x int8 products (and the multiplies that drive a
#: signal with the :data:`DSP_ATTR` attribute) may use DSP blocks: every other ``$mul`` (after
#: ``wreduce`` has narrowed it to its operands' real widths) becomes a radix-4 Booth adder tree
#: (``booth``), or, below ``booth``'s 4 x 4, an array of adders (``techmap``).
LUT_MULTIPLIERS = ("hierarchy -top {top}; proc; opt_expr; opt_clean; wreduce; "
                   "select -set int8 t:$mul r:A_WIDTH=8 %i r:B_WIDTH=8 %i r:A_SIGNED=1 %i "
                   f"r:B_SIGNED=1 %i; select -set dsp w:* a:{DSP_ATTR} %i %ci1 t:$mul %i; "
                   "select -set keep @int8 @dsp %u; "
                   "booth t:$mul @keep %d; techmap t:$mul @keep %d")


def run_yosys(verilog: Path, top: str, target: Target, folder: Path, *,
              lut_multipliers: bool = False) -> YosysResult:
    """Synthesize ``verilog`` for ``target`` in ``folder``; returns the cell counts.

    ``lut_multipliers``: map every multiplier but the int8 x int8 ones to LUT logic
    (:data:`LUT_MULTIPLIERS`), so DSP blocks hold only int8 products (an accelerator's MACs).
    """
    netlist = folder / f"{top}.netlist.json" if target.pnr else None
    stat = folder / "yosys_stat.json"
    log = folder / "yosys.log"
    notes: tuple[str, ...] = ()

    def attempt(synth: str) -> None:
        script = folder / "synth.ys"
        # `check -assert` fails the run on a netlist with multiply driven nets (or undriven or
        # looping ones), which place and route would otherwise reject much later, or not at all.
        script.write_text(f"read_verilog {verilog.name}\n"
                          + (f"{LUT_MULTIPLIERS.format(top=top)}\n" if lut_multipliers else "")
                          + f"{synth.format(top=top, json=netlist.name if netlist else '')}\n"
                          f"check -assert\n"
                          f"tee -q -o {stat.name} stat -json\n")
        stat.unlink(missing_ok=True)
        if netlist is not None:
            netlist.unlink(missing_ok=True)
        what = f"synthesis of {top} for {target.name}"
        try:
            run_tool("yosys", ["-s", script.name], cwd=folder, log=log, what=what)
        except ImplError as exc:
            problems = _check_problems(log)
            if not problems:
                raise
            raise ImplError(f"yosys {what}: the netlist fails `check`: "
                            f"{'; '.join(problems[:3])} [log: {log}]") from exc

    try:
        attempt(target.synth)
    except ImplError:
        if not target.synth_fallback:
            raise
        if _died_in_abc9(log):
            log.replace(folder / "yosys_abc9_crash.log")
            notes = ("yosys crashed in abc9; LUTs mapped with `abc -lut 4` instead",)
        elif any("multiple conflicting drivers" in ln for ln in _check_problems(log)):
            # Seen with YoWASP's Yosys 0.70: abc9 wires two flip-flops' outputs together.
            log.replace(folder / "yosys_abc9_conflict.log")
            notes = ("abc9 left multiply driven nets (`check`); LUTs mapped with `abc -lut 4` "
                     "instead",)
        else:
            raise
        attempt(target.synth_fallback)
    try:
        design = json.loads(stat.read_text())["design"]
    except (OSError, ValueError, KeyError) as exc:
        raise ImplError(f"yosys wrote no readable statistics for {top} ({stat}): {exc}") from exc
    cells = {t: int(n) for t, n in design.get("num_cells_by_type", {}).items()
             if not t.startswith("$scopeinfo")}
    if netlist is not None and "DP16KD" in target.bram:
        # Block RAM reads into registers alone take the RAM's output register (Yosys leaves
        # it unused); the cell counts above are Yosys' own, nextpnr's report the placed ones.
        from .bram_outreg import absorb_file

        taken = absorb_file(netlist)
        if taken:
            notes += (f"{len(taken)} DP16KD read port(s) took their output register "
                      f"(hwaccel.impl.bram_outreg)",)
    return YosysResult(cells, netlist, log, notes)


def _died_in_abc9(log: Path) -> bool:
    """Whether Yosys exited inside ``abc9``: in its external ABC run, while writing ABC's input
    (YoWASP Yosys 0.70's XAIGER2 backend exhausts the WebAssembly call stack on the long adder
    chains of LUT multipliers), or while reading ABC's result back (Yosys 0.70's
    ``abc_ops_reintegrate`` fails an internal assertion on some netlists)."""
    passes = [ln for ln in log.read_text().splitlines() if "Executing" in ln or "Running ABC" in ln]
    return bool(passes) and any(s in passes[-1] for s in (
        "Running ABC command", "ABC_OPS_REINTEGRATE", "XAIGER2 backend")) and any(
        "ABC9" in ln for ln in passes[-5:])


def _check_problems(log: Path) -> list[str]:
    """The problems reported by a ``check`` pass that ended a Yosys run (its ``Warning:`` lines:
    multiply driven nets, used but undriven wires, logic loops); empty if another pass ended it."""
    lines = log.read_text().splitlines() if log.exists() else []
    heads = [i for i, ln in enumerate(lines) if "Executing" in ln]
    if not heads or "Executing CHECK pass" not in lines[heads[-1]]:
        return []
    return [ln.removeprefix("Warning: ") for ln in lines[heads[-1]:] if ln.startswith("Warning:")]
