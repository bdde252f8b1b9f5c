"""A partition streamed through the simulated pipeline top, and its golden outputs.

:func:`simulate` builds (or finds cached) the Verilator harness of a
:class:`~hwaccel.generators.multi.PipelineConfig` top, loads every stage's weights and program
over the external host port, then drives the :class:`.pp_model.Controller` cycle by cycle
from what the top shows (each instance's ``busy``, each copy's ``copying``) and performs its
actions in the cycle it names them: ``start`` bits, ``copy<j>`` starts, and the external
port's input writes and output reads, one word a cycle. Every sample's cycles are measured on
the simulation's clock; :func:`.pp_model.model` predicts them.

:func:`golden` is the single-instance reference: the golden interpreter
(:func:`hwaccel.generators.accel.model.run_program`) running the whole lowered model.
"""

from __future__ import annotations

import numpy as np

from ..generators.accel.host import address
from ..generators.accel.isa import Region
from ..generators.accel.model import run_program
from ..hdl.pack import pack, unpack
from ..sim.runner import SimError
from .pp_model import Controller, Timeline, holds

__all__ = ["PipelineHang", "simulate", "open_top", "LaneSim", "golden", "run_in_turn",
           "outputs_of"]


class PipelineHang(RuntimeError):
    """The simulated pipeline did not finish: names the cycle, each instance's phase and each
    link's state."""


class _Top:
    def __init__(self, design, pcfg):
        from ..sim.harness import Harness

        self.cfg, self.p = pcfg.accel, pcfg.instances
        self.h = Harness(design)
        self.h.reset()

    def write_many(self, k: int, writes) -> None:
        h = self.h
        h.set("sel", k)
        h.set("host__we", 1)
        for addr, data in writes:
            h.set("host__addr", addr)
            h.set("host__wdata", data)
            h.step(1)
        h.set("host__we", 0)

    def load(self, k: int, stage) -> None:
        cfg = self.cfg
        writes = [(address(cfg, Region.WGT, i), w) for i, w in enumerate(stage.wgt)]
        writes += [(address(cfg, Region.PROG, i), c) for i, c in enumerate(stage.commands)]
        self.write_many(k, writes)

    def status(self, k: int) -> int:
        h = self.h
        h.set("sel", k)
        h.set("host__addr", address(self.cfg, Region.REG, 0))
        h.set("host__re", 1)
        h.step(1)
        h.set("host__re", 0)
        return h.get("host__rdata")


def simulate(design, pcfg, partition, inputs, *, limit: int = 20_000_000
             ) -> tuple[list[np.ndarray], Timeline]:
    """Stream ``inputs`` (per sample, stage 0's input words as ``words x lanes`` int8 values,
    :func:`.pp.sample_inputs`) through the top ``design`` of ``pcfg`` (stage ``k`` on instance
    ``k``; a partition of fewer stages leaves the last instances unused); returns each sample's
    output words (``words x lanes``) and the measured :class:`Timeline` (cycle 0: the first
    cycle the controller acts in, after loading).

    Raises
    ------
    PipelineHang
        If the samples are not through after ``limit`` cycles, or a link's watchdog latches.
    """
    top = open_top(design, pcfg, partition)
    try:
        return _stream(top, partition.stages, inputs, limit)
    finally:
        top.h.close()


def open_top(design, pcfg, partition) -> _Top:
    """A fresh top of ``design`` with every stage's weights and program loaded (stage ``k`` on
    instance ``k``) and each copy's source, destination and count set; the caller closes it."""
    st = partition.stages
    p = len(st)
    if p > pcfg.instances:
        raise ValueError(f"the partition has {p} stages, the top only {pcfg.instances} "
                         f"instances")
    top = _Top(design, pcfg)
    try:
        for k, stage in enumerate(st):
            top.load(k, stage)
        for j in range(p - 1):
            b, d = st[j].output, st[j + 1].input
            if b.words != d.words:
                raise ValueError(f"stage {j} sends {b.words} words, stage {j + 1} takes "
                                 f"{d.words}")
            for name, v in (("src", b.addr), ("dst", d.addr), ("count", b.words)):
                top.h.set(f"copy{j}__{name}", v)
    except BaseException:
        top.h.close()
        raise
    return top


def _stream(top, st, inputs, limit):
    lane = LaneSim(top, st, inputs)
    while not lane.ctl.finished:
        lane.check(limit)
        if lane.act():
            lane.drive()
        top.h.step(1)
        lane.fast_forward(limit)
        lane.settle()
    return lane.outs, lane.ctl.t


