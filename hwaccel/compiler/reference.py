"""The float IR run in torch (float64): what the quantizer calibrates on, and the check that the
tracer captured the model (its outputs equal the module's to float rounding)."""

from __future__ import annotations

import numpy as np

from ..numerics import POINTWISE
from . import ir
from .errors import check_finite

__all__ = ["forward", "ranges"]


def seq_view(x, to_line: bool, hw: tuple = ()):
    """:class:`~.ir.SeqView` of a batch: ``(N, L, C)`` to ``(N, C, *hw)`` (``(N, C, 1, L)``
    without ``hw``), or an image ``(N, C, H, W)`` to ``(N, H W, C)``; torch or numpy."""
    if to_line:
        n, length, c = x.shape
        return x.swapaxes(1, 2).reshape(n, c, *(hw or (1, length)))
    return x.reshape(*x.shape[:2], -1).swapaxes(1, 2)


def _relu(y, op):
    """``op``'s ReLU on its result ``y``: none, ``max(y, 0)``, or clamped to ``[0, op.cap]``."""
    if not op.relu:
        return y
    return y.clamp(0, op.cap) if op.cap is not None else y.clamp_min(0)


def pointwise_torch(fn: str, x, params: tuple = ()):
    """``fn`` (:data:`hwaccel.numerics.POINTWISE`, with its ``params``) of every value of the
    float tensor ``x``, as torch computes it."""
    import torch
    import torch.nn.functional as F

    a = dict(zip(POINTWISE[fn][1], params))
    return {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "silu": F.silu,
            "hardswish": F.hardswish, "hardsigmoid": F.hardsigmoid,
            "softplus": lambda v: F.softplus(v, **a), "mish": F.mish,
            "elu": lambda v: F.elu(v, **a), "celu": lambda v: F.celu(v, **a), "selu": F.selu,
            "logsigmoid": F.logsigmoid, "softsign": F.softsign, "gelu": F.gelu,
            "hardtanh": lambda v: F.hardtanh(v, **a), "relu": torch.relu,
            "gelu_tanh": lambda v: F.gelu(v, approximate="tanh")}[fn](x)


def expr_torch(tree: tuple, x):
    """Expression ``tree`` (:func:`hwaccel.numerics.check_expr`) of the float tensor ``x``."""
    kind = tree[0]
    if kind == "x":
        return x
    if kind == "c":
        return tree[1]
    if kind == "fn":
        return pointwise_torch(tree[1], expr_torch(tree[3], x), tree[2])
    a, b = expr_torch(tree[1], x), expr_torch(tree[2], x)
    return a + b if kind == "add" else a - b if kind == "sub" else a * b if kind == "mul" \
        else a / b


def _op(op, x, *more):
    import torch
    import torch.nn.functional as F

    t = lambda a: torch.as_tensor(a, dtype=torch.float64, device=x.device)  # noqa: E731
    if isinstance(op, ir.Embedding):
        return t(op.weight)[x]
    if isinstance(op, ir.Conv2d):
        pad = op.padding if isinstance(op.padding, int) else 0
        if not isinstance(op.padding, int):  # per side (torch's conv pads symmetrically)
            top, left, bottom, right = op.pads
            x = F.pad(x, (left, right, top, bottom))
        y = F.conv2d(x, t(op.weight), t(op.bias), stride=op.strides, padding=pad,
                     groups=op.groups)
        return _relu(y, op)
    if isinstance(op, ir.MaxPool2d):
        return F.max_pool2d(x, (1, 4) if op.line else 2)
    if isinstance(op, ir.AvgPool2d):
        return F.avg_pool2d(x, op.kernel)
    if isinstance(op, ir.Add):
        y = op.weights[0] * x + op.weights[1] * more[0]
        return _relu(y, op)
    if isinstance(op, ir.Mul):   # a gate (N, C, 1, 1) broadcasts over the map's pixels
        y = x * more[0]
        return torch.relu(y) if op.relu else y
    if isinstance(op, ir.Flatten):
        return x.flatten(1)
    if isinstance(op, ir.Unflatten):
        return x[:, :, None, None]
    if isinstance(op, ir.SeqView):
        return seq_view(x, op.to_line, op.hw)
    if isinstance(op, ir.DepthToSpace):
        return F.pixel_shuffle(x, op.factor)
    if isinstance(op, ir.Linear):
        y = x @ t(op.weight).T + t(op.bias)
        return _relu(y, op)
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
    if isinstance(op, ir.ATTENTION_OPS):
        return _attention_op(op, t, x, *more)
    raise TypeError(f"op must be a float IR op, not {op!r}")


