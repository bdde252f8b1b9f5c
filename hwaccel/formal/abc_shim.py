"""``yosys-abc -c '<commands>'`` for SymbiYosys' ``abc`` engines, on YoWASP's linked ABC.

YoWASP builds ABC into ``yosys.wasm`` and installs no ``yosys-abc``. Yosys' ``abc`` pass runs a
script file in that ABC, so this wrapper writes SymbiYosys' commands to a script and runs it
through the pass on a one-gate dummy design. ABC's console output does not come back through
the pass, so the script also writes ABC's verdict with ``write_status``; this wrapper prints the
line SymbiYosys parses for it ("Property proved.", "Output 0 of miter ... was asserted in frame
N.", "No output asserted in N frames."). The counterexample file (``write_cex -a``) is written
by ABC itself, and SymbiYosys turns it into a VCD as usual.

YoWASP's WebAssembly sandbox maps the host's top-level directories except ``/tmp`` (absolute
paths under ``/tmp`` do not resolve there), and always maps the working directory and its
parents by relative path. So every path handed to Yosys and ABC is made relative to the working
directory, and the scratch files live in it: this works wherever the checkout is.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from .tools import find_yowasp

DUMMY = "module dummy(input a, input b, output y); assign y = a ^ b; endmodule\n"
STATUS = "abc_status.txt"


def _relative(cmd: str) -> str:
    words = cmd.split()
    if words and words[0] in ("read_aiger", "write_cex", "write_status"):
        words[-1] = os.path.relpath(words[-1])
    return " ".join(words)


def _mask_unmapped(cex: Path, ywa: Path) -> None:
    """Write ``x`` for inputs the witness map does not name (a free bit Yosys made for an
    undriven internal net, or the clock): ``yosys-witness aiw2yw`` fails on a 0/1 value it
    cannot place, and reads no ``?``; the ``yosys-witness`` wrapper passes ``--skip-x``, so an
    ``x`` is left unassigned (:func:`.tools.tool_env`)."""
    if not cex.exists() or not ywa.exists():
        return
    amap = json.loads(ywa.read_text())
    named = {e["input"] for key in ("inputs", "inits", "seqs")
             for e in amap.get(key, []) if isinstance(e, dict) and "input" in e}
    count = amap["input_count"]
    lines = cex.read_text().splitlines()
    out = []
    for n, line in enumerate(lines):
        # The initial latch values come first, then one line of inputs per cycle.
        if n > 0 and len(line) == count and set(line) <= set("01x?"):
            line = "".join(c if i in named else "x" for i, c in enumerate(line))
        out.append(line)
    cex.write_text("\n".join(out) + "\n")


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "-c":
        print("usage: yosys-abc -c '<commands>'", file=sys.stderr)
        return 2
    cmds = [c.strip() for c in argv[1].split(";") if c.strip()]
    cex = next((c.split()[-1] for c in cmds if c.startswith("write_cex")), "trace.aiw")
    status = Path(os.path.dirname(os.path.abspath(cex))) / STATUS
    status.unlink(missing_ok=True)
    verdict_at = next(i for i, c in enumerate(cmds) if c.startswith("write_cex")) \
        if any(c.startswith("write_cex") for c in cmds) else len(cmds)
    cmds.insert(verdict_at, f"write_status {status}")
    engine = next((c.split()[0] for c in cmds if c.split()[0] in ("pdr", "bmc3", "sim3")), "")
    depth = next((int(m[1]) for c in cmds if (m := re.search(r"-F (\d+)", c))), 0)
    with tempfile.TemporaryDirectory(prefix="abc_", dir=".") as td:
        tdir = Path(os.path.relpath(td))
        (tdir / "dummy.v").write_text(DUMMY)
        (tdir / "run.abc").write_text("\n".join(_relative(c) for c in cmds) + "\n")
        proc = subprocess.run(
            [find_yowasp("yosys"), "-q", "-p",
             f"read_verilog {tdir}/dummy.v; techmap; abc -script {tdir}/run.abc"],
            capture_output=True, text=True)
    if not status.exists():
        sys.stdout.write(proc.stdout + proc.stderr)
        print(f"Error: ABC wrote no status (yosys exit {proc.returncode})")
        return 1
    words = status.read_text().split()
    verdict, frame = words[0], int(words[1]) if len(words) > 1 and words[1].lstrip("-").isdigit() \
        else -1
    print(f"ABC status: {' '.join(words[:3])}")
    if verdict == "snl_SAT":
        _mask_unmapped(Path(cex), Path("model/design_aiger.ywa"))
        print(f'Output 0 of miter "design_aiger" was asserted in frame {frame}.')
    elif verdict == "snl_UNSAT" and engine == "pdr":
        print("Property proved.")
    elif engine == "bmc3" and verdict != "snl_SAT":
        print(f"No output asserted in {depth} frames.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
