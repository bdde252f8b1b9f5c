"""Gate-level Yosys synthesis for the ASIC estimate, module by module, SRAM macros kept.

The design is read as Amaranth's RTLIL (the netlist its Verilog is written from: Yosys'
Verilog frontend took 48 of the 55 minutes of `default`'s coarse synthesis) and kept
hierarchical, so that ABC maps one module at a time. Flattened, `default` (1.5 million fine
cells when its two 768 x 128 pooling buffers were read asynchronously and so built from
flip-flops) was one ABC call that YoWASP Yosys 0.70 aborts in (``Abc_DesFindTopLevelModels``:
ABC's BLIF reader found no model). Module by module, with those buffers SRAM macros, it takes
862 s here.

1. Coarse synthesis (``synth -booth -run :fine``, no ``-flatten``): Booth multipliers, memories
   inferred as ``$mem_v2`` cells but not mapped; the memories are listed and the design saved.
2. Per group of modules (a module whose logic is large gets a Yosys run of its own, the small
   ones share one): the memories that stay SRAM macros are left alone, the others are mapped to
   flip-flops and logic (``memory_map``); then the fine stage of ``synth``, every flip-flop
   legalized to a plain positive-edge D flip-flop (``dfflegalize``: an enable becomes a mux, a
   synchronous reset gates), ``abc -g`` to simple gates (INV NAND NOR AND XOR XNOR MUX, each a
   FreePDK45 cell) on that module alone, its cell counts (``stat``), the longest combinational
   path inside it (``ltp -noff``) and its gate netlist.
3. The gate netlists of all modules flattened (no ABC) for the longest combinational path of
   the whole design (``ltp -noff``: paths through module ports included). Should this run fail,
   the depth is the longest path inside one module and ``depth_scope`` says so.

The design's cells are the sum over modules of each module's gates times its instances. Keeping
the hierarchy forgoes the optimization across module ports that flattening allowed (a constant
into a port, logic merged across a boundary). On one RTLIL of ``accel_tiny``, module by module
against flattened (``synth -flatten`` and one ABC call, the previous flow): 429,494 against
427,308 NAND2 equivalents (+0.5 %), 1,744,388 against 1,736,778 transistors (+0.4 %), 28,287
against 28,210 flip-flops, a depth of 129 against 128 gates.

A memory stays a macro when every read port is synchronous (an SRAM macro registers its read)
and it is at least :data:`MACRO_MIN_DEPTH` words deep; a smaller or asynchronously read memory
is a register file of flip-flops. The result (independent of the node) is cached in the run
folder under a hash of the RTLIL and the scripts, so a second call costs an elaboration only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .asic_cells import FF_TYPE
from .tools import ImplError, run_tool

__all__ = ["synthesize_gates", "MACRO_MIN_DEPTH", "memory_is_macro", "CACHE_VERSION",
           "GROUP_WEIGHT", "explain_failure"]

#: Shallower memories are built from flip-flops (SRAM compilers start at 16-32 words).
MACRO_MIN_DEPTH = 64
#: Part of the cache key: bump when the scripts or the result's fields change.
CACHE_VERSION = 2
#: Modules are synthesized together while their estimated weight (coarse cells + 4 x the bits
#: of their memories in flip-flops) stays under this; a heavier module runs alone.
GROUP_WEIGHT = 60_000
#: Seconds one Yosys run may take.
TIMEOUT_S = 4 * 3600

GATES = "AND,NAND,NOR,XOR,XNOR,MUX"

PASS1 = """read_rtlil {rtlil}
synth -booth -top {top} -run :fine
select t:$mem_v2
write_json -selected {mems}
select -clear
write_rtlil {coarse}
"""

MODULE = """{memory_map}opt -fast -full {sel}
opt -full {sel}
techmap {sel}
opt -fast {sel}
dfflegalize -cell $_DFF_P_ 01 {sel}
abc -g {gates} {sel}
opt_clean -purge {sel}
delete {sel}/t:$scopeinfo
check -assert {sel}
tee -q -o {stat} stat -json {sel}
tee -q -o {ltp} ltp -noff {sel}/w:* {sel}/t:$_*
select {sel}
write_rtlil -selected {netlist}
select -clear
"""

DEPTH = """{reads}hierarchy -top {top}
flatten
tee -q -o {ltp} ltp -noff w:* t:$_*
"""


def memory_is_macro(mem: dict) -> bool:
    """Whether a memory (``depth``, ``sync_read``) stays an SRAM macro."""
    return mem["sync_read"] and mem["depth"] >= MACRO_MIN_DEPTH


def _path(module: str, top: str) -> str:
    """A module's place under ``top`` as a dotted path ('' for the top)."""
    return "" if module == top else module.removeprefix(f"{top}.")


