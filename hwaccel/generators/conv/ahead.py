"""Registers worked out a cycle ahead, for the conv sequencer (:mod:`.sequencer`).

Its issue condition ``go`` is a few gates of flip-flops because every sum it needs is a
register loaded with its next value (:func:`kept`), and every compare a flag register loaded
from the compared counters' next values (:func:`next_values`, :func:`flags`). Where both sides
of a compare step late (a counter moves in a cycle of ``go`` or of the writer's ``wr``, both
decided from the flags), the compare is of every pair of candidate next values
(:func:`choices`, :func:`compare`), so the late conditions only select a result.
"""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

__all__ = ["kept", "next_values", "flags", "stepped", "late_step", "held", "choices",
           "compare"]


def kept(m, now: dict, start, first: dict, late=None, cases=()) -> tuple[dict, dict, dict]:
    """Registers that hold the expressions ``now`` (of the counters and the descriptor) at
    every cycle from a layer's start on, worked out a cycle ahead: at ``start`` they load
    ``first`` (of the incoming descriptor); in a cycle with ``late`` (the sequencer's ``go``)
    the first true one of ``cases`` (or ``cases(registers)``), ``(condition, values)`` pairs,
    gives the values ``now`` has in the next cycle; otherwise they hold. Each case's values
    are built from registers, so their adders run beside the conditions, which only select;
    the conditions are of registers too, and ``late``, which arrives last, gates them.
    Returns the registers, their next values and those next values outside ``start``."""
    regs = {k: Signal(v.shape(), name=k) for k, v in now.items()}
    later = {k: Signal(v.shape(), name=f"{k}_later") for k, v in now.items()}
    m.d.comb += [later[k].eq(r) for k, r in regs.items()]
    if late is not None:
        with m.If(late):
            for i, (cond, values) in enumerate(cases(regs) if callable(cases) else cases):
                with m.Elif(cond) if i else m.If(cond):
                    m.d.comb += [later[k].eq(v) for k, v in values.items()]
    nexts = {k: Mux(start, first[k], later[k]) if k in first else later[k] for k in regs}
    m.d.sync += [regs[k].eq(v) for k, v in nexts.items()]
    return regs, nexts, later


def next_values(m, *regs) -> list:
    """Each register's next value, a signal that holds it unless later statements assign
    it; the register loads it. The flags :func:`.sequencer.issue_logic` keeps are compares of these,
    registered: worked out a cycle ahead, in front of ``go`` they are flip-flops."""
    nexts = []
    for r in regs:
        n = Signal.like(r, name=f"{r.name}_next")
        m.d.comb += n.eq(r)
        m.d.sync += r.eq(n)
        nexts.append(n)
    return nexts


def flags(m, **values) -> dict:
    """Registers loading ``values`` (compares of next values): the compares a cycle ahead."""
    regs = {k: Signal(name=k) for k in values}
    m.d.sync += [regs[k].eq(v) for k, v in values.items()]
    return regs


def stepped(m, counter, value, name):
    """``value`` as ``counter`` stores it (cut to its width): the counter's next value."""
    s = Signal.like(counter, name=name)
    m.d.comb += s.eq(value)
    return s


def late_step(m, reg, name, late, step, start, first) -> list:
    """``reg`` loading ``step`` (of registers) in a cycle of ``late``, ``first`` at ``start``
    (never with ``late``), holding otherwise; returns its next value as :func:`choices`, so
    a compare of it is worked out for both and ``late`` selects last."""
    cases = [(late, stepped(m, reg, step, f"{name}_go")),
             (None, stepped(m, reg, Mux(start, first, reg), f"{name}_idle"))]
    m.d.sync += reg.eq(Mux(late, cases[0][1], cases[1][1]))
    return cases


def held(cases: list, reg) -> list:
    """:func:`late_step`'s candidates with the hold case reading ``reg`` itself: ``start``'s
    value dropped, for a flag that reads 0 outside the load and run phases (it is gated by
    them), so its value after a start is 0 whatever the counter's. The descriptor's handshake
    (``start``) then reaches no such flag: it crosses the chip from the units that gate it
    (c5086a7's placed critical path, 13.4 ns: the max-pool's ``active`` into ``w_ok``)."""
    return cases[:-1] + [(None, reg)]


def choices(m, reg, name, cases) -> list:
    """``reg``'s next value as its candidates: ``cases``, ``(condition, value)`` pairs in
    priority order (the first true one gives the value; ``reg`` holds otherwise), each value
    cut to ``reg``'s width as the register stores it."""
    return [(c, stepped(m, reg, v, f"{name}_c{i}")) for i, (c, v) in enumerate(cases)] + [
        (None, reg)]


def compare(op, a: list, b: list):
    """``op`` (:mod:`operator`'s ``gt``, ``eq``, ...) of two next values given as
    :func:`choices`: every pair of candidates is compared beside the conditions, which then
    only select a result (two late muxes, where a compare of the next values would follow
    both). ``a``'s conditions select last: give the side whose conditions arrive later
    (those of ``go``) as ``a``."""
    def pick(cands, f):
        (cond, v), rest = cands[0], cands[1:]
        return f(v) if cond is None else Mux(cond, f(v), pick(rest, f))
    return pick(a, lambda x: pick(b, lambda y: op(x, y)))
