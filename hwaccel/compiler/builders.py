"""Program builders that follow the memory plan (:mod:`.memory`).

:class:`PlacedBuilder` is the :class:`~hwaccel.generators.accel.driver.ProgramBuilder` with its
bump allocator replaced by the plan: every tensor goes where ``at`` says. :class:`DryBuilder`
follows the same plan and counts the same commands, but encodes only each layer's first one, so
that searching for the largest batch that fits costs little (encoding a command takes
milliseconds); the tests check that its answer is exactly where the real lowering starts to
fail.
"""

from __future__ import annotations

import numpy as np

from ..generators.accel.driver import ActTensor, ProgramBuilder
from ..generators.conv.layer import ConvLayer
from .memory import DoesNotFit

__all__ = ["PlacedBuilder", "DryBuilder"]


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
        kh, kw = w.shape[2:]
        layer = ConvLayer(x.height, x.width, x.channels, w.shape[0], kh if kh == kw else (kh, kw),
                          stride, padding, relu, pool)
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

    def _first(self) -> bool:
        """Whether this is the current layer's first command (built for real: its checks)."""
        seen = self.__dict__.setdefault("_seen", set())
        first = self.layer not in seen
        seen.add(self.layer)
        return first

    def add(self, a, b, p, *, relu=False) -> ActTensor:
        if self._first():
            return super().add(a, b, p, relu=relu)
        self.commands.append(0)
        return self.alloc(a.channels, a.height, a.width)

    def avgpool(self, x, kh, kw) -> ActTensor:
        if self._first():
            return super().avgpool(x, kh, kw)
        self.commands.append(0)
        return self.alloc(x.channels, x.height // kh, x.width // kw)
