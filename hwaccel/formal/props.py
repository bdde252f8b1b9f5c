"""Reusable properties for formal harnesses, written in Amaranth (``Assert``/``Assume``).

A harness (:class:`Harness`) wraps one Component. Its free inputs are top-level ports of the
RTLIL it is converted to, so the solver may drive them with any value in any cycle; ``Assume``
restricts them to what a well-behaved environment does, and ``Assert`` states what the design
promises. Registers start at their ``init`` values (the reset state), and reset stays low: a
harness proves properties of the run that follows reset.
"""

from __future__ import annotations

from contextlib import contextmanager

from amaranth.hdl import Assert, Assume, Elaboratable, Module, ResetSignal, Signal, Value

__all__ = ["Harness", "stream_rules", "fifo_bounds", "Owed", "quiet_for", "replaced", "driven",
           "open_sub", "ones"]


class Harness(Elaboratable):
    """Base class: ``free`` lists the top-level inputs (chosen freely each cycle);
    :meth:`build` adds the design and the properties to ``m``."""

    #: Yosys selections (of flattened wires, e.g. ``w:*acc_n*``) of datapath registers whose
    #: state the proof treats as free, loaded with any value on every clock edge (``abstract
    #: -state``). Sound for safety properties: the abstracted design can do everything the real
    #: one can, so what holds for it holds for the design (a failure found on it could be
    #: spurious, and is then checked on the real design). It lets a proof ignore arithmetic
    #: that no property reads.
    abstract: tuple[str, ...] = ()
    #: A remark for the result row (e.g. a narrower counter than the preset's).
    note: str = ""
    #: 0: prove with ``abc pdr``. k > 0: prove by k-induction (``smtbmc`` with Yices), for a
    #: harness whose assertions (with its helper invariants) are k-inductive, where pdr does not
    #: find the invariant in time; a failure within the first k cycles is a counterexample.
    induction: int = 0

    def __init__(self, prop: str, *, mutant: bool = False):
        self.prop, self.mutant = prop, mutant
        self.free: list[Value] = []

    def take(self, *values) -> None:
        """Make ``values`` (DUT inputs nothing drives) free inputs of the harness."""
        self.free.extend(Value.cast(v) for v in values)

    def take_streams(self, *streams, sink=False) -> None:
        """Free inputs for streams the DUT receives (valid, payload) or, with ``sink``,
        for streams it sends (ready)."""
        for s in streams:
            if sink:
                self.take(s.ready)
            else:
                self.take(s.valid, s.payload)

    @staticmethod
    def open_up(dut, platform) -> Module:
        """Elaborate ``dut`` here, so a property can reach its submodules (``.submodules.x``)
        through the returned module, which the harness adds in its place."""
        dut._MustUse__silence = True  # elaborated by hand, not through Fragment.get
        return dut.elaborate(platform)

    @staticmethod
    def open_sub(body: Module, name: str, platform) -> Module:
        """Elaborate ``body``'s submodule ``name`` here too (see :func:`open_sub`)."""
        return open_sub(body, name, platform)

    def build(self, m: Module, platform) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        m.d.comb += Assume(~ResetSignal())
        self.build(m, platform)
        return m


def stream_rules(m: Module, s, *, check=Assert, valid=None, name: str = "s") -> None:
    """The stream transfer rules on ``s``: once ``valid`` is up it stays up until a transfer,
    and the payload does not change meanwhile. ``check`` is ``Assert`` for a stream the DUT
    drives and ``Assume`` for one the environment drives. ``valid`` overrides the valid signal
    the rules look at (a mutant harness uses it to model a source that drops valid)."""
    v = s.valid if valid is None else valid
    payload = Value.cast(s.payload)
    held = Signal(name=f"{name}_held")
    last = Signal(len(payload), name=f"{name}_last_payload")
    m.d.sync += [held.eq(v & ~s.ready), last.eq(payload)]
    with m.If(held):
        m.d.comb += [check(v, f"{name}: valid withdrawn before the transfer"),
                     check(payload == last, f"{name}: payload changed while stalled")]


