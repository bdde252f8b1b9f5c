"""What lowering hands the backends: a batch as one or more accelerator programs on one
activation scratchpad, and how to read the outputs back (:class:`Lowered`)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ..generators.accel.driver import ActTensor, ProgramBuilder, from_words
from .builders import Program

__all__ = ["Lowered"]


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
    """

    builder: ProgramBuilder
    outputs: tuple[ActTensor, ...]
    kind: str
    output_scale: float
    programs: tuple[Program, ...] = ()

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


def _read(act: np.ndarray, t: ActTensor, kind: str) -> np.ndarray:
    y = from_words(act, t)  # C x H x W
    if kind == "vector":
        return y[:, 0, 0]
    if kind == "seq":
        return y[:, 0, :].T
    return y.reshape(-1) if kind == "flat" else y
