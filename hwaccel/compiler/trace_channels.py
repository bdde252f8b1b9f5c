"""The tracer's readers of channel moves on images: a slice ``x[:, a:b]``, a chunk or split along
channels (``x.chunk(n, 1)``, ``x.split(s, 1)``, ``torch.chunk``, ``torch.split``) and a channel
shuffle (``x.view(b, g, c // g, h, w).transpose(1, 2).reshape(b, c, h, w)``, with ``permute``,
``contiguous`` and ``flatten(1, 2)`` too, ``nn.ChannelShuffle``, ``F.channel_shuffle``). Each
is a :class:`~.fold_cat.Cat` of one input with its channels picked in an order, which its readers
take as they take a concatenation (:mod:`.fold_cat`): a dense Conv2d or a Linear after a flatten
with its weights' input columns in that order (no data moves), a pool, a flatten or a depthwise
conv once on the whole input. A mixin of :class:`hwaccel.compiler.trace._Reader`.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

from .errors import UnsupportedOp
from .fold_cat import gather
from .trace_ops import call_args

__all__ = ["ChannelReaders", "ChannelView"]


@dataclass(frozen=True)
class ChannelView:
    """Image ``value`` (per-sample ``shape``) seen as parts or groups of its channels: the
    ``(start, stop)`` channel ``ranges`` of a chunk or split's parts, or as ``groups`` x
    ``shape[0] // groups`` channels (``swapped``: transposed to ``shape[0] // groups`` x
    ``groups``) by a view to five dimensions."""

    value: str
    shape: tuple
    ranges: tuple = ()
    groups: int = 0
    swapped: bool = False

    def refuse(self, where: str):
        what = "a tuple result" if self.ranges else "a view of an image's channel groups"
        raise UnsupportedOp(what, where, "index a chunk or split, view or flatten channel "
                                         "groups back to (channels, height, width) first"
                            if self.ranges else
                            "only a channel shuffle: transpose the groups (dims 1 and 2), "
                            "then view or flatten them back to (channels, height, width)")


def shuffled(channels: int, groups: int) -> list[int]:
    """The source channel of each channel of a shuffle of ``channels`` in ``groups``."""
    n = channels // groups
    return [g * n + i for i in range(n) for g in range(groups)]


class ChannelReaders:
    """Reads channel slices, chunks and shuffles of images into :class:`~.fold_cat.Cat` ops."""

    def channel_module(self, node, where: str, m) -> bool:
        """Read module ``m`` if it is an ``nn.ChannelShuffle``; whether it was."""
        import torch.nn as nn

        if not isinstance(m, nn.ChannelShuffle):
            return False
        self.shuffle(node, where, m.groups)
        return True

    def channel_call(self, node, t, name: str, where: str) -> bool:
        """Read ``node`` if it moves an image's channels; whether it did."""
        import torch
        import torch.nn.functional as F

        arg = node.args[0] if node.args else None
        src = self.env.get(arg) if hasattr(arg, "users") else None
        image = hasattr(arg, "users") and len(self.shape(arg)) == 3
        if t is operator.getitem and isinstance(src, ChannelView) and src.ranges:
            a, b = src.ranges[node.args[1]]
            self.pick(node, where, src.value, src.shape, range(a, b))
        elif t is operator.getitem and image and isinstance(node.args[1], tuple):
            self.channel_slice(node, where, node.args[1])
        elif name in ("split", "chunk") and t in (torch.split, torch.chunk, "split",
                                                  "chunk") and image:
            self.channel_split(node, where, name)
        elif name in ("view", "reshape") and image and len(self.shape(node)) == 4:
            self.group(node, where)
        elif isinstance(src, ChannelView) and src.groups:
            self.ungroup(node, where, name, src)
        elif t in (F.channel_shuffle, getattr(torch, "channel_shuffle", None),
                   getattr(torch, "native_channel_shuffle", None), "channel_shuffle"):
            self.shuffle(node, where, call_args(node, ("input", "groups"), {})["groups"])
        else:
            return False
        return True

    def pick(self, node, where: str, value: str, shape: tuple, channels) -> None:
        """``node`` is channels ``channels`` of image ``value``, in that order."""
        self.emit(node, gather(self.name(node), where, [(value, shape, c) for c in channels]))

    def channel_slice(self, node, where: str, idx: tuple) -> None:
        shape, sl = self.shape(node.args[0]), slice(None)
        rest = idx[2:]
        if len(idx) < 2 or idx[0] != sl or not isinstance(idx[1], slice) or \
                rest not in ((), (Ellipsis,), (sl,), (sl, sl)):
            raise UnsupportedOp("indexing", where, f"[{idx!r}] of an image; only a slice of "
                                                   f"its channels, x[:, a:b] or x[:, a:b:s]")
        channels = range(*idx[1].indices(shape[0]))
        if not channels:
            raise UnsupportedOp("indexing", where, f"[{idx!r}] picks no channel of "
                                                   f"{shape[0]}")
        self.pick(node, where, self.value(node.args[0], where), shape, channels)

    def channel_split(self, node, where: str, name: str) -> None:
        a = call_args(node, ("tensor", "split_size_or_sections" if name == "split" else
                             "chunks", "dim"), {"dim": 0})
        shape = self.shape(node.args[0])
        if a["dim"] not in (1, -2 if node.args[0] in self.lines else -3):
            raise UnsupportedOp(name, where, f"dim={a['dim']} of an image {shape}; only "
                                             f"along its channels (dim=1)")
        ranges, at = [], 0
        for m in node.meta["tensor_meta"]:
            ranges.append((at, at + m.shape[1]))
            at += m.shape[1]
        self.env[node] = ChannelView(self.value(node.args[0], where), shape, tuple(ranges))

    def group(self, node, where: str) -> None:
        """A view of an image's channels as ``(groups, channels // groups)``."""
        src, dst = self.shape(node.args[0]), self.shape(node)
        if dst[0] * dst[1] != src[0] or dst[2:] != src[1:]:
            raise UnsupportedOp("reshape", where, f"per-sample shape {src} -> {dst}; only an "
                                                  f"image's channels as (groups, channels "
                                                  f"// groups) for a channel shuffle")
        self.env[node] = ChannelView(self.value(node.args[0], where), src, groups=dst[0])

    def ungroup(self, node, where: str, name: str, v: ChannelView) -> None:
        """A transpose of the channel groups, ``contiguous``, or the view back to an image."""
        dims = node.args[1:]
        if name == "permute" and len(dims) == 1:
            dims = tuple(dims[0])
        dims = tuple(d % 5 if isinstance(d, int) else d for d in dims)
        if name == "contiguous":
            self.env[node] = v
        elif name == "transpose" and sorted(dims) == [1, 2] or name == "permute" and \
                dims == (0, 2, 1, 3, 4):
            self.env[node] = ChannelView(v.value, v.shape, groups=v.groups,
                                         swapped=not v.swapped)
        elif name in ("view", "reshape", "flatten") and self.shape(node) == v.shape and (
                name != "flatten" or call_args(node, ("input", "start_dim", "end_dim"),
                                               {"start_dim": 0, "end_dim": -1})
                ["start_dim"] == 1):
            order = shuffled(v.shape[0], v.groups) if v.swapped else range(v.shape[0])
            self.pick(node, where, v.value, v.shape, order)
        else:
            v.refuse(where)

    def shuffle(self, node, where: str, groups: int) -> None:
        shape = self.shape(node.args[0])
        if len(shape) != 3 or shape[0] % groups:
            raise UnsupportedOp("channel shuffle", where, f"of {groups} groups on a per-sample "
                                                          f"shape {shape}; an image whose "
                                                          f"channels the groups divide")
        self.pick(node, where, self.value(node.args[0], where), shape,
                  shuffled(shape[0], groups))
