"""Two int8 products in one ECP5 MULT18X18D: whether operand packing is bit-exact.

The packing known from wider DSP slices (a 27 x 18 multiplier computing ``a * b_lo`` and
``a * b_hi`` at once) puts two 8-bit operands into one wide operand with ``k`` bits between
them, ``B = b_lo + b_hi * 2**k``, multiplies by the shared ``a``, and splits the product
``P = a * B``: the low product is the low ``k`` bits of ``P`` sign-extended, the high one is
``(P - low) >> k`` (the sign correction that undoes the low product's borrow). That is exact iff
every ``a * b_lo`` fits ``k`` signed bits, i.e. ``k >= 16`` (``(-128) * (-128) = 16384``), and
then ``B`` needs ``k + 8 = 24`` bits. ECP5's MULT18X18D takes 18-bit operands, so ``k <= 9``
(``-128 * 2**10 - 128`` is already below ``-2**17``), and :func:`packing_errors` counts, over
all ``2**24`` triples ``(a, b_lo, b_hi)``, how many such a split gets wrong. Run
``python -m hwaccel.impl.dsp_packing`` for the table (docs/ecp5-dsp.md quotes it).
"""

from __future__ import annotations

import numpy as np

__all__ = ["fits", "packing_errors", "table"]

INT8 = np.arange(-128, 128, dtype=np.int64)


def fits(k: int, width: int = 18) -> bool:
    """Whether every ``b_lo + b_hi * 2**k`` (int8 ``b_lo``, ``b_hi``) fits ``width`` signed bits."""
    lo, hi = -128 * (1 << k) - 128, 127 * (1 << k) + 127
    return -(1 << (width - 1)) <= lo and hi < (1 << (width - 1))


def packing_errors(k: int) -> int:
    """Triples ``(a, b_lo, b_hi)`` of int8 (all ``2**24``) whose products the shared-operand
    packing with a ``k``-bit gap splits wrongly (either product)."""
    if not 1 <= k <= 40:
        raise ValueError(f"k must be 1 to 40 bits, not {k!r}")
    b_lo, b_hi = np.meshgrid(INT8, INT8, indexing="ij")
    packed = b_lo + (b_hi << k)
    half, mask = 1 << (k - 1), (1 << k) - 1
    wrong = 0
    for a in INT8:
        p = a * packed                                   # the multiplier's exact product
        low = ((p & mask) ^ half) - half                 # low k bits, sign-extended
        high = (p - low) >> k                            # the sign-corrected upper field
        wrong += int(np.count_nonzero((low != a * b_lo) | (high != a * b_hi)))
    return wrong


def table(ks=range(1, 17)) -> list[tuple[int, int, bool, int]]:
    """``(k, operand bits, fits 18 bits, wrong triples)`` for each gap ``k``."""
    return [(k, k + 8, fits(k), packing_errors(k)) for k in ks]


def main() -> None:
    print(f"{'k':>3} {'B bits':>6} {'fits 18':>7} {'wrong of 2**24':>15}")
    for k, bits, ok, wrong in table():
        print(f"{k:>3} {bits:>6} {'yes' if ok else 'no':>7} {wrong:>15,}")


if __name__ == "__main__":
    main()
