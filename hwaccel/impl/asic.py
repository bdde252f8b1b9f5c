"""ASIC area and depth of a preset: ``hwaccel synth --preset P --target asic [--node N]``.

``config -> RTLIL -> gate-level Yosys, ABC module by module (asic_yosys) -> cell counts summed
over the hierarchy -> area at a node``

Reported (all a *pre-layout estimate*: cell area only, no placement density, clock tree,
buffering, wires or I/O):

* ``nand2_gates`` -- NAND2 equivalents of the logic, in FreePDK45 X1 cell areas
  (:mod:`.asic_cells`); ``transistors`` -- Yosys' static-CMOS count of the same cells;
  ``flip_flops``; ``logic_depth`` -- gates on the longest combinational path (``ltp -noff``:
  register to register, input to register or register to output; SRAM macros cut paths),
  over the flattened gate netlist (``depth_scope`` says when only inside modules);
* ``sram_macros`` -- the memories kept as macros, each with depth, width and the area of
  :func:`hwaccel.energy.sram.sram_macro` (the source of their energy too); shallow or
  asynchronously read memories are flip-flops and counted in the logic;
* ``logic_area_mm2`` + ``sram_area_mm2`` = ``area_mm2`` at ``node``;
* ``area_per_mac_um2`` -- the logic area of the preset's MAC array synthesized alone (the whole
  preset for a systolic array or conv engine, the conv engine of an accelerator) / its MACs,
  to hold against published per-MAC figures (``published_mac``).
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

from .asic_cells import check_node, load, nand2_equivalents, nand2_um2, node_source, transistors
from .asic_recorded import recorded_gates
from .asic_yosys import MACRO_MIN_DEPTH, synthesize_gates
from .flow import impl_folder
from .target import get_target

__all__ = ["asic_report", "asic_report_for", "area_report", "mac_array", "format_asic",
           "LABEL"]

LABEL = "pre-layout estimate"


def _h2_sram():
    """:func:`hwaccel.energy.sram.sram_macro`, or ``None`` while that module is absent."""
    try:
        return importlib.import_module("hwaccel.energy.sram").sram_macro
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("hwaccel.energy"):
            return None
        raise


def mac_array(config):
    """``(config of the MAC array, MAC count)`` of a preset: the preset itself for a systolic
    array or conv engine, the conv engine of an accelerator; ``(None, None)`` otherwise."""
    kind = getattr(config, "kind", None)
    if kind in ("systolic", "conv"):
        return config, config.macs
    if kind == "accel":
        return config.conv, config.conv.macs
    return None, None


#: The submodule of an accelerator that is its MAC array (``ConvPool(config.conv)``, the RTL of
#: ``config.conv.build()``): its modules' gates, from the accelerator's own synthesis.
ARRAY_MODULE = {"accel": "conv"}


def _subtree_nand2(gates: dict, path: str) -> float | None:
    """NAND2 equivalents of the module at ``path`` and every module under it, or ``None``
    when the synthesis has no such module."""
    mods = gates.get("modules", {})
    inside = [v for m, v in mods.items() if m == path or m.startswith(f"{path}.")]
    if path not in mods:
        return None
    return sum(nand2_equivalents(v["cells"]) * v["instances"] for v in inside)


def area_report(gates: dict, node: int, *, sram=None) -> dict:
    """The node-dependent figures of a gate-level result (:func:`.asic_yosys.synthesize_gates`).

    ``sram(bits, width, node)`` gives each macro's area (``.area_mm2``, ``.source``); ``None``
    leaves the SRAM area unknown (``None``) rather than guessed.
    """
    node = check_node(node)
    cells = gates["cells"]
    ge = nand2_equivalents(cells)
    logic_um2 = ge * nand2_um2(node)
    macros, sram_mm2, sram_sources, notes = [], 0.0, set(), []
    for mem in gates["memories"]:
        if not mem["macro"]:
            continue
        entry = {k: mem[k] for k in ("name", "depth", "width", "bits", "read_ports",
                                     "write_ports")}
        if sram is not None:
            sm = sram(mem["bits"], mem["width"], node)
            entry["area_mm2"] = sm.area_mm2
            sram_mm2 += sm.area_mm2
            sram_sources.add(str(sm.source))
        macros.append(entry)
    if macros and sram is None:
        sram_mm2 = None
        notes.append("SRAM macro area unknown: hwaccel.energy.sram is not available")
    roms = [m["name"] for m in macros if m["write_ports"] == 0]
    if roms:
        notes.append(f"ROMs priced as SRAM macros of their size: {', '.join(roms)}")
    ports = [m["name"] for m in macros if m["read_ports"] + m["write_ports"] > 2]
    if ports:
        notes.append(f"macros with more than two ports priced as plain macros: {', '.join(ports)}")
    logic_mm2 = logic_um2 / 1e6
    return {
        "node": node, "label": LABEL, "nand2_um2": round(nand2_um2(node), 5),
        "nand2_gates": round(ge), "transistors": transistors(cells),
        "flip_flops": gates["flip_flops"], "logic_depth": gates["logic_depth"],
        "cells": cells, "method": gates.get("method", "flattened"),
        "depth_scope": gates.get("depth_scope", "whole design"),
        "modules": {m: {"instances": v["instances"], "logic_depth": v["logic_depth"],
                        "nand2_gates": round(nand2_equivalents(v["cells"]) * v["instances"])}
                    for m, v in gates.get("modules", {}).items()},
        "sram_macros": macros, "sram_bits": sum(m["bits"] for m in macros),
        "register_file_memories": [
            {k: m[k] for k in ("name", "depth", "width", "bits", "sync_read")}
            for m in gates["memories"] if not m["macro"]],
        "sram_area_mm2": None if sram_mm2 is None else round(sram_mm2, 9),
        "logic_area_mm2": round(logic_mm2, 9),
        "area_mm2": None if sram_mm2 is None else round(logic_mm2 + sram_mm2, 9),
        "sources": {"node": node_source(node), "cells": load()["reference_library"]["source"],
                    "transistors": load()["transistors_source"],
                    "sram": sorted(sram_sources)},
        "notes": notes,
    }


def write_rtlil(config, folder: Path) -> tuple[Path, str]:
    """Amaranth's RTLIL of ``config`` (the netlist its Verilog is written from) in ``folder``."""
    from amaranth.back import rtlil

    top = config.slug
    text = rtlil.convert(config.build(), name=top, platform=get_target("asic"), emit_src=False)
    path = folder / f"{top}.il"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path, top


