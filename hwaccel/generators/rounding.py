"""The rounding right shift of the requantizers, ``(v + (2**s >> 1)) >> s``, at the value's width.

Every requantizer in hwaccel (:func:`hwaccel.numerics.requantize`, ``add_requantize``,
``average_with``) ends in an arithmetic right shift of ``v + 2**(s-1)`` (``+ 0`` at ``s = 0``),
which floors, so ties round up. Written as it reads, ``(v + ((1 << s) >> 1)) >> s`` in Amaranth
is as wide as its rounding term: ``2**s`` for a 6-bit ``s`` makes a 64-bit adder and a 64-bit
barrel shifter, whatever ``v``'s width. These helpers compute the same value at ``v``'s width:

* ``v`` is signed, ``T`` bits (an unsigned one gets a zero sign bit first), so
  ``-2**(T-1) <= v < 2**(T-1)``.
* ``s >= T``: ``v + 2**(s-1)`` lies in ``[0, 2**s)``, so the result is 0 (``big``).
* ``s < T``: the rounding term is at most ``2**(T-2)``, a ``T-1``-bit value, ``v + half`` fits
  ``T + 1`` bits signed and the shift needs only ``(T-1).bit_length()`` bits of ``s``.

So a ``T``-bit value takes a ``T + 1``-bit adder and shifter and a compare of ``s``.
``tests/test_rounding.py`` checks the result equal to the integer formula for every value and
shift of small widths.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Mux, Value

__all__ = ["rounding_terms", "shift_terms", "round_shift", "saturate_int8"]


def rounding_terms(value, shift, half=None) -> SimpleNamespace:
    """The two halves of :func:`round_shift` (for a pipeline register between them).

    Returns ``total`` (``v + half``, signed ``T + 1`` bits), ``shift`` (the bits of ``s`` the
    shift needs), ``big`` (``s >= T``: the result is 0) and ``half`` (the rounding term,
    ``T - 1`` bits). A ``half`` given is used in its place: a register of an earlier
    ``half`` where the shift holds while values pass, so no decode of ``s`` is in front of
    the adder.
    """
    value, shift = Value.cast(value), Value.cast(shift)
    if shift.shape().signed:
        raise TypeError(f"shift must be unsigned, not {shift.shape()!r}")
    v = value if value.shape().signed else Cat(value, Const(0, 1)).as_signed()
    width = len(v)
    if width < 2:
        raise ValueError(f"value must be at least 1 bit wide, not {len(value)}")
    k = (width - 1).bit_length()
    s = shift[:k] if len(shift) > k else shift
    big = (shift >= width) if (1 << len(shift)) - 1 >= width else Const(0, 1)
    decoded = ((Const(1, 1) << s) >> 1)[:width - 1]
    return SimpleNamespace(total=v + (decoded if half is None else half), shift=s, big=big,
                           half=decoded)


def shift_terms(total, shift, big):
    """``total >> shift`` (arithmetic), or 0 when ``big``: :func:`round_shift`'s second half."""
    return Mux(big, 0, total >> shift)


def round_shift(value, shift):
    """``(value + (2**shift >> 1)) >> shift``, arithmetic, for an unsigned ``shift`` of any range;
    signed, ``len(value) + 1`` bits (``+ 2`` for an unsigned ``value``)."""
    t = rounding_terms(value, shift)
    return shift_terms(t.total, t.shift, t.big)


def saturate_int8(value, relu):
    """``value`` clamped to ``[lo, 127]`` as 8 bits, ``lo`` 0 with ``relu``, else -128
    (:func:`hwaccel.numerics.requantize`'s last step), from the sign and the bits above bit 7:
    ``value`` fits int8 when those bits are all equal to the sign. No compare of the whole
    value (a carry chain as long as the value on an FPGA) is on the path."""
    v = Value.cast(value)
    if not v.shape().signed:
        v = Cat(v, Const(0, 1)).as_signed()
    if len(v) < 9:   # sign-extend to 9 bits: bits 7 and up are then at least two
        v = Cat(v, *[v[-1]] * (9 - len(v))).as_signed()
    sign, high = v[-1], v[7:]
    fits = ~high.any() | high.all()
    return Mux(sign, Mux(relu, 0, Mux(fits, v[:8], 0x80)), Mux(fits, v[:8], 0x7F))
