"""The scratchpad plan: where every block of activations lives, by liveness.

A pass of its own, between lowering (which says what blocks a batch needs, who writes each and
who reads it last: :class:`Block`) and program emission (which puts every tensor where the plan
says). :func:`plan` walks the steps in program order: at each step it places the blocks that
step writes, first-fit, then frees the blocks whose last reader that step was, so a block stays
live until its last reader (a residual block's input lives across the branch, until the add
reads it) and its words are reused after. The output block is never freed.

:class:`Memory` is the first-fit allocator; what does not fit raises :class:`DoesNotFit`, which
names the tensor, the largest free range, what is live, and the shortfall in words.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..generators.accel.config import AccelConfig

__all__ = ["DoesNotFit", "Memory", "Block", "plan"]


class DoesNotFit(ValueError):
    """A tensor, a layer's weights or the program does not fit the preset's memories."""


class Memory:
    """First-fit allocation of named blocks in the activation scratchpad."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg
        self.free = [(0, cfg.act_depth)]      # (start, size), sorted, coalesced
        self.live: dict[str, tuple[int, int]] = {}

    def alloc(self, name: str, size: int) -> int:
        for i, (start, gap) in enumerate(self.free):
            if gap >= size:
                self.free[i:i + 1] = [(start + size, gap - size)] if gap > size else []
                self.live[name] = (start, size)
                return start
        gap = max((g for _, g in self.free), default=0)
        held = ", ".join(f"{n!r} ({s} words)" for n, (_, s) in self.live.items()) or "nothing"
        verb = "are" if len(self.live) > 1 else "is"
        raise DoesNotFit(
            f"tensor {name!r} ({size} words) does not fit the activation scratchpad of "
            f"{self.cfg.slug} ({self.cfg.act_depth} words): the largest free range is {gap} "
            f"words while {held} {verb} live; short by {size - gap} words")

    def release(self, name: str) -> None:
        start, size = self.live.pop(name)
        merged: list[tuple[int, int]] = []
        for s, n in sorted([*self.free, (start, size)]):
            if merged and merged[-1][0] + merged[-1][1] == s:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            else:
                merged.append((s, n))
        self.free = merged


@dataclass(frozen=True)
class Block:
    """``words`` of the scratchpad, written at step ``first`` (-1: stored before the program
    runs) and read last at step ``last`` (``None``: kept to the end, the program's output)."""

    name: str
    words: int
    first: int
    last: int | None

    def __post_init__(self):
        if self.words < 1:
            raise ValueError(f"block {self.name!r} must have at least one word, not "
                             f"{self.words}")
        if self.last is not None and self.last < self.first:
            raise ValueError(f"block {self.name!r} is read last at step {self.last}, before "
                             f"step {self.first} writes it")


def plan(blocks: list[Block], cfg: AccelConfig) -> dict[str, int]:
    """Every block's first word. At each step, in ``blocks``' order: the blocks the step
    writes are placed (first-fit), then the blocks it read last are freed: a step's output
    never overlaps its inputs, and a freed range is reused by the next step that fits in it.
    Raises :class:`DoesNotFit` for the first block that finds no room."""
    mem = Memory(cfg)
    where: dict[str, int] = {}
    steps = sorted({b.first for b in blocks} | {b.last for b in blocks if b.last is not None})
    for step in steps:
        for b in blocks:
            if b.first == step:
                where[b.name] = mem.alloc(b.name, b.words)
        for b in blocks:
            if b.last == step:
                mem.release(b.name)
    return where
