"""The pipeline's controller and its exact cycle model.

Controller (one policy, :class:`Controller`, driven either by the simulated top,
:mod:`.pp_sim`, or by this module's models, :func:`model`)
------------------------------------------------------------------------------------------
Each instance does, per sample and in this order: receive the input (stage 0: the host writes
it over the external port; stage ``k``: copy ``k - 1`` over link ``k - 1``), run its program,
send the output (copy ``k``; the last stage: the host reads it back). A copy reads the sender's
send mirror (:mod:`hwaccel.generators.multi.pipeline`), so it occupies only its receiver: the
sender may take its next input while its output leaves, unless it *holds* (below). At every
cycle ``c``, after noting what finished by ``c``:

1. an instance whose input has fully arrived starts its program in ``c`` if its last output
   has left (a run would overwrite the mirror a copy reads);
2. copy ``j`` starts in ``c`` if instance ``j`` has finished its program and instance
   ``j + 1`` can receive;
3. the external host port, if idle, reads back the last stage's output if it has finished,
   else writes the next sample's input into instance 0 if it can receive.

An instance can receive when it has no input waiting and runs no program (its host port drops
writes while busy), and, if it holds, when its last output has left. The last stage holds (the
host reads its output over the port its input arrives on), and so does a stage whose input
range overlaps its output range (the next input would overwrite the mirror's words in flight).
Without mirrors (``mirror=False``: hybrid's tp groups, whose copies read the group's host ports)
every instance holds, and a copy occupies both of its instances.

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
``[0, cycles)`` in which an instance is neither receiving nor computing (nor, the last stage,
being read back; without mirrors, nor sending): idle, waiting for its mirror to empty, or
holding a finished sample until the next stage can take it.

Bubbles against GPipe's ``(p - 1) / (m + p - 1)``: that law is a pipeline of ``p`` stages that
each hold a sample for one period ``O``, so a sample's latency is ``p O``. With instances of
equal occupancy ``O`` (:func:`occupancy`: ``max(input, output) + program`` for a stage that
does not hold) the bubble fraction here is ``(F - O) / (F + (m - 1) O)`` with ``F`` the fill.
``F`` is the sum of the occupancies when no stage's output copy outlasts its input transfer
(a copy that does is hidden behind the next input in the period, not in a sample's latency),
so such a balanced pipeline meets the law exactly; without mirrors a copy occupies two
instances at once, ``F = sum(O_k) - sum(copies) < p O``, and the fraction is below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from ..generators.link.config import LinkConfig
from ..generators.multi.sender import FIRST_BEAT
from .link import LinkModel
from .traffic import Transfer

__all__ = ["RUN_SEEN", "Controller", "Timeline", "LaneModel", "model", "occupancy",
           "copy_cycles", "holds"]

#: Cycles from a program's last counted cycle to the cycle its STATUS.busy is seen low.
RUN_SEEN = 1

RECV, READY, DONE, SEND = "recv", "ready", "done", "send"
_EVENTS = ("recv", "arrived", "start", "finish", "send", "sent")


@dataclass
class Timeline:
    """Every sample's cycles at every stage (``[sample][stage]``): ``recv`` (its input
    transfer started), ``arrived`` (its input transfer finished), ``start`` (program started),
    ``finish`` (seen finished), ``send`` (output transfer started), ``sent`` (output transfer
    seen finished). ``mirror``: the copies read send mirrors (a sender is not busy sending)."""

    stages: int
    samples: int
    mirror: bool = True
    recv: list = field(default_factory=list)
    arrived: list = field(default_factory=list)
    start: list = field(default_factory=list)
    finish: list = field(default_factory=list)
    send: list = field(default_factory=list)
    sent: list = field(default_factory=list)

    def __post_init__(self):
        for name in _EVENTS:
            setattr(self, name, [[None] * self.stages for _ in range(self.samples)])

    def rows(self) -> list[dict]:
        return [{"sample": s, "stage": k, **{e: getattr(self, e)[s][k] for e in _EVENTS}}
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
        """Cycles instance ``k`` receives or computes, or sends over its own host port (the
        last stage's read-back; every copy without mirrors); not the cycles its input waits
        for the mirror to empty, nor those a finished sample waits for the next stage."""
        sends = not self.mirror or k == self.stages - 1
        return sum(self.arrived[s][k] - self.recv[s][k] + self.finish[s][k] - self.start[s][k]
                   + (self.sent[s][k] - self.send[s][k] if sends else 0)
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
    ``("copy", j)``, ``("in", sample)``, ``("out", sample)``. ``holds[k]``: instance ``k``
    receives only once its last output has left (:func:`holds`); ``mirror``: the copies read
    send mirrors (for :meth:`Timeline.busy`)."""

    def __init__(self, stages: int, samples: int, holds, *, mirror: bool = True):
        self.p, self.m = stages, samples
        self.holds = list(holds)
        if len(self.holds) != stages or not self.holds[-1]:
            raise ValueError(f"holds must name {stages} stages, the last one holding: "
                             f"{self.holds!r}")
        self.inp = [None] * stages           # (RECV | READY, sample): the input transfer
        self.run = [None] * stages           # the sample whose program runs
        self.out = [None] * stages           # (DONE | SEND, sample): the output not yet sent
        self.next_in = 0
        self.port = None            # the external port's transfer: ("in"|"out", sample)
        self.t = Timeline(stages, samples, mirror)

    @property
    def finished(self) -> bool:
        return self.t.sent[-1][-1] is not None

    @property
    def phase(self) -> list[str]:
        """Each instance's state, for a hang's message."""
        def one(k):
            parts = [f"{self.inp[k][0]} {self.inp[k][1]}" if self.inp[k] else None,
                     f"run {self.run[k]}" if self.run[k] is not None else None,
                     f"{self.out[k][0]} {self.out[k][1]}" if self.out[k] else None]
            return ", ".join(x for x in parts if x) or "free"
        return [one(k) for k in range(self.p)]

    def _takes(self, k: int) -> bool:
        return (self.inp[k] is None and self.run[k] is None
                and (self.out[k] is None or not self.holds[k]))

    def step(self, c: int, runs=(), copies=(), port_done: bool = False) -> list[tuple]:
        p, t = self.p, self.t
        for k in runs:                      # programs seen finished
            s = self.run[k]
            assert s is not None, k
            self.run[k], self.out[k] = None, (DONE, s)
            t.finish[s][k] = c
        for j in copies:                    # copy j: j -> j + 1 complete
            s = self.out[j][1]
            t.sent[s][j] = t.arrived[s][j + 1] = c
            self.out[j], self.inp[j + 1] = None, (READY, s)
        if port_done:
            kind, s = self.port
            if kind == "in":
                self.inp[0] = (READY, s)
                t.arrived[s][0] = c
            else:
                t.sent[s][p - 1] = c
                self.out[p - 1] = None
            self.port = None
        actions = []
        for k in range(p):
            if self.inp[k] is not None and self.inp[k][0] == READY and self.out[k] is None:
                s = self.inp[k][1]
                self.inp[k], self.run[k] = None, s
                t.start[s][k] = c
                actions.append(("run", k))
        for j in range(p - 1):
            if self.out[j] is not None and self.out[j][0] == DONE and self._takes(j + 1):
                s = self.out[j][1]
                self.out[j], self.inp[j + 1] = (SEND, s), (RECV, s)
                t.send[s][j] = t.recv[s][j + 1] = c
                actions.append(("copy", j))
        if self.port is None:
            if self.out[p - 1] is not None and self.out[p - 1][0] == DONE:
                s = self.out[p - 1][1]
                self.out[p - 1], self.port = (SEND, s), ("out", s)
                t.send[s][p - 1] = c
                actions.append(("out", s))
            elif self.next_in < self.m and self._takes(0):
                s = self.next_in
                self.next_in += 1
                self.inp[0], self.port = (RECV, s), ("in", s)
                t.recv[s][0] = c
                actions.append(("in", s))
        return actions


def holds(stages, mirror: bool = True) -> list[bool]:
    """Per stage of ``stages`` (a partition's), whether it receives only once its last output
    has left: the last stage, every stage without mirrors, and a stage whose input words
    overlap its output words."""
    def overlap(s):
        a, b = s.input, s.output
        return a.addr < b.addr + b.words and b.addr < a.addr + a.words

    return [not mirror or k == len(stages) - 1 or overlap(s) for k, s in enumerate(stages)]


def copy_cycles(link: LinkConfig, words: int) -> int:
    """Cycles from a copy's start to the cycle it is seen finished, over an idle link."""
    lm = LinkModel(link)
    beats = lm.send(Transfer(words * link.width, FIRST_BEAT))
    return beats[-1].left + 1


def occupancy(partition, link: LinkConfig | None = None, *, mirror: bool = True
              ) -> list[int]:
    """Cycles each instance is occupied a sample when nothing waits: its input (host words or a
    copy over an idle link), its program plus :data:`RUN_SEEN`, its output; a stage that does
    not hold (:func:`holds`) takes its next input while its output leaves, so only the longer
    of the two counts."""
    link = link or _default_link(partition.config)
    out = []
    for k, (s, held) in enumerate(zip(partition.stages, holds(partition.stages, mirror))):
        inp = s.input.words if k == 0 else copy_cycles(link, s.input.words)
        outp = s.output.words if k == len(partition.stages) - 1 else \
            copy_cycles(link, s.output.words)
        out.append((inp + outp if held else max(inp, outp)) + s.cycles + RUN_SEEN)
    return out


def _default_link(cfg) -> LinkConfig:
    from .pp_run import default_link

    return default_link(cfg)


class LaneModel:
    """One pipeline's controller fed by the cycle models (runs and copies), its host port the
    caller's: :meth:`step` at a cycle gives the port transfers the controller starts then,
    ``(kind, words)``; :attr:`next_event` is the next cycle a run or copy is seen finished.
    ``mirror``: the copies read send mirrors (the pipeline top's); else they hold both ends."""

    def __init__(self, partition, samples: int, link: LinkConfig, *, mirror: bool = True):
        self.st, self.link = partition.stages, link
        p = len(self.st)
        self.ctl = Controller(p, samples, holds(self.st, mirror), mirror=mirror)
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


def model(partition, samples: int, link: LinkConfig, *, mirror: bool = True) -> Timeline:
    """Every sample's cycles from the cycle models alone (the module docstring), cycle 0 the
    first cycle the controller acts in; the host port the lane's own (a transfer of ``n``
    words started in ``c`` is finished at ``c + n``)."""
    lane = LaneModel(partition, samples, link, mirror=mirror)
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
