"""The tracer's readers of upsamplings: ``nn.ConvTranspose2d`` of kernel = stride, nearest
``nn.Upsample`` / ``F.interpolate`` by a whole factor, and ``nn.PixelShuffle`` /
``F.pixel_shuffle``. A mixin of :class:`hwaccel.compiler.trace._Reader`.

Each is a :class:`~.ir_float.DepthToSpace` by the factor ``f``, and the first two the 1 x 1
conv into it (:class:`~.ir_float.Conv2d`) that makes its ``f * f`` channels a channel:

* a transposed conv of kernel = stride = ``f`` (no padding, no output padding, not grouped)
  writes each input pixel's ``f x f`` patch, so its ``Cin x Cout x f x f`` weights are a 1 x 1
  conv into ``Cout * f * f`` channels (channel ``c * f * f + a * f + b`` is output channel
  ``c`` at row ``a``, column ``b`` of the patch) and its bias that conv's, each ``f * f`` times;
  the same function in float;
* a nearest upsampling by ``f`` is that with the identity's weights: each channel copied into
  its ``f * f`` channels (``nearest-exact`` is the same at a whole factor);
* a pixel shuffle is the depth-to-space alone where a 1 x 1 conv is its input, and an identity
  1 x 1 conv into it where anything else is (ESPCN's 3 x 3 conv): the accelerator writes a
  depth-to-space only from a 1 x 1 conv that nothing else reads
  (:func:`~.lower_types.depth_to_space_convs`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import ir
from .errors import UnsupportedOp
from .fold import BatchNorm, Relu
from .trace_ops import call_args, np_of, pair

__all__ = ["UpsampleReaders", "with_writers"]

_NEAREST = ("nearest", "nearest-exact")


class UpsampleReaders:
    """Reads transposed convs, nearest upsamplings and pixel shuffles."""

    def upsample_module(self, node, where: str, m) -> bool:
        """Read module ``m`` if it is one of the module docstring's; whether it was."""
        import torch.nn as nn

        if isinstance(m, nn.ConvTranspose2d):
            self.conv_transpose(node, where, m)
        elif isinstance(m, nn.Upsample):   # nn.UpsamplingNearest2d is one
            self.nearest(node, where, m.mode, type(m).__name__)
        elif isinstance(m, nn.PixelShuffle):
            self.depth_to_space(node, where, m.upscale_factor, "PixelShuffle")
        else:
            return False
        return True

    def upsample_call(self, node, t, name: str, where: str) -> bool:
        """Read ``F.interpolate`` (``F.upsample``, ``F.upsample_nearest``) and
        ``F.pixel_shuffle``; whether ``node`` was one of them."""
        import torch
        import torch.nn.functional as F

        if t in (F.interpolate, F.upsample, F.upsample_nearest):
            a = call_args(node, ("input", "size", "scale_factor", "mode"), {"mode": "nearest"})
            self.nearest(node, where, a["mode"], name)
        elif t in (F.pixel_shuffle, torch.pixel_shuffle):
            a = call_args(node, ("input", "upscale_factor"), {})
            self.depth_to_space(node, where, a["upscale_factor"], name)
        else:
            return False
        return True

    def _factor(self, node, where: str, what: str) -> int:
        """The whole factor an upsampling ``node`` scales both axes by (from the shapes)."""
        self.image(node, where, what)
        (c, h, w), (oc, oh, ow) = self.shape(node.args[0]), self.shape(node)
        f = oh // h
        if oc != c or f < 1 or (oh, ow) != (f * h, f * w):
            raise UnsupportedOp(f"{what} size", where,
                                f"{(c, h, w)} -> {(oc, oh, ow)}; a whole factor, the same on "
                                f"both axes")
        return f

    def conv_transpose(self, node, where: str, m) -> None:
        """A ConvTranspose2d of kernel = stride (the module docstring)."""
        k, s = pair(m.kernel_size), pair(m.stride)
        attrs = [("kernel_size", k, k[0] == k[1] and k == s), ("stride", s, s == k),
                 ("padding", m.padding, pair(m.padding) == (0, 0)),
                 ("output_padding", m.output_padding, pair(m.output_padding) == (0, 0)),
                 ("groups", m.groups, m.groups == 1),
                 ("dilation", m.dilation, pair(m.dilation) == (1, 1)),
                 ("padding_mode", m.padding_mode, m.padding_mode == "zeros")]
        bad = [f"{n}={v!r}" for n, v, ok in attrs if not ok]
        if len(node.args) > 1 or node.kwargs:
            bad.append("an output_size argument")
        if bad:
            raise UnsupportedOp("ConvTranspose2d attribute", where, ", ".join(bad) + "; a "
                                "square kernel at its own stride, no padding, not grouped")
        self.image(node, where, "ConvTranspose2d")
        f = k[0]
        w = np_of(m.weight)   # Cin x Cout x f x f
        bias = np_of(m.bias) if m.bias is not None else np.zeros(m.out_channels)
        w1 = w.transpose(1, 2, 3, 0).reshape(-1, w.shape[0])[:, :, None, None]
        self._through_conv(node, where, w1, np.repeat(bias, f * f), f)

    def nearest(self, node, where: str, mode: str, what: str) -> None:
        """A nearest upsampling by a whole factor: a copy of each channel into ``f * f``."""
        if mode not in _NEAREST:
            raise UnsupportedOp(f"{what} mode", where, f"mode={mode!r}; nearest (or "
                                f"nearest-exact) by a whole factor")
        f = self._factor(node, where, what)
        c = self.shape(node.args[0])[0]
        w1 = np.repeat(np.eye(c), f * f, axis=0)[:, :, None, None]
        self._through_conv(node, where, w1, np.zeros(c * f * f), f)

    def _through_conv(self, node, where: str, w1, bias, f: int) -> None:
        src, name = self.value(node.args[0], where), self.name(node)
        if f == 1:
            return self.emit(node, ir.Conv2d(name, w1, bias, inputs=(src,)))
        conv = self.put(ir.Conv2d(self.fresh(f"{name}.conv"), w1, bias, inputs=(src,)))
        self.emit(node, ir.DepthToSpace(name, f, inputs=(conv,)))

    def depth_to_space(self, node, where: str, f, what: str) -> None:
        """A pixel shuffle: of a 1 x 1 conv (through the ReLUs and batch norms that fold into
        it), the depth-to-space alone; of anything else (ESPCN's 3 x 3 conv, an add), an
        identity 1 x 1 conv in front of it, ``<name>.copy``, which writes it: ``(f f C)``
        squared MACs a pixel, its values its input's at the scale calibration gives them."""
        self.image(node, where, what)
        f, c = int(f), self.shape(node.args[0])[0]
        if f < 1 or c % (f * f):
            raise UnsupportedOp(f"{what} attribute", where, f"upscale_factor={f!r} of {c} "
                                f"channels")
        src, name = self.value(node.args[0], where), self.name(node)
        if f == 1:
            return self.alias(node, where)
        if not _pointwise_conv(self.ops, src):
            src = self.put(_identity(self.fresh(f"{name}.copy"), c, src))
        self.emit(node, ir.DepthToSpace(name, f, inputs=(src,)))


