"""The scratchpad plan: where every block of activations lives, by liveness.

A pass of its own, between lowering (which says what blocks a batch needs, who writes each and
who reads it last: :class:`Block`) and program emission (which puts every tensor where the plan
says). :func:`plan` walks the steps in program order: at each step it places the blocks that
step writes, first-fit, then frees the blocks whose last reader that step was, so a block stays
live until its last reader (a residual block's input lives across the branch, until the add
reads it) and its words are reused after. The output block is never freed.

First-fit can leave the free words in pieces too small for the next block though there are
enough of them (an upsampled map after the map it was made from). Where it does, the plan is
tried again with each step's blocks at the other end of the scratchpad from the last step's
(``ends``: a chain of layers ping-pongs between the two ends), then best-fit (the smallest
range that fits). Every plan first-fit finds is kept as it is.

:class:`Memory` is the allocator; what does not fit raises :class:`DoesNotFit`, which names the
tensor, the largest free range, what is live, and the shortfall in words: first-fit's, when no
plan fits.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..generators.accel.config import AccelConfig

__all__ = ["DoesNotFit", "Memory", "Block", "plan", "STRATEGIES"]

#: The placements :func:`plan` tries, in order (see the module docstring).
STRATEGIES = ("first", "ends", "best")


class DoesNotFit(ValueError):
    """A tensor, a layer's weights or the program does not fit the preset's memories."""


class Memory:
    """Allocation of named blocks in the activation scratchpad: first-fit from the bottom, or
    from the top (``alloc(..., top=True)``: the highest range that fits, its top words), or
    best-fit (``best``: the smallest range that fits)."""

    def __init__(self, cfg: AccelConfig, best: bool = False):
        self.cfg, self.best = cfg, best
        self.free = [(0, cfg.act_depth)]      # (start, size), sorted, coalesced
        self.live: dict[str, tuple[int, int]] = {}

    def alloc(self, name: str, size: int, top: bool = False) -> int:
        fits = [i for i, (_, gap) in enumerate(self.free) if gap >= size]
        if fits:
            i = (min(fits, key=lambda i: self.free[i][1]) if self.best
                 else fits[-1] if top else fits[0])
            start, gap = self.free[i]
            at = start + gap - size if top else start
            rest = (start, gap - size) if top else (start + size, gap - size)
            self.free[i:i + 1] = [rest] if gap > size else []
            self.live[name] = (at, size)
            return at
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
    writes are placed, then the blocks it read last are freed: a step's output never overlaps
    its inputs, and a freed range is reused by the next step that fits in it. Placed by the
    first of :data:`STRATEGIES` that fits them all; else raises first-fit's
    :class:`DoesNotFit`, for the first block that found no room."""
    first = None
    for strategy in STRATEGIES:
        try:
            return _plan(blocks, cfg, strategy)
        except DoesNotFit as exc:
            first = first or exc
    raise first


def _plan(blocks: list[Block], cfg: AccelConfig, strategy: str) -> dict[str, int]:
    mem = Memory(cfg, best=strategy == "best")
    where: dict[str, int] = {}
    steps = sorted({b.first for b in blocks} | {b.last for b in blocks if b.last is not None})
    for k, step in enumerate(steps):
        for b in blocks:
            if b.first == step:
                where[b.name] = mem.alloc(b.name, b.words, top=strategy == "ends" and k % 2)
        for b in blocks:
            if b.last == step:
                mem.release(b.name)
    return where
