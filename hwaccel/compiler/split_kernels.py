"""A preset-specific pass on the float IR, before quantization: a dense conv whose kernel is
larger than the preset's conv engine takes (``ConvConfig.max_kernel``, ``k``) on an axis, up to
``2 k - 1`` taps (LeNet-5's 5 x 5, a "same" 5 x 5, a 3 x 3 dilated by 2, on the ECP5 presets'
3 x 3 engines), becomes two convs the engine runs:

* ``<name>.shifts``, a conv of 0/1 weights that stacks shifted copies of its input: on each such
  axis two or three of the pixels of a ``k``-tap window (``copy * C + c``; zero beyond the map,
  as the conv's own padding is), so up to four (or nine) copies of every channel;
* the conv itself with a ``k``-tap kernel over the copies: each tap ``u`` of the large kernel is
  one tap of one copy, zero where a copy holds none.

Each product of the large conv is one product of the pair, at the same pixels, so it is the
same function in float; in int8 the stack is a pick (:func:`.quantize.is_pick`): at its input's
scale its requantizer returns every value unchanged, and the conv sums the same integer
products as the large one. It costs the stack's MACs (copies x C x C x k x k a pixel) and the
small conv's zero taps. The copies, the paddings and each tap's copy are found per axis by
trying each, fewest copies first, and checking every output's every tap reads the large conv's
input pixel, or zero where it reads padding (:func:`_plan`). A conv reading the model's input
is left alone (it runs over the host's im2col patches), and so are kernels beyond ``2 k - 1``,
which lowering names.

A depthwise conv whose kernel is past the depthwise engine's (``dw_kernel``: on a 3 x 3 window
MobileNetV3's and MnasNet's 5 x 5, on a 5 x 5 one MCUNet's 7 x 7) becomes the dense conv it is,
zeros between its channels, as a grouped conv is (:func:`.trace_ops.block_diagonal`): channels
times the MACs, the same integers (the zeros add nothing, and each output channel's weights, scale
and requantizer are its own), then split as above where its kernel is past the dense engine's too.

A dilated Conv1d that lowering runs as a short conv down its line's rows
(:mod:`.line_view`) is left as it is.
"""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from . import ir
from .line_view import line_dilation
from .trace_ops import block_diagonal

__all__ = ["split_kernels"]


def _plan(n: int, big: int, s: int, p: int, pb: int, k: int, most: int):
    """One axis of a large conv: ``(copies, window, (t, b), (p2, b2), taps)``: the stack's
    window taps that are copies, its window and padding, the small conv's padding, and for each
    tap ``u`` of the large kernel the ``(copy, tap)`` of the small conv that takes it; None when
    no choice reads every tap's pixel. ``n`` inputs, kernel ``big``, stride ``s``, padding
    ``p`` before and ``pb`` after; the engine's kernel ``k`` and padding ``most`` a side.

    The stack's row ``z`` of copy ``j`` is input pixel ``z - t + j``, and the small conv's tap
    ``v`` of output ``y`` reads the stack's row ``s y - p2 + v``: tap ``u`` needs ``v + j = u +
    p2 + t - p``, and at the map's edges the stack's and the conv's zero padding must fall
    where the large conv's does. Fewer copies are tried first."""
    if big <= k:
        return (0,), 1, (0, 0), (p, pb), [(0, u) for u in range(big)]
    if big > 2 * k - 1:
        return None
    out = (n + p + pb - big) // s + 1
    for copies in (c for size in range(2, k + 1) for c in itertools.combinations(range(k), size)):
        for t, b in ((top, bottom) for top in range(k) for bottom in range(k - top)):
            rows = n + t + b - k + 1          # the stack's rows
            for p2, b2 in itertools.product(range(most + 1), repeat=2):
                if p2 + b2 >= k or rows < 1 or (rows + p2 + b2 - k) // s + 1 != out:
                    continue
                taps = [next((jv for jv in _pairs(u + p2 + t - p, copies, k) if all(
                    _reads(y, u, jv, n, s, p, rows, t, p2) for y in range(out))), None)
                    for u in range(big)]
                if None not in taps:
                    return copies, k, (t, b), (p2, b2), taps
    return None


