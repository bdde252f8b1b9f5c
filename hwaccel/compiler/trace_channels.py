"""The tracer's readers of channel moves on images: a slice ``x[:, a:b]``, a chunk or split along
channels (``x.chunk(n, 1)``, ``x.split(s, 1)``, ``torch.chunk``, ``torch.split``) and a channel
shuffle (``x.view(b, g, c // g, h, w).transpose(1, 2).reshape(b, c, h, w)``, with ``permute``,
``contiguous`` and ``flatten(1, 2)`` too, ``nn.ChannelShuffle``, ``F.channel_shuffle``). Each
is a :class:`~.fold_cat.Cat` of one input with its channels picked in an order, which its readers
take as they take a concatenation (:mod:`.fold_cat`): a dense Conv2d or a Linear after a flatten
with its weights' input columns in that order (no data moves), a pool, a flatten or a depthwise
conv once on the whole input. A mixin of :class:`hwaccel.compiler.trace._Reader`.

Rows and columns sliced at a step of 1 or 2 (``x[:, :, ::2, ::2]``, a crop ``x[:, :, 2:-2,
2:-2]``) and zero channels padded around an image (``F.pad(x, (0, 0, 0, 0, a, b))``: together,
a CIFAR ResNet's option-A shortcut) do move data: each is a conv whose weights pick the kept
pixels and channels (0 and 1, a window at the step whose tap is the kept pixel), one conv for
both where the pad reads the slice alone, quantized at its input's scale
(:func:`.quantize.is_pick`); a crop of every channel at a step of 1 is depthwise picks of
windows of at most 3 (:func:`_crops`), exact at its input's scale.
"""

from __future__ import annotations

import dataclasses
import operator
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import UnsupportedOp
from .fold_cat import gather
from .trace_ops import call_args, torch_shape

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
    last: bool = False   # permuted channels-last, (height, width, channels)
    squeezed: bool = False   # a (C, 1, 1) image with one of its 1s squeezed
    rows: bool = False   # (C, H * W): its pixels in a row, x.view(b, c, -1)

    def refuse(self, where: str):
        if self.rows:
            raise UnsupportedOp("an image viewed as (channels, pixels)", where,
                                "x.view(b, c, -1) or x.flatten(2) only reduced over its pixels "
                                "by .mean(-1), .sum(-1), .amax(-1) or .max(-1)")
        if self.squeezed:
            raise UnsupportedOp("a squeezed image", where, "x.squeeze(-1) of a (C, 1, 1) image "
                                                           "only squeezed again to a vector")
        if self.last:
            raise UnsupportedOp("a channels-last image", where, "x.permute(0, 2, 3, 1) only "
                                                                "flattened to a vector (a "
                                                                "Keras-ordered flatten)")
        what = "a tuple result" if self.ranges else "a view of an image's channel groups"
        raise UnsupportedOp(what, where, "index a chunk or split, view or flatten channel "
                                         "groups back to (channels, height, width) first"
                            if self.ranges else
                            "only a channel shuffle: transpose the groups (dims 1 and 2), "
                            "then view or flatten them back to (channels, height, width)")


def _kept(axis, n: int):
    """``(start, step, window)`` of an image axis of ``n`` sliced by ``axis`` at a step of 1 or
    2, when it keeps a value: a conv of that window at that step, its tap ``start``, keeps the
    values the slice does (the window covers the rows a slice short of the end drops); None
    otherwise."""
    if not isinstance(axis, slice):
        return None
    start, stop, step = axis.indices(n)
    kept = len(range(start, stop, step))
    if step not in (1, 2) or not kept:
        return None
    return start, step, max(start + 1, n - step * kept + 1)   # the smallest such window


def _crops(name: str, c: int, cut: list[int]) -> list:
    """A crop of ``cut`` = (top, bottom, left, right) rows and columns off ``c`` channels as
    depthwise picks of windows of at most 3 (the depthwise engine's), two rows or columns
    each: exact at the input's scale, channels times fewer MACs than a dense pick."""
    ops = []
    while any(cut):
        t, lft = min(cut[0], 2), min(cut[2], 2)
        b, r = min(cut[1], 2 - t), min(cut[3], 2 - lft)
        w = np.zeros((c, 1, t + 1 + b, lft + 1 + r))
        w[:, 0, t, lft] = 1.0
        ops.append(ir.Conv2d(f"{name}.crop{len(ops)}", w, np.zeros(c), groups=c, exact=True))
        cut = [cut[0] - t, cut[1] - b, cut[2] - lft, cut[3] - r]
    return ops


