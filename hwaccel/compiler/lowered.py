"""What lowering hands the backends: a batch as one or more accelerator programs on one
activation scratchpad, which layer emitted each command (:func:`attribute`), and how to read
the outputs back (:class:`Lowered`)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace

import numpy as np

from ..generators.accel.driver import ActTensor, ProgramBuilder, from_words
from .builders import Program

__all__ = ["Lowered", "attribute"]


@dataclass(frozen=True, eq=False)
class Lowered:
    """A batch as one accelerator program.

    Attributes
    ----------
    builder : ProgramBuilder
        The activation image (the inputs) and, when the batch is one program, its weight
        image and commands (DONE appended); ``None`` for those when it is several.
    outputs : tuple of ActTensor
        Each sample's output tensor in the activation scratchpad.
    kind : str
        How an output tensor reads back: ``vector`` (N), ``seq`` (T x N), ``image`` (C x H x W)
        or ``flat`` (an image flattened in CHW order).
    output_scale : float
        The float value of one int8 step of the outputs.
    programs : tuple of Program
        The programs, run in order on one activation scratchpad: the host writes each one's
        weights and commands (:meth:`loads`) before starting it.
    layer_pcs : tuple of tuple of str
        Per program, per command (pc), the name of the layer that emitted it; ``"DONE"`` for
        the closing command (:meth:`layer_of`). Empty when the programs were not lowered from a
        graph.
    chains : tuple of lower_bands.Chain
        The convs run in bands of rows because their maps do not fit whole
        (:mod:`.lower_bands`); empty when every map fits.
    """

    builder: ProgramBuilder
    outputs: tuple[ActTensor, ...]
    kind: str
    output_scale: float
    programs: tuple[Program, ...] = ()
    layer_pcs: tuple[tuple[str, ...], ...] = ()
    chains: tuple = ()

    def __post_init__(self):
        if self.layer_pcs and [len(n) for n in self.layer_pcs] != [len(p.commands)
                                                                   for p in self.programs]:
            raise ValueError(f"layer_pcs must name every command of every program "
                             f"({[len(p.commands) for p in self.programs]}), not "
                             f"{[len(n) for n in self.layer_pcs]}")

    def layer_of(self, program: int, pc: int) -> str:
        """The layer that emitted command ``pc`` of program ``program`` (both from 0)."""
        if not self.layer_pcs:
            raise ValueError("these programs carry no layer names (not lowered from a graph)")
        if not 0 <= program < len(self.layer_pcs):
            raise IndexError(f"program must be in [0, {len(self.layer_pcs)}), not {program!r}")
        names = self.layer_pcs[program]
        if not 0 <= pc < len(names):
            raise IndexError(f"pc must be in [0, {len(names)}) for program {program}, "
                             f"not {pc!r}")
        return names[pc]

    def loads(self) -> list[SimpleNamespace]:
        """What the host writes before each program, as a builder's images: the inputs (the
        activation image) and the first program's weights and commands; then each later
        program's weights and commands only (the activations stay)."""
        b = self.builder
        return [SimpleNamespace(act=b.act, act_top=b.act_top if k == 0 else 0, wgt=p.wgt,
                                wgt_top=p.wgt_top, commands=p.commands)
                for k, p in enumerate(self.programs)]

    @property
    def host_words(self) -> int:
        """Words the host writes between programs (weights and commands of every program after
        the first), one per host-port cycle."""
        return sum(p.host_words for p in self.programs[1:])

    @property
    def batch(self) -> int:
        return len(self.outputs)

    @property
    def span(self) -> tuple[int, int]:
        """``(first word, words)`` of the scratchpad range that holds every output."""
        lo = min(t.addr for t in self.outputs)
        return lo, max(t.addr + t.words for t in self.outputs) - lo

    def ints(self, act) -> np.ndarray:
        """The int8 outputs ``[batch, ...]`` from activation words (``words x lanes`` values,
        e.g. ``run_program(...).act``, covering at least :attr:`span`)."""
        act = np.asarray(act, dtype=np.int64)
        return np.stack([_read(act, t, self.kind) for t in self.outputs])

    def logits(self, act) -> np.ndarray:
        """:meth:`ints` dequantized: float64 ``[batch, classes]`` (or the output's shape)."""
        return self.ints(act).astype(np.float64) * self.output_scale


def attribute(programs: list[Program], marks: list[tuple[str, int, int]]
              ) -> tuple[tuple[Program, ...], tuple[tuple[str, ...], ...]]:
    """Which layer emitted each command of ``programs``, from ``marks``: per layer, in emission
    order, ``(name, programs ended, commands of the program being built)`` once its commands
    are emitted. A layer whose weights overflow the weight scratchpad partway (a tall map's
    bands of rows, each band's weights stored anew) has commands in two programs.

    Returns the programs with ``layers`` naming, in order, every layer with a command in each
    (what ``describe()`` lists per weight group), and per program the names per pc (``"DONE"``
    last)."""
    owners: list[list[str]] = [[] for _ in programs]
    k = 0  # the program the layer's next command falls in
    for name, ended, count in marks:
        while k < ended:  # the programs it ended: its commands fill them up to their DONE
            owners[k] += [name] * (len(programs[k].commands) - 1 - len(owners[k]))
            k += 1
        owners[k] += [name] * (count - len(owners[k]))
    for p, names in zip(programs, owners):
        names.append("DONE")
        if len(names) != len(p.commands):
            raise RuntimeError(f"internal: {len(names)} commands attributed to layers, the "
                               f"program has {len(p.commands)}")
    out = tuple(replace(p, layers=tuple(dict.fromkeys(n[:-1]))) for p, n in zip(programs, owners))
    return out, tuple(map(tuple, owners))


def _read(act: np.ndarray, t: ActTensor, kind: str) -> np.ndarray:
    y = from_words(act, t)  # C x H x W
    if kind == "vector":
        return y[:, 0, 0]
    if kind == "seq":
        return y[:, 0, :].T
    return y.reshape(-1) if kind == "flat" else y
