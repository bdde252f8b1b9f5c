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

from amaranth.hdl import Shape, Value

__all__ = ["DSP_CUT", "split_product", "join_product"]

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
