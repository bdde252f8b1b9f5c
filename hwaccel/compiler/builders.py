"""Program builders that follow the memory plan (:mod:`.memory`).

:class:`PlacedBuilder` is the :class:`~hwaccel.generators.accel.driver.ProgramBuilder` with its bump
allocator replaced by the plan: every tensor goes where ``at`` says. When a layer's weights do not
fit what is left of the weight scratchpad, the program ends there (DONE) and the next one starts
with an empty weight scratchpad (:class:`Program`): the host writes the next group's weights and
commands between them, and the activations stay where they are. Only a layer whose weights do not
fit the whole weight scratchpad is refused (:class:`DoesNotFit`); a Linear's come here in parts of
its output blocks that fit (:meth:`.lower_emit._Emitter.linear_parts`). :class:`DryBuilder` follows
the same plan and counts the same commands, but encodes only each layer's first one, so that
searching for the largest batch that fits costs little (encoding a command takes milliseconds); the
tests check that its answer is exactly where the real lowering starts to fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..generators.accel.avg_view import avg_parts
from ..generators.accel.driver import ActTensor, ProgramBuilder
from ..generators.conv.layer import ConvLayer
from .memory import DoesNotFit

__all__ = ["Program", "PlacedBuilder", "DryBuilder"]


@dataclass(frozen=True, eq=False)
class Program:
    """One program of a lowered batch: its weight image (``wgt_top`` words used), its commands
    (DONE last) and the layers it runs, in order."""

    commands: list[int]
    wgt: list[int]
    wgt_top: int
    layers: tuple[str, ...]

    @property
    def host_words(self) -> int:
        """Words the host writes to load it (weights and commands), one per host-port cycle."""
        return self.wgt_top + len(self.commands)


class PlacedBuilder(ProgramBuilder):
    """A ProgramBuilder whose every tensor goes where the memory plan says (``at``), and whose
    weight scratchpad names the layer (``layer``) and the shortfall when it overflows."""

    at: int | None = None
    layer: str = "?"

    def __init__(self, config):
        super().__init__(config)
        self.programs: list[Program] = []  # the programs before the one being built
        self.layers: list[str] = []        # the layers of the one being built

    def alloc(self, channels: int, height: int, width: int) -> ActTensor:
        if self.at is None:
            raise RuntimeError("internal: a tensor was allocated outside the memory plan")
        t = ActTensor(self.at, channels, height, width, self.cfg.lanes)
        self.at = None
        self.act_top = max(self.act_top, t.addr + t.words)
        return t

    def _put_wgt(self, words: list[int]) -> int:
        depth = self.cfg.wgt_depth
        if len(words) > depth:
            raise DoesNotFit(
                f"the weights of layer {self.layer!r} ({len(words)} words) do not fit the weight "
                f"scratchpad of {self.cfg.slug} ({depth} words) even alone; short by "
                f"{len(words) - depth} words")
        if len(words) > depth - self.wgt_top:
            self.next_program()
        return super()._put_wgt(words)

    def next_program(self) -> None:
        """End the program being built and start the next, its weight scratchpad empty."""
        self.done()
        self.programs.append(Program(self.commands, self.wgt, self.wgt_top, tuple(self.layers)))
        self.commands, self.wgt, self.wgt_top = [], [0] * self.cfg.wgt_depth, 0
        self._weights, self.layers = {}, []

    def finish(self) -> list[Program]:
        """Every program, the last one ended (DONE) too."""
        self.next_program()
        return self.programs


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
        return self.alloc(params.hidden_size, 1, x.height * x.width)

    def maxpool(self, x) -> ActTensor:
        if self._first():   # the driver's limits (the command's channels among them)
            return super().maxpool(x)
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
        self.commands += [0] * len(avg_parts(self.cfg, x.height, x.width, x.groups, kh, kw))
        return self.alloc(x.channels, x.height // kh, x.width // kw)
