"""SRAM macros: area, energy per access and leakage by size and width, from CACTI run once.

``data/cacti.json`` holds CACTI 7's figures for a grid of one-port RAMs at 45 nm (widths 32 to
2048 bits, depths 64 to 16,384 words; ``itrs-hp`` and ``itrs-lop`` devices; the settings file
is in it, :mod:`.cacti_run` regenerates it). A shape between grid points is interpolated
bilinearly in ``log2(width)``, ``log2(depth)`` on the logarithm of each figure; a shape outside
the grid is extrapolated from its edge (the ``source`` says so). Other nodes scale the 45 nm
figures by :func:`.table.energy_factor` (energy and, as an estimate, leakage: CACTI's own
``itrs-lop`` runs at 32 and 22 nm, recorded as a cross-check, leak more than at 45 nm, so the
scaled leakage is the uncertain figure) and :func:`.table.area_factor` (area).

:func:`sram_macro` is one macro's figures (``itrs-lop`` devices, the mean of the node's energy
factor range); :func:`sram_range` the ``(low, high)`` of each figure over both device types and,
for reads, Horowitz's 45 nm SRAM read energy interpolated by size (``pJ per 64 bits`` x
``width / 64``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache

from .table import DATA, area_factor, check_node, energy_factor, entry, event

__all__ = ["SramMacro", "sram_macro", "sram_range", "horowitz_read_pj"]

PRIMARY = "itrs-lop"
CELLS = ("itrs-hp", "itrs-lop")
_FIGURES = ("area_mm2", "read_nj", "write_nj", "leakage_mw")


@dataclass(frozen=True)
class SramMacro:
    """One SRAM macro: ``bits`` in words of ``width`` bits at a node."""

    area_mm2: float
    read_pj: float      # per access of one word
    write_pj: float     # per access of one word
    leakage_mw: float
    source: str


@cache
def _grid() -> dict:
    """``{cell: {(width, depth): figures}}`` of the 45 nm CACTI runs."""
    path = DATA / "cacti.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run python -m hwaccel.energy.cacti_run "
                                f"CACTI_DIR to regenerate it")
    runs = json.loads(path.read_text())["runs"]
    out: dict = {c: {} for c in CELLS}
    for r in runs:
        if r["node"] == 45 and r["cell"] in out and "error" not in r:
            out[r["cell"]][(r["width"], r["depth"])] = r
    return out


def _check_shape(bits, width) -> int:
    for name, v in (("bits", bits), ("width", width)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, not {v!r}")
    if bits % width:
        raise ValueError(f"bits ({bits}) must be a whole number of {width}-bit words")
    return bits // width


def _bracket(axis: list[int], v: float) -> tuple[int, int, bool]:
    """Indices of the grid interval used for ``v`` (the edge one outside), and whether
    ``v`` lies outside the axis."""
    if v <= axis[0]:
        return 0, 1, v < axis[0]
    if v >= axis[-1]:
        return len(axis) - 2, len(axis) - 1, v > axis[-1]
    i = max(k for k, a in enumerate(axis) if a <= v)
    return i, min(i + 1, len(axis) - 1), False


def _interp(cell: str, width: int, depth: int) -> tuple[dict, bool]:
    """CACTI's 45 nm figures of a ``depth x width`` RAM with ``cell`` devices, and whether
    they were extrapolated."""
    g = _grid()[cell]
    if not g:
        raise ValueError(f"cacti.json has no 45 nm runs with {cell} devices")
    if (width, depth) in g:
        return {k: g[width, depth][k] for k in _FIGURES}, False
    ws = sorted({w for w, _ in g})
    ds = sorted({d for _, d in g})
    x, y = math.log2(width), math.log2(depth)
    lx, ly = [math.log2(w) for w in ws], [math.log2(d) for d in ds]
    i0, i1, ox = _bracket(lx, x)
    j0, j1, oy = _bracket(ly, y)
    tx = (x - lx[i0]) / (lx[i1] - lx[i0])
    ty = (y - ly[j0]) / (ly[j1] - ly[j0])
    out = {}
    for k in _FIGURES:
        v = {(i, j): math.log(max(g[ws[i], ds[j]][k], 1e-30)) for i in (i0, i1) for j in (j0, j1)}
        top = v[i0, j0] * (1 - tx) + v[i1, j0] * tx
        bot = v[i0, j1] * (1 - tx) + v[i1, j1] * tx
        out[k] = math.exp(top * (1 - ty) + bot * ty)
    return out, ox or oy


def horowitz_read_pj(bits: int, width: int) -> tuple[float, float]:
    """Horowitz's 45 nm SRAM read energy of one ``width``-bit word of a ``bits``-bit memory:
    the 64-bit read energy at its size (log-log between 8 KB, 32 KB and 1 MB, extrapolated
    from the end segments outside) times ``width / 64``."""
    _check_shape(bits, width)
    pts = sorted((entry(n)["bytes"], event(n)) for n in
                 ("sram_read_64b_8kb", "sram_read_64b_32kb", "sram_read_64b_1mb"))
    size = bits / 8
    lo_hi = []
    for side in (0, 1):
        xs = [math.log(b) for b, _ in pts]
        ys = [math.log(v[side]) for _, v in pts]
        x = math.log(size)
        i = 0 if x <= xs[1] else 1
        y = ys[i] + (ys[i + 1] - ys[i]) * (x - xs[i]) / (xs[i + 1] - xs[i])
        lo_hi.append(math.exp(y) * width / 64)
    return lo_hi[0], lo_hi[1]


def _scaled(fig: dict, node: int, which: str) -> dict:
    lo, hi = energy_factor(node)
    f = {"low": lo, "high": hi, "mean": (lo + hi) / 2}[which]
    a = area_factor(node)
    return {"area_mm2": fig["area_mm2"] * a, "read_pj": fig["read_nj"] * 1e3 * f,
            "write_pj": fig["write_nj"] * 1e3 * f, "leakage_mw": fig["leakage_mw"] * f}


def sram_macro(bits: int, width: int, node: int) -> SramMacro:
    """The figures of one SRAM macro of ``bits`` bits in ``width``-bit words at ``node`` nm:
    CACTI 7 at 45 nm (``itrs-lop`` devices, interpolated in the recorded grid), scaled to the
    node with Stillmaker & Baas's factors (the mean of the energy factor's range)."""
    depth = _check_shape(bits, width)
    node = check_node(node)
    fig, extrapolated = _interp(PRIMARY, width, depth)
    s = _scaled(fig, node, "mean")
    src = (f"CACTI 7.0 at 45 nm ({PRIMARY}), {depth} x {width} bits "
           f"{'extrapolated from' if extrapolated else 'interpolated in'} the recorded grid "
           f"(hwaccel/energy/data/cacti.json)")
    if node != 45:
        lo, hi = energy_factor(node)
        src += (f"; scaled to {node} nm by Stillmaker & Baas 2017 (area x{area_factor(node):.3g}, "
                f"energy x{(lo + hi) / 2:.3g}, the mean of {lo:.3g}-{hi:.3g}; leakage by the "
                f"same factor, an estimate: CACTI's own 32 and 22 nm itrs-lop runs in "
                f"cacti.json leak more than its 45 nm ones)")
    return SramMacro(s["area_mm2"], s["read_pj"], s["write_pj"], s["leakage_mw"], src)


def sram_range(bits: int, width: int, node: int) -> dict[str, tuple[float, float]]:
    """``(low, high)`` of ``read_pj``, ``write_pj``, ``leakage_mw`` and ``area_mm2`` of a macro:
    over CACTI's ``itrs-hp`` and ``itrs-lop`` devices, with Horowitz's read energy (writes
    charged as reads) in the read and write ranges, and over the node's energy factor range."""
    depth = _check_shape(bits, width)
    node = check_node(node)
    lows = [_scaled(_interp(c, width, depth)[0], node, "low") for c in CELLS]
    highs = [_scaled(_interp(c, width, depth)[0], node, "high") for c in CELLS]
    flo, fhi = energy_factor(node)
    hl, hh = horowitz_read_pj(bits, width)
    wl, wh = event("sram_write_as_read")
    out = {}
    for k in ("read_pj", "write_pj", "leakage_mw", "area_mm2"):
        lo = min(r[k] for r in lows)
        hi = max(r[k] for r in highs)
        if k == "read_pj":
            lo, hi = min(lo, hl * flo), max(hi, hh * fhi)
        elif k == "write_pj":
            lo, hi = min(lo, hl * wl * flo), max(hi, hh * wh * fhi)
        out[k] = (lo, hi)
    return out
