"""Host ports of data-parallel instances: each its own, or one shared round-robin port.

An instance's work is a sequence of :class:`Phase` s: host-port transfers (``host``: words, one
a port cycle -- the inputs, each program's weights and commands, the outputs read back) and runs
(``run``: the accelerator's cycles from start to DONE). A phase starts the cycle after the one
before it ends; an instance waiting for the port does nothing, so its runs take the same cycles
whenever they start, and the instances interact only through the port.

With its own port an instance takes the sum of its phases. With one shared port a round-robin
arbiter grants one word a cycle: among the instances that have a word to move this cycle, the
first at or after the pointer (by instance index, cyclically); the pointer then moves past the
instance granted -- the beat-wise :class:`hwaccel.generators.link.HostPortArbiter`, one word a
beat. It is computed two ways, which must agree exactly:

* :func:`simulate_shared`: the arbiter's own cycle-by-cycle model
  (:func:`.arbiter.simulate_arbiter`). It takes transfers offered from fixed cycles, while an
  instance offers its next transfer only when the run after its previous one ends; so it runs
  again with each transfer offered where the last run put it, until nothing moves (the
  schedule is causal: a grant depends only on offers made before it);
* :func:`shared_port`: a recurrence from event to event (a transfer or a run ending): between
  events the set of requesters is fixed, so the requester at position ``pos`` of the cyclic
  order gets words in cycles ``pos, pos + k, pos + 2k, ...`` of the interval (``k``
  requesters), and the next event and the pointer follow in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Phase", "own_ports", "shared_port", "simulate_shared", "finish"]

KINDS = ("host", "run")


@dataclass(frozen=True)
class Phase:
    """``host``: ``cycles`` words over the host port (one a cycle); ``run``: ``cycles`` of the
    accelerator running a program."""

    kind: str
    cycles: int

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"phase kind must be one of {', '.join(KINDS)}, not {self.kind!r}")
        if not isinstance(self.cycles, int) or self.cycles < 0:
            raise ValueError(f"phase cycles must be an int >= 0, not {self.cycles!r}")

    def to_json(self) -> dict:
        return {"kind": self.kind, "cycles": self.cycles}


def own_ports(traces) -> list[int]:
    """Each instance's finishing cycle with a host port of its own: the sum of its phases."""
    return [sum(p.cycles for p in trace) for trace in traces]


def finish(traces, shared: bool) -> list[int]:
    """Each instance's finishing cycle, with one shared port (:func:`shared_port`) or each its
    own (:func:`own_ports`)."""
    return shared_port(traces) if shared else own_ports(traces)


class _Instance:
    """Where one instance is: phase ``i`` started at ``start`` with ``left`` words or cycles."""

    def __init__(self, trace):
        self.trace = [p for p in trace if p.cycles]   # an empty phase takes no cycle
        self.i, self.start, self.left, self.end = -1, 0, 0, None
        self.advance(0)

    def advance(self, t: int) -> None:
        """Start the next phase at cycle ``t`` (or finish at ``t``)."""
        self.i += 1
        if self.i == len(self.trace):
            self.end = t
        else:
            self.start, self.left = t, self.trace[self.i].cycles

    @property
    def wants_port(self) -> bool:
        return self.end is None and self.trace[self.i].kind == "host"

    @property
    def run_end(self) -> int | None:
        """The cycle its current run phase ends (``None`` when it is not running)."""
        if self.end is None and self.trace[self.i].kind == "run":
            return self.start + self.left
        return None


def _transfers(trace) -> tuple[int, list[tuple[int, int]]]:
    """``(lead, [(words, run after), ...])``: the cycles run before the first transfer, then
    each transfer and the run cycles after it (adjacent phases of a kind merged: words that
    follow words are offered the cycle after, as one stream)."""
    lead, out = 0, []
    for p in trace:
        if p.kind == "host" and p.cycles:
            if out and out[-1][1] == 0:
                out[-1] = (out[-1][0] + p.cycles, 0)
            else:
                out.append((p.cycles, 0))
        elif p.kind == "run":
            if out:
                out[-1] = (out[-1][0], out[-1][1] + p.cycles)
            else:
                lead += p.cycles
    return lead, out


def simulate_shared(traces) -> list[int]:
    """The shared port by the arbiter's cycle model: each instance's finishing cycle."""
    from ..generators.link.config import ArbiterConfig
    from .arbiter import simulate_arbiter
    from .traffic import Transfer

    plans = [_transfers(tr) for tr in traces]
    # first guess: each transfer offered when it would be with a port of its own
    at = [[lead + sum(w + r for w, r in xs[:j]) for j in range(len(xs))] for lead, xs in plans]
    config = ArbiterConfig(ports=len(traces), width=1)
    for _ in range(sum(len(xs) for _, xs in plans) + 2):
        timing = simulate_arbiter(config, [[Transfer(w, a) for (w, _), a in zip(xs, ats)]
                                           for (_, xs), ats in zip(plans, at)])
        ends = [[0] * len(xs) for _, xs in plans]   # the cycle after each transfer's last word
        for b in timing.beats:
            if b.last:
                ends[b.port][b.transfer] = b.crossed + 1
        again = [[lead] + [e + r for e, (_, r) in zip(es, xs)][:-1] if xs else []
                 for (lead, xs), es in zip(plans, ends)]
        if again == at:
            return [es[-1] + xs[-1][1] if xs else lead
                    for (lead, xs), es in zip(plans, ends)]
        at = again
    raise RuntimeError("internal: the shared host port's schedule did not settle")


def shared_port(traces) -> list[int]:
    """The shared port by its recurrence: each instance's finishing cycle."""
    ins = [_Instance(tr) for tr in traces]
    n, t, pointer = len(ins), 0, 0
    while any(i.end is None for i in ins):
        asking = sorted((k for k, i in enumerate(ins) if i.wants_port),
                        key=lambda k: (k - pointer) % n)
        runs = [i.run_end for i in ins if i.run_end is not None]
        k = len(asking)
        # the requester at position pos gets its last word in cycle t + pos + (left - 1) k
        done = [t + pos + (ins[g].left - 1) * k + 1 for pos, g in enumerate(asking)]
        nxt = min(done + runs)
        span = nxt - t
        if k:
            for pos, g in enumerate(asking):
                if pos < span:
                    ins[g].left -= (span - 1 - pos) // k + 1
            pointer = (asking[(span - 1) % k] + 1) % n
        t = nxt
        for i in ins:
            if (i.wants_port and i.left == 0) or i.run_end == t:
                i.advance(t)
    return [i.end for i in ins]
