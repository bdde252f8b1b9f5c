"""The pipeline's controller and its exact cycle model.

Controller (one policy, :class:`Controller`, driven either by the simulated top,
:mod:`.pp_sim`, or by this module's models, :func:`model`)
------------------------------------------------------------------------------------------
Each instance does, per sample and in this order, with nothing overlapping on its host port:
receive the input (stage 0: the host writes it over the external port; stage ``k``: copy
``k - 1`` over link ``k - 1``), run its program, send the output (copy ``k``; the last stage:
the host reads it back). At every cycle ``c``, after noting what finished by ``c``:

1. an instance whose input has fully arrived starts its program in ``c``;
2. copy ``j`` starts in ``c`` if instance ``j`` has finished its program and instance
   ``j + 1`` is free (it has sent its previous sample's output, so its input range may be
   overwritten);
3. the external host port, if idle, reads back the last stage's output if it has finished,
   else writes the next sample's input into instance 0 if it is free.

So a stage cannot compute while its output is being copied or while its next input arrives
(its host port is the only way into its scratchpad, and only while it is idle).

Cycle model
-----------
A program started in cycle ``c`` is seen finished (STATUS.busy low) at ``c + cycles +
RUN_SEEN`` with ``cycles`` from :func:`hwaccel.generators.accel.perf.program_perf`. A copy of
``n`` words started in ``s`` offers its first beat at ``s + FIRST_BEAT``; its beats cross the
link as :class:`.link.LinkModel` computes them (the writer is always ready: the receiving
instance is idle), and it is seen finished the cycle after its last beat leaves the link. A
host transfer of ``n`` words started in ``c`` is finished at ``c + n`` (one word a cycle). The
same controller, fed these times, gives every sample's cycles; :mod:`.pp_sim` checks them
against the simulated top.

Figures (:class:`Timeline`): ``cycles`` (the last output read back), ``fill`` (the first),
``drain`` (from the last sample's input write to the end), ``period`` (between the last two
outputs: the steady interval), and ``bubble_fraction``: the share of instance-cycles in
``[0, cycles)`` in which an instance is neither receiving, computing nor sending (idle, or
holding a finished sample until the next stage is free).

Bubbles against GPipe's ``(p - 1) / (m + p - 1)``: that law is a pipeline of ``p`` stages that
each hold a sample for one period ``O``, so a sample's latency is ``p O``. With instances of
equal occupancy ``O`` (:func:`occupancy`) the bubble fraction here is ``(F - O) / (F + (m - 1)
O)`` with ``F`` the fill, which is GPipe's law when ``F = p O``. But a copy occupies both of its
instances at once, so a sample's latency is ``F = sum(O_k) - sum(copies) < p O`` and the
bubble fraction is below the law (the balanced 3-stage test: 0.196 against 0.2 at ``m = 8``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from ..generators.link.config import LinkConfig
from ..generators.multi.sender import FIRST_BEAT
from .link import LinkModel
from .traffic import Transfer

__all__ = ["RUN_SEEN", "Controller", "Timeline", "LaneModel", "model", "occupancy",
           "copy_cycles"]

#: Cycles from a program's last counted cycle to the cycle its STATUS.busy is seen low.
RUN_SEEN = 1

FREE, RECV, READY, RUN, DONE, SEND = "free", "recv", "ready", "run", "done", "send"


@dataclass
class Timeline:
    """Every sample's cycles at every stage (``[sample][stage]``): ``recv`` (its input
    transfer started), ``start`` (program started), ``finish`` (seen finished), ``send``
    (output transfer started), ``sent`` (output transfer seen finished)."""

    stages: int
    samples: int
    recv: list = field(default_factory=list)
    start: list = field(default_factory=list)
    finish: list = field(default_factory=list)
    send: list = field(default_factory=list)
    sent: list = field(default_factory=list)

    def __post_init__(self):
        for name in ("recv", "start", "finish", "send", "sent"):
            setattr(self, name, [[None] * self.stages for _ in range(self.samples)])

    def rows(self) -> list[dict]:
        return [{"sample": s, "stage": k, "recv": self.recv[s][k], "start": self.start[s][k],
                 "finish": self.finish[s][k], "send": self.send[s][k],
                 "sent": self.sent[s][k]}
                for s in range(self.samples) for k in range(self.stages)]

    @property
    def cycles(self) -> int:
        return self.sent[-1][-1]

    @property
    def fill(self) -> int:
        return self.sent[0][-1]

    @property
    def drain(self) -> int:
        return self.cycles - self.recv[-1][0]

    @property
    def period(self) -> int:
        """Cycles between the last two samples' outputs (the whole run when one sample)."""
        return self.sent[-1][-1] - (self.sent[-2][-1] if self.samples > 1 else 0)

    def busy(self, k: int) -> int:
        """Cycles instance ``k`` receives, computes or sends (not the cycles a finished
        sample waits for the next stage to be free)."""
        return sum(self.finish[s][k] - self.recv[s][k] + self.sent[s][k] - self.send[s][k]
                   for s in range(self.samples))

    @property
    def bubbles(self) -> Fraction:
        """The bubble fraction, exact."""
        total = self.stages * self.cycles
        return Fraction(total - sum(self.busy(k) for k in range(self.stages)), total)

    @property
    def bubble_fraction(self) -> float:
        return float(self.bubbles)


