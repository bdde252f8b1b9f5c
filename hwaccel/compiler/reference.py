"""The float IR run in torch (float64): what the quantizer calibrates on, and the check that the
tracer captured the model (its outputs equal the module's to float rounding)."""

from __future__ import annotations

import numpy as np

from . import ir
from .errors import check_finite

__all__ = ["forward", "ranges"]


def _op(op, x):
    import torch
    import torch.nn.functional as F

    t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=x.device)  # noqa: E731
    if isinstance(op, ir.Embedding):
        return t(op.weight)[x]
    if isinstance(op, ir.Conv2d):
        y = F.conv2d(x, t(op.weight), t(op.bias), stride=op.stride, padding=op.padding)
        return torch.relu(y) if op.relu else y
    if isinstance(op, ir.MaxPool2d):
        return F.max_pool2d(x, 2)
    if isinstance(op, ir.Flatten):
        return x.flatten(1)
    if isinstance(op, ir.Linear):
        y = x @ t(op.weight).T + t(op.bias)
        return torch.relu(y) if op.relu else y
    if isinstance(op, ir.LSTM):
        for lw in op.layers:
            w_ih, w_hh, bias = t(lw.w_ih), t(lw.w_hh), t(lw.b_ih + lw.b_hh)
            h = x.new_zeros(x.shape[0], lw.hidden_size)
            c = torch.zeros_like(h)
            hs = []
            for step in range(x.shape[1]):
                z = x[:, step] @ w_ih.T + h @ w_hh.T + bias
                i, f, g, o = z.chunk(4, dim=1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                hs.append(h)
            x = torch.stack(hs, dim=1)
        return x[:, -1] if op.last_step else x
    raise TypeError(f"op must be a float IR op, not {op!r}")


def _prepare(graph: ir.Graph, x):
    import torch

    x = torch.as_tensor(x)
    return x.to(torch.int64) if graph.tokens else x.to(torch.float64)


def _refuse(graph: ir.Graph, x, batch: int) -> None:
    """Raise for the first op whose outputs over all of ``x`` are not finite. Run layer by
    layer, so the counts and the first index cover the whole batch (and the layer's input is
    known to be finite); only on this failure path is a whole layer held at once."""
    import torch

    ys = [x[i:i + batch] for i in range(0, len(x), batch)]
    for op in graph.ops:
        ys = [_op(op, y) for y in ys]
        check_finite(torch.cat(ys), "calibration activations",
                     f"{op.name!r} ({type(op).__name__})",
                     hint="; the layer's input was finite, so the float model overflows in it")


def forward(graph: ir.Graph, x):
    """The graph's output (before the host head) for the batch ``x``, float64."""
    import torch

    x = _prepare(graph, x)
    with torch.no_grad():
        for op in graph.ops:
            x = _op(op, x)
    return x


def ranges(graph: ir.Graph, x, batch: int = 256) -> tuple[float, list[float]]:
    """``max |input|`` and ``max |output|`` of every op over the batch ``x`` (0 for tokens).

    ``x`` must be finite; if an op's output is not (a float64 overflow inside the model),
    :class:`.errors.NonFiniteError` names the first such op: a NaN would otherwise vanish from
    the maximum and leave a scale that means nothing.
    """
    import torch

    x = _prepare(graph, x)
    amax = np.zeros(len(graph.ops))
    with torch.no_grad():
        for i in range(0, len(x), batch):
            y = x[i:i + batch]
            for k, op in enumerate(graph.ops):
                y = _op(op, y)
                if not bool(torch.isfinite(y).all()):
                    _refuse(graph, x, batch)
                amax[k] = max(amax[k], float(y.abs().max()))
    x_max = 0.0 if graph.tokens else float(x.abs().max())
    return x_max, amax.tolist()
