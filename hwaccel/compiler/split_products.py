"""A preset-specific pass on the float IR, before quantization: on a preset with an element-wise
product (``AccelConfig.elt_mul``) and no attention units (so no tables), a table that is its
input times an affine map or clamp of it -- ``nn.Hardswish`` (``x * hardsigmoid(x)``), ``x *
relu6(x + 3) / 6`` written out, ``x * x.clamp(0, 1)``, ``x * (x + 1)`` -- becomes that map as
ops (:func:`~.fold_scalar.affine_of`: a depthwise 1 x 1 conv on an image, a diagonal Linear on
a vector, ``<name>.gate``; a clamp not from 0 is two) and a :class:`~.ir_float.Mul` of the
input and it, which keeps the table's name; ``x * x`` is the MUL of ``x`` and itself. In float
the same function; in int8 the gate has a scale of its own (``1 / 127`` for ``[0, 1]``) and
the product a power-of-two multiple of the two scales (:func:`hwaccel.numerics.mul_shift`).
With attention units the table stays: one pass on the GELU unit, against a conv and a MUL."""

from __future__ import annotations

from . import ir
from .fold_scalar import affine_maps, affine_of, map_ops
from .split_pools import rewrite_ops

__all__ = ["tables_as_products"]


def _factor(tree: tuple) -> tuple | None:
    """``tree`` as ``x * f(x)``: the tree of ``f`` (an affine clamp), or None."""
    if tree[0] == "fn" and tree[1] == "hardswish" and tree[3] == ("x",):
        return ("fn", "hardsigmoid", (), ("x",))
    if tree[0] == "div" and tree[1][0] == "mul" and tree[2][0] == "c":
        inner = _factor(tree[1])
        return None if inner is None else ("div", inner, tree[2])
    if tree[0] == "mul":
        for x, f in ((tree[1], tree[2]), (tree[2], tree[1])):
            if x == ("x",) and affine_of(f) is not None:
                return f
    return None


def tables_as_products(graph: ir.Graph, cfg) -> ir.Graph:
    """``graph`` with each such table on an image or a vector rewritten as the module says, on
    a ``cfg`` with ``elt_mul`` and no attention units; ``graph`` itself otherwise."""
    if not cfg.elt_mul or cfg.attention is not None:
        return graph

    def product(op, shapes, fresh):
        f, shape, x = _factor(op.tree()), shapes[op.inputs[0]], op.inputs[0]
        if f is None or len(shape) not in (1, 3):
            return None
        if f == ("x",):   # x * x: the MUL of x and itself
            return [ir.Mul(op.name, inputs=(x, x))]
        maps = affine_maps(f"{op.name}.gate", affine_of(f))
        if maps is None:
            return None
        gate = map_ops(maps, shape, x, fresh)
        return [*gate, ir.Mul(op.name, inputs=(x, gate[-1].name))]

    return rewrite_ops(graph, product, ir.Pointwise)
