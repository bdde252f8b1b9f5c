"""Channel equalization before a depthwise convolution: a float-IR rewrite that the quantizer
(:mod:`.quantize`) runs before it calibrates.

A depthwise conv reads each channel of its input alone, and that input is one int8 tensor at
one scale, set by its widest channel: a channel whose values reach a fifth of the widest uses
a fifth of the codes, and its quantization noise, relative to its own values, is five times
larger -- noise the depthwise kernel and the layers after it amplify. MobileNet's and DS-CNN's
separable blocks feed every depthwise conv from a conv whose channels differ so (ranges 2-6x
apart on MobileNet).

The rewrite (cross-layer equalization: Nagel et al., *Data-Free Quantization Through Weight
Equalization and Bias Correction*, ICCV 2019, here balancing activation ranges) multiplies
output channel ``c`` of the producing conv (weights and bias) by ``r[c] > 0`` and divides
channel ``c`` of the depthwise kernel by it. Positive scaling commutes with the producer's
ReLU, a fused max-pool and zero padding, so the float model computes exactly what it did (up
to float64 rounding). ``r[c] = max_k m[k] / m[c]`` (at most :data:`MAX_FACTOR`), with ``m[c]``
the channel's ``max|x|`` over the calibration data: every channel then spans the tensor's range.
Both convs have per-output-channel weight scales, so their int8 weights are the same integers
as without the rewrite; only scales, biases and multipliers change, and the integer arithmetic
is the same.

A pair qualifies when the producer is a Conv2d whose output only the depthwise conv reads (and
is not the graph's output) and the depthwise conv has one output channel per input channel. A
producer whose ReLU has a cap (ReLU6) does not: scaling a channel would scale its cap too, and
the int8 tensor clamps every channel at one value. Nor do ``exact`` convs (an overlapping max
pool's copies, :mod:`.fold_pools`): they keep their input's scale, weights and all.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import ir

__all__ = ["equalize", "depthwise_pairs", "MAX_FACTOR"]

#: The largest factor a channel is scaled by: a near-silent channel is not blown up to the
#: range of the widest (its depthwise weights would shrink by as much).
MAX_FACTOR = 16.0


def _is_depthwise(op) -> bool:
    return (isinstance(op, ir.Conv2d) and op.groups > 1
            and op.groups == op.weight.shape[0] and op.weight.shape[1] == 1)


def depthwise_pairs(graph: ir.Graph) -> list[tuple[str, str]]:
    """``(producer, depthwise)`` names of every pair the rewrite applies to."""
    readers = graph.readers()
    pairs = []
    for op in graph.ops:
        nxt = readers.get(op.name, [])
        if (isinstance(op, ir.Conv2d) and op.name != graph.output and len(nxt) == 1
                and op.cap is None and _is_depthwise(nxt[0]) and nxt[0].inputs == (op.name,)
                and not (op.exact or nxt[0].exact)):
            pairs.append((op.name, nxt[0].name))
    return pairs


def equalize(graph: ir.Graph, x=None, batch: int = 256, channel_max=None) -> ir.Graph:
    """``graph`` with every :func:`depthwise_pairs` pair equalized from its producers'
    per-channel ``max |value|``: ``channel_max`` (by producer, from the calibration pass of
    :func:`.reference.ranges`), or measured here on the calibration batch ``x``; ``graph``
    itself when there is no pair."""
    from .reference import ranges

    pairs = dict(depthwise_pairs(graph))
    if not pairs:
        return graph
    m = channel_max if channel_max is not None else ranges(graph, x, batch, channels=pairs)[2]
    ops = {op.name: op for op in graph.ops}
    for prod, dw in pairs.items():
        mc = m[prod]
        r = np.ones_like(mc)
        live = mc > 0
        r[live] = np.minimum(mc.max() / mc[live], MAX_FACTOR)
        p, d = ops[prod], ops[dw]
        ops[prod] = dataclasses.replace(p, weight=p.weight * r.reshape(-1, 1, 1, 1),
                                        bias=p.bias * r)
        ops[dw] = dataclasses.replace(d, weight=d.weight / r.reshape(-1, 1, 1, 1))
    return dataclasses.replace(graph, ops=tuple(ops[op.name] for op in graph.ops))
