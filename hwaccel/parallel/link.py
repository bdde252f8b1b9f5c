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

A byte arrives in the cycle its beat leaves (``left``); :meth:`LinkTiming.byte_cycles`.

Hang detection: a cycle *waits* if a beat is offered without a credit (``[offered, sent)``)
or a beat at the head is not taken (``[head, left)``). After ``watchdog`` waiting cycles in a
row the Component latches ``stalled``; :attr:`LinkTiming.stalled_at` is that cycle. A receiver
that never drains again makes the transfer impossible: :func:`simulate` raises
:class:`LinkHang` naming the link, the cycle ``stalled`` rises and the credit state then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from ..generators.link.config import LinkConfig
from .traffic import Receiver, Transfer, beats_of

__all__ = ["LinkHang", "LinkBeat", "LinkTiming", "CreditState", "simulate", "bandwidth",
           "transfer_cycles", "stall_cycle"]


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

    def throughput(self) -> Fraction:
        """Bytes delivered per cycle over :attr:`cycles`."""
        return Fraction(sum(t.size for t in self.transfers), self.cycles)


def bandwidth(config: LinkConfig) -> Fraction:
    """Sustained bytes per cycle, ``min(W, D / (2L + 1))``."""
    return config.bandwidth


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


def stall_cycle(waits: Sequence[tuple[int, int | None]], watchdog: int) -> int | None:
    """The cycle a watchdog of ``watchdog`` cycles latches, given the waiting intervals
    ``[start, end)`` (``end`` ``None``: forever); ``None`` if no run is long enough."""
    run_start = run_end = None
    for start, end in sorted(waits, key=lambda w: w[0]):
        end = float("inf") if end is None else end
        if end <= start:
            continue
        if run_end is not None and start <= run_end:
            run_end = max(run_end, end)
        else:
            if run_end is not None and run_end - run_start >= watchdog:
                return run_start + watchdog
            run_start, run_end = start, end
    if run_end is not None and run_end - run_start >= watchdog:
        return run_start + watchdog
    return None


def simulate(config: LinkConfig, transfers: Sequence[Transfer],
             receiver: Receiver | None = None, *, name: str = "link",
             strict: bool = False) -> LinkTiming:
    """Every beat's cycles for ``transfers`` sent in order over a link of ``config`` into
    ``receiver`` (default: always ready).

    Raises
    ------
    LinkHang
        If a beat can never leave (the receiver stops draining), or with ``strict`` if the
        watchdog latches at all; the message names ``name``, the cycle and the credit state.
    """
    if not isinstance(config, LinkConfig):
        raise TypeError(f"config must be a LinkConfig, not {config!r}")
    receiver = Receiver.always() if receiver is None else receiver
    L, C = config.latency, config.credits
    beats: list[LinkBeat] = []
    waits: list[tuple[int, int | None]] = []
    prev_sent = prev_left = -1
    stuck = None                      # first beat that never leaves
    for k, (i, at, count, last) in enumerate(beats_of(transfers, config.width)):
        offered = sent = head = left = None
        if prev_sent is not None:
            offered = max(at, prev_sent + 1)
            credit = 0 if k < C else beats[k - C].left
            if credit is None:
                waits.append((offered, None))
            else:
                sent = max(offered, credit + L + 1 if k >= C else 0)
                waits.append((offered, sent))
        if sent is not None and prev_left is not None:
            head = max(sent + L, prev_left + 1)
            left = receiver.next_ready(head)
            waits.append((head, left))
            if left is None and stuck is None:
                stuck = k
        beats.append(LinkBeat(i, count, last, offered, sent, head, left))
        prev_sent, prev_left = sent, left
    timing = LinkTiming(config, tuple(transfers), tuple(beats),
                        stall_cycle(waits, config.watchdog))
    if stuck is not None or (strict and timing.stalled_at is not None):
        at = timing.stalled_at
        state = timing.credit_state(at)
        if stuck is not None:
            b = beats[stuck]
            why = (f"beat {stuck} (transfer {b.transfer}) reached the receiver at cycle "
                   f"{b.head} and the receiver never takes it")
        else:
            why = f"it waited {config.watchdog} cycles in a row"
        raise LinkHang(f"link {name!r} hangs: {why}; the watchdog fires at cycle {at} with "
                       f"{state}", name, at, state)
    return timing