class LaneSim:
    """One pipeline's samples streamed through its top under the :class:`.pp_model.Controller`,
    a cycle at a time, the clock edge the caller's: :meth:`act` (what the controller starts this
    cycle; ``True`` when its host port has a word to move), :meth:`drive` (that word, in a cycle
    the port is granted), the edge, :meth:`settle`. With a port of its own every word is
    granted (:func:`simulate`); lanes sharing one port are granted by an arbiter
    (:mod:`.hybrid_dp_port`)."""

    def __init__(self, top, st, inputs, name: str = "the pipeline"):
        self.top, self.h, self.st, self.inputs, self.name = top, top.h, st, inputs, name
        self.cfg, self.p, self.m = top.cfg, len(st), len(inputs)
        self.ctl = Controller(self.p, self.m, holds(st))
        self.c0 = self.h.cycles
        self.running: dict[int, int] = {}      # instance -> cycle started
        self.copying: dict[int, int] = {}      # copy -> cycle started
        self.port = None                       # [kind, sample, writes or addresses, next index]
        self.outs: list = [None] * self.m
        self.reads: list[int] = []
        self.starts, self.copy_starts, self.granted = 0, [], False

    @property
    def now(self) -> int:
        return self.h.cycles - self.c0

    def check(self, limit: int) -> None:
        if self.now > limit:
            raise PipelineHang(f"{self.name} is not through {self.m} samples after {limit:,} "
                               f"cycles: instances {self.ctl.phase}")

    def act(self) -> bool:
        h, now, cfg, st, ctl = self.h, self.now, self.cfg, self.st, self.ctl
        busy, cp = h.get("busy"), h.get("copying")
        if h.get("stalled"):
            raise PipelineHang(f"{self.name}, cycle {now}: a link's watchdog latched (stalled "
                               f"{h.get('stalled'):b}); instances {ctl.phase}")
        runs = sorted(k for k, t in self.running.items() if now > t and not busy >> k & 1)
        copies = sorted(j for j, t in self.copying.items() if now > t and not cp >> j & 1)
        for k in runs:
            del self.running[k]
        for j in copies:
            del self.copying[j]
        port = self.port
        done = port is not None and port[3] == len(port[2])
        if done and port[0] == "out":
            self.outs[port[1]] = np.array([unpack(w, 8, cfg.lanes) for w in self.reads],
                                          dtype=np.int64)
        if done:
            self.port = None
        self.starts, self.copy_starts = 0, []
        for kind, x in ctl.step(now, runs, copies, done):
            if kind == "run":
                self.starts |= 1 << x
                self.running[x] = now
            elif kind == "copy":
                self.copy_starts.append(x)
                self.copying[x] = now
            elif kind == "in":
                b = st[0].input
                if len(self.inputs[x]) != b.words:
                    raise ValueError(f"sample {x}: {len(self.inputs[x])} input words, stage 0 "
                                     f"takes {b.words}")
                self.port = ["in", x, [(address(cfg, Region.ACT, b.addr + i),
                                        pack(row.tolist(), 8))
                                       for i, row in enumerate(self.inputs[x])], 0]
            else:
                b = st[-1].output
                self.port = ["out", x, [address(cfg, Region.ACT, b.addr + i)
                                        for i in range(b.words)], 0]
                self.reads = []
        if self.starts:
            h.set("start", self.starts)
        for j in self.copy_starts:
            h.set(f"copy{j}__start", 1)
        return self.port is not None

    def drive(self) -> None:
        """Put the port's next word on the external host port for this cycle's edge."""
        h, (kind, _, items, i) = self.h, self.port
        if kind == "in":
            h.set("sel", 0)
            h.set("host__addr", items[i][0])
            h.set("host__wdata", items[i][1])
            h.set("host__we", 1)
        else:
            h.set("sel", self.p - 1)
            h.set("host__addr", items[i])
            h.set("host__re", 1)
        self.granted = True

    def fast_forward(self, limit: int) -> None:
        """One program in flight and nothing else that can change before it ends: clock in C++
        until its busy drops (the cycle the loop would see it anyway). Only for a lane with a
        port of its own (lanes on one clock step together)."""
        if self.port is not None or self.copying or len(self.running) != 1 or self.starts:
            return
        (k, _), = self.running.items()
        rest = limit + 1 - self.now
        if self.h.get("busy") == 1 << k and rest > 0:
            try:
                self.h.run_until("busy", 0, rest)
            except SimError:   # past the limit: the loop says so
                pass

    def settle(self) -> None:
        """After the edge: the word read back, the port's index on, the strobes low."""
        h = self.h
        if self.granted:
            if self.port[0] == "out":
                self.reads.append(h.get("host__rdata"))
            self.port[3] += 1
            h.set("host__we", 0)
            h.set("host__re", 0)
            self.granted = False
        if self.starts:
            h.set("start", 0)
        for j in self.copy_starts:
            h.set(f"copy{j}__start", 0)


def golden(compiled, x_int) -> np.ndarray:
    """The int8 outputs of each sample from the golden interpreter on one instance, the
    sample's lowered programs run in order on one activation scratchpad."""
    out = []
    for i in range(len(x_int)):
        low = compiled.lower(np.asarray(x_int)[i:i + 1])
        act = run_in_turn(compiled.config, low.builder.act,
                          [(f"sample {i}", p.wgt, p.commands) for p in low.programs])
        out.append(low.ints(act)[0])
    return np.stack(out)


def run_in_turn(cfg, act, programs) -> np.ndarray:
    """The activation scratchpad after the golden interpreter ran ``programs`` (``(name, wgt,
    commands)`` each) one after the other on ``act``; a fault raises ``RuntimeError`` naming
    the program."""
    for name, wgt, commands in programs:
        res = run_program(cfg, act, wgt, commands)
        if res.error or not res.done:
            raise RuntimeError(f"{name}: the golden interpreter faulted: {res.cause}")
        act = res.act
    return act


def outputs_of(partition, words: list[np.ndarray]) -> np.ndarray:
    """The int8 outputs of each sample from the last stage's output words."""
    cfg, low = partition.config, partition.lowered
    b = partition.stages[-1].output
    out = []
    for w in words:
        image = np.zeros((cfg.act_depth, cfg.lanes), dtype=np.int64)
        image[b.addr:b.addr + b.words] = w
        out.append(low.ints(image)[0])
    return np.stack(out)
