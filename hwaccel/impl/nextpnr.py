"""nextpnr: place and route a Yosys netlist, and read resources, Fmax and the critical path."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from .target import Target
from .tools import ImplError, run_tool

__all__ = ["PnrResult", "run_nextpnr", "critical_path", "overused"]

#: A line of nextpnr's "Device utilisation" table: ``Info:     MULT18X18D:   266/   156   170%``.
_UTIL_LINE = re.compile(r"^Info:\s+(\S+):\s+(\d+)/\s*(\d+)\s+\d+%\s*$")


@dataclass(frozen=True)
class PnrResult:
    used: dict[str, int]            # nextpnr utilization: cell type -> used
    available: dict[str, int]       # ... -> available on the device
    fmax_mhz: float | None          # achieved on ``clk``
    critical_path: dict | None      # see :func:`critical_path`
    log: Path
    textcfg: Path | None = None     # ECP5 configuration text (for ecppack), when asked for

    def count(self, types) -> int:
        return sum(self.used.get(t, 0) for t in types)


def critical_path(report: dict, clock: str = "clk") -> dict | None:
    """Start, end and delays of the worst ``clock`` to ``clock`` path of a nextpnr report."""
    want = f"posedge {clock}"
    for path in report.get("critical_paths", []):
        if path.get("from") != want or path.get("to") != want or not path.get("path"):
            continue
        segs = path["path"]
        start, end = segs[0]["from"], segs[-1]["to"]
        logic = sum(s["delay"] for s in segs if s["type"] != "routing")
        routing = sum(s["delay"] for s in segs if s["type"] == "routing")
        return {
            "start": f"{start['cell']}.{start['port']}",
            "end": f"{end['cell']}.{end['port']}",
            "delay_ns": round(logic + routing, 3),
            "logic_ns": round(logic, 3),
            "routing_ns": round(routing, 3),
            "segments": [f"{s['type']} {s['delay']:.2f} {s['to']['cell']}.{s['to']['port']}"
                         for s in segs],
        }
    return None


def overused(log_text: str) -> dict[str, tuple[int, int]]:
    """The cell types nextpnr's utilisation table lists above the device's count:
    type -> (used, available). Empty when everything fits (or the table is missing)."""
    out = {}
    for line in log_text.splitlines():
        m = _UTIL_LINE.match(line.strip("\r"))
        if m and int(m[2]) > int(m[3]):
            out[m[1]] = (int(m[2]), int(m[3]))
    return out


def run_nextpnr(netlist: Path, target: Target, folder: Path, *, freq_mhz: float, seed: int = 1,
                textcfg: bool = False, extra: tuple[str, ...] = ()) -> PnrResult:
    """Place and route ``netlist``; timing may fail (Fmax is measured), fitting may not."""
    report_path = folder / "nextpnr_report.json"
    report_path.unlink(missing_ok=True)
    # The SDF (every cell's and routed connection's delay) is what :mod:`.routed_paths` reads.
    sdf = netlist.name.removesuffix(".netlist.json") + ".sdf"
    args = ["--json", netlist.name, *target.pnr_args, "--freq", f"{freq_mhz:g}",
            "--report", report_path.name, "--seed", str(seed), "--timing-allow-fail",
            "--sdf", sdf, *extra]
    cfg = None
    if textcfg:
        cfg = folder / "design.config"
        args += ["--textcfg", cfg.name]
    log = folder / "nextpnr.log"
    try:
        run_tool(target.pnr, args, cwd=folder, log=log,
                 what=f"place and route of {netlist.name} on {target.device}")
    except ImplError as exc:
        over = overused(log.read_text()) if log.exists() else {}
        if not over:
            raise
        need = ", ".join(f"{n} {u} of {a}" for n, (u, a) in over.items())
        raise ImplError(f"{netlist.name} does not fit {target.device}: it needs {need} "
                        f"[log: {log}]") from exc
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError) as exc:
        raise ImplError(f"{target.pnr} wrote no readable report ({report_path}): {exc}") from exc
    util = report.get("utilization", {})
    # The clock net keeps its port name out of context; behind an input buffer nextpnr names it
    # after the buffer and the global it was promoted to (``clk$SB_IO_IN_$glb_clk`` on iCE40,
    # ``$glbnet$clk$TRELLIS_IO_IN`` on ECP5).
    clocks = [c for c in report.get("fmax", {})
              if c == "clk" or c.startswith(("clk$", "$glbnet$clk$"))]
    clock = clocks[0] if clocks else "clk"
    fmax = report.get("fmax", {}).get(clock, {}).get("achieved")
    return PnrResult(
        used={k: int(v["used"]) for k, v in util.items()},
        available={k: int(v["available"]) for k, v in util.items()},
        fmax_mhz=round(float(fmax), 2) if fmax is not None else None,
        critical_path=critical_path(report, clock),
        log=log,
        textcfg=cfg,
    )
