"""Pipeline parallelism: a compiled model's layers split into stages, one instance a stage.

A sample is lowered once (batch 1, :meth:`CompiledModel.lower`), so every stage keeps the
single-instance memory plan: a tensor lives at the same scratchpad address on every instance,
and a stage program is the commands of its layers, unchanged, with DONE. The boundary between
stage ``k`` and ``k + 1`` is every tensor written before the cut (or stored by the host) and
read after it; it is copied as one range of words ``[addr, addr + words)`` covering them all,
to the same address on instance ``k + 1`` (words between them that are dead are copied too:
the next stage writes every tensor it reads that is not in the boundary before reading it).

Stage 0's input is what the host stores per sample (the input tensor); the last stage's
output is the model's output tensors (:attr:`Lowered.span`), which the host reads back.

Recurrent models split the same way, at layers: an LSTM layer is one LSTM command over every
time step of the sample (the cell keeps ``h`` and ``c`` inside it), so a cut after it hands its
``h`` at every step -- the next layer's input -- over the link. Time steps cannot be cut: the
cell runs a whole sequence from zero state, and its ``c`` is in no scratchpad word to send.

Refused (:class:`PartitionError`, naming the stage, the layers and the tensors): more stages
than layers that emit commands; cuts that are not increasing layer indices; a stage whose
layers were lowered into different weight groups (programs of their own): an instance runs one
program a sample, so cuts must fall at weight-group boundaries.

:func:`balanced` chooses the cuts that minimize the slowest stage's occupancy a sample (its
input copy, program and output copy, from the exact models of :mod:`.pp_model`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from ..generators.accel.perf import program_perf

__all__ = ["PartitionError", "Boundary", "Stage", "Partition", "partition", "balanced",
           "sample_inputs"]


class PartitionError(ValueError):
    """A partition that cannot run; the message names the stage, layers and tensors."""


@dataclass(frozen=True)
class Boundary:
    """Words ``[addr, addr + words)`` of the scratchpad that hold ``tensors``."""

    addr: int
    words: int
    tensors: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """One instance's share: its layers, its program (``commands``, DONE last; ``wgt`` the
    weight image of ``group``, the weight group it came from), what it receives before each
    sample (``input``) and sends after (``output``), and its program's exact ``cycles``."""

    index: int
    layers: tuple[str, ...]
    group: int
    commands: tuple[int, ...]
    wgt: tuple[int, ...]
    wgt_top: int
    input: Boundary
    output: Boundary
    cycles: int


@dataclass(frozen=True)
class Partition:
    """``stages`` of a model lowered at batch 1 on ``config``; ``lowered`` is sample 0's."""

    config: object
    stages: tuple[Stage, ...]
    lowered: object

    @property
    def cuts(self) -> tuple[int, ...]:
        """Index of each stage's first layer, stage 1 on."""
        out, n = [], 0
        for s in self.stages[:-1]:
            n += len(s.layers)
            out.append(n)
        return tuple(out)

    def describe(self) -> str:
        lines = []
        for s in self.stages:
            lines.append(f"stage {s.index}: layers {', '.join(s.layers)} (weight group "
                         f"{s.group}), {len(s.commands)} commands, {s.cycles:,} cycles; in "
                         f"{s.input.words} words at {s.input.addr} "
                         f"({', '.join(s.input.tensors)}), out {s.output.words} words at "
                         f"{s.output.addr} ({', '.join(s.output.tensors)})")
        return "\n".join(lines)


def _blocks(compiled):
    """``{block name: (addr, words, first step, last step)}`` and the op steps by name, as
    lowering planned them at batch 1."""
    from ..compiler.lower import layout
    from ..compiler.memory import DoesNotFit, plan

    qg, cfg = compiled.qgraph, compiled.config
    try:
        vals, blocks = layout(qg, cfg, 1)
        where = plan(blocks, cfg)
    except DoesNotFit:   # as lower() does: the plain input when the patches do not fit
        vals, blocks = layout(qg, cfg, 1, patches=False)
        where = plan(blocks, cfg)
    ops = qg.ops[1:] if qg.tokens else qg.ops
    steps = {op.name: i for i, op in enumerate(ops)}
    return {b.name: (where[b.name], b.words, b.first, b.last) for b in blocks}, steps


def _span(blocks: dict, names: list[str]) -> Boundary:
    lo = min(blocks[n][0] for n in names)
    hi = max(blocks[n][0] + blocks[n][1] for n in names)
    return Boundary(lo, hi - lo, tuple(names))


def _layers(lowered) -> list[tuple[str, list[tuple[int, int]]]]:
    """Each layer that emitted commands, in order, with its ``(program, pc)`` s."""
    out: dict[str, list] = {}
    for g, names in enumerate(lowered.layer_pcs):
        for pc, name in enumerate(names):
            if name != "DONE":
                out.setdefault(name, []).append((g, pc))
    return list(out.items())


