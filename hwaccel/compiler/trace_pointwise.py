"""The tracer's readers of pointwise activations: ``nn.SiLU`` / ``F.silu``, ``nn.Tanh`` /
``torch.tanh``, ``nn.Hardswish``, ``nn.Hardsigmoid``, ``nn.Softplus``, ``nn.Mish``, ``nn.ELU``,
``nn.CELU``, ``nn.SELU``, ``nn.LogSigmoid``, ``nn.Softsign``, a sigmoid that another op
reads (the model's last sigmoid stays a host head) and (from :meth:`.trace_ops.LayerReaders.clamp`)
a clamp between two numbers not from 0, each an :class:`~.ir_attention.Pointwise`:
a table on the GELU unit (:mod:`hwaccel.numerics.pointwise`). A mixin of
:class:`hwaccel.compiler.trace._Reader`.
"""

from __future__ import annotations

import functools
import operator

from ..numerics import check_expr, pointwise_rising, substitute_expr
from . import ir
from .errors import UnsupportedOp
from .fold import Relu, relu_tree
from .fold_affine import channel_affine, feature_affine
from .trace_ops import call_args

__all__ = ["PointwiseReaders"]


def _modules() -> dict:
    """module type -> (function name, its parameters read from the module)."""
    import torch.nn as nn

    none = lambda m: ()  # noqa: E731
    return {nn.SiLU: ("silu", none), nn.Tanh: ("tanh", none),
            nn.Hardswish: ("hardswish", none), nn.Hardsigmoid: ("hardsigmoid", none),
            nn.Softplus: ("softplus", lambda m: (m.beta, m.threshold)), nn.Mish: ("mish", none),
            nn.ELU: ("elu", lambda m: (m.alpha,)), nn.CELU: ("celu", lambda m: (m.alpha,)),
            nn.SELU: ("selu", none), nn.LogSigmoid: ("logsigmoid", none),
            nn.Softsign: ("softsign", none)}


@functools.cache
def _functions() -> dict:
    """function or method -> (function name, its parameters' names and defaults)."""
    import torch
    import torch.nn.functional as F

    plain: dict = {}
    out = {}
    for fn, targets in (("silu", (F.silu,)), ("tanh", (torch.tanh, F.tanh, "tanh")),
                        ("hardswish", (F.hardswish,)), ("hardsigmoid", (F.hardsigmoid,)),
                        ("mish", (F.mish,)), ("selu", (F.selu, torch.selu)),
                        ("logsigmoid", (F.logsigmoid,)), ("softsign", (F.softsign,))):
        out.update({t: (fn, plain) for t in targets})
    out[F.softplus] = ("softplus", {"beta": 1.0, "threshold": 20.0})
    out.update({t: ("elu", {"alpha": 1.0}) for t in (F.elu, F.elu_)})
    out.update({t: ("celu", {"alpha": 1.0}) for t in (F.celu, torch.celu)})
    return out


