"""Synthesis targets: a device, its tool flags, and which cells count as which resource.

A :class:`Target` is also passed as the ``platform`` argument of ``elaborate``: generators read
its :attr:`Target.dsp_primitive` (see :mod:`hwaccel.hdl.dsp`) to instantiate a vendor DSP block
with its internal registers where Yosys would not use them on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Target", "TARGETS", "get_target"]


@dataclass(frozen=True)
class Target:
    """One synthesis target.

    Parameters
    ----------
    name : str
        ``"ecp5"``, ``"ice40"``, ``"generic"`` or ``"asic"``.
    device : str
        The part, in words (goes into the report).
    synth : str
        The Yosys command that synthesizes ``{top}`` (and writes ``{json}`` for place and route).
    pnr : str or None
        The nextpnr tool (``None``: synthesis only, an ASIC area proxy).
    pnr_args : tuple of str
        Device flags for nextpnr.
    out_of_context : bool
        Place and route the bare core without I/O buffers (nextpnr-ecp5 ``--out-of-context``):
        resources and Fmax of the core alone. Otherwise the core is wrapped in a
        :class:`~hwaccel.impl.shell.ScanShell` so that its ports fit the package's pins.
    lut, ff, dsp, bram : tuple of str
        nextpnr utilization entries (or Yosys cell types for ``generic``) summed per resource.
    dsp_primitive : str or None
        The DSP cell that :func:`hwaccel.hdl.dsp.registered_product` instantiates directly.
    default_mhz : float
        The clock constraint given to nextpnr when none is asked for.
    synth_fallback : str or None
        A script run instead of ``synth`` when ABC9 (inside ``synth``) crashes.
    """

    name: str
    device: str
    synth: str
    pnr: str | None = None
    pnr_args: tuple[str, ...] = ()
    out_of_context: bool = False
    lut: tuple[str, ...] = ()
    ff: tuple[str, ...] = ()
    dsp: tuple[str, ...] = ()
    bram: tuple[str, ...] = ()
    dsp_primitive: str | None = None
    default_mhz: float = 100.0
    synth_fallback: str | None = None


#: Run before ``synth_ecp5``: the design flattened and narrowed as ``synth_ecp5``'s ``coarse``
#: step does, then every multiply mapped onto MULT18X18D blocks as that step would (the same
#: ``mul2dsp`` and ``dsp_map_18x18`` maps and widths) but before its ``share`` pass. ``share``
#: merges multiplies used in mutually exclusive cycles into one block behind operand muxes whose
#: select is the logic that decides which one is used: in the command processor, the products
#: of the next job's counts, loaded as a job ends, became chains of such muxes fed by the end of
#: the job (the two-instance top's critical path at 72032ed, 25.0 ns). Each multiply keeps its
#: own block instead (more DSP blocks, no select in front of any).
#:
#: Before that, the small unsigned products (:data:`SMALL_PRODUCTS`: the command processor's
#: counts and address products, AVGPOOL's window count) become LUT logic beside the logic
#: that uses them (``booth``; an array of adders below its 4 x 4). On a DSP block each was a
#: trip to a DSP column and back: 31 of them in the processor, and at 15de5a3 the placed
#: critical path was one, 4.7 ns of routing to a MULT18X18D and 4.2 ns back (14.5 ns). Placed
#: alone between registers (seed 1) such a product in LUTs runs at 100 MHz for 14 x 14 bits,
#: 111-138 MHz for 14 x 4 to 14 x 11 and 141 MHz for 6 x 6; a MULT18X18D beside its
#: registers at 145 MHz.
SMALL_PRODUCTS = ("t:$mul r:A_SIGNED=0 %i r:B_SIGNED=0 %i r:A_WIDTH<=14 %i r:B_WIDTH<=14 %i")
ECP5_DSP_FIRST = ("hierarchy -top {top}; proc; flatten; opt_expr; opt_clean; "
                  "opt -nodffe -nosdff; wreduce; peepopt; opt_clean; "
                  f"booth {SMALL_PRODUCTS}; techmap {SMALL_PRODUCTS}; opt_clean; "
                  "techmap -map +/mul2dsp.v -D DSP_A_MAXWIDTH=18 -D DSP_B_MAXWIDTH=18 "
                  "-D DSP_A_MINWIDTH=2 -D DSP_B_MINWIDTH=2 -D DSP_NAME=$__MUL18X18; "
                  "chtype -set $mul t:$__soft_mul; techmap -map +/lattice/dsp_map_18x18.v; ")

TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        # TRELLIS_COMB is one LUT4 slot (a LUT4, or half of a CCU2C carry cell).
        Target("ecp5", "Lattice ECP5 LFE5U-85F, CABGA381, speed grade 6",
               ECP5_DSP_FIRST + "synth_ecp5 -top {top} -json {json}", "nextpnr-ecp5",
               ("--85k", "--package", "CABGA381", "--speed", "6"), out_of_context=True,
               lut=("TRELLIS_COMB",), ff=("TRELLIS_FF",), dsp=("MULT18X18D",),
               bram=("DP16KD",), dsp_primitive="MULT18X18D", default_mhz=150.0,
               # YoWASP's yosys-abc 0.70 exits on some netlists (the 8x8 WS array) inside
               # synth_ecp5's mandatory `abc9`; the classic ABC LUT mapper then does that step.
               synth_fallback=ECP5_DSP_FIRST + "synth_ecp5 -top {top} -run begin:map_luts; "
                              "techmap -map +/lattice/latches_map.v; abc -lut 4 -dress; clean; "
                              "synth_ecp5 -top {top} -run map_cells: -json {json}"),
        # ICESTORM_LC is a LUT4 with its flip-flop; the flip-flops are counted from Yosys' cells.
        # `-dsp` maps multiplies onto SB_MAC16, whose registers Yosys absorbs itself (ice40_dsp).
        Target("ice40", "Lattice iCE40 UP5K, SG48",
               "synth_ice40 -dsp -top {top} -json {json}", "nextpnr-ice40",
               ("--up5k", "--package", "sg48", "--pcf-allow-unconstrained"),
               lut=("ICESTORM_LC",), dsp=("ICESTORM_DSP",), bram=("ICESTORM_RAM",),
               default_mhz=50.0),
        Target("generic", "technology-independent gates (Yosys abc: AND NAND OR NOR XOR XNOR MUX)",
               "synth -flatten -top {top}; abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX; opt_clean"),
        # Its own flow (hwaccel.impl.asic): gates counted in FreePDK45 cells, SRAM macros kept.
        Target("asic", "standard cells (FreePDK45 INV NAND2 NOR2 AND2 XOR2 XNOR2 MUX2 DFF) "
               "and SRAM macros, pre-layout",
               "synth -booth -top {top}; abc per module (see hwaccel.impl.asic_yosys)"),
    )
}


def get_target(name: str) -> Target:
    """The target called ``name``; raises ``ValueError`` naming the known ones."""
    if name not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(map(repr, TARGETS))}, not {name!r}")
    return TARGETS[name]