def with_writers(graph: ir.Graph) -> ir.Graph:
    """``graph`` with an identity 1 x 1 conv (``<name>.copy``) in front of each depth-to-space
    whose input is not a dense 1 x 1 conv that it alone reads: what the preset's passes made of
    one (:mod:`.split_convs` splits a wide conv into groups, and a reading 1 x 1 conv into one
    per group and their adds); ``graph`` itself when every one has its writer."""
    shapes, readers, ops = graph.shapes(), graph.readers(), []
    for op in graph.ops:
        if isinstance(op, ir.DepthToSpace) and not (
                _pointwise_conv(graph.ops, op.inputs[0]) and len(readers[op.inputs[0]]) == 1):
            c, name, k = shapes[op.inputs[0]][0], f"{op.name}.copy", 1
            while name in shapes:
                k += 1
                name = f"{op.name}.copy#{k}"
            copy = _identity(name, c, op.inputs[0])
            op = ir.DepthToSpace(op.name, op.factor, inputs=(copy.name,))
            ops.append(copy)
        ops.append(op)
    return graph if len(ops) == len(graph.ops) else dataclasses.replace(graph, ops=tuple(ops))


def _identity(name: str, c: int, src: str) -> ir.Conv2d:
    """The identity 1 x 1 conv of ``c`` channels of ``src`` (a depth-to-space's writer)."""
    return ir.Conv2d(name, np.eye(c)[:, :, None, None], np.zeros(c), inputs=(src,))


def _pointwise_conv(ops, value: str) -> bool:
    """Whether ``value`` is a dense 1 x 1 conv's output (stride 1, unpadded), through the markers
    that fold into it (:mod:`.fold`)."""
    by_name = {op.name: op for op in ops}
    op = by_name.get(value)
    while isinstance(op, (Relu, BatchNorm)):
        op = by_name.get(op.inputs[0])
    return isinstance(op, ir.Conv2d) and op.pointwise
