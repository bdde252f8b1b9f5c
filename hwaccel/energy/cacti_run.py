"""Regenerate ``data/cacti.json``: CACTI 7 run once per SRAM shape of the grid.

``python -m hwaccel.energy.cacti_run CACTI_DIR [--jobs N]`` runs the ``cacti`` binary built in
``CACTI_DIR`` (github.com/HewlettPackard/cacti, commit recorded below; ``make`` with g++; CACTI
reads its ``tech_params`` relative to its own folder, so it runs there) on
``data/cacti_template.cfg`` for every shape of :data:`GRID` (and the cross-check shapes of
:data:`CROSS_CHECK` at the other nodes CACTI models) and writes the parsed results, with the
settings file's text, to ``data/cacti.json``. The energy model only reads that file; CACTI is
not needed to use :mod:`hwaccel.energy`.

Settings (the template): a ``ram`` (scratch RAM, no tag array) of one read-write port, one bank,
direct mapped, 350 K, no ECC, CACTI's ``ED^2`` optimisation (the sample ``cache.cfg``'s), and
the same ITRS device type for the cells and the periphery: ``itrs-hp`` (high performance) and
``itrs-lop`` (low operating power) both run, and the model uses their spread as the range.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

__all__ = ["GRID", "CROSS_CHECK", "CELLS", "run_cacti", "parse_output"]

DATA = Path(__file__).parent / "data"
COMMIT = "1ffd8dfb10303d306ecd8d215320aea07651e878"   # HewlettPackard/cacti master, CACTI 7.0
CELLS = ("itrs-hp", "itrs-lop")
WIDTHS = (32, 64, 128, 256, 512, 1024, 2048)
DEPTHS = (64, 256, 1024, 4096, 16384)
#: (node nm, width bits, depth words): the 45 nm grid the model interpolates in.
GRID = tuple((45, w, d) for w in WIDTHS for d in DEPTHS)
#: The other nodes CACTI models, on a few shapes: a check of the node scaling, not used by it.
CROSS_CHECK = tuple((n, w, d) for n in (32, 22) for w, d in ((128, 16384), (2048, 1024),
                                                            (64, 2048), (32, 1024)))

_FIELDS = {
    "access_ns": r"Access time \(ns\):\s*([\d.eE+-]+)",
    "cycle_ns": r"Cycle time \(ns\):\s*([\d.eE+-]+)",
    "read_nj": r"Total dynamic read energy per access \(nJ\):\s*([\d.eE+-]+)",
    "write_nj": r"Total dynamic write energy per access \(nJ\):\s*([\d.eE+-]+)",
    "leakage_mw": r"Total leakage power of a bank \(mW\):\s*([\d.eE+-]+)",
    "gate_leakage_mw": r"Total gate leakage power of a bank \(mW\):\s*([\d.eE+-]+)",
}


def parse_output(text: str) -> dict:
    """The figures of one CACTI report (the first, whole-memory, values of each field)."""
    out = {}
    for key, pattern in _FIELDS.items():
        m = re.search(pattern, text)
        if m is None:
            raise ValueError(f"CACTI output has no {key!r} ({pattern})")
        out[key] = float(m.group(1))
    m = re.search(r"Cache height x width \(mm\):\s*([\d.eE+-]+)\s*x\s*([\d.eE+-]+)", text)
    if m is None:
        raise ValueError("CACTI output has no 'Cache height x width'")
    out["height_mm"], out["width_mm"] = float(m.group(1)), float(m.group(2))
    out["area_mm2"] = out["height_mm"] * out["width_mm"]
    return out


def run_cacti(cacti_dir: Path, node: int, width: int, depth: int, cell: str) -> dict:
    """One CACTI run of a ``depth x width``-bit RAM at ``node`` nm with ``cell`` devices."""
    text = (DATA / "cacti_template.cfg").read_text()
    cfg = (text.replace("{size}", str(width * depth // 8)).replace("{block}", str(width // 8))
           .replace("{tech}", f"{node / 1000:.3f}").replace("{bus}", str(width))
           .replace("{cell}", cell))
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as f:
        f.write(cfg)
    res = subprocess.run(["./cacti", "-infile", f.name], cwd=cacti_dir, capture_output=True,
                         text=True, timeout=1800)
    Path(f.name).unlink()
    row = {"node": node, "width": width, "depth": depth, "cell": cell}
    try:
        return row | parse_output(res.stdout)
    except ValueError as exc:
        return row | {"error": f"{exc}; rc {res.returncode}: {res.stdout[-300:]!r}"}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("cacti_dir", type=Path)
    p.add_argument("--jobs", type=int, default=1)
    args = p.parse_args(argv)
    todo = [(n, w, d, c) for n, w, d in GRID for c in CELLS]
    todo += [(n, w, d, "itrs-lop") for n, w, d in CROSS_CHECK]
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda t: run_cacti(args.cacti_dir, *t), todo))
    out = {"tool": "CACTI 7.0 (github.com/HewlettPackard/cacti)", "commit": COMMIT,
           "settings": (DATA / "cacti_template.cfg").read_text(),
           "settings_note": "{size} = width x depth / 8 bytes, {block} = width / 8 bytes, "
                            "{bus} = width bits, {tech} = node in um, {cell} = the ITRS "
                            "device type of cells and periphery",
           "runs": rows}
    (DATA / "cacti.json").write_text(json.dumps(out, indent=1) + "\n")
    bad = [r for r in rows if "error" in r]
    print(f"{len(rows)} runs, {len(bad)} failed")


if __name__ == "__main__":
    main()