def _attention_op(op, t, x, *more):
    """The ops of :mod:`.ir_attention` on a batch (batch first)."""
    import torch
    import torch.nn.functional as F

    if isinstance(op, ir.MatMul):
        b = more[0].transpose(-2, -1) if op.transpose_b else more[0]
        return (x @ b) * op.scale
    if isinstance(op, ir.Softmax):
        if op.causal:  # row i sees columns j <= i
            above = torch.ones(x.shape[-2:], dtype=torch.bool, device=x.device).triu(1)
            x = x.masked_fill(above, float("-inf"))
        return torch.softmax(x, dim=-1)
    if isinstance(op, ir.LayerNorm):
        return F.layer_norm(x, (x.shape[-1],), t(op.weight), t(op.bias), op.eps)
    if isinstance(op, ir.Gelu):
        return F.gelu(x, approximate=op.approximate)
    if isinstance(op, ir.Pointwise):
        return expr_torch(op.tree(), x)
    if isinstance(op, ir.Slice):
        return x[..., op.start:op.stop]
    if isinstance(op, ir.Concat):
        return torch.cat((x, *more), dim=-1)
    if isinstance(op, ir.AddConstant):
        return x + t(op.value)
    if isinstance(op, ir.TokenMean):
        return x.mean(dim=1)
    return x[:, op.index]  # ir.Token


def _prepare(graph: ir.Graph, x):
    import torch

    x = ir.graph_input(graph, torch.as_tensor(x))   # a Conv1d model's (C, L) as (C, 1, L)
    return x.to(torch.int64) if graph.tokens else x.to(torch.float64)


def run(graph: ir.Graph, x, visit=None):
    """Every value of ``graph`` on the batch ``x`` (already prepared), op by op; a value is
    dropped after its last reader. ``visit(op, y)`` sees each op's output. Returns the output
    value."""
    last = {v: op.name for op in graph.ops for v in op.inputs}
    env = {ir.INPUT: x}
    for op in graph.ops:
        y = _op(op, *(env[v] for v in op.inputs))
        if visit is not None:
            visit(op, y)
        env[op.name] = y
        for v in set(op.inputs):
            if last[v] == op.name and v != graph.output:
                del env[v]
    return env[graph.output]


def _refuse(graph: ir.Graph, x, batch: int) -> None:
    """Raise for the first op whose outputs over all of ``x`` are not finite. Run on the whole
    of ``x`` in batches per op, so the counts and the first index cover the whole batch (and
    the layer's inputs are known to be finite); only on this failure path is a whole layer held
    at once."""
    import torch

    env = {ir.INPUT: [x[i:i + batch] for i in range(0, len(x), batch)]}
    for op in graph.ops:
        ys = [_op(op, *parts) for parts in zip(*(env[v] for v in op.inputs))]
        env[op.name] = ys
        check_finite(torch.cat(ys), "calibration activations",
                     f"{op.name!r} ({type(op).__name__})",
                     hint="; the layer's input was finite, so the float model overflows in it")


def forward(graph: ir.Graph, x):
    """The graph's output (before the host head) for the batch ``x``, float64."""
    import torch

    with torch.no_grad():
        return run(graph, _prepare(graph, x))


def ranges(graph: ir.Graph, x, batch: int = 256, channels=()
           ) -> tuple[float, dict[str, float], dict[str, np.ndarray]]:
    """``max |input|``, ``max |value|`` of every op's output by name, and the per-channel
    ``max |value|`` (axis 1) of the ops named in ``channels``, over the batch ``x`` (0 for
    tokens): one float pass.

    ``x`` must be finite; if an op's output is not (a float64 overflow inside the model),
    :class:`.errors.NonFiniteError` names the first such op: a NaN would otherwise vanish from
    the maximum and leave a scale that means nothing.
    """
    import torch

    x = _prepare(graph, x)
    amax = {op.name: 0.0 for op in graph.ops}
    per_channel: dict[str, np.ndarray] = {}

    def visit(op, y):
        if not bool(torch.isfinite(y).all()):
            _refuse(graph, x, batch)
        amax[op.name] = max(amax[op.name], float(y.abs().max()))
        if op.name in channels:
            dims = tuple(d for d in range(y.dim()) if d != 1)
            mc = y.abs().amax(dim=dims).cpu().numpy()
            per_channel[op.name] = np.maximum(per_channel.get(op.name, 0.0), mc)

    with torch.no_grad():
        for i in range(0, len(x), batch):
            run(graph, x[i:i + batch], visit)
    x_max = 0.0 if graph.tokens else float(x.abs().max())
    return x_max, amax, per_channel