class PointwiseReaders:
    """Reads pointwise activation modules, functions and methods into ``Pointwise`` ops."""

    def pointwise_module(self, node, where: str, m) -> bool:
        """Read module ``m`` if it is a pointwise activation; whether it was one."""
        import torch.nn as nn

        if isinstance(m, nn.GLU):
            self.glu(node, where, m.dim)
            return True
        spec = _modules().get(type(m))
        if spec is None:
            return False
        fn, params = spec
        self.pointwise_of(node, where, fn, tuple(params(m)))
        return True

    def pointwise_call(self, node, t, where: str) -> bool:
        """Read the function or method ``t`` if it is a pointwise activation; whether it was."""
        import torch.nn.functional as F

        if t is F.glu:
            self.glu(node, where, call_args(node, ("input", "dim"), {"dim": -1})["dim"])
            return True
        try:
            spec = _functions().get(t)
        except TypeError:   # an unhashable target
            return False
        if spec is None:
            return False
        fn, defaults = spec
        a = call_args(node, ("input", *defaults), defaults)
        self.pointwise_of(node, where, fn, tuple(a[k] for k in defaults))
        return True

    def pointwise_of(self, node, where: str, fn: str, params: tuple) -> None:
        try:
            pointwise_rising(fn, params)   # checks the parameters
        except ValueError as exc:
            raise UnsupportedOp(f"{fn} parameters", where, str(exc)) from None
        params = tuple(float(v) for v in params)
        self.unary(node, where, lambda name: ir.Pointwise(name, fn, params))

    def glu(self, node, where: str, dim: int) -> None:
        """``nn.GLU`` / ``F.glu``: ``a * sigmoid(b)`` of the halves of an image's channels (a
        Conformer's conv module) or of a vector's or sequence's features: each half a pick (a
        1 x 1 conv of weights 0 and 1, or such a Linear), the sigmoid a table, then a MUL."""
        import numpy as np

        shape = self.shape(node.args[0])
        axis = {3: 1, 1: 1, 2: 2}.get(len(shape))
        if axis is None or dim % (len(shape) + 1) != axis or shape[axis - 1] % 2:
            raise UnsupportedOp("glu", where, f"dim={dim} of a {shape} value; only over an "
                                              f"image's channels (dim=1) or the last axis of "
                                              f"a vector or sequence, of an even size")
        n, x, name = shape[axis - 1], self.value(node.args[0], where), self.name(node)
        halves = []
        for part in range(2):
            w = np.zeros((n // 2, n))
            w[np.arange(n // 2), np.arange(n // 2) + part * n // 2] = 1.0
            op = (ir.Conv2d(self.fresh(f"{name}.{'ab'[part]}"), w[:, :, None, None],
                            np.zeros(n // 2), inputs=(x,)) if len(shape) == 3 else
                  ir.Linear(self.fresh(f"{name}.{'ab'[part]}"), w, np.zeros(n // 2),
                            inputs=(x,)))
            halves.append(self.put(op))
        gate = self.put(ir.Pointwise(self.fresh(f"{name}.sigmoid"), "sigmoid",
                                     inputs=(halves[1],)))
        self.emit(node, ir.Mul(name, inputs=(halves[0], gate)))

    def sigmoid_read(self, head) -> str:
        """The value of a sigmoid head (:class:`~.trace_ops.Head`) that an op reads: the
        sigmoid as a table, in place of the head."""
        return self.put(ir.Pointwise(self.fresh(head.node), "sigmoid", inputs=(head.value,)))

    # --- expressions of one value ----------------------------------------------------------
    def scalar(self, node, where: str, op: str, k: float, arg, reverse: bool = False) -> None:
        """``arg op k`` (``k op arg`` when ``reverse``) of a tensor and a number: a table of
        that expression, which the folding joins to the tables next to it."""
        c = ("c", float(k))
        self._expr(node, where, self.value(arg, where), (op, c, ("x",)) if reverse else
                   (op, ("x",), c))

    def binary_call(self, node, t, where: str) -> bool:
        """Read ``a * b``, ``a / b``, ``a - b`` or ``-a`` if its operands are tensors (or a
        number, for ``-``); whether it was one. Two tensors must be functions of one value
        through pointwise ops (``x * sigmoid(x)``): one table of the expression; or, for
        ``a - b`` of any two, a negation and an ADD (:meth:`difference`); or, for ``a * b`` of
        any two, a product (:meth:`product`)."""
        import torch

        ops = {operator.mul: "mul", torch.mul: "mul", "mul": "mul", operator.truediv: "div",
               torch.div: "div", "div": "div", operator.sub: "sub", torch.sub: "sub",
               "sub": "sub", operator.neg: "neg", torch.neg: "neg", "neg": "neg",
               torch.maximum: "max", "maximum": "max", torch.minimum: "min", "minimum": "min",
               torch.max: "max", "max": "max", torch.min: "min", "min": "min"}
        try:
            op = ops.get(t)
        except TypeError:
            return False
        if op is None:
            return False
        if op in ("max", "min"):
            return self.extreme(node, where, op)
        if op == "neg":
            self._expr(node, where, self.value(node.args[0], where), ("mul", ("c", -1.0), ("x",)))
            return True
        a, b = node.args[:2]
        if len(node.args) > 2 or set(node.kwargs) - {"alpha"} or node.kwargs.get("alpha", 1) != 1:
            raise UnsupportedOp(f"function {op}", where, "only of two operands")
        if self.channel_constant(node, where, op, a, b):
            return True
        if not hasattr(a, "users") or not hasattr(b, "users"):   # sub with a number
            num, arg = (b, a) if hasattr(a, "users") else (a, b)
            if not isinstance(num, (int, float)) or isinstance(num, bool):
                raise UnsupportedOp(f"function {op}", where, f"of a tensor and {num!r}")
            self.scalar(node, where, op, num, arg, reverse=arg is b)
            return True
        (sa, ta), (sb, tb) = self.walk(self.value(a, where)), self.walk(self.value(b, where))
        if sa != sb and op == "sub":
            return self.difference(node, where, a, b)
        if sa != sb and op == "mul":
            return self.product(node, where, a, b)
        if sa != sb:
            raise UnsupportedOp(f"{op} of two tensors", where, "only of two functions of one "
                                                               "value through pointwise ops "
                                                               "(x * sigmoid(x)): one table")
        self._expr(node, where, sa, (op, ta, tb))
        return True

    def difference(self, node, where: str, a, b) -> bool:
        """``a - b`` of two images or vectors of one shape: ``b`` through an affine map of
        weight -1 (a depthwise 1 x 1 conv, a diagonal Linear), which the folding joins to the
        conv or Linear that makes ``b`` where only the map reads it (its weights and bias
        negated: :mod:`.fold_affine`), then an element-wise ADD."""
        name = self.name(node)
        neg = self.negation(f"{name}.neg", b, self.pair_shape(where, "sub", a, b), where)
        self.emit(node, ir.Add(name, inputs=(self.value(a, where), neg)))
        return True

    def product(self, node, where: str, a, b) -> bool:
        """``a * b`` of two activations: an element-wise MUL (:class:`~.ir_float.Mul`) of two
        values of one shape (images, vectors or sequences: a GLU's halves, a SwiGLU's
        branches), or of an image ``(C, H, W)`` and a gate ``(C, 1, 1)`` of its channels in
        either order (a squeeze-and-excitation block's ``x * scale``; ``expand_as`` reads as
        the gate itself). A gate of its pixels, ``(1, H, W)`` (a spatial attention's), is
        first spread over the channels by a pick conv (``<name>.spread``: a 1 x 1 conv of
        weights 1, at the gate's scale)."""
        import numpy as np

        def unexpanded(v):   # a gate's expand_as is the gate (its shape, too)
            while getattr(v, "target", None) in ("expand_as", "expand"):
                v = v.args[0]
            return v

        (sa, va), (sb, vb) = ((self.shape(unexpanded(v)), self.value(v, where)) for v in (a, b))
        name = self.name(node)
        if sa == sb and len(sa) in (1, 2, 3):
            self.emit(node, ir.Mul(name, inputs=(va, vb)))
            return True
        for (sx, vx), (sg, vg) in (((sa, va), (sb, vb)), ((sb, vb), (sa, va))):
            if len(sx) == 3 and sg == (sx[0], 1, 1):
                self.emit(node, ir.Mul(name, inputs=(vx, vg), gate=True))
                return True
            if len(sx) == 3 and sg == (1, *sx[1:]):
                c = sx[0]
                spread = self.put(ir.Conv2d(self.fresh(f"{name}.spread"), np.ones((c, 1, 1, 1)),
                                            np.zeros(c), inputs=(vg,)))
                self.emit(node, ir.Mul(name, inputs=(vx, spread)))
                return True
        raise UnsupportedOp("mul of two tensors", where, f"of per-sample shapes {sa} and {sb}: "
                            f"only of one shape, or an image (C, H, W) and a gate of its "
                            f"channels (C, 1, 1) or of its pixels (1, H, W)")

    def read_by_products(self, node) -> bool:
        """Whether only products read ``node`` (a gate's ``expand_as``, read as the gate)."""
        import torch

        return bool(node.users) and all(u.target in (operator.mul, torch.mul, "mul")
                                        for u in node.users)

    def extreme(self, node, where: str, op: str) -> bool:
        """``torch.maximum(a, b)`` (``torch.max(a, b)``) of two images or vectors of one shape:
        ``b + relu(a - b)``, a difference (:meth:`difference`) with a ReLU, then an ADD; the
        minimum ``a - relu(a - b)``. LightCNN's max-feature-map is one of a conv's channel
        halves. ``x.max(-1)`` of a line is its global max (:meth:`~.trace_line.LineReaders.
        line_reduce`); any other reduction (``torch.max(x, dim)``) is refused, naming it."""
        a, b = node.args[:2] if len(node.args) >= 2 else (node.args[0], None)
        if op == "max" and a in self.lines and not hasattr(b, "users") and (
                b is not None or "dim" in node.kwargs):
            return self.line_reduce(node, where, "max") or True   # over a line's length
        if not (hasattr(a, "users") and hasattr(b, "users")) or len(node.args) > 2 or node.kwargs:
            raise UnsupportedOp(f"function {op}", where, "only the element-wise maximum or "
                                                         "minimum of two tensors, no reduction")
        shape, name = self.pair_shape(where, op, a, b), self.name(node)
        neg = self.negation(f"{name}.neg", b, shape, where)
        gap = self.put(ir.Add(self.fresh(f"{name}.gap"), relu=True,
                              inputs=(self.value(a, where), neg)))
        if op == "max":
            self.emit(node, ir.Add(name, inputs=(self.value(b, where), gap)))
        else:
            back = self.negation(f"{name}.back", gap, shape, where)
            self.emit(node, ir.Add(name, inputs=(self.value(a, where), back)))
        return True

    def pair_shape(self, where: str, op: str, a, b) -> tuple:
        """The one per-sample shape of ``a`` and ``b``, images or vectors, for ``op``."""
        shape = self.shape(a)
        if shape != self.shape(b) or len(shape) not in (1, 3):
            raise UnsupportedOp(f"{op} of two tensors", where, f"of per-sample shapes {shape} "
                                                               f"and {self.shape(b)}; only "
                                                               f"equal image or vector shapes")
        return shape

    def negation(self, base: str, value, shape: tuple, where: str) -> str:
        """``-value`` (a node, or a value's name) of ``shape``: an affine map of weight -1."""
        import numpy as np

        affine = channel_affine if len(shape) == 3 else feature_affine
        src = value if isinstance(value, str) else self.value(value, where)
        ones = np.ones(shape[0])
        return self.put(affine(self.fresh(base), -ones, 0 * ones, src))

    def walk(self, value: str) -> tuple[str, tuple]:
        """``(source, tree)``: ``value`` as an expression of the value its chain of pointwise
        ops (tables, ReLUs) starts from."""
        ops = {op.name: op for op in self.ops}
        tree = ("x",)
        while True:
            op = ops.get(value)
            if isinstance(op, ir.Pointwise):
                inner = op.tree()
            elif isinstance(op, Relu):
                inner = relu_tree(op.cap)
            else:
                return value, tree
            tree, value = substitute_expr(tree, inner), op.inputs[0]

    def _expr(self, node, where: str, src: str, tree: tuple) -> None:
        try:
            tree = check_expr(tree)
        except ValueError as exc:
            raise UnsupportedOp("expression", where, str(exc)) from None
        self.emit(node, ir.Pointwise(self.name(node), "expr", inputs=(src,), expr=tree))

    # --- a tensor and a constant of one value a channel ------------------------------------
    def channel_constant(self, node, where: str, op: str, a, b) -> bool:
        """Read ``a op b`` if one operand is a constant tensor (a parameter or buffer, or
        computed from them) of one value a channel of an image, or a feature of a vector (or
        of a sequence, as its factor), the other is (``x - mean[:, None, None]``, ``x * gamma``):
        an affine map of those
        weights and biases (:mod:`.fold_affine`), which the folding joins to the ops next to
        it; whether it was one."""
        import numpy as np

        from .trace_attention import Const

        ca, cb = (self.env.get(v) if hasattr(v, "users") else None for v in (a, b))
        if not (isinstance(ca, Const) or isinstance(cb, Const)):
            return False
        const, arg, first = (cb, a, False) if isinstance(cb, Const) else (ca, b, True)
        shape = self.shape(arg) if hasattr(arg, "users") else ()
        c = per_channel(const.value, shape)
        if c is None and op in ("mul", "div") and len(shape) == 2:   # a sequence's layer scale
            c = _per_feature(const.value, shape[1])
        if c is None and np.size(const.value) == 1:   # a number as a tensor: a table
            self.scalar(node, where, op, float(np.asarray(const.value).reshape(-1)[0]), arg,
                        reverse=first)
            return True
        if c is None:
            raise UnsupportedOp("a constant operand", where, f"{op} of a tensor of per-sample "
                                                             f"shape {shape} and a constant of "
                                                             f"shape {np.shape(const.value)}; "
                                                             f"only one value a channel of an "
                                                             f"image or a feature of a vector")
        one, zero = np.ones_like(c), np.zeros_like(c)
        if op == "div" and first:
            raise UnsupportedOp("a constant operand", where, "a constant divided by a tensor")
        if op == "div" and not np.all(c != 0):
            raise UnsupportedOp("a constant operand", where, "a division by zero")
        if op in ("mul", "div"):
            w, bias = (c if op == "mul" else one / c), zero
        else:   # add, sub
            w, bias = (-one, c) if op == "sub" and first else (one, -c if op == "sub" else c)
        from .errors import check_finite

        check_finite(w, f"{where} weights", where)
        check_finite(bias, f"{where} bias", where)
        affine = channel_affine if len(shape) == 3 else feature_affine
        self.emit(node, affine(self.name(node), w, bias, self.value(arg, where)))
        return True

    def channel_constant_add(self, node, where: str, a, b) -> bool:
        """``a + b`` of an image and a constant of one value a channel (:meth:`
        channel_constant`); whether it was one (other constants: ``add_constant``)."""
        from .trace_attention import Const

        for x, y in ((a, b), (b, a)):
            const = self.env.get(y) if hasattr(y, "users") else None
            if isinstance(const, Const) and hasattr(x, "users") and per_channel(
                    const.value, self.shape(x)) is not None:
                return self.channel_constant(node, where, "add", x, y)
        return False



def _per_feature(value, features: int):
    """The ``features`` values of constant ``value`` where it broadcasts over a sequence as one
    value a feature (``(F,)``, ``(1, F)``, ``(1, 1, F)``: a ConvNeXt block's or a transformer's
    layer scale), else ``None`` (a number is a table's)."""
    import numpy as np

    v = np.asarray(value, dtype=np.float64)
    if v.size != features or v.ndim > 3 or v.shape[-1] != features:
        return None
    return v.reshape(-1).copy()


def per_channel(value, shape: tuple):
    """The ``C`` values of constant ``value`` where it broadcasts over an image of per-sample
    ``shape`` ``(C, H, W)`` as one value a channel (a number, ``(C, 1, 1)``, ``(1, C, 1,
    1)``), or over a vector of ``(C,)`` (a number, ``(C,)``, ``(1, C)``), else ``None``."""
    import numpy as np

    v = np.asarray(value, dtype=np.float64)
    if len(shape) == 1 and v.ndim <= 2 and (v.ndim < 2 or v.shape[0] == 1):
        try:
            return np.broadcast_to(v, (1, *shape))[0].copy()
        except ValueError:
            return None
    if len(shape) != 3 or v.ndim > 4 or (v.ndim == 4 and v.shape[0] != 1):
        return None
    try:
        full = np.broadcast_to(v, (1, *shape))[0]
    except ValueError:
        return None
    first = full[:, :1, :1]
    return full[:, 0, 0].copy() if np.array_equal(np.broadcast_to(first, full.shape), full) \
        else None