class Controller:
    """The policy of the module docstring. A driver calls :meth:`step` with the cycle and what
    it saw finish by then; it answers the actions to perform in that cycle: ``("run", k)``,
    ``("copy", j)``, ``("in", sample)``, ``("out", sample)``."""

    def __init__(self, stages: int, samples: int):
        self.p, self.m = stages, samples
        self.phase = [FREE] * stages
        self.sample = [None] * stages
        self.next_in = 0
        self.port = None            # the external port's transfer: ("in"|"out", sample)
        self.t = Timeline(stages, samples)

    @property
    def finished(self) -> bool:
        return self.t.sent[-1][-1] is not None

    def step(self, c: int, runs=(), copies=(), port_done: bool = False) -> list[tuple]:
        p, t = self.p, self.t
        for k in runs:                      # programs seen finished
            assert self.phase[k] == RUN, (k, self.phase[k])
            self.phase[k] = DONE
            t.finish[self.sample[k]][k] = c
        for j in copies:                    # copy j: j -> j + 1 complete
            s = self.sample[j]
            t.sent[s][j] = c
            self.phase[j], self.sample[j] = FREE, None
            self.phase[j + 1] = READY
        if port_done:
            kind, s = self.port
            if kind == "in":
                self.phase[0] = READY
            else:
                t.sent[s][p - 1] = c
                self.phase[p - 1], self.sample[p - 1] = FREE, None
            self.port = None
        actions = []
        for k in range(p):
            if self.phase[k] == READY:
                self.phase[k] = RUN
                t.start[self.sample[k]][k] = c
                actions.append(("run", k))
        for j in range(p - 1):
            if self.phase[j] == DONE and self.phase[j + 1] == FREE:
                s = self.sample[j]
                self.phase[j], self.phase[j + 1], self.sample[j + 1] = SEND, RECV, s
                t.send[s][j] = t.recv[s][j + 1] = c
                actions.append(("copy", j))
        if self.port is None:
            if self.phase[p - 1] == DONE:
                s = self.sample[p - 1]
                self.phase[p - 1], self.port = SEND, ("out", s)
                t.send[s][p - 1] = c
                actions.append(("out", s))
            elif self.phase[0] == FREE and self.next_in < self.m:
                s = self.next_in
                self.next_in += 1
                self.phase[0], self.sample[0], self.port = RECV, s, ("in", s)
                t.recv[s][0] = c
                actions.append(("in", s))
        return actions


def copy_cycles(link: LinkConfig, words: int) -> int:
    """Cycles from a copy's start to the cycle it is seen finished, over an idle link."""
    lm = LinkModel(link)
    beats = lm.send(Transfer(words * link.width, FIRST_BEAT))
    return beats[-1].left + 1


def occupancy(partition, link: LinkConfig | None = None) -> list[int]:
    """Cycles each instance is occupied a sample when nothing waits: its input (host words or a
    copy over an idle link), its program plus :data:`RUN_SEEN`, its output."""
    link = link or _default_link(partition.config)
    out = []
    for k, s in enumerate(partition.stages):
        inp = s.input.words if k == 0 else copy_cycles(link, s.input.words)
        outp = s.output.words if k == len(partition.stages) - 1 else \
            copy_cycles(link, s.output.words)
        out.append(inp + s.cycles + RUN_SEEN + outp)
    return out


def _default_link(cfg) -> LinkConfig:
    from .pp_run import default_link

    return default_link(cfg)


class LaneModel:
    """One pipeline's controller fed by the cycle models (runs and copies), its host port the
    caller's: :meth:`step` at a cycle gives the port transfers the controller starts then,
    ``(kind, words)``; :attr:`next_event` is the next cycle a run or copy is seen finished."""

    def __init__(self, partition, samples: int, link: LinkConfig):
        self.st, self.link = partition.stages, link
        p = len(self.st)
        self.ctl = Controller(p, samples)
        self.links = [LinkModel(link, name=f"link {j}") for j in range(p - 1)]
        self.events: dict[int, tuple[list, list]] = {}

    def _at(self, c: int) -> tuple[list, list]:
        return self.events.setdefault(c, ([], []))

    @property
    def next_event(self) -> int | None:
        return min(self.events) if self.events else None

    def step(self, c: int, port_done: bool = False) -> list[tuple[str, int]]:
        runs, copies = self.events.pop(c, ([], []))
        st, out = self.st, []
        for kind, x in self.ctl.step(c, sorted(runs), sorted(copies), port_done):
            if kind == "run":
                self._at(c + st[x].cycles + RUN_SEEN)[0].append(x)
            elif kind == "copy":
                n = st[x].output.words
                beats = self.links[x].send(Transfer(n * self.link.width, c + FIRST_BEAT))
                self._at(beats[-1].left + 1)[1].append(x)
            else:
                out.append((kind, st[0].input.words if kind == "in" else st[-1].output.words))
        return out


def model(partition, samples: int, link: LinkConfig) -> Timeline:
    """Every sample's cycles from the cycle models alone (the module docstring), cycle 0 the
    first cycle the controller acts in; the host port the lane's own (a transfer of ``n``
    words started in ``c`` is finished at ``c + n``)."""
    lane = LaneModel(partition, samples, link)
    c, port_at = 0, None
    while True:
        for _, words in lane.step(c, port_at == c):
            port_at = c + words
        if lane.ctl.finished:
            return lane.ctl.t
        pending = [v for v in (lane.next_event, port_at) if v is not None and v > c]
        if not pending:
            raise RuntimeError(f"internal: the pipeline model stopped at cycle {c} with "
                               f"phases {lane.ctl.phase}")
        c = min(pending)
