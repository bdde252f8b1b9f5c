"""Overlapping max pools (``MaxPool2d(3, 2, 1)``: a ResNet's or ShuffleNet's stem; ``(3, 2)``:
SqueezeNet's; ``(3, 1, 1)``) out of the ops the accelerator has: its 2 x 2 max-pool unit,
depthwise convs that copy a shifted map, and element-wise ADDs.

The tracer leaves an :class:`OverlapPool` marker (:meth:`.trace_pools.PoolReaders.maxpool`);
:func:`.fold.fold` expands it once every ReLU has folded into the op that makes its input:

* **A shifted copy** of the map (``y[i, j] = x[i + a, j + b]``, zero outside it) is a
  depthwise 3 x 3 conv of one tap, its weight 1, padded so that it has the rows and columns
  the pool reads: a pick, at its input's scale (:func:`.quantize.is_pick`), so the integers
  are its input's.
* **Stride 2:** a 3 x 3 window at rows ``2r - p .. 2r - p + 2`` is the union of the 2 x 2
  windows at the offsets ``-p`` and ``1 - p`` on each axis, so the pool is the max of four
  2 x 2 pools at stride 2, one of each shifted copy (the conv before each pools as it stores,
  a quarter of the words), then three maxes of quarter-size maps.
* **Stride 1:** the max over three shifted copies along the rows, then along the columns of
  that: four maxes.
* **A max of two maps** ``a, b`` is ``b + relu(a - b)``: a depthwise 1 x 1 conv of weight -1,
  an ADD with the ReLU, an ADD. Each is exact at the input's scale when ``a`` and ``b`` are
  at least 0: ``a - b`` is then within int8, and every requantizer returns its sum unchanged
  (:attr:`.ir.Add.exact`, :attr:`.ir.Conv2d.exact`). So the pool's input must be a ReLU's
  (or ReLU6's, or a clamp's from 0) output; a ReLU after the pool is moved before it (a max
  commutes with a clamp). On a map that may hold negative values it is refused by name. The
  zeros padded around the map are then below no value of it, as the pool's own padding
  (minus infinity) is.

A 2 x 2 max pool in ceil mode over a map with an odd side (``MaxPool2d(2, ceil_mode=True)``,
and each 2 x 2 step of a larger kernel's) is a :class:`CeilPool`: its last window on that side
reads one value and the padding, which the 2 x 2 unit has no layout for (and no conv at stride 1
makes a map longer: an engine pads less than its kernel). So it is the max of each pair of rows,
then of each pair of columns: per axis two picks at stride 2, the second padded by one zero
where the side is odd, and their max. Exact on a ReLU's output (the zero is below every value),
as the other pools here.

A line's ``MaxPool1d`` of 2 or 3 at stride 1 or 2 (padding 0 or 1), which the 2 x 2 unit has no
layout for, is a :class:`LinePool`: the max of its window's taps, each tap a depthwise ``1 x k``
conv of one weight 1 at the pool's stride and padding (a pick of every window's ``t``-th value).

The int8 result is the int8 max pool of the int8 input, exactly; the float graph computes the
same function as the model's pool.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import UnsupportedOp
from .fold_cat import Cat

__all__ = ["OverlapPool", "LinePool", "CeilPool", "ChannelMax", "overlap_shape",
           "expand_overlap"]


@dataclass(frozen=True, eq=False)
class OverlapPool:
    """``MaxPool2d(3, stride, padding)`` of ``channels`` x ``size`` images (``size``: the
    input's ``(height, width)``, ``out``: the output's), ``stride`` 1 or 2, ``padding`` 0 or
    1 on each axis."""

    name: str
    where: str
    stride: int
    padding: tuple[int, int]
    channels: int
    size: tuple[int, int]
    out: tuple[int, int]
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class LinePool(OverlapPool):
    """``MaxPool1d(kernel, stride, padding)`` of a ``(channels, 1, L)`` line: ``size`` is ``(1,
    L)``, ``out`` ``(1, windows)``, ``padding`` ``(0, p)``; ``kernel`` 2 or 3."""

    kernel: int = 2


@dataclass(frozen=True, eq=False)
class CeilPool(OverlapPool):
    """A 2 x 2 max pool at stride 2 in ceil mode of ``channels`` x ``size`` images, a side of
    ``size`` odd: ``out`` is ``size`` halved, rounded up; ``stride`` 2, ``padding`` ``(0, 0)``."""


@dataclass(frozen=True, eq=False)
class ChannelMax(OverlapPool):
    """The max over the ``channels`` of ``size`` maps, ``x.amax(1, keepdim=True)`` (CBAM's
    channel pool): one channel, ``out`` = ``size``."""


def _channel_max(pool: ChannelMax, x: str) -> list:
    """Halvings until one channel is left: of ``n`` channels, the first ``ceil(n / 2)`` and
    the rest (with channel 0 again where ``n`` is odd) picked by 1 x 1 convs, then their max."""
    out, src, n, level = [], x, pool.channels, 0
    while n > 1:
        h, level = (n + 1) // 2, level + 1
        name = pool.name if h == 1 else f"{pool.name}.half{level}"
        a, b = np.zeros((h, n, 1, 1)), np.zeros((h, n, 1, 1))
        a[np.arange(h), np.arange(h), 0, 0] = 1.0
        b[np.arange(n - h), np.arange(h, n), 0, 0] = 1.0
        b[h - 1, 0 if n % 2 else n - 1, 0, 0] = 1.0
        picks = [ir.Conv2d(f"{name}.{t}", w, np.zeros(h), inputs=(src,), exact=True)
                 for t, w in (("a", a), ("b", b))]
        out += picks + _max(name, h, *(p.name for p in picks))
        src, n = name, h
    return out


def _ceil(pool: CeilPool, x: str) -> list:
    """The max of each pair of rows, then of each pair of columns of that: per axis two picks
    at stride 2 (depthwise ``2 x 1`` or ``1 x 2`` convs of one weight 1, padded by one below or
    on the right where the side is odd) and their max."""
    c, out, src = pool.channels, [], x
    for axis in (0, 1):
        picks = []
        for t in range(2):
            w = np.zeros((c, 1, 2, 1) if axis == 0 else (c, 1, 1, 2))
            w[:, 0, t * (1 - axis), t * axis] = 1.0
            odd = pool.size[axis] % 2
            picks.append(ir.Conv2d(f"{pool.name}.{'rc'[axis]}{t}", w, np.zeros(c),
                                   stride=(2, 1) if axis == 0 else (1, 2),
                                   padding=(0, 0, odd, 0) if axis == 0 else (0, 0, 0, odd),
                                   groups=c, inputs=(src,), exact=True))
        out += picks + _max_of(f"{pool.name}.rows" if axis == 0 else pool.name, c,
                               [p.name for p in picks])
        src = out[-1].name
    return out


def _copy_pads(n: int, windows: int, offset: int) -> tuple[int, int, int] | None:
    """``(tap, pad above, pad below)`` of a 3 x 3 conv whose output, an ``n``-row map shifted by
    ``offset`` (``y[i] = x[i + offset]``), has the ``2 windows`` rows (or one more) that as many
    2 x 2 windows read; None if none does. It is padded by 0 or 1 on a side, as any engine of
    3 x 3 kernels pads, so it has at most its input's rows."""
    for rows, above in itertools.product((2 * windows, 2 * windows + 1), (1, 0)):
        tap, below = offset + above, rows - n + 2 - above
        if 0 <= tap <= 2 and below in (0, 1):
            return tap, above, below
    return None


