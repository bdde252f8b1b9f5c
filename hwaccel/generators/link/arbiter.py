"""A round-robin arbiter: ``N`` accelerator instances sharing one host port.

Interface
---------
``sinks[i]``  In  stream of :func:`~.config.beat_layout` beats from instance ``i``.
``source``    Out stream of :func:`~.config.arbiter_layout` beats: the port they came from and
              the beat, one a cycle at most -- the shared host port.

Protocol
--------
Each cycle the grant goes to the first port, in the order ``ptr, ptr + 1, ..., ptr - 1``
(mod ``N``), whose ``valid`` is high; ``source`` carries its beat, and ``sinks[grant].ready``
is ``source.ready``. When a beat crosses, ``ptr`` becomes ``grant + 1``: the port just served
goes to the back of the queue, so under full load each of ``k`` busy ports gets one beat
in every ``k`` cycles and none waits more than ``N - 1`` beats of others.

With ``packets`` the grant stays on the port whose non-``last`` beat crossed until its
``last`` beat crosses (the other ports wait), so each transfer crosses the host port
unbroken; ``ptr`` then moves past that port as above.

The arbiter holds no beats: the host port's throughput is one beat a cycle, shared. Worked
example (``N = 2``, beat-wise, host port always ready): ports 0 and 1 each offer 3 beats
from cycle 0; the port carries 0, 1, 0, 1, 0, 1 in cycles 0-5. With ``packets`` and one
3-beat transfer each: 0, 0, 0, 1, 1, 1. :mod:`hwaccel.parallel.arbiter` computes the cycle
each beat crosses, for any offers and any ``source.ready`` pattern.

Hardware decisions
------------------
* The grant is combinational from the ``valid``s (a priority pick over the rotated request
  vector), so a beat crosses in the cycle it is offered when it wins: the arbiter adds no
  latency to the host port, only sharing.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .config import ArbiterConfig, arbiter_layout, beat_layout

__all__ = ["HostPortArbiter"]


class HostPortArbiter(wiring.Component):
    """Round-robin arbiter of an :class:`ArbiterConfig`.

    Members
    -------
    sinks : ``In(stream.Signature(beat_layout(config.width))).array(config.ports)``
    source : ``Out(stream.Signature(arbiter_layout(config.width, config.ports)))``

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`ArbiterConfig`.
    """

    def __init__(self, config: ArbiterConfig):
        if not isinstance(config, ArbiterConfig):
            raise TypeError(f"config must be an ArbiterConfig, not {config!r}")
        self.config = config
        super().__init__({
            "sinks": In(stream.Signature(beat_layout(config.width))).array(config.ports),
            "source": Out(stream.Signature(arbiter_layout(config.width, config.ports))),
        })

    def elaborate(self, platform):
        N = self.config.ports
        m = Module()
        idx = range(max(2, N))        # a port index (at least 1 bit: no 0-bit signal)
        ptr = Signal(idx)             # the port first in line
        locked = Signal()             # packets: the grant is held on ``grant_q``
        grant_q = Signal(idx)
        grant = Signal(idx)
        any_valid = Signal()

        # Priority pick over ports in the order ptr, ptr+1, ...: for each possible ``ptr``,
        # one If per port from the lowest priority up, so the last one that fires (the first
        # valid port in line) sets the grant.
        for p in range(N):
            with m.If(ptr == p):
                for k in reversed(range(N)):
                    i = (p + k) % N
                    with m.If(self.sinks[i].valid):
                        m.d.comb += grant.eq(i)
        with m.If(locked):
            m.d.comb += grant.eq(grant_q)
        for i in range(N):
            with m.If(grant == i):
                m.d.comb += [any_valid.eq(self.sinks[i].valid),
                             self.source.payload.beat.eq(self.sinks[i].payload),
                             self.sinks[i].ready.eq(self.source.ready)]
        m.d.comb += [self.source.valid.eq(any_valid), self.source.payload.port.eq(grant)]

        cross = Signal()
        m.d.comb += cross.eq(self.source.valid & self.source.ready)
        with m.If(cross):
            m.d.sync += ptr.eq(Mux(grant == N - 1, 0, grant + 1))
            if self.config.packets:
                m.d.sync += [locked.eq(~self.source.payload.beat.last), grant_q.eq(grant)]
        return m