def _pairs(total: int, copies, k: int):
    """The ``(copy, tap)`` pairs whose sum is ``total``."""
    return [(j, total - j) for j in copies if 0 <= total - j < k]


def _reads(y: int, u: int, jv, n: int, s: int, p: int, rows: int, t: int, p2: int) -> bool:
    """Whether output ``y``'s tap ``u``, taken by copy ``j`` at the small conv's tap ``v``,
    reads the input pixel the large conv reads (zero for both beyond the map)."""
    j, v = jv
    want = s * y - p + u                 # the large conv's input pixel
    z = s * y - p2 + v                   # the stack's row the conv reads
    if not 0 <= z < rows:                # the conv's zero padding
        return not 0 <= want < n
    got = z - t + j                      # the stack's input pixel there (zero beyond)
    return got == want or not (0 <= got < n or 0 <= want < n)


def split_kernels(graph: ir.Graph, cfg) -> ir.Graph:
    """``graph`` with every dense conv too large for ``cfg``'s engine (on one axis or both, up to
    ``2 max_kernel - 1`` taps) as the stack of shifted copies and the small conv the module
    describes; ``graph`` itself when none is."""
    k, most, shapes, ops = cfg.conv.max_kernel, cfg.conv.max_pad, graph.shapes(), []
    for op in graph.ops:
        if isinstance(op, ir.Conv2d) and line_dilation(op, shapes.get(op.inputs[0], ()), cfg) > 1:
            ops.append(op)   # a dilated Conv1d: lowering runs it over the line's rows
            continue
        if isinstance(op, ir.Conv2d) and op.groups > 1 and max(op.kernel) > cfg.conv.dw_kernel:
            op = dataclasses.replace(op, weight=block_diagonal(op.weight, op.groups), groups=1)
        if not (isinstance(op, ir.Conv2d) and op.groups == 1 and max(op.kernel) > k
                and op.inputs[0] != ir.INPUT and op.inputs[0] in shapes):
            ops.append(op)
            continue
        c, *hw = shapes[op.inputs[0]]
        (t, l, b, r), plans = op.pads, []
        for n, big, s, before, after in zip(hw, op.kernel, op.strides, (t, l), (b, r)):
            plans.append(_plan(n, big, s, before, after, k, most))
        if None in plans:
            ops.append(op)   # lowering names the kernel beyond the engine's
            continue
        ops.extend(_pair(op, c, plans, k))
    if len(ops) == len(graph.ops) and all(a is b for a, b in zip(ops, graph.ops)):
        return graph
    return dataclasses.replace(graph, ops=tuple(ops))


def _pair(op: ir.Conv2d, c: int, plans, k: int) -> list:
    """The stack and the small conv of ``op`` (``c`` input channels) by the axes' plans."""
    (cop_h, win_h, (t, b), (p2, b2), taps_h), (cop_w, win_w, (l, r), (q2, r2), taps_w) = plans
    copies = list(itertools.product(cop_h, cop_w))
    stack = np.zeros((len(copies) * c, c, win_h, win_w))
    for i, (jh, jw) in enumerate(copies):
        stack[i * c + np.arange(c), np.arange(c), jh, jw] = 1.0
    kh, kw = (k if win_h > 1 else op.kernel[0]), (k if win_w > 1 else op.kernel[1])
    w = np.zeros((op.weight.shape[0], len(copies) * c, kh, kw))
    for ((jh, vh), u), ((jw, vw), x) in itertools.product(zip(taps_h, range(op.kernel[0])),
                                                          zip(taps_w, range(op.kernel[1]))):
        i = copies.index((jh, jw))
        w[:, i * c:(i + 1) * c, vh, vw] = op.weight[:, :, u, x]
    name = f"{op.name}.shifts"
    pick = ir.Conv2d(name, stack, np.zeros(len(stack)), padding=ir.squash((t, l, b, r)),
                     inputs=op.inputs)
    return [pick, dataclasses.replace(op, weight=w, padding=ir.squash((p2, q2, b2, r2)),
                                      inputs=(name,))]
