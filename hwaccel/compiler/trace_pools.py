"""The tracer's readers of pools: ``nn.MaxPool2d`` / ``F.max_pool2d`` of kernel = stride = 2,
4, 8 ... (2 x 2 pools in a row; in ceil mode :class:`~.fold_pools.CeilPool` where a side is
odd) or of 3 x 3 windows at stride 1 or 2 (:mod:`.fold_pools`),
``AdaptiveMaxPool2d`` to equal squares, ``AvgPool2d`` /
``F.avg_pool2d`` at stride = kernel (at any other stride, or padded, a depthwise conv),
``AdaptiveAvgPool2d`` to a size that divides the map and an image's ``x.mean((2, 3))``. A mixin
of :class:`hwaccel.compiler.trace._Reader`.
"""

from __future__ import annotations

import numpy as np

from . import ir
from .errors import UnsupportedOp
from .fold_affine import channel_affine, feature_affine
from .fold_pools import CeilPool, ChannelMax, OverlapPool, overlap_shape
from .trace_attention import Results
from .trace_ops import call_args, last_axis, pair

__all__ = ["PoolReaders"]


def _height_and_width(dim) -> bool:
    """Whether a reduction's ``dim`` is an image's height and width, ``(2, 3)`` or ``(-2, -1)``."""
    dims = (dim,) if isinstance(dim, int) else tuple(dim or ())
    return len(dims) == 2 and all(isinstance(d, int) for d in dims) and \
        {d % 4 for d in dims} == {2, 3}


def _channels(dim) -> bool:
    """Whether a reduction's ``dim`` is an image's channels, ``1`` or ``-3``."""
    dims = (dim,) if isinstance(dim, int) else tuple(dim or ())
    return len(dims) == 1 and isinstance(dims[0], int) and dims[0] % 4 == 1


