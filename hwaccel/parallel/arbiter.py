"""The cycle model of the shared host port (:class:`hwaccel.generators.link.HostPortArbiter`),
exact.

Each port ``i`` offers its beats in order, beat ``k`` from ``max(at, crossed[k-1] + 1)``. In a
cycle ``c`` the grant is the first port in the order ``ptr, ptr + 1, ...`` (mod ``N``) that
offers a beat -- or, with ``packets``, the port that is in the middle of a transfer, whether it
offers one or not. The granted beat crosses if the host port is ready at ``c``; then ``ptr``
becomes ``grant + 1``. The host port carries at most one beat a cycle: ``N`` instances that all
send ``n`` beats from cycle 0 into an always-ready port finish together at ``N * n`` cycles.

Worked example (``N = 2``, 3 beats each from cycle 0, port always ready): beat-wise the port
carries 0, 1, 0, 1, 0, 1 in cycles 0-5; with ``packets`` (one 3-beat transfer each) 0, 0, 0,
1, 1, 1. When every port offers all its beats from cycle 0 into an always-ready host port,
beat-wise, port ``i`` with ``n_i`` beats is done after (:func:`round_robin_cycles`)::

    sum_j min(n_j, n_i - 1) + #{j < i : n_j >= n_i} + 1   cycles

(the rounds before its last beat, then the ports ahead of it in the last round). A port that
is never ready again raises :class:`ArbiterHang` naming the arbiter,
the cycle and which ports still wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..generators.link.config import ArbiterConfig
from .traffic import Receiver, Transfer, beats_of

__all__ = ["ArbiterHang", "PortBeat", "ArbiterTiming", "simulate_arbiter", "round_robin_cycles"]


class ArbiterHang(RuntimeError):
    """The host port is never ready again while beats wait: ``arbiter``, ``cycle`` (from which
    nothing crosses) and ``waiting`` (beats left per port) are attributes."""

    def __init__(self, message: str, arbiter: str, cycle: int, waiting: tuple[int, ...]):
        super().__init__(message)
        self.arbiter, self.cycle, self.waiting = arbiter, cycle, waiting


@dataclass(frozen=True)
class PortBeat:
    port: int
    transfer: int
    count: int
    last: bool
    offered: int
    crossed: int


@dataclass(frozen=True)
class ArbiterTiming:
    """Every beat, in the order they crossed the host port."""

    config: ArbiterConfig
    beats: tuple[PortBeat, ...]

    @property
    def cycles(self) -> int:
        return max((b.crossed for b in self.beats), default=-1) + 1

    def port_cycles(self, port: int) -> int:
        """Cycles until ``port``'s last beat has crossed (0 if it sent nothing)."""
        return max((b.crossed for b in self.beats if b.port == port), default=-1) + 1

    @property
    def utilization(self) -> float:
        """Beats per cycle on the host port over :attr:`cycles`."""
        return len(self.beats) / self.cycles if self.beats else 0.0