def partition(compiled, x_int, cuts, *, link=None) -> Partition:
    """Stages of ``compiled`` (a :class:`~hwaccel.compiler.CompiledModel`) split before the
    layers at indices ``cuts`` (increasing, from 1; an int ``p`` instead: :func:`balanced`
    into ``p`` stages over links of ``link``). ``x_int`` is one sample or more (int8 values);
    sample 0 is lowered.

    Raises
    ------
    PartitionError
        Naming the stage, its layers and the weight groups or tensors at fault.
    """
    lowered = compiled.lower(np.asarray(x_int)[:1])
    if isinstance(cuts, int) and not isinstance(cuts, bool):
        return balanced(compiled, x_int, cuts, link=link)
    layers = _layers(lowered)
    cuts = list(cuts)
    if any(not isinstance(c, int) or isinstance(c, bool) for c in cuts) or \
            cuts != sorted(set(cuts)) or (cuts and (cuts[0] < 1 or cuts[-1] >= len(layers))):
        raise PartitionError(f"cuts must be increasing layer indices in [1, {len(layers)}) "
                             f"(the model has {len(layers)} layers that emit commands: "
                             f"{', '.join(n for n, _ in layers)}), not {cuts!r}")
    return _build(compiled, lowered, layers, cuts)


def _build(compiled, lowered, layers, cuts) -> Partition:
    cfg = compiled.config
    blocks, steps = _blocks(compiled)
    bounds = [0, *cuts, len(layers)]
    stages = []
    live = [n for n, b in blocks.items() if b[2] == -1]
    inp = _span(blocks, live)
    first, words = lowered.span
    out_names = [n for n, b in blocks.items() if b[3] is None]
    last_out = Boundary(first, words, tuple(out_names))
    for k in range(len(bounds) - 1):
        mine = layers[bounds[k]:bounds[k + 1]]
        names = tuple(n for n, _ in mine)
        groups = sorted({g for _, pcs in mine for g, _ in pcs})
        if len(groups) > 1:
            split = [(n, sorted({g for g, _ in pcs})) for n, pcs in mine
                     if len({g for g, _ in pcs}) > 1]
            why = (f"layer {split[0][0]!r} was itself lowered into weight groups "
                   f"{', '.join(map(str, split[0][1]))}" if split else
                   f"its layers were lowered into weight groups {', '.join(map(str, groups))}")
            raise PartitionError(
                f"stage {k} (layers {', '.join(names)}) cannot run as one program: {why} "
                f"(programs of their own, each with its weight image); an instance runs one "
                f"program a sample, so cut at a weight-group boundary")
        g = groups[0]
        prog = lowered.programs[g]
        cmds = [prog.commands[pc] for _, pcs in mine for _, pc in pcs] + [prog.commands[-1]]
        if k + 1 < len(bounds) - 1:
            cut = max(steps[n] for n in names)
            after = [n for n, b in blocks.items() if b[2] <= cut and (b[3] is None or b[3] > cut)]
            if not after:
                raise PartitionError(f"stage {k} (layers {', '.join(names)}) hands no tensor "
                                     f"to stage {k + 1}")
            out = _span(blocks, after)
        else:
            out = last_out
        cycles = program_perf(cfg, cmds).counters["cycles"]
        stages.append(Stage(k, names, g, tuple(cmds), tuple(prog.wgt[:prog.wgt_top]),
                            prog.wgt_top, inp, out, cycles))
        inp = out
    return Partition(cfg, tuple(stages), lowered)


def balanced(compiled, x_int, stages: int, *, link=None) -> Partition:
    """The partition into ``stages`` stages whose slowest stage occupies its instance the
    fewest cycles a sample (input copy, program, output copy: :func:`.pp_model.occupancy`),
    among those that can run; ties go to the earliest cuts."""
    from .pp_model import occupancy

    lowered = compiled.lower(np.asarray(x_int)[:1])
    layers = _layers(lowered)
    if not isinstance(stages, int) or isinstance(stages, bool) or stages < 1:
        raise PartitionError(f"stages must be a positive integer, not {stages!r}")
    if stages > len(layers):
        raise PartitionError(f"cannot split {len(layers)} layers that emit commands "
                             f"({', '.join(n for n, _ in layers)}) into {stages} stages")
    best, first_error = None, None
    for cuts in itertools.combinations(range(1, len(layers)), stages - 1):
        try:
            p = _build(compiled, lowered, layers, list(cuts))
        except PartitionError as exc:
            first_error = first_error or exc
            continue
        worst = max(occupancy(p, link))
        if best is None or worst < best[0]:
            best = (worst, p)
    if best is None:
        raise PartitionError(f"no split into {stages} stages can run: {first_error}")
    return best[1]


def sample_inputs(partition: Partition, compiled, x_int) -> list[np.ndarray]:
    """Per sample, the words the host writes into stage 0 (``input.words x lanes`` int8
    values); every sample must lower to the same commands as sample 0."""
    inp = partition.stages[0].input
    out = []
    for i in range(len(x_int)):
        low = compiled.lower(np.asarray(x_int)[i:i + 1])
        if [p.commands for p in low.programs] != [p.commands for p in partition.lowered.programs]:
            raise PartitionError(f"sample {i} lowers to other commands than sample 0")
        out.append(np.asarray(low.builder.act[inp.addr:inp.addr + inp.words], dtype=np.int64))
    return out