def _max_chain(base: str, where: str, c: int, h: int, w: int) -> list:
    """The global max of ``c`` channels of an ``h x w`` map: a 2 x 2 pool where both sides are
    even, else the same pool in ceil mode (a :class:`~.fold_pools.CeilPool`, of a ReLU's
    output), down to one pixel."""
    ops = []
    while h > 1 or w > 1:
        name, half = f"{base}.pool{len(ops)}", ((h + 1) // 2, (w + 1) // 2)
        ops.append(ir.MaxPool2d(name) if h % 2 == 0 and w % 2 == 0 else
                   CeilPool(name, where, 2, (0, 0), c, (h, w), half))
        h, w = half
    return ops


def _reduce_ops(kind: str, where: str, base: str, shape: tuple, keepdim: bool) -> list:
    """The ops of an image's global max (``amax``, ``max``), sum or average over its pixels:
    :func:`_max_chain`, or the average pool (times the pixels for a sum); then,
    without ``keepdim``, the flatten to a vector."""
    c, h, w = shape
    if kind in ("amax", "max") and h * w < 2:
        raise UnsupportedOp(kind, where, f"over a {h}x{w} map; only over more than one pixel")
    ops = _max_chain(base, where, c, h, w) if kind in ("amax", "max") else [
        ir.AvgPool2d(f"{base}.pool", (h, w))]
    ops += [] if keepdim else [ir.Flatten(f"{base}.flat")]
    if kind == "sum":
        ops.append((feature_affine if not keepdim else channel_affine)(
            base, [float(h * w)] * c, [0.0] * c, ""))
    return ops


class PoolReaders:
    """Reads max and average pools into ``MaxPool2d`` and ``AvgPool2d`` ops."""

    def pool_module(self, node, where: str, m) -> bool:
        """Read module ``m`` if it is a max or average pool; whether it was one."""
        import torch.nn as nn

        if isinstance(m, nn.MaxPool2d):
            self.maxpool(node, where, {n: getattr(m, n) for n in (
                "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")})
        elif isinstance(m, nn.AvgPool2d):
            self.avgpool(node, where, {n: getattr(m, n) for n in (
                "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                "divisor_override")})
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.adaptive(node, where, m.output_size)
        elif isinstance(m, nn.AdaptiveMaxPool2d):
            self.adaptive_max(node, where, m.output_size, m.return_indices)
        else:
            return False
        return True

    def maxpool(self, node, where: str, a: dict, what: str = "MaxPool2d") -> None:
        """A max pool of kernel = stride = 2, 4, 8 ... (square, no padding): that many 2 x 2
        pools in a row, the same integers (a max of maxes, and floor(floor(n / 2) / 2) =
        floor(n / 4)); in ceil mode, a step over a map with an odd side is a
        :class:`~.fold_pools.CeilPool` (ceil(ceil(n / 2) / 2) = ceil(n / 4)). Of 3 x 3 windows
        at stride 1 or 2, padded by 0 or 1: an :class:`~.fold_pools.OverlapPool` marker."""
        k, s = pair(a["kernel_size"]), pair(a["stride"] or a["kernel_size"])
        if self.overlapping(node, where, a, k, s):
            return
        two = k[0] == k[1] and k[0] >= 2 and k[0] & (k[0] - 1) == 0
        bad = {n: v for n, v, ok in (("kernel_size", k, two), ("stride", s, s == k),
                                     ("padding", a["padding"], pair(a["padding"]) == (0, 0)),
                                     ("dilation", a["dilation"], pair(a["dilation"]) == (1, 1)),
                                     ("return_indices", a["return_indices"],
                                      not a["return_indices"])) if not ok}
        if bad:
            raise UnsupportedOp(f"{what} attribute", where,
                                ", ".join(f"{n}={v!r}" for n, v in bad.items()) +
                                "; a square kernel of 2, 4, 8 ... at its own stride, no padding")
        self.image(node, where, what)
        (c, h, w), name, ops = self.shape(node.args[0]), self.name(node), []
        for i in range(k[0].bit_length() - 1):
            half = ((h + 1) // 2, (w + 1) // 2) if a["ceil_mode"] else (h // 2, w // 2)
            ops.append(CeilPool(f"{name}.{i + 1}", where, 2, (0, 0), c, (h, w), half)
                       if half != (h // 2, w // 2) else ir.MaxPool2d(f"{name}.{i + 1}"))
            h, w = half
        self.chain(node, name, self.value(node.args[0], where), ops)

    def overlapping(self, node, where: str, a: dict, k: tuple, s: tuple) -> bool:
        """Read a max pool of 3 x 3 windows at stride 1 or 2 (:mod:`.fold_pools`) of an
        image; whether it was one."""
        p = pair(a["padding"])
        if not (k == (3, 3) and s in ((1, 1), (2, 2)) and set(p) <= {0, 1}
                and pair(a["dilation"]) == (1, 1) and not a["return_indices"]
                and node.args[0] not in self.lines):
            return False
        self.image(node, where, "MaxPool2d")
        size, out = self.shape(node.args[0])[1:], self.shape(node)[1:]
        why = overlap_shape(s[0], p, size, out)
        if why:
            raise UnsupportedOp("MaxPool2d attribute", where, f"kernel_size=3, stride={s[0]}, "
                                f"ceil_mode={a['ceil_mode']!r} from {size[0]}x{size[1]}: {why}")
        c = self.shape(node.args[0])[0]
        self.unary(node, where, lambda name: OverlapPool(name, where, s[0], p, c, size, out))
        return True

    def adaptive_max(self, node, where: str, size, return_indices=False) -> None:
        """``AdaptiveMaxPool2d`` to a size whose windows are equal squares of 2, 4, 8 ...
        (:meth:`maxpool`; 1 is the global max of a square map of that side, or of any other
        map by :func:`_max_chain`)."""
        self.image(node, where, "AdaptiveMaxPool2d")
        hw = self.shape(node.args[0])[1:]
        out = [n if o is None else o for o, n in zip(pair(size), hw)]
        k = (hw[0] // out[0], hw[1] // out[1])
        if out == [1, 1] and k[0] * k[1] > 1 and (k[0] != k[1] or k[0] & (k[0] - 1)) and \
                not return_indices:   # the global max of a map not square of 2, 4, 8 ...
            base = self.name(node)
            ops = _max_chain(base, where, self.shape(node.args[0])[0], *k)
            self.chain(node, base, self.value(node.args[0], where), ops)
            return
        if any(n % o for n, o in zip(hw, out)) or k[0] != k[1]:
            raise UnsupportedOp("AdaptiveMaxPool2d attribute", where,
                                f"output_size={size!r} on a {hw[0]}x{hw[1]} map; only sizes "
                                f"that divide the map into equal squares")
        self.maxpool(node, where, {"kernel_size": k, "stride": k, "padding": 0, "dilation": 1,
                                   "ceil_mode": False, "return_indices": return_indices},
                     "AdaptiveMaxPool2d")

    def avgpool(self, node, where: str, a: dict, what: str = "AvgPool2d") -> None:
        """``AvgPool2d`` with stride = kernel and no padding (floor mode); at any other stride
        or padding (zeros counted in the average, as ``count_include_pad`` has it), or with a
        ``divisor_override``, the same function as a depthwise conv of weights ``1 / (kh kw)``
        (``1 / divisor``)."""
        k, s, p = pair(a["kernel_size"]), pair(a["stride"] or a["kernel_size"]), pair(
            a["padding"])
        counted = a.get("count_include_pad", True) or p == (0, 0)
        bad = {n: v for n, v, ok in (("ceil_mode", a["ceil_mode"], not a["ceil_mode"]),
                                     ("count_include_pad", False, counted)) if not ok}
        if bad:
            raise UnsupportedOp(f"{what} attribute", where,
                                ", ".join(f"{n}={v!r}" for n, v in bad.items())
                                + " (floor mode, zero padding counted in the average)")
        self.image(node, where, what)
        if s == k and p == (0, 0) and a["divisor_override"] is None:
            return self.unary(node, where, lambda name: ir.AvgPool2d(name, tuple(
                int(v) for v in k)))
        c = self.shape(node.args[0])[0]
        w = np.full((c, 1, *k), 1.0 / (a["divisor_override"] or k[0] * k[1]))
        self.unary(node, where, lambda name: ir.Conv2d(
            name, w, np.zeros(c), stride=s, padding=(p[0], p[1], p[0], p[1]), groups=c))

    def adaptive(self, node, where: str, size, what: str = "AdaptiveAvgPool2d") -> None:
        """``AdaptiveAvgPool2d`` to a size that divides the map: an average over equal
        windows (1 is the global average)."""
        self.image(node, where, what)
        hw = self.shape(node.args[0])[1:]
        out = [n if o is None else o for o, n in zip(pair(size), hw)]
        if any(n % o for n, o in zip(hw, out)):
            raise UnsupportedOp(f"{what} attribute", where,
                                f"output_size={size!r} on a {hw[0]}x{hw[1]} map; only sizes "
                                f"that divide the map (equal windows)")
        self.unary(node, where, lambda name: ir.AvgPool2d(
            name, (hw[0] // out[0], hw[1] // out[1])))

    def spatial_mean(self, node, where: str, dim, keepdim: bool) -> None:
        """``x.mean((2, 3))`` of a batch of images: the global average pool,
        ``AdaptiveAvgPool2d(1)``, then (without ``keepdim``) the flatten to a vector; the mean
        over channels, ``x.mean(1, keepdim=True)``: :meth:`over_channels`."""
        if _channels(dim):
            return self.over_channels(node, where, "mean", keepdim)
        if not _height_and_width(dim):
            raise UnsupportedOp("mean", where, f"dim={dim!r} on a (channels, height, width) "
                                               f"image; only the mean over height and width, "
                                               f"dim=(2, 3) or (-2, -1)")
        if keepdim:
            return self.adaptive(node, where, 1)
        pool = self.put(ir.AvgPool2d(self.fresh(f"{node.name}.pool"),
                                     tuple(self.shape(node.args[0])[1:]),
                                     inputs=(self.value(node.args[0], where),)))
        self.emit(node, ir.Flatten(self.name(node), inputs=(pool,)))

    def spatial_reduce(self, node, where: str, name: str) -> None:
        """``x.amax((2, 3))`` and ``x.sum((2, 3))`` of images: the global max (2 x 2 max pools,
        in ceil mode where a side is odd), and the global average times the
        map's pixels (a scale that the folding joins to a Linear after it); then, without
        ``keepdim``, the flatten to a vector."""
        a = call_args(node, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        c, h, w = self.shape(node.args[0])
        if _channels(a["dim"]):
            return self.over_channels(node, where, name, a["keepdim"])
        if not _height_and_width(a["dim"]):
            raise UnsupportedOp(name, where, f"dim={a['dim']!r} on a (channels, height, width) "
                                             f"image; only over its height and width, "
                                             f"dim=(2, 3) or (-2, -1)")
        base = self.name(node)
        ops = _reduce_ops(name, where, base, (c, h, w), a["keepdim"])
        self.chain(node, base, self.value(node.args[0], where), ops)

    def over_channels(self, node, where: str, name: str, keepdim: bool) -> None:
        """``x.mean(1, keepdim=True)`` or ``x.sum(1, keepdim=True)`` of images (a spatial
        attention's channel pool): a 1 x 1 conv into one channel of weights ``1 / C`` (or 1);
        ``x.amax(1, keepdim=True)`` (CBAM's other one): a :class:`~.fold_pools.ChannelMax`.
        Without ``keepdim`` it is an ``(H, W)`` map, which no op reads as an image: refused."""
        c, h, w = self.shape(node.args[0])
        if not keepdim:
            raise UnsupportedOp(name, where, f"dim=1 of a ({c}, height, width) image without "
                                             f"keepdim; keepdim=True keeps it a (1, height, "
                                             f"width) image")
        if name == "amax" and c == 1:
            return self.alias(node, where)
        if name == "amax":
            return self.unary(node, where, lambda n: ChannelMax(n, where, 1, (0, 0), c, (h, w),
                                                                (h, w)))
        k = np.full((1, c, 1, 1), 1.0 / c if name == "mean" else 1.0)
        self.unary(node, where, lambda n: ir.Conv2d(n, k, np.zeros(1)))

    def pixels_reduce(self, node, where: str, name: str, v) -> None:
        """``x.view(b, c, -1)`` (``x.flatten(2)``) of an image (``v``, a
        :class:`~.trace_channels.ChannelView` of ``rows``) reduced over its pixels by
        ``.mean(-1)``, ``.sum(-1)``, ``.amax(-1)`` or ``.max(-1)``: the image's global average,
        sum or max (:func:`_reduce_ops`); a max's indices are not computed."""
        a = call_args(node, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        if not last_axis(a["dim"]) or a["keepdim"]:
            raise UnsupportedOp(name, where, f"dim={a['dim']!r}, keepdim={a['keepdim']!r} of an "
                                             f"image viewed as (channels, pixels); only over "
                                             f"its pixels, dim=-1 or 2, to a vector")
        base = self.name(node)
        self.chain(node, base, v.value, _reduce_ops(name, where, base, v.shape, False))
        if name == "max":   # x.max(dim): (values, indices)
            self.env[node] = Results((base, None), "the indices of a max are not computed")