def _quarters(size: tuple[int, int], padding: tuple[int, int], out: tuple[int, int]) -> bool:
    """Whether a stride-2 pool is four 2 x 2 pools of shifted copies (:func:`_copy_pads`)."""
    return all(_copy_pads(n, o, off) is not None
               for o, n, p in zip(out, size, padding) for off in (-p, 1 - p))


def overlap_shape(stride: int, padding: tuple[int, int], size: tuple[int, int],
                  out: tuple[int, int]) -> str | None:
    """Why ``MaxPool2d(3, stride, padding)`` from ``size`` to ``out`` cannot be expanded, or
    None if it can."""
    full = tuple(-(-(n + 2 * p - 2) // stride) for n, p in zip(size, padding))
    if out == full or stride == 2 and _quarters(size, padding, out):
        return None
    return (f"{out[0]}x{out[1]} windows, but every other window of the stride-1 pool makes "
            f"{full[0]}x{full[1]}: the ceil mode's last window is not one of them")


def _non_negative(ops, value: str) -> bool:
    """Whether ``value`` is at least 0 everywhere: a ReLU'd conv, Linear, ADD or MUL, an ADD or
    MUL of such values (an earlier pool's max, a gated map), a (hard) sigmoid, or a pool, shifted
    copy, depth-to-space or flatten of one."""
    op = ops.ops.get(value)
    if isinstance(op, (ir.Conv2d, ir.Linear, ir.Add)) and op.relu:
        return True
    if isinstance(op, ir.Add):   # its weights are positive: a sum of values at least 0 (a max)
        return all(_non_negative(ops, v) for v in op.inputs)
    if isinstance(op, ir.Mul):   # a ReLU'd product, or a product of two such values
        return op.relu or all(_non_negative(ops, v) for v in op.inputs)
    if isinstance(op, ir.Pointwise) and op.fn in ("sigmoid", "hardsigmoid"):
        return True
    through = (ir.MaxPool2d, ir.AvgPool2d, ir.DepthToSpace, ir.Flatten, ir.Unflatten, OverlapPool)
    if isinstance(op, through) or (isinstance(op, ir.Conv2d) and op.exact and op.groups > 1
                                   and np.all(op.weight >= 0)):
        return _non_negative(ops, op.inputs[0])
    return False


def _shifted(name: str, channels: int, tap: tuple[int, int], pads: tuple[int, ...],
             src: str) -> ir.Conv2d:
    """A depthwise 3 x 3 conv of one tap, weight 1: a copy of ``src`` shifted, at its scale."""
    w = np.zeros((channels, 1, 3, 3))
    w[:, 0, tap[0], tap[1]] = 1.0
    return ir.Conv2d(name, w, np.zeros(channels), padding=pads, groups=channels,
                     inputs=(src,), exact=True)


def _max(name: str, channels: int, a: str, b: str) -> list:
    """``max(a, b) = b + relu(a - b)`` of two maps of values at least 0, at their scale."""
    neg = ir.Conv2d(f"{name}.neg", -np.ones((channels, 1, 1, 1)), np.zeros(channels),
                    groups=channels, inputs=(b,), exact=True)
    diff = ir.Add(f"{name}.diff", relu=True, inputs=(a, neg.name), exact=True)
    return [neg, diff, ir.Add(name, inputs=(b, diff.name), exact=True)]


def _max_of(name: str, channels: int, values: list[str]) -> list:
    """The ops of the max of ``values`` (two or more), the last named ``name``."""
    out, acc = [], values[0]
    for k, v in enumerate(values[1:], 1):
        ops = _max(name if k == len(values) - 1 else f"{name}.max{k}", channels, acc, v)
        out += ops
        acc = ops[-1].name
    return out


def _stride2(pool: OverlapPool, x: str) -> list:
    """The max of four 2 x 2 pools of shifted copies; where their sizes do not fit the map
    (padding 1 on an odd size), the stride-1 pool's every other row and column."""
    (py, px), (ny, nx), (oy, ox) = pool.padding, pool.size, pool.out
    if not _quarters(pool.size, pool.padding, pool.out):
        full = _stride1(pool, x, f"{pool.name}.full")
        c = pool.channels
        return full + [ir.Conv2d(pool.name, np.ones((c, 1, 1, 1)), np.zeros(c), stride=2,
                                 groups=c, inputs=(full[-1].name,), exact=True)]
    out, pooled = [], []
    for dy, dx in itertools.product((-py, 1 - py), (-px, 1 - px)):
        src = x
        if not (dy == dx == 0 and ny in (2 * oy, 2 * oy + 1) and nx in (2 * ox, 2 * ox + 1)):
            (ty, ay, by), (tx, ax, bx) = _copy_pads(ny, oy, dy), _copy_pads(nx, ox, dx)
            copy = _shifted(f"{pool.name}.shift{dy + 1}{dx + 1}", pool.channels, (ty, tx),
                            (ay, ax, by, bx), x)
            out.append(copy)
            src = copy.name
        out.append(ir.MaxPool2d(f"{pool.name}.pool{dy + 1}{dx + 1}", inputs=(src,)))
        pooled.append(out[-1].name)
    return out + _max_of(pool.name, pool.channels, pooled)


def _stride1(pool: OverlapPool, x: str, name: str) -> list:
    """The max of three shifted copies along the rows, then of three of that along the
    columns; the last op named ``name``."""
    (py, px), c = pool.padding, pool.channels
    out, rows = [], []
    for d in range(3):   # the rows' copies, then their max; then the columns' of that
        if (py, d) == (1, 1):
            rows.append(x)
        else:
            out.append(_shifted(f"{pool.name}.row{d}", c, (d, 1), (py, 1, py, 1), x))
            rows.append(out[-1].name)
    out += _max_of(f"{pool.name}.rows", c, rows)
    r, cols = out[-1].name, []
    for d in range(3):
        if (px, d) == (1, 1):
            cols.append(r)
        else:
            out.append(_shifted(f"{pool.name}.col{d}", c, (1, d), (1, px, 1, px), r))
            cols.append(out[-1].name)
    return out + _max_of(name, c, cols)


def _line(pool: LinePool, x: str) -> list:
    """The max of a line pool's taps: tap ``t`` of every window is a depthwise ``1 x k`` conv
    of one weight 1 at ``t``, at the pool's stride and padding (its zeros below every value;
    on the right only as much as the last window reads, as an engine pads less than a kernel)."""
    c, k, p = pool.channels, pool.kernel, pool.padding[1]
    right = min(p, max(0, (pool.out[1] - 1) * pool.stride + k - pool.size[1] - p))
    taps = []
    for t in range(k):
        w = np.zeros((c, 1, 1, k))
        w[:, 0, 0, t] = 1.0
        taps.append(ir.Conv2d(f"{pool.name}.tap{t}", w, np.zeros(c), stride=(1, pool.stride),
                              padding=(0, p, 0, right), groups=c, inputs=(x,), exact=True))
    return taps + _max_of(pool.name, c, [t.name for t in taps])


def expand_overlap(ops, pool: OverlapPool) -> list:
    """The ops that compute ``pool`` (the last named as it is), reading its input; over a
    concatenation, one pool a part and their concatenation. Refused by name when its input
    may be negative."""
    (x,) = pool.inputs
    src = ops.ops.get(x)
    if isinstance(src, Cat) and isinstance(pool, ChannelMax):
        raise UnsupportedOp("amax", pool.where, f"dim=1 over {x!r}, a concatenation: its parts "
                                                f"keep scales of their own, and a max of two "
                                                f"values needs one")
    if isinstance(src, Cat):   # each part's values at its own scale: a max of two needs one
        new, names = [], []
        for i, (v, shape) in enumerate(zip(src.inputs, src.shapes)):
            part = dataclasses.replace(pool, name=f"{pool.name}.part{i}", channels=shape[0],
                                       inputs=(v,))
            new += expand_overlap(ops, part)
            names.append(part.name)
        shapes = tuple((s[0], *pool.out) for s in src.shapes)
        return new + [Cat(pool.name, pool.where, shapes, tuple(names), src.order)]
    line, ceil = isinstance(pool, LinePool), isinstance(pool, CeilPool)
    if not _non_negative(ops, x):
        if isinstance(pool, ChannelMax):
            raise UnsupportedOp("amax", pool.where, f"dim=1 over {x!r}, which may be negative: "
                                                    f"it runs as maxes b + relu(a - b) of "
                                                    f"channel halves, exact on values of at "
                                                    f"least 0, so it must read a ReLU's (or "
                                                    f"ReLU6's) output")
        if ceil:
            raise UnsupportedOp("MaxPool2d in ceil mode", pool.where,
                                f"kernel_size=2 over {x!r}, a {pool.size[0]}x{pool.size[1]} "
                                f"map which may be negative: its last window's padding is a "
                                f"zero, exact below values of at least 0, so it must read a "
                                f"ReLU's (or ReLU6's) output")
        what, k = ("MaxPool1d", pool.kernel) if line else ("MaxPool2d of overlapping windows", 3)
        raise UnsupportedOp(what, pool.where,
                            f"kernel_size={k}, stride={pool.stride} over {x!r}, which may be "
                            f"negative: it runs as maxes b + relu(a - b), exact on values of at "
                            f"least 0, so it must read a ReLU's (or ReLU6's) output")
    if isinstance(pool, ChannelMax):
        return _channel_max(pool, x)
    if line:
        return _line(pool, x)
    if ceil:
        return _ceil(pool, x)
    return _stride2(pool, x) if pool.stride == 2 else _stride1(pool, x, pool.name)