def simulate_arbiter(config: ArbiterConfig, traffic: Sequence,
                     port: Receiver | None = None, *, name: str = "host port") -> ArbiterTiming:
    """The cycle each beat of ``traffic[i]`` (port ``i``'s transfers, in order) crosses a host
    port whose ``ready`` is ``port`` (default: always).

    ``traffic[i]`` is a sequence of :class:`~.traffic.Transfer` s, or a generator of them for an
    instance whose next transfer depends on when its last one crossed (it computes, then
    sends again): the model takes its first transfer with ``next`` and, each time a transfer's
    last beat crosses at cycle ``c``, the next one with ``send(c)`` (``at`` is then a cycle
    after ``c``; ``StopIteration``: the port is done). The grant of a cycle depends only on
    offers made by then, so this equals the run of the transfers it produced, as a list.

    Raises
    ------
    ValueError
        If ``traffic`` does not have one entry per port, or a generator's transfer starts at
        or before the cycle it was asked at.
    ArbiterHang
        If the host port is never ready again while beats wait.
    """
    if not isinstance(config, ArbiterConfig):
        raise TypeError(f"config must be an ArbiterConfig, not {config!r}")
    N = config.ports
    if len(traffic) != N:
        raise ValueError(f"traffic must hold one list of transfers per port ({N}), "
                         f"not {len(traffic)}")
    port = Receiver.always() if port is None else port
    feeds = [None if isinstance(t, Sequence) else t for t in traffic]
    queues = [beats_of(t, config.width) if f is None else [] for t, f in zip(traffic, feeds)]
    counts = [0] * N                   # transfers drawn from each feed

    def pull(i: int, cycle: int | None) -> None:
        """The next transfer of port ``i``'s feed, asked at ``cycle`` (``None``: the first)."""
        feed = feeds[i]
        try:
            t = next(feed) if cycle is None or not hasattr(feed, "send") else feed.send(cycle)
        except StopIteration:
            feeds[i] = None
            return
        if not isinstance(t, Transfer):
            raise TypeError(f"traffic[{i}] must yield Transfer objects, not {t!r}")
        if cycle is not None and t.at <= cycle:
            raise ValueError(f"traffic[{i}]'s transfer asked at cycle {cycle} starts at "
                             f"{t.at}, not after it")
        queues[i] += [(counts[i], at, n, last) for _, at, n, last in beats_of([t], config.width)]
        counts[i] += 1

    for i in range(N):
        if feeds[i] is not None:
            pull(i, None)
    nxt = [0] * N                      # next beat of each port
    free_at = [0] * N                  # the cycle after each port's previous beat crossed
    ptr, locked, held = 0, False, 0
    out: list[PortBeat] = []
    c = 0

    def offer(i: int) -> int | None:
        if nxt[i] == len(queues[i]):
            return None
        return max(queues[i][nxt[i]][1], free_at[i])

    while any(n < len(q) for n, q in zip(nxt, queues)):
        offers = [offer(i) for i in range(N)]
        if locked:
            grant = held
            valid = offers[held] is not None and offers[held] <= c
        else:
            line = [(ptr + k) % N for k in range(N)]
            ready_ports = [i for i in line if offers[i] is not None and offers[i] <= c]
            valid = bool(ready_ports)
            grant = ready_ports[0] if valid else None
        if not valid:
            # Nothing can cross before the next offer (of the held port, when locked).
            pending = [offers[held]] if locked else [o for o in offers if o is not None]
            c = max(c + 1, min(pending))
            continue
        go = port.next_ready(c)
        if go is None:
            waiting = tuple(len(q) - n for q, n in zip(queues, nxt))
            raise ArbiterHang(f"arbiter {name!r} hangs: the host port is never ready from cycle "
                              f"{c} on, with beats waiting per port {list(waiting)}",
                              name, c, waiting)
        if go > c:
            c = go                      # the grant is re-decided at the cycle it crosses
            continue
        i = grant
        transfer, at, count, last = queues[i][nxt[i]]
        out.append(PortBeat(i, transfer, count, last, offers[i], c))
        nxt[i] += 1
        free_at[i] = c + 1
        ptr = (i + 1) % N
        if config.packets:
            locked, held = not last, i
        if last and feeds[i] is not None and nxt[i] == len(queues[i]):
            pull(i, c)
        c += 1
    return ArbiterTiming(config, tuple(out))


def round_robin_cycles(beats: Sequence[int]) -> list[int]:
    """Closed form, beat-wise arbiter: the cycles until port ``i`` is done when it offers
    ``beats[i]`` beats from cycle 0 and the host port is always ready (0 for no beats)."""
    out = []
    for i, n in enumerate(beats):
        if n < 0:
            raise ValueError(f"beats must be at least 0, not {n!r} (port {i})")
        ahead = sum(min(m, n - 1) for m in beats) + sum(m >= n for m in beats[:i])
        out.append(ahead + 1 if n else 0)
    return out
