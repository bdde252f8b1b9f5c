"""The memory plan of a lowering: named blocks in the activation scratchpad, and builders that
put every tensor where the plan says.

:class:`Memory` places blocks first-fit and names what does not fit and by how much.
:class:`PlacedBuilder` is the :class:`~hwaccel.generators.accel.driver.ProgramBuilder` with its
bump allocator replaced by the plan. :class:`DryBuilder` follows the same plan and counts the
same commands, but encodes only each layer's first one, so that searching for the largest batch
that fits costs little (encoding a command takes milliseconds); the tests check that its answer
is exactly where the real lowering starts to fail.
"""

from __future__ import annotations

import numpy as np

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ActTensor, ProgramBuilder
from ..generators.conv.layer import ConvLayer

__all__ = ["DoesNotFit", "Memory", "PlacedBuilder", "DryBuilder"]


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
        raise DoesNotFit(
            f"tensor {name!r} ({size} words) does not fit the activation scratchpad of "
            f"{self.cfg.slug} ({self.cfg.act_depth} words): the largest free range is {gap} "
            f"words while {held} are live; short by {size - gap} words")

    def release(self, name: str) -> None:
        start, size = self.live.pop(name)
        merged: list[tuple[int, int]] = []
        for s, n in sorted([*self.free, (start, size)]):
            if merged and merged[-1][0] + merged[-1][1] == s:
                merged[-1] = (merged[-1][0], merged[-1][1] + n)
            else:
                merged.append((s, n))
        self.free = merged


class PlacedBuilder(ProgramBuilder):
    """A ProgramBuilder whose every tensor goes where the memory plan says (``at``), and whose
    weight scratchpad names the layer (``layer``) and the shortfall when it overflows."""

    at: int | None = None
    layer: str = "?"

    def alloc(self, channels: int, height: int, width: int) -> ActTensor:
        if self.at is None:
            raise RuntimeError("internal: a tensor was allocated outside the memory plan")
        t = ActTensor(self.at, channels, height, width, self.cfg.lanes)
        self.at = None
        self.act_top = max(self.act_top, t.addr + t.words)
        return t

    def _put_wgt(self, words: list[int]) -> int:
        free = self.cfg.wgt_depth - self.wgt_top
        if len(words) > free:
            raise DoesNotFit(
                f"the weights of layer {self.layer!r} ({len(words)} words) do not fit the weight "
                f"scratchpad of {self.cfg.slug} ({self.cfg.wgt_depth} words, {self.wgt_top} "
                f"used by earlier layers); short by {len(words) - free} words")
        return super()._put_wgt(words)


class DryBuilder(PlacedBuilder):
    """Builds each layer's first command for real (its weights, checks and limits are the
    driver's own) and only places and counts the same layer's commands for further samples;
    stores no inputs. GEMMs run once per batch, so they are always built for real."""

    def put(self, x) -> ActTensor:
        return self.alloc(*np.shape(x))

    def conv(self, x, w, bias, multiplier, shift, *, stride=1, padding=0, relu=True,
             pool=False) -> ActTensor:
        layer = ConvLayer(x.height, x.width, x.channels, w.shape[0], w.shape[2], stride,
                          padding, relu, pool)
        if (id(w), id(bias), layer) not in self._weights:
            return super().conv(x, w, bias, multiplier, shift, stride=stride, padding=padding,
                                relu=relu, pool=pool)
        self.commands.append(0)
        return self.alloc(layer.cout, *layer.result_size)

    def lstm(self, x, params) -> ActTensor:
        if (id(params), "lstm") not in self._weights:
            return super().lstm(x, params)
        self.commands.append(0)
        return self.alloc(self.cfg.lstm.hidden_size, 1, x.height * x.width)

    def maxpool(self, x) -> ActTensor:
        self.commands.append(0)
        return self.alloc(x.channels, x.height // 2, x.width // 2)
