"""A registered multiply that maps onto an FPGA DSP block with its internal registers in use.

:func:`registered_product` returns ``a * b`` three cycles after the operands: an operand register
on each input, a product register, then a second product register. In plain Amaranth
(simulation, ``generic`` and iCE40 synthesis) these are ordinary registers. When the design is
elaborated for a platform whose ``dsp_primitive`` is ``"MULT18X18D"`` (the ECP5 target of
:mod:`hwaccel.impl`), the first three are the DSP block's own ``REG_INPUTA``/``REG_INPUTB``/
``REG_OUTPUT`` and the last is a fabric register. With ``fabric=False`` the product comes from
the block's output register, :data:`DSP_LATENCY` cycles after the operands (for a consumer
close enough to the block, or whose own logic is short).

Why instantiate instead of infer: Yosys maps an ECP5 multiply to one MULT18X18D but leaves its
registers in the fabric, so every multiply pays fabric routing into *and* out of the block around
its 3.93 ns combinational delay (119-137 MHz measured on an 8x8 array). With the registers inside
the block, the multiply is a register-to-register path of its own and the fabric only sees
register-to-DSP and DSP-to-register routing. DSP blocks sit in fixed rows, so the route from a
block to the adder that consumes its product can be long (4.3 ns of a 7.1 ns critical path on
the 8x8 array, 141 MHz): the fabric register gives that route a cycle of its own. Both variants
have identical cycle behaviour (same latency, the same synchronous reset), so the plain one is
what Verilator verifies.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, ResetSignal, Signal, signed

__all__ = ["registered_product", "product_register", "on_mult18", "MULT_LATENCY",
           "DSP_LATENCY", "MULT18_BITS"]

#: Cycles from the operands to the product: operand, product and fabric product registers.
MULT_LATENCY = 3
#: Cycles from the operands to the product without the fabric register: operand, product.
DSP_LATENCY = 2

#: The widest signed operand of an ECP5 MULT18X18D.
MULT18_BITS = 18


def registered_product(m: Module, a, b, *, platform=None, name: str,
                       fabric: bool = True, attrs: dict | None = None) -> Signal:
    """``a * b`` (both signed), :data:`MULT_LATENCY` cycles later (:data:`DSP_LATENCY` with
    ``fabric=False``), as a signed signal.

    Parameters
    ----------
    m : Module
        The module the registers (or the DSP instance) are added to.
    a, b : Value
        Signed operands, each at most 18 bits wide on the ECP5 path.
    platform : object or None
        The ``platform`` given to ``elaborate``; its ``dsp_primitive`` attribute picks the path.
    name : str
        Prefix of the generated register or instance names.
    fabric : bool
        Register the product once more in the fabric (the default).
    attrs : dict or None
        Attributes of the multiply's output wire on the plain path (e.g.
        :data:`hwaccel.impl.yosys.DSP_ATTR`, so a flow that maps multiplies to LUTs keeps this
        one on a DSP block).
    """
    wa, wb = len(a), len(b)
    product = Signal(signed(wa + wb), name=f"{name}_p")
    if fabric:
        staged = Signal(signed(wa + wb), name=f"{name}_q")
        m.d.sync += staged.eq(product)
    else:
        staged = product
    if on_mult18(platform):
        _mult18x18d(m, a, b, product, name, ("INPUTA", "INPUTB", "OUTPUT"), ResetSignal())
        return staged
    a_q = Signal(signed(wa), name=f"{name}_a")
    b_q = Signal(signed(wb), name=f"{name}_b")
    mul = Signal(signed(wa + wb), name=f"{name}_m", attrs=attrs or {})
    m.d.comb += mul.eq(a_q * b_q)
    m.d.sync += [a_q.eq(a), b_q.eq(b), product.eq(mul)]
    return staged


def on_mult18(platform) -> bool:
    """Whether ``platform`` (``elaborate``'s) instantiates the ECP5's MULT18X18D blocks."""
    return getattr(platform, "dsp_primitive", None) == "MULT18X18D"


def product_register(m: Module, a, b, *, platform=None, name: str, out=None) -> Signal:
    """``a * b`` (both signed) a cycle later, in a register without a reset, as a signed signal.

    On a platform whose ``dsp_primitive`` is ``"MULT18X18D"`` the register is the block's own
    ``REG_OUTPUT`` (its operands, at most 18 bits each, straight from the fabric), so no fabric
    route follows the multiply in its cycle: where the operands are registers already and the
    product was one, the same cycles as that register. Elsewhere a plain register of the
    product (what Verilator runs): ``out`` if given (``signed(len(a) + len(b))``, e.g. a
    register a simulation starts poisoned), else a register without reset starting at 0.
    """
    wa, wb = len(a), len(b)
    product = Signal(signed(wa + wb), name=f"{name}_p", reset_less=True) if out is None else out
    if product.shape() != signed(wa + wb):
        raise ValueError(f"out must be {signed(wa + wb)!r}, not {product.shape()!r}")
    if on_mult18(platform):
        _mult18x18d(m, a, b, product, name, ("OUTPUT",), Const(0))
    else:
        m.d.sync += product.eq(a * b)
    return product


def _mult18x18d(m: Module, a, b, product, name: str, registers: tuple, reset) -> None:
    """A MULT18X18D instance driving ``product`` (``a * b``, signed), with the block's
    ``registers`` (``"INPUTA"``, ``"INPUTB"``, ``"OUTPUT"``) on ``CLK0`` and ``reset``."""
    wa, wb = len(a), len(b)
    if max(wa, wb) > MULT18_BITS:
        raise ValueError(f"MULT18X18D operands must be at most 18 bits, not {wa} and {wb}")
    a18, b18 = Signal(signed(MULT18_BITS)), Signal(signed(MULT18_BITS))
    p36 = Signal(2 * MULT18_BITS)
    m.d.comb += [a18.eq(a), b18.eq(b), product.eq(p36[: wa + wb])]
    ports = {f"i_A{i}": a18[i] for i in range(MULT18_BITS)}
    ports |= {f"i_B{i}": b18[i] for i in range(MULT18_BITS)}
    ports |= {f"i_C{i}": Const(0) for i in range(MULT18_BITS)}
    ports |= {f"o_P{i}": p36[i] for i in range(2 * MULT18_BITS)}
    for i in range(1, 4):
        ports |= {f"i_CLK{i}": Const(0), f"i_CE{i}": Const(0), f"i_RST{i}": Const(0)}
    regs = {f"p_REG_{r}_{k}": v for r in registers
            for k, v in (("CLK", "CLK0"), ("CE", "CE0"), ("RST", "RST0"))}
    regs |= {f"p_REG_{r}_CLK": "NONE" for r in ("INPUTA", "INPUTB", "OUTPUT")
             if r not in registers}
    m.submodules[f"{name}_dsp"] = Instance(
        "MULT18X18D",
        **regs,
        p_REG_INPUTC_CLK="NONE", p_REG_PIPELINE_CLK="NONE", p_GSR="DISABLED",
        p_RESETMODE="SYNC", p_SOURCEB_MODE="B_SHIFT", p_MULT_BYPASS="DISABLED",
        i_SIGNEDA=Const(1), i_SIGNEDB=Const(1), i_SOURCEA=Const(0), i_SOURCEB=Const(0),
        i_CLK0=ClockSignal(), i_CE0=Const(1), i_RST0=reset,
        **ports,
    )
