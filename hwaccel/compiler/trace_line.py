"""The tracer's readers of 1-d convolution models (``nn.Conv1d`` over ``(channels, length)``):
a *line* is a ``(C, L)`` value the IR holds as the image ``(C, 1, L)``, so a Conv1d is a Conv2d
with a ``1 x k`` kernel, and pools, batch norms, adds, flattens and global averages of lines are
the image ops they already are; a ``MaxPool1d`` of 4 (16, 64 ...) is a line max pool
(:class:`~.ir_float.MaxPool2d` ``line``). A mixin of :class:`hwaccel.compiler.trace._Reader`.

The model's input is a line when a Conv1d reads it (straight, or through batch norms, ReLUs,
dropout and zero padding): the graph's ``input_shape`` is then ``(C, 1, L)`` and its
``input_view`` the ``(C, L)`` the model takes, which :func:`hwaccel.compiler.ir.graph_input`
reshapes (no data moves: the host packs the input as the image it is). So too an input that
only flattens read (an MLP on ``(1, 28, 28)`` or ``(3, 32, 32)`` images): the graph's input is
the vector, packed whole words of values rather than a word of channels a pixel.

A value is a line when it is 2-d per sample and computed from a line: Conv1d's and a 1-d pool's
outputs, a batch norm, ReLU or add of lines. A line's global max at any length is line pools of
4 and windows of 2 (:meth:`LineReaders.line_max`). A sequence (``(steps, features)``, an
LSTM's input) and a line are the same words channels-last, so ``x.transpose(1, 2)`` between
them is a :class:`~.ir_float.SeqView` where an LSTM reads the line (a CRNN) or a Conv1d the
sequence (TextCNN); a line read as a sequence otherwise, or a sequence read by a Conv1d, is
refused with both named.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from . import ir
from .errors import UnsupportedOp
from .fold_pools import LinePool
from .trace_attention import Results
from .trace_ops import call_args, last_axis, torch_shape

__all__ = ["LineReaders"]

#: Modules a line passes through on its way from the model's input to a Conv1d.
_THROUGH = ("BatchNorm1d", "ReLU", "Dropout", "Dropout1d", "Identity", "ConstantPad1d",
            "ZeroPad1d")


def _channel_one(node) -> bool:
    """Whether ``node`` is ``x.unsqueeze(1)`` (``torch.unsqueeze(x, 1)``) of a batch of
    vectors: one channel."""
    import torch

    dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    return node.target in ("unsqueeze", torch.unsqueeze) and dim in (1, -2)


def _flattens(node, modules, size: int) -> bool:
    """Whether ``node`` flattens a batch to vectors of ``size`` (the other readers of an input
    held flat may only read its shape: ``x.size(0)``, a ``constant``): ``nn.Flatten()``,
    ``torch.flatten(x, 1)``, ``x.flatten(1)``, ``x.view(b, -1)`` or ``x.reshape(b, -1)``."""
    import torch
    import torch.nn as nn

    meta = node.meta.get("tensor_meta")
    if not hasattr(meta, "shape") or tuple(meta.shape[1:]) != (size,):
        return False
    if node.op == "call_module":
        m = modules.get(node.target)
        return isinstance(m, nn.Flatten) and (m.start_dim, m.end_dim) == (1, -1)
    return node.target in (torch.flatten, "flatten", "view", "reshape")


class LineReaders:
    """Readers of 1-d layers; ``self`` is a :class:`~.trace._Reader` (``self.lines``)."""

    def shape(self, node) -> tuple:
        """``node``'s per-sample shape as the IR holds it: a line's ``(C, L)`` as ``(C, 1,
        L)``."""
        shape = torch_shape(node)
        if len(shape) == 3 and self.pixel_rows(node):   # (H, W, C) as (H W, C)
            return (shape[0] * shape[1], shape[2])
        return (shape[0], 1, shape[1]) if node in self.lines and len(shape) == 2 else shape

    def input_is_line(self, node) -> bool:
        """Whether a Conv1d reads the model's input ``node`` (through :data:`_THROUGH`)."""
        todo, seen = list(node.users), set()
        while todo:
            user = todo.pop()
            if user in seen:
                continue
            seen.add(user)
            kind = type(self.modules.get(user.target)).__name__ if \
                user.op == "call_module" else getattr(user.target, "__name__", user.target)
            if kind == "Conv1d":
                return True
            if kind in _THROUGH or kind in ("relu", "pad"):
                todo += list(user.users)
        return False

    def line_input(self, node) -> None:
        """Make the model's input ``node`` a line where a Conv1d reads it: a ``(C, L)`` input,
        or a waveform ``(L,)`` made one channel by ``x.unsqueeze(1)``. The graph's input is
        then ``(C, 1, L)`` and its ``input_view`` the model's own shape. An input that only
        flattens read is the vector they make."""
        shape, users = self.input_shape, list(node.users)
        if len(shape) == 2 and self.input_is_line(node):
            self.lines.add(node)
            self.input_view, self.input_shape = shape, self.shape(node)
        elif len(shape) == 1 and len(users) == 1 and _channel_one(users[0]) and \
                self.input_is_line(users[0]):
            self.lines.add(users[0])   # read as the input itself (trace_channels)
            self.input_view, self.input_shape = shape, (1, 1, shape[0])
        elif len(shape) > 1 and any(_flattens(u, self.modules, size := int(np.prod(shape)))
                                    for u in users) and \
                all(_flattens(u, self.modules, size) or "constant" in u.meta for u in users):
            self.input_view, self.input_shape = shape, (size,)   # flattens alias it (trace_ops)

    def mark_line(self, node) -> None:
        """Make ``node`` a line when it is 2-d per sample and reads one; so too a tuple of
        such values (a line's ``chunk`` or ``split``, whose items are then lines)."""
        meta = node.meta.get("tensor_meta")
        metas = (meta,) if hasattr(meta, "shape") or not isinstance(meta, (tuple, list)) \
            else meta   # (a TensorMetadata is itself a named tuple)
        if metas and all(hasattr(t, "shape") and len(t.shape) == 3 for t in metas) and any(
                a in self.lines for a in node.all_input_nodes):
            self.lines.add(node)

    def line_module(self, node, where: str, m) -> bool:
        """Read ``m`` if it is a 1-d layer (and return True)."""
        name = type(m).__name__
        if name == "Conv1d":
            self.conv1d(node, where, m)
        elif name == "MaxPool1d":
            self.maxpool1d(node, where, {n: getattr(m, n) for n in (
                "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")})
        elif name == "AvgPool1d":
            self.avgpool1d(node, where, m.kernel_size, m.stride, m.padding, m.ceil_mode)
        elif name == "AdaptiveAvgPool1d":
            self.adaptive1d(node, where, m.output_size)
        elif name == "AdaptiveMaxPool1d":
            self.adaptive_max1d(node, where, m.output_size, m.return_indices)
        elif name in ("ZeroPad1d", "ConstantPad1d"):   # zeros, folded into the next Conv1d
            self.line_only(node, where, name)
            self.pad(node, where, m.padding, "constant", getattr(m, "value", 0))
        else:
            return False
        return True

    def line_call(self, node, where: str, name: str, args) -> bool:
        """Read the function ``name`` if it is a 1-d pool (and return True); ``args(names,
        defaults)`` reads its arguments."""
        if name == "max_pool1d":
            self.maxpool1d(node, where, args(
                ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                 "return_indices"), {"stride": None, "padding": 0, "dilation": 1,
                                     "ceil_mode": False, "return_indices": False}))
        elif name == "avg_pool1d":
            a = args(("input", "kernel_size", "stride", "padding", "ceil_mode"),
                     {"stride": None, "padding": 0, "ceil_mode": False})
            self.avgpool1d(node, where, a["kernel_size"], a["stride"], a["padding"],
                           a["ceil_mode"])
        elif name == "adaptive_avg_pool1d":
            self.adaptive1d(node, where, args(("input", "output_size"), {})["output_size"])
        elif name == "adaptive_max_pool1d":
            a = args(("input", "output_size", "return_indices"), {"return_indices": False})
            self.adaptive_max1d(node, where, a["output_size"], a["return_indices"])
        else:
            return False
        return True

    def seq_view(self, node, where: str, name: str, dims: tuple) -> bool:
        """``x.transpose(1, 2)`` / ``x.permute(0, 2, 1)`` of a line (into an LSTM: a CRNN), or
        of a sequence that a Conv1d reads (an embedding's: TextCNN): a
        :class:`~.ir_float.SeqView`, no data moved; whether ``node`` was one."""
        dims = tuple(d + 3 if isinstance(d, int) and d < 0 else d for d in dims)
        if (sorted(dims) if name == "transpose" else list(dims)) != ([1, 2] if name ==
                                                                     "transpose" else [0, 2, 1]):
            return False
        arg = node.args[0]
        if arg in self.lines:
            self.lines.discard(node)   # (C, 1, L) read as (L, C): a sequence, not a line
            self.unary(node, where, ir.SeqView)
        elif len(self.shape(arg)) == 2 and isinstance(self.env.get(arg), str) and \
                self.input_is_line(node):
            self.lines.add(node)
            self.unary(node, where, lambda n: ir.SeqView(n, to_line=True))
        else:
            return False
        return True

    def line_only(self, node, where: str, what: str) -> None:
        """Refuse the 1-d layer ``what`` unless its input is a line."""
        src = node.args[0]
        if src not in self.lines:
            raise UnsupportedOp(what, where, f"on a per-sample shape {self.shape(src)}; it "
                                             f"takes (channels, length) from the model's input "
                                             f"or another Conv1d")

    def conv1d(self, node, where: str, m) -> None:
        """A Conv2d of kernel ``1 x k`` over the line as a ``(C, 1, L)`` image."""
        self.line_only(node, where, "Conv1d")
        pad = m.padding if isinstance(m.padding, str) else (0, m.padding[0])
        shim = SimpleNamespace(
            kernel_size=(1, m.kernel_size[0]), stride=(1, m.stride[0]), padding=pad,
            dilation=(1, m.dilation[0]), groups=m.groups, in_channels=m.in_channels,
            out_channels=m.out_channels, padding_mode=m.padding_mode,
            weight=m.weight.unsqueeze(2), bias=m.bias)
        self.conv(node, where, shim, what="Conv1d")

    def maxpool1d(self, node, where: str, a: dict) -> None:
        """``MaxPool1d`` of kernel = stride = 4, 16, 64 ...: that many line pools in a row, each
        the max-pool unit's 2 x 2 windows over the line laid out as rows of 2 (4 consecutive
        values; :class:`~.ir_float.MaxPool2d` ``line``). A window of 2 or 3 has no such layout:
        at stride 1 or 2 and padding 0 or 1 it is a :class:`~.fold_pools.LinePool` marker (the
        max of its taps, of a ReLU's output)."""
        self.line_only(node, where, "MaxPool1d")
        one = lambda v: v[0] if isinstance(v, (tuple, list)) else v  # noqa: E731
        k, p = one(a["kernel_size"]), one(a["padding"])
        s = k if a["stride"] is None else one(a["stride"])
        (c, _, length), out = self.shape(node.args[0]), self.shape(node)[2]
        if k == length > 3 and s == k and p == 0 and one(a["dilation"]) == 1 and \
                not a["return_indices"]:
            return self.line_max(node, where, "MaxPool1d", keepdim=True)
        taps = k in (2, 3)   # else pools of four
        fours = k >= 4 and (k & (k - 1)) == 0 and (k.bit_length() - 1) % 2 == 0
        bad = {n: v for n, v, ok in (
            ("kernel_size", a["kernel_size"], fours or taps),
            ("stride", a["stride"], s in (1, 2) if taps else s == k),
            ("padding", a["padding"], p in (0, 1) if taps else p == 0),
            ("dilation", a["dilation"], one(a["dilation"]) == 1),
            ("ceil_mode", a["ceil_mode"], taps and out == (length + 2 * p - k) // s + 1
             or not a["ceil_mode"]),
            ("return_indices", a["return_indices"], not a["return_indices"])) if not ok}
        if bad:
            raise UnsupportedOp("MaxPool1d attribute", where, ", ".join(
                f"{n}={v!r}" for n, v in bad.items()) + "; a kernel of 4, 16, 64 ... at its own "
                "stride, no padding, floor mode: the max-pool unit's 2 x 2 windows over the "
                "line laid out as rows of 2; or of 2 or 3 at stride 1 or 2, padding 0 or 1, "
                "where the ceil mode makes no window more: the max of its taps")
        if taps:
            self.unary(node, where, lambda name: LinePool(name, where, s, (0, p), c,
                                                          (1, length), (1, out), kernel=k))
            return
        src, name = self.value(node.args[0], where), self.name(node)
        for i in range(1, (k.bit_length() - 1) // 2):   # the pools of 4 before the last
            src = self.put(ir.MaxPool2d(self.fresh(f"{name}.{i}"), inputs=(src,), line=True))
        self.emit(node, ir.MaxPool2d(name, inputs=(src,), line=True))

    def line_max(self, node, where: str, what: str, keepdim: bool, results: bool = False):
        """A line's global max (``F.adaptive_max_pool1d(x, 1)``, ``x.amax(-1)``, ``x.max(-1)``,
        a ``MaxPool1d`` of the whole line): line pools of 4 while the length divides by 4, and
        :class:`~.fold_pools.LinePool` windows of 2 at stride 2 (padded by one where the length
        is odd) down to one value, then without ``keepdim`` the flatten to a vector. ``results``:
        ``x.max(dim)``'s ``(values, indices)``, whose indices are not computed."""
        self.line_only(node, where, what)
        (c, _, n), base = self.shape(node.args[0]), self.name(node)
        ops = []
        while n > 1:
            if n % 4 == 0:
                ops.append(ir.MaxPool2d(f"{base}.pool{len(ops)}", line=True))
                n //= 4
            else:
                p = n % 2
                ops.append(LinePool(f"{base}.pair{len(ops)}", where, 2, (0, p), c, (1, n),
                                    (1, (n + p) // 2), kernel=2))
                n = (n + p) // 2
        ops += [] if keepdim else [ir.Flatten(f"{base}.flat")]
        src = self.value(node.args[0], where)
        if ops:
            src = self.chain(node, base, src, ops)
        else:
            self.alias(node, where)   # a line of one value
        if results:   # x.max(dim): (values, indices)
            self.env[node] = Results((src, None), "the indices of a max are not computed")

    def avgpool1d(self, node, where: str, kernel, stride, padding, ceil_mode) -> None:
        self.line_only(node, where, "AvgPool1d")
        k = kernel[0] if isinstance(kernel, (tuple, list)) else kernel
        s = k if stride is None else (stride[0] if isinstance(stride, (tuple, list)) else stride)
        p = padding[0] if isinstance(padding, (tuple, list)) else padding
        self.avgpool(node, where, {"kernel_size": (1, k), "stride": (1, s), "padding": (0, p),
                                   "ceil_mode": ceil_mode, "divisor_override": None},
                     what="AvgPool1d")

    def line_reduce(self, node, where: str, name: str) -> None:
        """``x.amax(-1)`` and ``x.max(-1)`` (``torch.max(x, dim=2)``) of a line: its global
        max over the length (:meth:`line_max`)."""
        a = call_args(node, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        if not last_axis(a["dim"]):
            raise UnsupportedOp(name, where, f"dim={a['dim']!r} on a (channels, length) line; "
                                             f"only over its length, dim=-1 or 2")
        self.line_max(node, where, name, a["keepdim"], results=name == "max")

    def adaptive_max1d(self, node, where: str, size, return_indices) -> None:
        """``AdaptiveMaxPool1d(n)`` of a line of ``L``: the global max for ``n = 1``, else the
        ``MaxPool1d`` of ``L / n`` (equal windows only)."""
        self.line_only(node, where, "AdaptiveMaxPool1d")
        n, length = size[0] if isinstance(size, (tuple, list)) else size, self.shape(
            node.args[0])[2]
        if return_indices or length % n:
            raise UnsupportedOp("AdaptiveMaxPool1d attribute", where, f"output_size={size!r}, "
                                f"return_indices={return_indices!r} on a line of {length}: only "
                                f"equal windows (a length that output_size divides), no indices")
        if n == 1:
            return self.line_max(node, where, "AdaptiveMaxPool1d", keepdim=True)
        self.maxpool1d(node, where, {"kernel_size": length // n, "stride": None, "padding": 0,
                                     "dilation": 1, "ceil_mode": False,
                                     "return_indices": False})

    def adaptive1d(self, node, where: str, size) -> None:
        self.line_only(node, where, "AdaptiveAvgPool1d")
        n = size[0] if isinstance(size, (tuple, list)) else size
        self.adaptive(node, where, (1, n), what="AdaptiveAvgPool1d")

    def line_mean(self, node, where: str, dim, keepdim: bool) -> None:
        """``x.mean(-1)`` of a line: its global average (``AdaptiveAvgPool1d(1)``)."""
        dims = (dim,) if isinstance(dim, int) else tuple(dim or ())
        if len(dims) != 1 or not isinstance(dims[0], int) or dims[0] % 3 != 2:
            raise UnsupportedOp("mean", where, f"dim={dim!r} on a (channels, length) line; "
                                               f"only the mean over its length, dim=-1 or 2")
        self.spatial_mean(node, where, (2, 3), keepdim)
