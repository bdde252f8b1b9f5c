"""MUL's gate pointer (:mod:`.eltwise`): where the unit reads ``b`` when it is a gate, one
pixel of ``n`` words that every pixel of ``a`` takes (:mod:`.isa`)."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

__all__ = ["gate_pointer"]


def gate_pointer(m, args, mul, load, b_ptr, b_up) -> list:
    """The assignments that step MUL's ``b`` pointer (``b_ptr``, and ``b_up``: ``(b_ptr + 1)
    >> 1``) by a pair of words: to the next pair for a tensor of ``a``'s shape, and for a gate
    of ``n = args.mult_b`` words (``mul``: the job is a MUL, both held while ``load``) to
    ``args.src2`` plus its offset in the pixel, which steps by a pair and wraps at ``n`` (from
    0 to 0 when ``n = 1``). A pair that starts at the pixel's last word reads the word after
    it, which the program keeps a copy of the first."""
    n = args.mult_b
    gate, off = Signal(name="mul_gate"), Signal.like(n, name="mul_b_off")
    with m.If(load):
        m.d.sync += [gate.eq(mul & (n != 0)), off.eq(0)]
    nxt = off + 2
    to = Signal.like(n, name="mul_b_to")
    m.d.comb += to.eq(Mux(nxt >= n, Mux(n == 1, 0, nxt - n), nxt))
    return [b_ptr.eq(Mux(gate, args.src2 + to, b_ptr + 2)),
            b_up.eq(Mux(gate, (args.src2 + to + 1) >> 1, b_up + 1)), off.eq(to)]
