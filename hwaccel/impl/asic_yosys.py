"""Gate-level Yosys synthesis for the ASIC estimate, with SRAM macros kept as macros.

Two Yosys runs over one flattened design:

1. ``synth -flatten -booth -run :fine`` (coarse synthesis: Booth multipliers, memories
   inferred as ``$mem_v2`` cells but not mapped); the memories are listed and the design saved.
2. The memories that stay SRAM macros are left alone; the others are mapped to flip-flops and
   logic (``memory_map``); then the fine stage of ``synth``, every flip-flop legalized to a
   plain positive-edge D flip-flop (``dfflegalize``: an enable becomes a mux, a synchronous
   reset gates), ``abc -g`` to simple gates (INV NAND NOR AND XOR XNOR MUX, each a FreePDK45
   cell), cell counts (``stat``) and the longest combinational path (``ltp -noff``).

A memory stays a macro when every read port is synchronous (an SRAM macro registers its read)
and it is at least :data:`MACRO_MIN_DEPTH` words deep; a smaller or asynchronously read memory
is a register file of flip-flops. The result (independent of the node) is cached in the run
folder under a hash of the Verilog and the scripts, so a second call costs an elaboration only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .asic_cells import FF_TYPE
from .tools import ImplError, run_tool

__all__ = ["synthesize_gates", "MACRO_MIN_DEPTH", "memory_is_macro", "CACHE_VERSION"]

#: Shallower memories are built from flip-flops (SRAM compilers start at 16-32 words).
MACRO_MIN_DEPTH = 64
#: Part of the cache key: bump when the scripts or the result's fields change.
CACHE_VERSION = 1

GATES = "AND,NAND,NOR,XOR,XNOR,MUX"

PASS1 = """read_verilog {verilog}
synth -flatten -booth -top {top} -run :fine
select t:$mem_v2
write_json -selected {mems}
select -clear
write_rtlil {coarse}
"""

PASS2 = """read_rtlil {coarse}
{memory_map}opt -fast -full
opt -full
techmap
opt -fast
dfflegalize -cell $_DFF_P_ 01
abc -g {gates}
opt_clean -purge
delete t:$scopeinfo
check -assert
tee -q -o {stat} stat -json
tee -q -o {ltp} ltp -noff * t:$mem_v2 %d
"""


def memory_is_macro(mem: dict) -> bool:
    """Whether a memory (``depth``, ``sync_read``) stays an SRAM macro."""
    return mem["sync_read"] and mem["depth"] >= MACRO_MIN_DEPTH


def _memories(mems_json: Path) -> list[dict]:
    if not mems_json.exists():
        return []
    modules = json.loads(mems_json.read_text()).get("modules", {})
    out = []
    for module in modules.values():
        for name, cell in module.get("cells", {}).items():
            if cell.get("type") != "$mem_v2":
                continue
            p = cell["parameters"]
            rd_ports = int(p["RD_PORTS"], 2)
            clk_en = p.get("RD_CLK_ENABLE", "")
            sync = rd_ports > 0 and set(str(clk_en)) <= {"1"}
            memid = p.get("MEMID", name)
            depth, width = int(p["SIZE"], 2), int(p["WIDTH"], 2)
            out.append({"name": str(memid).lstrip("\\"), "cell": name, "depth": depth,
                        "width": width, "bits": depth * width, "read_ports": rd_ports,
                        "write_ports": int(p["WR_PORTS"], 2), "sync_read": sync})
    return sorted(out, key=lambda m: m["name"])


def _selector(cell_name: str) -> str:
    # Yosys selection patterns treat *?[] as wildcards; a '?' matches the character it replaces.
    return re.sub(r"[*?\[\]\s]", "?", cell_name)


def _parse_ltp(text: str) -> int:
    m = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", text)
    return int(m.group(1)) if m else 0


def synthesize_gates(verilog: Path, top: str, folder: Path) -> dict:
    """Gate-level synthesis of ``top`` in ``verilog``; returns (and caches) the node-independent
    result: ``cells`` (gate type -> count), ``flip_flops``, ``logic_depth``, ``memories`` (each
    with ``macro``: kept as an SRAM macro or not), ``cache_key``, ``cached``."""
    text = verilog.read_text()
    key = hashlib.sha256(f"{CACHE_VERSION}\n{PASS1}\n{PASS2}\n{MACRO_MIN_DEPTH}\n{text}".encode())
    key = key.hexdigest()[:16]
    cache = folder / f"asic_{key}.json"
    if cache.exists():
        try:
            return json.loads(cache.read_text()) | {"cached": True}
        except ValueError:
            cache.unlink()
    # Work files carry the process id: two processes may synthesize the same design at once.
    stem = f"asic_{key}.{os.getpid()}"
    mems_json, coarse = folder / f"{stem}.mems.json", folder / f"{stem}.coarse.il"
    stat, ltp = folder / f"{stem}.stat.json", folder / f"{stem}.ltp.txt"
    ys1, ys2 = folder / f"{stem}.pass1.ys", folder / f"{stem}.pass2.ys"
    log1, log2 = folder / f"{stem}.pass1.log", folder / f"{stem}.pass2.log"
    ys1.write_text(PASS1.format(verilog=verilog.name, top=top, mems=mems_json.name,
                                coarse=coarse.name))
    run_tool("yosys", ["-s", ys1.name], cwd=folder, log=log1,
             what=f"coarse synthesis of {top} for asic")
    memories = _memories(mems_json)
    for mem in memories:
        mem["macro"] = memory_is_macro(mem)
    mapped = [f"{top}/{_selector(m['cell'])}" for m in memories if not m["macro"]]
    memory_map = f"memory_map {' '.join(mapped)}\n" if mapped else ""
    ys2.write_text(PASS2.format(coarse=coarse.name, memory_map=memory_map, gates=GATES,
                                stat=stat.name, ltp=ltp.name))
    run_tool("yosys", ["-s", ys2.name], cwd=folder, log=log2,
             what=f"gate-level synthesis of {top} for asic")
    try:
        design = json.loads(stat.read_text())["design"]
    except (OSError, ValueError, KeyError) as exc:
        raise ImplError(f"yosys wrote no readable statistics for {top} ({stat}): {exc}") from exc
    cells = {t: int(n) for t, n in design.get("num_cells_by_type", {}).items()}
    macros = cells.pop("$mem_v2", 0)
    if macros != sum(m["macro"] for m in memories):
        raise ImplError(f"{top}: {macros} memories left after mapping, expected "
                        f"{sum(m['macro'] for m in memories)} SRAM macros [{folder}]")
    result = {"top": top, "cells": dict(sorted(cells.items())), "flip_flops": cells.get(FF_TYPE, 0),
              "logic_depth": _parse_ltp(ltp.read_text()), "memories": memories,
              "cache_key": key}
    tmp = folder / f"{stem}.result.json"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(cache)
    for f in (ys1, ys2, log1, log2, stat, ltp):  # kept, under the design's key
        f.replace(folder / f.name.replace(f".{os.getpid()}.", "."))
    mems_json.unlink()
    coarse.unlink()
    return result | {"cached": False}