_PER_PIXEL = ("layer_norm", "linear", "gelu", "relu", "relu6", "silu", "sigmoid", "tanh",
              "hardswish", "hardsigmoid", "mul", "add", "sub", "truediv", "div", "contiguous",
              "dropout", "clamp", "leaky_relu", "iadd", "imul")


def _per_pixel(node, modules: dict) -> bool:
    """Whether fx ``node`` makes each pixel of a channels-last image from that pixel alone."""
    import torch.nn as nn

    if node.op == "call_module":
        return isinstance(modules.get(node.target), (
            nn.LayerNorm, nn.Linear, nn.Dropout, nn.Identity, nn.GELU, nn.ReLU, nn.ReLU6,
            nn.Hardtanh, nn.LeakyReLU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Hardswish))
    name = node.target if node.op == "call_method" else getattr(node.target, "__name__", "")
    return node.op in ("call_method", "call_function") and name in _PER_PIXEL


def _dims(node) -> tuple:
    """A permute's dimensions, non-negative (``x.permute(0, 2, 3, 1)``, ``permute(x, (..))``)."""
    dims = node.args[1:] if len(node.args) > 2 else tuple(node.args[1]) if len(
        node.args) == 2 else tuple(node.kwargs.get("dims", ()))
    return tuple(d % 4 if isinstance(d, int) else d for d in dims)


def shuffled(channels: int, groups: int) -> list[int]:
    """The source channel of each channel of a shuffle of ``channels`` in ``groups``."""
    n = channels // groups
    return [g * n + i for i in range(n) for g in range(groups)]


