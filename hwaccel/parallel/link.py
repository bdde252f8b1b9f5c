"""The cycle model of a credit-flow link (:class:`hwaccel.generators.link.Link`), exact.

Protocol and credit rule (as the Component implements them; ``C = D / W`` credits):

* the sender offers beat ``k`` from ``offered[k] = max(at, sent[k-1] + 1)`` and it is taken at
  the first cycle with a credit: ``sent[k] = max(offered[k], left[k-C] + L + 1)`` (the first
  ``C`` beats find a credit at once);
* it can leave the receive buffer from ``sent[k] + L``, behind the previous beat:
  ``head[k] = max(sent[k] + L, left[k-1] + 1)``;
* it leaves at the receiver's first ready cycle from then on: ``left[k] =
  receiver.next_ready(head[k])``; its credit can be spent again at ``left[k] + L + 1``.

So each credit is out for at least ``2L + 1`` cycles, and with a receiver that is always ready
the link sustains ``min(W, D / (2L + 1))`` bytes a cycle (:func:`bandwidth`). A transfer of
``n`` beats from an idle link then takes (:func:`transfer_cycles`)::

    n + L                                       if C >= 2L + 1  (one beat a cycle)
    ((n-1) // C) * (2L + 1) + (n-1) % C + L + 1  otherwise       (C beats per round trip)

Worked example (``W = 4``, ``L = 2``, ``D = 16``, so ``C = 4``, round trip 5): 40 bytes = 10
beats are sent at cycles 0-3, 5-8, 10-11 and leave at 2-5, 7-10, 12-13: 14 cycles, against
``10 + 2 = 12`` with one more credit (``D = 20``). Sustained: ``min(4, 16/5) = 3.2`` bytes a
cycle.

A receiver that is ready one cycle in ``r`` stretches each credit's round trip to the next
ready cycle, so the link then sustains ``W * min(1/r, C / (r * ceil((2L + 1) / r)))`` bytes a
cycle (:func:`bandwidth` with ``drain_every``): with ``link_tiny`` and ``r = 2``, ``4 * min(1/2,
4/6) = 2`` bytes a cycle, receiver-bound; with ``r = 3``, the round trip becomes 6 cycles and the
receiver allows 1/3 beat a cycle: ``4/3``.

A byte arrives in the cycle its beat leaves (``left``); :meth:`LinkTiming.byte_cycles`.
:func:`simulate` takes all transfers at once; :class:`LinkModel` takes them one at a time (its
``send`` returns the new beats' cycles), for a system model that decides what to send next from
what has arrived.

Hang detection: a cycle *waits* if a beat is offered without a credit (``[offered, sent)``)
or a beat at the head is not taken (``[head, left)``), and *moves* if a beat is taken or leaves
(``sent`` or ``left``). After ``watchdog`` cycles in a row that wait and do not move, the
Component latches ``stalled``; :attr:`LinkTiming.stalled_at` is that cycle. A receiver
that never drains again makes the transfer impossible: :func:`simulate` raises
:class:`LinkHang` naming the link, the cycle ``stalled`` rises and the credit state then.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..config import check_int
from ..generators.link.config import LinkConfig
from .traffic import Receiver, Transfer, beats_of

__all__ = ["LinkHang", "LinkBeat", "LinkTiming", "CreditState", "LinkModel", "simulate",
           "bandwidth", "transfer_cycles", "stall_cycle"]


class LinkHang(RuntimeError):
    """A link cannot deliver its transfers (or, with ``strict``, waited past its watchdog).

    Attributes: ``link`` (name), ``cycle`` (when the watchdog fires), ``state``
    (:class:`CreditState` at that cycle).
    """

    def __init__(self, message: str, link: str, cycle: int, state: CreditState):
        super().__init__(message)
        self.link, self.cycle, self.state = link, cycle, state


@dataclass(frozen=True)
class CreditState:
    """Where the ``credits`` of a link are at the start of a cycle: unspent at the sender
    (the Component's ``credits`` output), paying for beats in flight, for beats in the receive
    buffer, or travelling back. They always sum to ``credits``."""

    cycle: int
    credits: int
    free: int
    in_flight: int
    buffered: int
    returning: int

    def __str__(self) -> str:
        return (f"{self.free} of {self.credits} credits free, {self.in_flight} beats in flight, "
                f"{self.buffered} in the receive buffer, {self.returning} credits returning")


@dataclass(frozen=True)
class LinkBeat:
    """One beat's cycles; ``left`` (and, for beats stuck behind it, ``sent`` and ``head``) is
    ``None`` if it never happens."""

    transfer: int
    count: int
    last: bool
    offered: int | None
    sent: int | None
    head: int | None
    left: int | None


@dataclass(frozen=True)
class LinkTiming:
    """The model's answer: every beat's cycles, in order, and when ``stalled`` latches."""

    config: LinkConfig
    transfers: tuple[Transfer, ...]
    beats: tuple[LinkBeat, ...]
    stalled_at: int | None

    @property
    def cycles(self) -> int:
        """Cycles from cycle 0 to the last beat's departure, inclusive."""
        return max((b.left for b in self.beats), default=-1) + 1

    def transfer_beats(self, i: int) -> list[LinkBeat]:
        return [b for b in self.beats if b.transfer == i]

    def byte_cycles(self, i: int) -> list[int]:
        """The cycle each byte of transfer ``i`` arrives (leaves the link), byte by byte."""
        return [b.left for b in self.transfer_beats(i) for _ in range(b.count)]

    def credit_state(self, cycle: int) -> CreditState:
        return _credit_state(self.config, self.beats, cycle)

    def utilization(self) -> Fraction:
        """Bytes delivered over the link's raw capacity in :attr:`cycles` (``W`` a cycle)."""
        return self.throughput() / self.config.width

    def throughput(self) -> Fraction:
        """Bytes delivered per cycle over :attr:`cycles`."""
        return Fraction(sum(t.size for t in self.transfers), self.cycles)


def bandwidth(config: LinkConfig, drain_every: int = 1) -> Fraction:
    """Sustained bytes per cycle into a receiver that is ready one cycle in ``drain_every``
    (:meth:`~.traffic.Receiver.every`): ``W * min(1/r, C / (r * ceil((2L + 1) / r)))`` -- a
    credit's round trip is stretched to the next cycle the receiver is ready. ``r = 1`` is
    ``min(W, D / (2L + 1))``."""
    r = check_int("drain_every", drain_every, min=1)
    trip = r * -(-config.round_trip // r)
    return config.width * min(Fraction(1, r), Fraction(config.credits, trip))


def transfer_cycles(config: LinkConfig, size: int) -> int:
    """Cycles for ``size`` bytes over an idle link into an always-ready receiver, closed form
    (the offer at cycle 0, the last byte's arrival counted)."""
    n = len(Transfer(size).beats(config.width))
    c, period = config.credits, config.round_trip
    last_sent = n - 1 if c >= period else ((n - 1) // c) * period + (n - 1) % c
    return last_sent + config.latency + 1


def _credit_state(cfg: LinkConfig, beats: Sequence[LinkBeat], c: int) -> CreditState:
    L = cfg.latency
    sent = [b for b in beats if b.sent is not None and b.sent < c]
    in_flight = sum(b.sent + L > c for b in sent)
    gone = [b for b in sent if b.left is not None and b.left < c]
    returning = sum(b.left + L + 1 > c for b in gone)
    returned = len(gone) - returning
    buffered = len(sent) - in_flight - len(gone)
    return CreditState(c, cfg.credits, cfg.credits - len(sent) + returned, in_flight, buffered,
                       returning)


def stall_cycle(waits: Sequence[tuple[int, int | None]], moves: Sequence[int],
                watchdog: int) -> int | None:
    """The cycle a watchdog of ``watchdog`` cycles latches: the end of the first ``watchdog``
    consecutive cycles that each lie in a waiting interval ``[start, end)`` of ``waits`` (``end``
    ``None``: forever) and are not in ``moves`` (the cycles a beat was taken or left). ``None``
    if there is no such run."""
    moves = sorted(set(moves))
    runs: list[list] = []
    for start, end in sorted(waits, key=lambda w: w[0]):
        end = float("inf") if end is None else end
        if end <= start:
            continue
        if runs and start <= runs[-1][1]:
            runs[-1][1] = max(runs[-1][1], end)
        else:
            runs.append([start, end])
    for start, end in runs:
        # Each move inside the run restarts the count.
        for m in moves[bisect_left(moves, start):bisect_left(moves, end)]:
            if m - start >= watchdog:
                return start + watchdog
            start = m + 1
        if end - start >= watchdog:
            return start + watchdog
    return None


class LinkModel:
    """The link as a model that takes transfers one at a time (a system model interleaves
    them with other events): :meth:`send` returns the new beats' cycles at once, exactly as
    :func:`simulate` of all transfers so far would.

    ``receiver`` is anything with ``next_ready(cycle) -> int | None`` (a
    :class:`~.traffic.Receiver`, or an object that knows when the consumer is free).

    Raises
    ------
    LinkHang
        From :meth:`send`, when a beat can never leave (with ``strict``, also when the
        watchdog latches); the message names ``name``, the watchdog's cycle and the credit state.
    """

    def __init__(self, config: LinkConfig, receiver=None, *, name: str = "link",
                 strict: bool = False):
        if not isinstance(config, LinkConfig):
            raise TypeError(f"config must be a LinkConfig, not {config!r}")
        self.config, self.name, self.strict = config, name, strict
        self.receiver = Receiver.always() if receiver is None else receiver
        self.transfers: list[Transfer] = []
        self.beats: list[LinkBeat] = []
        self._waits: list[tuple[int, int | None]] = []
        self._stuck: int | None = None      # the first beat that can never leave

    def send(self, transfer: Transfer) -> list[LinkBeat]:
        """Queue ``transfer`` behind the earlier ones; its beats' cycles."""
        cfg = self.config
        L, C = cfg.latency, cfg.credits
        index = len(self.transfers)
        self.transfers.append(transfer)
        new = []
        for _, at, count, last in beats_of([transfer], cfg.width):
            k = len(self.beats)
            prev = self.beats[-1] if self.beats else None
            prev_sent = -1 if prev is None else prev.sent
            prev_left = -1 if prev is None else prev.left
            offered = sent = head = left = None
            if prev_sent is not None:
                offered = max(at, prev_sent + 1)
                credit = -L - 1 if k < C else self.beats[k - C].left
                sent = None if credit is None else max(offered, credit + L + 1)
                self._waits.append((offered, sent))
            if sent is not None and prev_left is not None:
                head = max(sent + L, prev_left + 1)
                left = self.receiver.next_ready(head)
                self._waits.append((head, left))
            beat = LinkBeat(index, count, last, offered, sent, head, left)
            if head is not None and left is None and self._stuck is None:
                self._stuck = k
            self.beats.append(beat)
            new.append(beat)
        self._check()
        return new

    def timing(self) -> LinkTiming:
        return LinkTiming(self.config, tuple(self.transfers), tuple(self.beats),
                          self._stall())

    def _stall(self) -> int | None:
        moves = [c for b in self.beats for c in (b.sent, b.left) if c is not None]
        return stall_cycle(self._waits, moves, self.config.watchdog)

    def _check(self) -> None:
        stuck = self._stuck
        if stuck is None and not self.strict:
            return
        stalled_at = self._stall()
        if stuck is None and stalled_at is None:
            return
        state = _credit_state(self.config, self.beats, stalled_at)
        if stuck is not None:
            b = self.beats[stuck]
            why = (f"beat {stuck} (transfer {b.transfer}) reached the receiver at cycle "
                   f"{b.head} and the receiver never takes it")
        else:
            why = f"it waited {self.config.watchdog} cycles in a row"
        raise LinkHang(f"link {self.name!r} hangs: {why}; the watchdog fires at cycle "
                       f"{stalled_at} with {state}", self.name, stalled_at, state)


def simulate(config: LinkConfig, transfers: Sequence[Transfer], receiver=None, *,
             name: str = "link", strict: bool = False) -> LinkTiming:
    """Every beat's cycles for ``transfers`` sent in order over a link of ``config`` into
    ``receiver`` (default: always ready; anything with ``next_ready``).

    Raises
    ------
    LinkHang
        If a beat can never leave (the receiver stops draining), or with ``strict`` if the
        watchdog latches at all; the message names ``name``, the cycle and the credit state.
    """
    model = LinkModel(config, receiver, name=name, strict=strict)
    for t in transfers:
        if not isinstance(t, Transfer):
            raise TypeError(f"transfers must hold Transfer objects, not {t!r}")
        model.send(t)
    return model.timing()