def _gates(config, out_dir, cached_only: bool = False) -> dict | None:
    folder = impl_folder(config, get_target("asic"), out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path, top = write_rtlil(config, folder)
    return synthesize_gates(path, top, folder, cached_only=cached_only)


def asic_report_for(config, node: int = 45, *, out_dir: Path | str | None = None,
                    sram=None, cached_only: bool = False, recorded: bool = False) -> dict | None:
    """:func:`asic_report` of a config (any generator config with ``slug`` and ``build()``).

    ``sram`` replaces :func:`hwaccel.energy.sram.sram_macro` (tests give a stand-in). With
    ``cached_only``, ``None`` unless the gate-level synthesis is cached (nothing synthesized).
    With ``recorded``, the preset's recorded result (:func:`.asic_recorded.recorded_gates`:
    its newest synthesis here, else the committed one; nothing elaborated), named in the
    report's ``recorded``, or ``None`` when there is none."""
    node = check_node(node)
    start = time.monotonic()
    sram = sram if sram is not None else _h2_sram()
    array, macs = mac_array(config)
    recorded_from = None
    if recorded:
        gates, recorded_from = recorded_gates(config, out_dir)
    else:
        gates = _gates(config, out_dir, cached_only)
    if gates is None:
        return None
    sub = ARRAY_MODULE.get(getattr(config, "kind", None))
    array_ge = None if array is None or array is config else _subtree_nand2(gates, sub)
    if array is not None and array is not config and array_ge is None:
        if recorded:   # the array was synthesized on its own: not recorded here
            return None
        array_gates = _gates(array, out_dir, cached_only)    # synthesized on its own
        if array_gates is None:
            return None
        array_ge, sub = nand2_equivalents(array_gates["cells"]), None
    report = {"preset": config.slug} | area_report(gates, node, sram=sram)
    report["mac_units"] = macs
    report["mac_array"] = None if array is None else array.slug
    if array is None:
        report["mac_array_area_um2"] = report["area_per_mac_um2"] = None
    else:
        array_um2 = report["logic_area_mm2"] * 1e6 if array is config else (
            array_ge * nand2_um2(node))
        report["mac_array_area_um2"] = round(array_um2, 1)
        report["area_per_mac_um2"] = round(array_um2 / macs, 1)
        where = f"module {sub!r} of {config.slug} and its submodules" if sub else array.slug
        report["notes"].append(
            f"per-MAC area: all logic of {array.slug} ({where}: its control, operand and "
            f"result registers, FIFOs and small memories in flip-flops included) / {macs} MACs")
    report["published_mac"] = load()["published_mac"]
    report["macro_min_depth"] = MACRO_MIN_DEPTH
    report["cached"] = gates["cached"]
    report["recorded"] = recorded_from
    report["seconds"] = round(time.monotonic() - start, 1)
    return report


def asic_report(preset: str, node: int = 45, *, out_dir: Path | str | None = None,
                cached_only: bool = False, recorded: bool = False) -> dict | None:
    """The ASIC area and depth of ``preset`` (a slug, see ``hwaccel rtl --list``, or a bare
    name such as ``tiny`` when only one slug ends in it) at ``node``
    nm (45, 28, 16 or 7). The gate-level synthesis is cached by a hash of the RTLIL, so a
    second call (any node) costs an elaboration only.

    Raises ``ValueError`` for an unknown node, ``KeyError`` for an unknown preset,
    :class:`~hwaccel.impl.tools.ImplError` when Yosys fails. With ``cached_only``, ``None``
    unless the synthesis is cached; with ``recorded``, the recorded result
    (:func:`asic_report_for`).
    """
    from ..generators import config_for

    check_node(node)
    return asic_report_for(config_for(preset), node, out_dir=out_dir, cached_only=cached_only,
                           recorded=recorded)


def format_asic(r: dict) -> str:
    """A short human-readable view of an :func:`asic_report`."""
    src = r["sources"]["node"]
    est = f" [estimate: {src['estimate']}]" if src.get("estimate") else ""
    sram = "unknown" if r["sram_area_mm2"] is None else f"{r['sram_area_mm2']:.4f} mm2"
    total = "unknown" if r["area_mm2"] is None else f"{r['area_mm2']:.4f} mm2"
    lines = [f"{r['preset']} at {r['node']} nm ({r['label']}; NAND2 {r['nand2_um2']} um2){est}",
             f"  NAND2-equivalent gates {r['nand2_gates']:,}   transistors {r['transistors']:,}"
             f"   flip-flops {r['flip_flops']:,}   logic depth {r['logic_depth']} gates",
             f"  synthesis: {r['method']}; depth: {r['depth_scope']}",
             f"  SRAM macros {len(r['sram_macros'])} ({r['sram_bits']:,} bits): {sram}"]
    lines += [f"    {m['name']}: {m['depth']} x {m['width']}" for m in r["sram_macros"]]
    lines.append(f"  area: logic {r['logic_area_mm2']:.4f} mm2 + SRAM {sram} = {total}")
    big = sorted(r.get("modules", {}).items(), key=lambda kv: -kv[1]["nand2_gates"])[:6]
    if big:
        lines.append("  largest modules (NAND2 eq.): " + ", ".join(
            f"{m} {v['nand2_gates']:,}" + (f" ({v['instances']}x)" if v["instances"] > 1 else "")
            for m, v in big))
    if r["area_per_mac_um2"] is not None:
        pub = r["published_mac"]
        lines.append(f"  per MAC: {r['area_per_mac_um2']} um2 ({r['mac_array']}: "
                     f"{r['mac_array_area_um2']} um2 / {r['mac_units']} MACs); published: "
                     f"{pub['area_um2']} um2 at {pub['node']} nm, {pub['what']}")
    lines += [f"  note: {n}" for n in r["notes"]]
    lines.append(f"  {r['seconds']:.0f} s{' (cached synthesis)' if r['cached'] else ''}")
    return "\n".join(lines)
