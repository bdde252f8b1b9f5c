"""A wide product as two that each fit one 18x18 multiplier, for a register between them and
their sum.

Yosys maps a product wider than a DSP's inputs to several multipliers and adds their partial
products in logic after them, in the same cycle: on ECP5 a 33-bit accumulator times a 16-bit
multiplier is two MULT18X18D and a carry chain, and the path from the accumulator through both
into the next register was the whole accelerator's critical path. Split by hand, each half is
one multiplier whose output can be registered, and the add moves to the next stage:

* ``a`` (signed or unsigned, ``T`` bits) is ``high * 2**cut + low`` with ``low = a[:cut]``
  (unsigned) and ``high = a[cut:]`` (signed like ``a``);
* ``a * b == (high * b) * 2**cut + low * b``, exactly, whatever the widths.

With ``cut = 17`` an unsigned 17-bit ``low`` and a signed ``high`` of up to 18 bits each fit a
signed 18x18 multiplier, so a 35-bit ``a`` times a 17-bit ``b`` is two of them.
``tests/test_split_product.py`` checks the join equal to ``a * b`` for every value of small
widths and for random wide ones.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Shape, Value, signed

from ..hdl.dsp import product_register

__all__ = ["DSP_CUT", "split_product", "join_product", "registered_halves"]

#: The low half's width: an unsigned value that fits a signed 18-bit multiplier input.
DSP_CUT = 17


def split_product(a, b, cut: int = DSP_CUT) -> SimpleNamespace:
    """``a * b`` as ``low`` and ``high`` products (register them, then :func:`join_product`).

    Returns ``low`` (``a[:cut] * b``), ``high`` (``a[cut:] * b``, signed like ``a``) and
    ``shape`` (that of ``a * b``).
    """
    a, b = Value.cast(a), Value.cast(b)
    if cut < 1:
        raise ValueError(f"cut must be at least 1, not {cut}")
    if len(a) <= cut:
        raise ValueError(f"a ({len(a)} bits) needs no split at bit {cut}")
    high = a[cut:].as_signed() if a.shape().signed else a[cut:]
    return SimpleNamespace(low=a[:cut] * b, high=high * b, cut=cut, shape=(a * b).shape())


def join_product(low, high, split: SimpleNamespace) -> Value:
    """``high * 2**cut + low`` at the shape of the product :func:`split_product` split."""
    total = (Value.cast(high) << split.cut) + low
    shape = Shape.cast(split.shape)
    part = total[:shape.width]
    return part.as_signed() if shape.signed else part


def registered_halves(m, split: SimpleNamespace, a, b, *, platform, name: str,
                      register=None) -> tuple[Value, Value]:
    """``split``'s (``split_product(a, b)``) low and high products a cycle later, each a
    :func:`hwaccel.hdl.dsp.product_register` of signed operands (on a MULT18X18D the block's
    output register), cut to the split's widths: ``low`` unsigned, ``high`` as ``a``.
    ``register(shape, name)`` makes the plain product registers (default: without reset)."""
    a, b = Value.cast(a), Value.cast(b)

    def signed_(x):
        return x if x.shape().signed else Cat(x, Const(0, 1)).as_signed()

    out = []
    for which, part in (("low", a[:split.cut]), ("high", a[split.cut:])):
        value = getattr(split, which)
        part = part.as_signed() if which == "high" and a.shape().signed else part
        x, y = signed_(part), signed_(b)
        reg = register(signed(len(x) + len(y)), f"{name}_{which}") if register else None
        p = product_register(m, x, y, platform=platform, name=f"{name}_{which}",
                             out=reg)[: len(value)]
        out.append(p.as_signed() if value.shape().signed else p)
    return out[0], out[1]