class ChannelReaders:
    """Reads channel slices, chunks and shuffles of images into :class:`~.fold_cat.Cat` ops."""

    def channel_module(self, node, where: str, m) -> bool:
        """Read module ``m`` if it is an ``nn.ChannelShuffle``; whether it was."""
        import torch.nn as nn

        src = self.env.get(node.args[0]) if node.args else None
        if isinstance(m, nn.Flatten) and isinstance(src, ChannelView) and src.last:
            self.flatten_last(node, where, src)
            return True
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
        elif name == "unsqueeze" and node in self.lines and src == ir.INPUT:
            self.env[node] = ir.INPUT   # a waveform made a line (trace_line.line_input)
        elif name == "squeeze" and image and self.shape(arg)[1:] == (1, 1):
            self.squeeze(node, where, ChannelView(self.value(arg, where), self.shape(arg)))
        elif isinstance(src, ChannelView) and src.squeezed and name in ("squeeze", "flatten",
                                                                        "view", "reshape"):
            self.squeeze(node, where, src)
        elif name in ("view", "reshape", "flatten") and image and isinstance(src, str) and \
                arg not in self.lines and self.shape(node) == (self.shape(arg)[0], int(np.prod(
                    self.shape(arg)[1:]))):   # an image's pixels in a row (not a head's join)
            self.env[node] = ChannelView(self.value(arg, where), self.shape(arg), rows=True)
        elif isinstance(src, ChannelView) and src.rows and name in ("mean", "sum", "amax", "max"):
            self.pixels_reduce(node, where, name, src)   # x.view(b, c, -1).mean(-1) ...
        elif name == "permute" and image and _dims(node) == (0, 2, 3, 1):
            self.env[node] = ChannelView(self.value(arg, where), self.shape(arg), last=True)
            self.pixels.add(node)
        elif name == "permute" and _dims(node) == (0, 3, 1, 2) and self.pixel_rows(arg):
            self.unary(node, where, lambda n: ir.SeqView(n, True, hw=self.shape(node)[1:]))
        elif isinstance(src, ChannelView) and src.last and name == "contiguous":
            self.env[node] = src
        elif isinstance(src, ChannelView) and src.last and name in ("flatten", "view",
                                                                     "reshape"):
            self.flatten_last(node, where, src)
        elif t in (F.channel_shuffle, getattr(torch, "channel_shuffle", None),
                   getattr(torch, "native_channel_shuffle", None), "channel_shuffle"):
            self.shuffle(node, where, call_args(node, ("input", "groups"), {})["groups"])
        else:
            return False
        return True

    def squeeze(self, node, where: str, v: ChannelView) -> None:
        """``x.squeeze(-1).squeeze(-1)`` (or ``squeeze((2, 3))``) of a pooled ``(C, 1, 1)``
        image: its flatten to a vector; after one squeeze, a marker only another takes."""
        dst = self.shape(node)
        if dst == v.shape[:1]:
            self.emit(node, ir.Flatten(self.name(node), inputs=(v.value,)))
        elif dst == v.shape[:2] and not v.squeezed:
            self.env[node] = dataclasses.replace(v, squeezed=True)
        elif v.squeezed:
            v.refuse(where)
        else:
            hint = "; x.squeeze() squeezes a batch of one too: name the dims, squeeze((2, 3))" \
                if dst == () else ""
            raise UnsupportedOp("squeeze", where, f"per-sample shape {v.shape} -> {dst}; only "
                                                  f"a (C, 1, 1) image's 1s, to a vector{hint}")

    def flatten_last(self, node, where: str, v: ChannelView) -> None:
        """The flatten of ``x.permute(0, 2, 3, 1)``: pixel by pixel, each pixel's channels
        (Keras' order). The image's own flatten is channel by channel, so it is that flatten's
        values picked in this order: a Linear that reads it takes its weights' columns from
        the picks (no data moves)."""
        c, h, w = v.shape
        if self.shape(node) != (c * h * w,):
            v.refuse(where)
        flat = self.put(ir.Flatten(self.fresh(f"{node.name}.chw"), inputs=(v.value,)))
        self.pick(node, where, flat, (c * h * w,),
                  [k * h * w + p for p in range(h * w) for k in range(c)])

    def view_value(self, arg, v: ChannelView, where: str) -> str:
        """The value an op reads through a :class:`ChannelView` ``v``: of a channels-last image
        (``x.permute(0, 2, 3, 1)``), the sequence of its pixels (:class:`~.ir_float.SeqView`,
        no data moved), which a LayerNorm, a Linear, a table or a constant reads per pixel as
        a transformer's tokens, until ``permute(0, 3, 1, 2)`` views it as the image again; any
        other view is refused by name."""
        if not v.last:
            v.refuse(where)
        self.per_pixel_readers(arg)
        self.env[arg] = name = self.put(ir.SeqView(self.fresh(f"{arg.name}.pixels"),
                                                   inputs=(v.value,)))
        return name

    def per_pixel_readers(self, node) -> None:
        """Refuse by name a reader of channels-last ``node`` (and of what is made from it, up
        to ``permute(0, 3, 1, 2)``) that is not per pixel: held as a sequence, a reduction over
        its rows or a reshape would mean its pixels."""
        todo, seen = list(node.users), set()
        while todo:
            user = todo.pop()
            if user in seen or (getattr(user, "target", None) == "permute"
                                and _dims(user) == (0, 3, 1, 2)):
                continue
            seen.add(user)
            if not _per_pixel(user, self.modules):
                raise UnsupportedOp("a channels-last image", user.name, "x.permute(0, 2, 3, 1) "
                                    "read per pixel only (LayerNorm, Linear, GELU, ReLU and "
                                    "pointwise functions, a constant a channel, adds), then "
                                    "permute(0, 3, 1, 2) back; or flattened to a vector")
            todo += list(user.users)

    def pixel_rows(self, node) -> bool:
        """Whether ``node`` is a channels-last ``(H, W, C)`` value, held as the sequence of its
        pixels ``(H W, C)``: a ``permute(0, 2, 3, 1)`` of an image, or made from one with its
        ``H`` and ``W``, not permuted back."""
        if node in self.pixels:
            return True
        if getattr(node, "target", None) == "permute" or not hasattr(node, "all_input_nodes"):
            return False
        hw = torch_shape(node)[:2]
        if len(torch_shape(node)) == 3 and any(len(torch_shape(a)) == 3 and torch_shape(a)[:2] == hw
                                         and self.pixel_rows(a) for a in node.all_input_nodes):
            self.pixels.add(node)
            return True
        return False

    def pick(self, node, where: str, value: str, shape: tuple, channels) -> None:
        """``node`` is channels ``channels`` of image ``value``, in that order."""
        self.emit(node, gather(self.name(node), where, [(value, shape, c) for c in channels]))

    def channel_slice(self, node, where: str, idx: tuple) -> None:
        """``x[:, a:b:s]``: a pick of channels (no data moves); with rows and columns at a step
        of 1 or 2 (``x[:, :, ::2, ::2]``, a CIFAR ResNet's option-A shortcut; ``x[:, :, 2:-2,
        2:-2]``, a U-Net's crop), a conv of the picked channels that takes each kept pixel
        (:meth:`_select`)."""
        shape, sl = self.shape(node.args[0]), slice(None)
        rest = idx[2:]
        if rest and rest[0] is Ellipsis:
            rest = rest[1:]
        line = node.args[0] in self.lines   # (C, L) held as (C, 1, L): its axis is the width
        axes = (sl, (*rest, sl)[0]) if line else (*rest, sl, sl)[:2]
        steps = [_kept(a, n) for a, n in zip(axes, shape[1:])]
        if len(idx) < 2 or idx[0] != sl or not isinstance(idx[1], slice) or \
                len(rest) > 2 - line or None in steps:
            raise UnsupportedOp("indexing", where, f"[{idx!r}] of an image; only a slice of "
                                                   f"its channels, x[:, a:b] or x[:, a:b:s], "
                                                   f"and of its rows and columns at a step of "
                                                   f"1 or 2")
        channels = range(*idx[1].indices(shape[0]))
        if not channels:
            raise UnsupportedOp("indexing", where, f"[{idx!r}] picks no channel of "
                                                   f"{shape[0]}")
        src = self.value(node.args[0], where)
        if steps == [(0, 1, 1), (0, 1, 1)]:
            return self.pick(node, where, src, shape, channels)
        (top, sh, kh), (left, sw, kw) = steps
        if list(channels) == list(range(shape[0])) and (sh, sw) == (1, 1) and (kh, kw) != (
                top + 1, left + 1):   # a crop of every channel: depthwise picks
            return self.chain(node, self.name(node), src, _crops(
                self.name(node), shape[0], [top, kh - 1 - top, left, kw - 1 - left]))
        w = np.zeros((len(channels), shape[0], kh, kw))
        w[np.arange(len(channels)), list(channels), top, left] = 1.0
        self._select(node, ir.Conv2d(self.name(node), w, np.zeros(len(channels)),
                                     stride=ir.squash((sh, sw)), inputs=(src,)))

    def _select(self, node, conv) -> None:
        """Emit ``conv``, a pick of pixels and channels whose weights are 0 and 1: a window of
        rows and columns at the step (:func:`_kept`), its tap the kept pixel, so its output
        is the input's values at the input's scale (:func:`.quantize.is_pick`): no rounding
        more."""
        self.emit(node, conv)
        self.selections.add(conv.name)

    def channel_pad(self, node, where: str, front: int, back: int) -> None:
        """``F.pad`` of an image's channels with ``front`` and ``back`` zero channels: a pick
        conv with zero rows for them, the slice's own conv where a pixel pick is its input and
        nothing else reads that."""
        arg = node.args[0]
        if arg in self.lines:
            raise UnsupportedOp("F.pad of a line's channels", where, "zero channels are padded "
                                "around an image's, (N, C, H, W)")
        src, c = self.value(arg, where), self.shape(arg)[0]
        if src in self.selections and len(arg.users) == 1:
            i, op = next((i, op) for i, op in enumerate(self.ops) if op.name == src)
            w = np.zeros((front + op.weight.shape[0] + back, *op.weight.shape[1:]))
            w[front:front + op.weight.shape[0]] = op.weight
            self.ops[i] = dataclasses.replace(op, weight=w, bias=np.zeros(len(w)))
            self.env[node] = src
            return
        w = np.zeros((front + c + back, c, 1, 1))
        w[np.arange(front, front + c), np.arange(c), 0, 0] = 1.0
        self._select(node, ir.Conv2d(self.name(node), w, np.zeros(len(w)), inputs=(src,)))

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
