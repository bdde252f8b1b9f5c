"""A dilated conv over a line as a short conv down the line's rows.

A Conv1d at dilation ``d`` (a temporal conv net's 2, 4, 8 ...) is, in the IR, a ``1 x K``
kernel of ``K = (k - 1) d + 1`` taps with zeros between its ``k`` real ones
(:meth:`~.trace_ops.LayerReaders.conv`): ``d`` times the MACs, and past the engine's kernel (3
on the ECP5 presets) from ``d = 2`` at ``k = 3``. Channels-last, a line of ``L`` values is, word
for word, a map of ``L / d`` rows of ``d`` values: value ``i d + r`` is row ``i``, column ``r``,
so the taps ``d`` apart of one output are consecutive rows of one column. The conv is then a
``k x 1`` conv over that map, its padding whole rows of zeros: the same products (the zero taps
dropped add nothing), the same output words, no data moved, and ``k`` taps' MACs.

:func:`line_dilation` finds the largest such ``d``: it divides ``K - 1``, both paddings and
``L``, every tap with a weight sits at a multiple of it, the stride is 1, there is no fused
pool, and the ``k x 1`` kernel, its padding rows and the ``d`` columns fit the preset's
engine (dense or depthwise; a causal conv's ``(k - 1)`` rows of padding above are past the ECP5
presets' one). Lowering runs the conv on the view (:func:`view`), and
:func:`~.split_kernels.split_kernels` leaves such a conv to it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["line_dilation", "view"]


def line_dilation(op, shape, cfg) -> int:
    """The ``d`` of the module docstring for conv ``op`` (float or int8) on an input of
    ``shape`` (``(C, H, W)``) on preset ``cfg``; 1 where there is none."""
    if len(shape) != 3 or shape[1] != 1 or getattr(op, "pool", False):
        return 1
    kh, kw = op.kernel
    _, left, _, right = op.pads
    if kh != 1 or kw < 3 or op.strides != (1, 1):
        return 1
    used = np.flatnonzero(np.any(op._weights() != 0, axis=(0, 1, 2)))
    most = cfg.conv.dw_kernel if op.depthwise else cfg.conv.max_kernel
    for d in range(kw - 1, 1, -1):
        if ((kw - 1) % d or left % d or right % d or shape[2] % d or d > cfg.conv.max_width
                or (kw - 1) // d + 1 > most or max(left, right) // d > cfg.conv.max_pad
                or np.any(used % d)):
            continue
        return d
    return 1


def view(op, d: int):
    """The int8 conv ``op`` as the ``k x 1`` conv over its line viewed as rows of ``d``."""
    _, left, _, right = op.pads
    w = np.ascontiguousarray(op.w[:, :, :, ::d].transpose(0, 1, 3, 2))
    return dataclasses.replace(op, w=w, padding=(left // d, 0, right // d, 0))
