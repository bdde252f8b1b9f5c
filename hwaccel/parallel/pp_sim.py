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
from .pp_model import Controller, Timeline

__all__ = ["PipelineHang", "simulate", "golden", "outputs_of"]


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
    st = partition.stages
    p = len(st)
    if p > pcfg.instances:
        raise ValueError(f"the partition has {p} stages, the top only {pcfg.instances} "
                         f"instances")
    cfg = pcfg.accel
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
        return _stream(top, st, inputs, limit, cfg)
    finally:
        top.h.close()


def _stream(top, st, inputs, limit, cfg):
    h, p, m = top.h, len(st), len(inputs)
    ctl = Controller(p, m)
    c0 = h.cycles
    running: dict[int, int] = {}      # instance -> cycle started
    copying: dict[int, int] = {}      # copy -> cycle started
    port = None                       # [kind, sample, writes or addresses, next index]
    outs: list = [None] * m
    reads: list[int] = []
    while not ctl.finished:
        now = h.cycles - c0
        if now > limit:
            raise PipelineHang(f"the pipeline is not through {m} samples after {limit:,} "
                               f"cycles: instances {ctl.phase}, samples {ctl.sample}")
        busy, cp = h.get("busy"), h.get("copying")
        if h.get("stalled"):
            raise PipelineHang(f"cycle {now}: a link's watchdog latched (stalled "
                               f"{h.get('stalled'):b}); instances {ctl.phase}")
        runs = sorted(k for k, t in running.items() if now > t and not busy >> k & 1)
        copies = sorted(j for j, t in copying.items() if now > t and not cp >> j & 1)
        for k in runs:
            del running[k]
        for j in copies:
            del copying[j]
        done = port is not None and port[3] == len(port[2])
        if done and port[0] == "out":
            outs[port[1]] = np.array([unpack(w, 8, cfg.lanes) for w in reads], dtype=np.int64)
        if done:
            port = None
        starts, copy_starts = 0, []
        for kind, x in ctl.step(now, runs, copies, done):
            if kind == "run":
                starts |= 1 << x
                running[x] = now
            elif kind == "copy":
                copy_starts.append(x)
                copying[x] = now
            elif kind == "in":
                b = st[0].input
                port = ["in", x, [(address(cfg, Region.ACT, b.addr + i), pack(row.tolist(), 8))
                                  for i, row in enumerate(inputs[x])], 0]
                if len(inputs[x]) != b.words:
                    raise ValueError(f"sample {x}: {len(inputs[x])} input words, stage 0 "
                                     f"takes {b.words}")
            else:
                b = st[-1].output
                port = ["out", x, [address(cfg, Region.ACT, b.addr + i) for i in range(b.words)],
                        0]
                reads = []
        if starts:
            h.set("start", starts)
        for j in copy_starts:
            h.set(f"copy{j}__start", 1)
        if port is not None:
            kind, _, items, i = port
            if kind == "in":
                h.set("sel", 0)
                h.set("host__addr", items[i][0])
                h.set("host__wdata", items[i][1])
                h.set("host__we", 1)
            else:
                h.set("sel", p - 1)
                h.set("host__addr", items[i])
                h.set("host__re", 1)
        h.step(1)
        if port is None and not copying and len(running) == 1 and not starts:
            # One program in flight and nothing else that can change before it ends: clock
            # in C++ until its busy drops (the cycle the loop would see it anyway).
            (k, t), = running.items()
            rest = limit + 1 - (h.cycles - c0)
            if h.get("busy") == 1 << k and rest > 0:
                try:
                    h.run_until("busy", 0, rest)
                except SimError:   # past the limit: the loop says so
                    pass
        if port is not None:
            if port[0] == "out":
                reads.append(h.get("host__rdata"))
            port[3] += 1
            h.set("host__we", 0)
            h.set("host__re", 0)
        if starts:
            h.set("start", 0)
        for j in copy_starts:
            h.set(f"copy{j}__start", 0)
    return outs, ctl.t


def golden(compiled, x_int) -> np.ndarray:
    """The int8 outputs of each sample from the golden interpreter on one instance, the
    sample's lowered programs run in order on one activation scratchpad."""
    out = []
    for i in range(len(x_int)):
        low = compiled.lower(np.asarray(x_int)[i:i + 1])
        act = low.builder.act
        for prog in low.programs:
            res = run_program(compiled.config, act, prog.wgt, prog.commands)
            if res.error or not res.done:
                raise RuntimeError(f"sample {i}: the golden interpreter faulted: {res.cause}")
            act = res.act
        out.append(low.ints(act)[0])
    return np.stack(out)


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