def _memories(mems_json: Path, top: str) -> list[dict]:
    if not mems_json.exists():
        return []
    modules = json.loads(mems_json.read_text()).get("modules", {})
    out = []
    for module, body in modules.items():
        module = module.lstrip("\\")
        for name, cell in body.get("cells", {}).items():
            if cell.get("type") != "$mem_v2":
                continue
            p = cell["parameters"]
            rd_ports = int(p["RD_PORTS"], 2)
            clk_en = p.get("RD_CLK_ENABLE", "")
            sync = rd_ports > 0 and set(str(clk_en)) <= {"1"}
            memid = str(p.get("MEMID", name)).lstrip("\\")
            depth, width = int(p["SIZE"], 2), int(p["WIDTH"], 2)
            where = _path(module, top)
            out.append({"name": f"{where}.{memid}" if where else memid, "module": module,
                        "cell": name, "depth": depth, "width": width, "bits": depth * width,
                        "read_ports": rd_ports, "write_ports": int(p["WR_PORTS"], 2),
                        "sync_read": sync})
    return sorted(out, key=lambda m: m["name"])


def _selector(name: str) -> str:
    # Yosys selection patterns treat *?[] as wildcards; a '?' matches the character it replaces.
    return re.sub(r"[*?\[\]\s]", "?", name)


def _parse_ltp(text: str) -> int:
    m = re.search(r"Longest topological path in \S+ \(length=(\d+)\)", text)
    return int(m.group(1)) if m else 0


def _coarse_modules(coarse: Path) -> dict[str, int]:
    """``module name -> coarse cell count`` of an RTLIL file, in file order."""
    counts: dict[str, int] = {}
    current = None
    with coarse.open() as f:
        for line in f:
            if line.startswith("module "):
                current = line.split()[1].lstrip("\\")
                counts[current] = 0
            elif current is not None and line.startswith("  cell "):
                counts[current] += 1
    return counts


def _groups(weights: dict[str, int]) -> list[list[str]]:
    """Modules in runs of Yosys: heavy ones alone, the rest together up to GROUP_WEIGHT."""
    groups, current, total = [], [], 0
    for module, w in weights.items():
        if w > GROUP_WEIGHT:
            groups.append([module])
            continue
        if current and total + w > GROUP_WEIGHT:
            groups.append(current)
            current, total = [], 0
        current.append(module)
        total += w
    if current:
        groups.append(current)
    return groups


