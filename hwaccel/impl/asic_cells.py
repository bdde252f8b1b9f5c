"""Cell and node data of the ASIC estimate, and the area arithmetic on cell counts.

The data lives in ``data/asic_nodes.json`` with a source for every entry: the areas of the
NanGate FreePDK45 X1 cells that the gate-level netlist is counted in, and the NAND2 area of each
node (45 nm FreePDK45 and 7 nm ASAP7 read from the libraries; 28 and 16 nm the 45 nm cell scaled
by Stillmaker & Baas' area factors, marked as estimates).

Area at a node = NAND2-equivalent gates x the node's NAND2 area, where a cell's NAND2
equivalents are its FreePDK45 area / the FreePDK45 NAND2_X1 area. This keeps the cell mix of one
real library and scales it by the node's NAND2 cell: a pre-layout estimate (no placement
density, clock tree, buffering or wires).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

__all__ = ["NODES", "load", "check_node", "nand2_um2", "nand2_equivalents", "transistors",
           "cell_area_um2", "node_source", "GATE_TYPES", "FF_TYPE"]

DATA = Path(__file__).with_name("data") / "asic_nodes.json"
#: The nodes an estimate can be asked for (nm).
NODES = (45, 28, 16, 7)
#: Yosys' internal cell a flip-flop is mapped to (an enable or a reset becomes gates).
FF_TYPE = "$_DFF_P_"
#: The gates ``abc -g`` maps to (``$_NOT_`` always comes with them).
GATE_TYPES = ("$_NOT_", "$_NAND_", "$_NOR_", "$_AND_", "$_XOR_", "$_XNOR_", "$_MUX_")


@functools.cache
def load() -> dict:
    """The data file, parsed."""
    return json.loads(DATA.read_text())


def check_node(node) -> int:
    """``node`` as an int; raises ``ValueError`` naming the known nodes."""
    if isinstance(node, bool) or not isinstance(node, int) or node not in NODES:
        known = ", ".join(map(str, NODES))
        raise ValueError(f"node must be one of {known} (nm), not {node!r}")
    return node


def nand2_um2(node: int) -> float:
    """The NAND2 cell area at ``node`` (um^2): read from a library (45 and 7 nm), or the 45 nm
    area times the entry's published area factor (28 and 16 nm; see the entry's source)."""
    nodes = load()["nodes"]
    entry = nodes[str(check_node(node))]
    if entry["nand2_um2"] is not None:
        return float(entry["nand2_um2"])
    return float(nodes["45"]["nand2_um2"]) * float(entry["area_factor_from_45"])


def node_source(node: int) -> dict:
    """The data-file entry of ``node`` with its NAND2 area filled in."""
    entry = dict(load()["nodes"][str(check_node(node))])
    entry["nand2_um2"] = round(nand2_um2(node), 5)
    return entry


def _cells() -> dict:
    return load()["cells"]


def _unknown(cells: dict[str, int]) -> list[str]:
    return sorted(t for t, n in cells.items() if n and t not in _cells())


def nand2_equivalents(cells: dict[str, int]) -> float:
    """NAND2-equivalent gates of a netlist given as ``cell type -> count``.

    Raises ``ValueError`` naming a cell type the data file has no area for."""
    unknown = _unknown(cells)
    if unknown:
        raise ValueError(f"no cell area for {', '.join(unknown)} in {DATA.name}")
    ref = _cells()["$_NAND_"]["area_um2"]
    return sum(n * _cells()[t]["area_um2"] / ref for t, n in cells.items() if n)


def transistors(cells: dict[str, int]) -> int:
    """Transistors of a netlist by Yosys' static-CMOS count per cell (``stat -tech cmos``)."""
    unknown = _unknown(cells)
    if unknown:
        raise ValueError(f"no transistor count for {', '.join(unknown)} in {DATA.name}")
    return sum(n * _cells()[t]["transistors"] for t, n in cells.items() if n)


def cell_area_um2(cells: dict[str, int], node: int) -> float:
    """Cell area (um^2) of a netlist at ``node``: NAND2 equivalents x the node's NAND2 area."""
    return nand2_equivalents(cells) * nand2_um2(node)