def fifo_bounds(m: Module, *, depth: int, w_en, r_en, r_rdy, w_rdy=None, name: str = "fifo"):
    """A shadow fill level from a FIFO's handshakes: a write never finds it full (nothing is
    overwritten or refused), a read never finds it empty, and ``r_rdy`` is exactly "not empty".
    Returns the shadow level."""
    level = Signal(range(depth + 1), name=f"{name}_shadow_level")
    read = r_en & r_rdy
    m.d.sync += level.eq(level + w_en - read)
    m.d.comb += [
        Assert(~w_en | (level != depth), f"{name}: written while full"),
        Assert(r_rdy == (level != 0), f"{name}: r_rdy disagrees with the fill level"),
    ]
    if w_rdy is not None:
        m.d.comb += Assert(~w_en | w_rdy, f"{name}: written while not ready")
    return level


class Owed:
    """Beats the DUT owes its output: ``add`` per accepted input (the expected ratio), one
    less per emitted beat. A beat emitted while nothing is owed is a duplicate (or invented)
    beat; more owed than ``limit`` means the DUT accepted work it cannot hold."""

    def __init__(self, m: Module, *, limit: int, name: str = "owed"):
        self.m, self.limit = m, limit
        self.count = Signal(range(limit + 2), name=name)
        self._name = name

    def update(self, add, emitted) -> None:
        m, c = self.m, self.count
        m.d.sync += c.eq(c + add - emitted)
        m.d.comb += [Assert(~emitted | (c != 0), f"{self._name}: a beat out with none owed"),
                     Assert(c <= self.limit, f"{self._name}: more than {self.limit} owed")]


def quiet_for(m: Module, quiet, *, cycles: int, name: str = "quiet"):
    """A flag that is high once ``quiet`` has held for ``cycles`` consecutive cycles."""
    n = Signal(range(cycles + 1), name=f"{name}_cycles")
    with m.If(~quiet):
        m.d.sync += n.eq(0)
    with m.Elif(n != cycles):
        m.d.sync += n.eq(n + 1)
    return n == cycles


@contextmanager
def replaced(module, name: str, value):
    """``module.name`` is ``value`` inside the block: a broken variant elaborates the real
    design with one part (a FIFO class) swapped, and the module is restored afterwards."""
    saved = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, saved)


# Helper invariants. A property that holds is often not inductive on its own: pdr (or
# k-induction) must also learn how the design's counters relate (credits, the flags in flight in
# a pipeline, a FIFO's level). A harness states those relations as further assertions of the
# same property, so they are proved with it (never assumed). They name registers inside the
# elaborated design, found by name below: a renamed register fails the harness loudly.

def driven(module: Module, name: str) -> Signal:
    """The signal called ``name`` that ``module`` (an elaborated :class:`Module`) assigns.

    Amaranth has no public way to reach a local ``Signal`` of an ``elaborate``; the module's
    table of driven signals (``Module._driving``) has them all."""
    found = [s for s in module._driving.keys() if s.name == name]
    if len(found) != 1:
        names = sorted(s.name for s in module._driving.keys())
        raise LookupError(f"the design must drive exactly one signal named {name!r}, found "
                          f"{len(found)} (driven: {', '.join(names)})")
    return found[0]


def open_sub(body: Module, name: str, platform) -> Module:
    """Replace ``body``'s submodule ``name`` by its elaborated :class:`Module` and return that,
    so a harness can name the registers inside it (:func:`driven`)."""
    sub, src_loc = body._named_submodules[name]
    sub._MustUse__silence = True
    opened = sub.elaborate(platform)
    body._named_submodules[name] = (opened, src_loc)
    return opened


def ones(*flags) -> Value:
    """The number of ``flags`` that are set, wide enough for all of them."""
    total = Value.cast(0)
    for f in flags:
        total = total + Value.cast(f)
    return total
