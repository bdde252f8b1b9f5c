"""The tracer's readers of upsamplings: ``nn.ConvTranspose2d``, nearest ``nn.Upsample`` /
``F.interpolate`` by a whole factor, and ``nn.PixelShuffle`` / ``F.pixel_shuffle``. A mixin of
:class:`hwaccel.compiler.trace._Reader`.

Each is a :class:`~.ir_float.DepthToSpace` by the factor ``f``, and the first two the conv into
it (:class:`~.ir_float.Conv2d`) that makes its ``f * f`` channels a channel:

* a transposed conv at stride ``f`` (the same on both axes; any kernel, padding and output
  padding whose output is whole ``f x f`` patches; not dilated; grouped, or depthwise, as the
  dense one with zero weights between the groups: groups times the MACs) is a conv over its
  input into its ``f x f`` output phases: output row ``f i + a`` sums input rows ``i + d`` times
  kernel row ``a + p - f d`` (:func:`_phases`), so each phase is a conv of the taps it takes
  and their union one conv (:func:`phase_weights`; channel ``c * f * f + a * f + b`` is output
  channel ``c`` at phase ``(a, b)``, zero at a tap the phase lacks), with its bias ``f * f``
  times. A kernel = stride (a U-Net's 2 x 2) makes it a 1 x 1 conv; DCGAN's 4 x 4 at stride 2
  and padding 1 a 3 x 3 (9/4 of the transposed conv's MACs), a decoder's 3 x 3 with output
  padding a 2 x 2 padded below and right (16/9); a transposed conv over one pixel writes one
  kernel-sized patch at any stride. The same function in float, the same products in int8;
* a nearest upsampling by ``f`` is that with the identity's weights: each channel copied into
  its ``f * f`` channels (``nearest-exact`` is the same at a whole factor);
* a pixel shuffle is the depth-to-space alone where a 1 x 1 conv is its input.

The accelerator writes a depth-to-space only from a 1 x 1 conv that nothing else reads
(:func:`~.lower_types.depth_to_space_convs`), so a conv into one that is not 1 x 1 (a transposed
conv's phases, ESPCN's 3 x 3 before a pixel shuffle) gets an identity 1 x 1 conv that writes
it, ``<name>.copy``: ``(f f C)`` squared MACs a pixel, its values its input's at its input's
scale (:func:`.quantize.is_pick`).
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from . import ir
from .errors import UnsupportedOp
from .fold import BatchNorm, Relu
from .trace_ops import block_diagonal, call_args, np_of, pair

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
        """A ConvTranspose2d (the module docstring): a conv over its input into its ``f x f``
        output phases (:func:`phase_weights`), into a depth-to-space by its stride ``f``."""
        k, s, p, op = (pair(v) for v in (m.kernel_size, m.stride, m.padding, m.output_padding))
        attrs = [("stride", s, s[0] == s[1]),
                 ("dilation", m.dilation, pair(m.dilation) == (1, 1)),
                 ("padding_mode", m.padding_mode, m.padding_mode == "zeros")]
        bad = [f"{n}={v!r}" for n, v, ok in attrs if not ok]
        if len(node.args) > 1 or node.kwargs:
            bad.append("an output_size argument")
        if bad:
            raise UnsupportedOp("ConvTranspose2d attribute", where, ", ".join(bad) + "; the "
                                "same stride on both axes, not dilated")
        self.image(node, where, "ConvTranspose2d")
        hw = self.shape(node.args[0])[1:]
        if hw == (1, 1) and p == op == (0, 0) and k[0] == k[1]:
            s = k   # over one pixel (DCGAN's first layer) any stride writes one k x k patch
        f = s[0]
        axes = [_phases(*a) for a in zip(k, s, p, op, hw)]
        for axis, (got, n, size) in enumerate(zip(axes, hw, self.shape(node)[1:])):
            if isinstance(got, str):
                raise UnsupportedOp("ConvTranspose2d attribute", where, f"kernel_size={k}, "
                                    f"stride={s}, padding={p}, output_padding={op} over "
                                    f"{n} {('rows', 'columns')[axis]} into {size}: {got}")
        w = phase_weights(block_diagonal(np_of(m.weight), m.groups), f, [a[0] for a in axes])
        bias = np_of(m.bias) if m.bias is not None else np.zeros(m.out_channels)
        (_, top, bottom), (_, left, right) = axes
        self._through_conv(node, where, w, np.repeat(bias, f * f), f,
                           padding=ir.squash((top, left, bottom, right)))

    def nearest(self, node, where: str, mode: str, what: str) -> None:
        """A nearest upsampling by a whole factor: a copy of each channel into ``f * f``."""
        if mode not in _NEAREST:
            raise UnsupportedOp(f"{what} mode", where, f"mode={mode!r}; nearest (or "
                                f"nearest-exact) by a whole factor")
        f = self._factor(node, where, what)
        c = self.shape(node.args[0])[0]
        w1 = np.repeat(np.eye(c), f * f, axis=0)[:, :, None, None]
        self._through_conv(node, where, w1, np.zeros(c * f * f), f)

    def _through_conv(self, node, where: str, w, bias, f: int, padding=0) -> None:
        """Conv ``w`` (stride 1) of ``node``'s input into a depth-to-space by ``f``, through an
        identity 1 x 1 conv (``<name>.copy``) where ``w`` is not 1 x 1 and unpadded."""
        src, name = self.value(node.args[0], where), self.name(node)
        if f == 1:
            return self.emit(node, ir.Conv2d(name, w, bias, padding=padding, inputs=(src,)))
        conv = ir.Conv2d(self.fresh(f"{name}.conv"), w, bias, padding=padding, inputs=(src,))
        self._written(node, name, self.put(conv), w.shape[0], f)

    def _written(self, node, name: str, src: str, c: int, f: int) -> None:
        """``node`` (``name``), the depth-to-space by ``f`` of ``src`` (``c`` channels), through
        an identity 1 x 1 conv ``<name>.copy`` that writes it where ``src`` is not a 1 x 1
        conv's."""
        if not _pointwise_conv(self.ops, src):
            src = self.put(_identity(self.fresh(f"{name}.copy"), c, src))
        self.emit(node, ir.DepthToSpace(name, f, inputs=(src,)))

    def depth_to_space(self, node, where: str, f, what: str) -> None:
        """A pixel shuffle: of a 1 x 1 conv (through the ReLUs and batch norms that fold into
        it), the depth-to-space alone; of anything else (ESPCN's 3 x 3 conv, an add), an
        identity 1 x 1 conv in front of it, ``<name>.copy``, which writes it: ``(f f C)``
        squared MACs a pixel, its values its input's at its input's scale."""
        self.image(node, where, what)
        f, c = int(f), self.shape(node.args[0])[0]
        if f < 1 or c % (f * f):
            raise UnsupportedOp(f"{what} attribute", where, f"upscale_factor={f!r} of {c} "
                                f"channels")
        if f == 1:
            return self.alias(node, where)
        src, name = self.value(node.args[0], where), self.name(node)
        self._written(node, name, src, c, f)


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


