"""A serial scan wrapper that lets any Component with wide ports fit a package's few pins.

An 8x8 systolic array has 394 port bits; an iCE40 UP5K in SG48 has 39 I/O pins, and a bitstream
needs every top-level port on a pin. :class:`ScanShell` keeps the core whole and reaches all its
ports through five pins: while ``shift`` is high, ``si`` shifts into a chain that holds every
core input, and the captured core outputs shift out on ``so``; ``capture`` loads the outputs.

The shell adds one flip-flop per port bit and a 2:1 multiplexer per output bit, and nothing on
the core's own register-to-register paths, so the core's Fmax is what nextpnr reports (the
shell's paths are one LUT deep). Where a target can place the bare core out of context (ECP5),
the flow reports the core without the shell; see :mod:`hwaccel.impl.target`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ScanShell", "port_bits"]


def port_bits(core: wiring.Component) -> tuple[list, list]:
    """The core's input and output port values, in signature order."""
    ins, outs = [], []
    for _path, member, value in core.signature.flatten(core):
        (ins if member.flow == In else outs).append(Value.cast(value))
    return ins, outs


class ScanShell(wiring.Component):
    """Wraps ``core`` behind a scan chain (pins ``si``, ``shift``, ``capture``, ``so``).

    Parameters
    ----------
    core : wiring.Component
        The design to wrap; it becomes the submodule ``core``.

    Members
    -------
    si : ``In(1)``        serial input of the core-input chain
    shift : ``In(1)``     shift both chains by one bit
    capture : ``In(1)``   load the core's outputs into the output chain
    so : ``Out(1)``       serial output of the output chain

    Raises
    ------
    TypeError
        If ``core`` is not a :class:`wiring.Component`.
    """

    def __init__(self, core: wiring.Component):
        if not isinstance(core, wiring.Component):
            raise TypeError(f"core must be a wiring.Component, not {core!r}")
        self.core = core
        super().__init__({"si": In(1), "shift": In(1), "capture": In(1), "so": Out(1)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = self.core
        ins, outs = port_bits(self.core)
        in_width = sum(len(v) for v in ins)
        out_width = sum(len(v) for v in outs)
        chain_in = Signal(max(in_width, 1))
        chain_out = Signal(max(out_width, 1))
        if in_width:
            m.d.comb += Cat(*ins).eq(chain_in)
            with m.If(self.shift):
                m.d.sync += chain_in.eq(Cat(chain_in[1:], self.si))
        if out_width:
            with m.If(self.capture):
                m.d.sync += chain_out.eq(Cat(*outs))
            with m.Elif(self.shift):
                m.d.sync += chain_out.eq(chain_out >> 1)
        m.d.comb += self.so.eq(chain_out[0])
        return m