def explain_failure(exc: ImplError, log: Path, what: str) -> ImplError:
    """A clearer :class:`ImplError` for a Yosys run that died inside ABC (a WebAssembly trap
    with no ``ERROR:`` line): the ABC function it stopped in, ``what`` it was mapping, the log."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return exc
    frames = re.findall(r"yosys\.wasm!abc::(\w+)", text)
    if not frames:
        return exc
    return ImplError(f"yosys aborted inside ABC ({frames[0]}, called from "
                     f"{frames[-1]}) while mapping {what}: a gate netlist ABC could not read or "
                     f"map [log: {log}]")


def _run(script: Path, log: Path, folder: Path, what: str) -> None:
    try:
        run_tool("yosys", ["-s", script.name], cwd=folder, log=log, what=what,
                 timeout_s=TIMEOUT_S)
    except ImplError as exc:
        raise explain_failure(exc, log, what) from exc


def _module_cells(stat: Path, module: str) -> dict[str, int]:
    try:
        modules = json.loads(stat.read_text())["modules"]
        body = modules.get(f"\\{module}", modules.get(module))
        cells = body["num_cells_by_type"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ImplError(f"yosys wrote no readable statistics for {module} ({stat}): "
                        f"{exc}") from exc
    return {t: int(n) for t, n in cells.items()}


def _instances(children: dict[str, dict[str, int]], top: str) -> dict[str, int]:
    """How many times each module occurs in the hierarchy under ``top``."""
    count = {m: 0 for m in children}
    count[top] = 1
    order, seen = [], set()

    def visit(m):  # children before parents, then parents pushed in reverse
        if m in seen:
            return
        seen.add(m)
        for c in children.get(m, {}):
            visit(c)
        order.append(m)

    visit(top)
    for m in reversed(order):           # parents first
        for c, n in children.get(m, {}).items():
            count[c] += count[m] * n
    return count


def synthesize_gates(rtlil: Path, top: str, folder: Path, *,
                     cached_only: bool = False) -> dict | None:
    """Gate-level synthesis of ``top`` in the RTLIL file ``rtlil``; returns (and caches) the
    node-independent result: ``cells`` (gate type -> count, summed over the modules times their
    instances), ``flip_flops``, ``logic_depth`` (and ``depth_scope``), ``memories`` (each with
    ``macro``: kept as an SRAM macro or not), ``modules`` (per module: ``instances``, ``cells``,
    ``logic_depth`` inside it), ``cache_key``, ``cached``. With ``cached_only``, ``None``
    unless the result is cached (nothing is synthesized)."""
    text = rtlil.read_text()
    key = hashlib.sha256(f"{CACHE_VERSION}\n{PASS1}\n{MODULE}\n{DEPTH}\n{MACRO_MIN_DEPTH}\n"
                         f"{GROUP_WEIGHT}\n{text}".encode())
    key = key.hexdigest()[:16]
    cache = folder / f"asic_{key}.json"
    if cache.exists():
        try:
            return json.loads(cache.read_text()) | {"cached": True}
        except ValueError:
            cache.unlink()
    if cached_only:
        return None
    # Work files carry the process id: two processes may synthesize the same design at once.
    stem = f"asic_{key}.{os.getpid()}"
    mems_json, coarse = folder / f"{stem}.mems.json", folder / f"{stem}.coarse.il"
    ys1, log1 = folder / f"{stem}.pass1.ys", folder / f"{stem}.pass1.log"
    ys1.write_text(PASS1.format(rtlil=rtlil.name, top=top, mems=mems_json.name,
                                coarse=coarse.name))
    _run(ys1, log1, folder, f"coarse synthesis of {top} for asic")
    memories = _memories(mems_json, top)
    for mem in memories:
        mem["macro"] = memory_is_macro(mem)
    coarse_cells = _coarse_modules(coarse)
    weights = {m: n + 4 * sum(x["bits"] for x in memories if x["module"] == m and not x["macro"])
               for m, n in coarse_cells.items()}
    kept = [folder / f.name for f in (ys1, log1)]
    modules: dict[str, dict] = {}
    for i, group in enumerate(_groups(weights)):
        body = [f"read_rtlil {coarse.name}\n"]
        for module in group:
            j = list(coarse_cells).index(module)
            sel = _selector(module)
            mapped = [f"{sel}/{_selector(m['cell'])}" for m in memories
                      if m["module"] == module and not m["macro"]]
            files = {k: folder / f"{stem}.m{j}.{k}" for k in ("stat.json", "ltp.txt", "il")}
            body.append(MODULE.format(
                memory_map=f"memory_map {' '.join(mapped)}\n" if mapped else "", sel=sel,
                gates=GATES, stat=files["stat.json"].name, ltp=files["ltp.txt"].name,
                netlist=files["il"].name))
            modules[module] = {"files": files}
        ys, log = folder / f"{stem}.pass2_{i}.ys", folder / f"{stem}.pass2_{i}.log"
        ys.write_text("".join(body))
        kept += [ys, log]
        what = (f"module {group[0]} of {top} ({weights[group[0]]:,} weight) for asic"
                if len(group) == 1 else f"{len(group)} modules of {top} ({', '.join(group)}) "
                f"for asic")
        _run(ys, log, folder, f"gate-level synthesis of {what}")
        for module in group:
            files = modules[module]["files"]
            cells = _module_cells(files["stat.json"], module)
            macros = cells.pop("$mem_v2", 0)
            expected = sum(m["macro"] for m in memories if m["module"] == module)
            if macros != expected:
                raise ImplError(f"{module}: {macros} memories left after mapping, expected "
                                f"{expected} SRAM macros [log: {log}]")
            modules[module] |= {
                "children": {t: n for t, n in cells.items() if t in coarse_cells},
                "cells": {t: n for t, n in cells.items() if t not in coarse_cells},
                "logic_depth": _parse_ltp(files["ltp.txt"].read_text())}
    counts = _instances({m: v["children"] for m, v in modules.items()}, top)
    total: dict[str, int] = {}
    for module, v in modules.items():
        for t, n in v["cells"].items():
            total[t] = total.get(t, 0) + n * counts[module]
    # The whole design's depth: the modules' gate netlists flattened (no ABC on it).
    used = [m for m in modules if counts[m]]
    ys3, log3, ltp3 = (folder / f"{stem}.depth.{k}" for k in ("ys", "log", "ltp.txt"))
    ys3.write_text(DEPTH.format(
        reads="".join(f"read_rtlil {modules[m]['files']['il'].name}\n" for m in used),
        top=top, ltp=ltp3.name))
    kept += [ys3, log3]
    try:
        _run(ys3, log3, folder, f"the flattened gate netlist of {top} (depth only)")
        depth, scope = _parse_ltp(ltp3.read_text()), "whole design (gate netlists flattened)"
        ltp3.unlink()
    except ImplError as exc:
        depth = max(modules[m]["logic_depth"] for m in used)
        scope = f"longest path inside one module (the flattened run failed: {exc})"
    expanded = [m for m in memories if counts.get(m["module"], 0)
                for _ in range(counts[m["module"]])]
    result = {"top": top, "method": "hierarchical: ABC per module, cells summed with their "
                                    "instances",
              "cells": dict(sorted(total.items())), "flip_flops": total.get(FF_TYPE, 0),
              "logic_depth": depth, "depth_scope": scope, "memories": expanded,
              "modules": {_path(m, top) or top: {"instances": counts[m],
                                                  "cells": dict(sorted(v["cells"].items())),
                                                  "logic_depth": v["logic_depth"]}
                          for m, v in modules.items()},
              "cache_key": key}
    tmp = folder / f"{stem}.result.json"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(cache)
    for f in kept:  # scripts and logs kept, under the design's key
        if f.exists():
            f.replace(folder / f.name.replace(f".{os.getpid()}.", "."))
    for v in modules.values():
        for f in v["files"].values():
            f.unlink(missing_ok=True)
    mems_json.unlink()
    coarse.unlink()
    return result | {"cached": False}