def _phases(k: int, s: int, p: int, op: int, n: int):
    """One axis of a transposed conv (kernel ``k``, stride ``s``, padding ``p``, output padding
    ``op``) over ``n`` inputs, as a conv over them into ``s`` output phases: output ``s i + a``
    sums input ``i + d`` times tap ``t = a + p - s d`` for each ``d`` whose tap is in the
    kernel, so the conv's kernel spans the offsets ``d`` of every phase, padded before and
    after. ``(taps, before, after)``, ``taps[a][u]`` the tap phase ``a`` takes at kernel
    position ``u`` (-1: none); a string saying why when no such conv gives the output."""
    out = (n - 1) * s - 2 * p + k + op
    lo, hi = -((k - 1 - p) // s), (s - 1 + p) // s   # the offsets d: ceil((p-k+1)/s)..
    before, after = -lo, out // s - n + hi
    if out % s:
        return f"{out} outputs, not a whole number of {s}-output patches"
    if before < 0 or after < 0 or before + after > hi - lo:
        return (f"its phases need a conv padded by {before} before and {after} after its "
                f"kernel of {hi - lo + 1}, and a conv's padding is less than its kernel")
    taps = [[t if 0 <= (t := a + p - s * (u + lo)) < k else -1 for u in range(hi - lo + 1)]
            for a in range(s)]
    return taps, before, after


def phase_weights(w, f: int, taps) -> np.ndarray:
    """A transposed conv's ``Cin x Cout x KH x KW`` weights ``w`` at stride ``f`` as a conv's
    ``(Cout f f) x Cin x len(taps[0][0]) x len(taps[1][0])`` weights: channel ``c f f + a f + b``
    is output channel ``c`` at phase ``(a, b)`` (pixel_shuffle's order), its taps per axis as
    :func:`_phases` gives them, zero where a phase has none."""
    (th, tw), (cin, cout) = taps, w.shape[:2]
    out = np.zeros((cout, f, f, cin, len(th[0]), len(tw[0])))
    for a, b in np.ndindex(f, f):
        for (u, t), (v, r) in itertools.product(enumerate(th[a]), enumerate(tw[b])):
            if t >= 0 and r >= 0:
                out[:, a, b, :, u, v] = w[:, :, t, r].T
    return out.reshape(cout * f * f, cin, *out.shape[4:])


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
