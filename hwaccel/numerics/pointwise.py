"""Pointwise activations on int8 through the GELU unit's 256-entry table.

The attention units' GELU unit (:mod:`.gelu`) maps an int8 input to an int8 output through a
table it loads per layer; nothing in it is GELU's but the table. So any function of one value
runs on it, exact by construction: ``table[q + 128] = sat8(floor(f(q * s_x) / s_y + 1/2))``
(:func:`.gelu.table_of`), the correctly rounded output of ``f`` at the layer's two scales, and
``gelu_int`` is the lookup. :data:`POINTWISE` holds the functions the compiler takes, each in
float64 as PyTorch defines it (``torch.nn`` modules and ``torch.nn.functional``):

==============  =======================================================  ==========  ========
name            f(x)                                                     parameters  rising
==============  =======================================================  ==========  ========
``sigmoid``     ``1 / (1 + exp(-x))``                                                yes
``tanh``        ``tanh(x)``                                                          yes
``silu``        ``x * sigmoid(x)`` (swish)                                           no
``hardswish``   ``x * min(max(x + 3, 0), 6) / 6``                                    no
``hardsigmoid`` ``min(max(x + 3, 0), 6) / 6``                                        yes
``softplus``    ``log(1 + exp(beta x)) / beta``, ``x`` where ``beta x > threshold``  beta,       yes
                                                                         threshold
``mish``        ``x * tanh(softplus(x))``                                            no
``elu``         ``x`` for ``x > 0``, else ``alpha (exp(x) - 1)``         alpha       alpha >= 0
``celu``        ``max(0, x) + min(0, alpha (exp(x / alpha) - 1))``       alpha       yes
``selu``        ``1.0507... * elu(x, 1.6732...)``                                    yes
``logsigmoid``  ``-softplus(-x)``                                                    yes
``softsign``    ``x / (1 + |x|)``                                                    yes
``hardtanh``    ``min(max(x, min_val), max_val)`` (a clamp not from 0)   min_val,    yes
                                                                         max_val
``relu``        ``max(x, 0)`` (in an expression: a ReLU after a table)               yes
``gelu``        ``x * Phi(x)`` (:func:`.gelu.gelu_float`)                            no
``gelu_tanh``   GELU's tanh form                                                     no
==============  =======================================================  ==========  ========

"Rising": never decreasing, so its table never decreases either (rounding and saturation keep
the order), and a max pool after it equals the max pool before it on the integers too.

An expression of one value runs on the table as well (:func:`expr_params`): a tree of
``("x",)`` (the value), ``("c", number)``, ``("fn", name, params, child)`` (one of the
functions above) and ``(op, a, b)`` with ``op`` one of ``add``, ``sub``, ``mul`` and ``div``
(a divisor that is a number): ``x * sigmoid(x)`` written out, or hardswish as ``x *
relu6(x + 3) / 6``, are one table.
"""

from __future__ import annotations

import math

from .gelu import GeluParams, gelu_float, table_of

__all__ = ["POINTWISE", "pointwise_float", "pointwise_params", "pointwise_rising", "check_expr",
           "expr_float", "expr_params", "expr_text", "substitute_expr"]

# torch.nn.SELU's constants (Klambauer et al., "Self-Normalizing Neural Networks", 2017)
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _softplus(x: float, beta: float = 1.0, threshold: float = 20.0) -> float:
    return x if beta * x > threshold else math.log1p(math.exp(beta * x)) / beta


def _elu(x: float, alpha: float = 1.0) -> float:
    return x if x > 0 else alpha * math.expm1(x)


#: name -> (f(x, *parameters) in float64, the parameters' names and defaults)
POINTWISE: dict[str, tuple] = {
    "sigmoid": (_sigmoid, {}),
    "tanh": (math.tanh, {}),
    "silu": (lambda x: x * _sigmoid(x), {}),
    "hardswish": (lambda x: x * min(max(x + 3.0, 0.0), 6.0) / 6.0, {}),
    "hardsigmoid": (lambda x: min(max(x + 3.0, 0.0), 6.0) / 6.0, {}),
    "softplus": (_softplus, {"beta": 1.0, "threshold": 20.0}),
    "mish": (lambda x: x * math.tanh(_softplus(x)), {}),
    "elu": (_elu, {"alpha": 1.0}),
    "celu": (lambda x, alpha=1.0: max(0.0, x) + min(0.0, alpha * math.expm1(x / alpha)),
             {"alpha": 1.0}),
    "selu": (lambda x: _SELU_SCALE * _elu(x, _SELU_ALPHA), {}),
    "logsigmoid": (lambda x: min(x, 0.0) - math.log1p(math.exp(-abs(x))), {}),
    "softsign": (lambda x: x / (1.0 + abs(x)), {}),
    "hardtanh": (lambda x, lo=-1.0, hi=1.0: min(max(x, lo), hi),
                 {"min_val": -1.0, "max_val": 1.0}),
    "relu": (lambda x: max(x, 0.0), {}),
    "gelu": (lambda x: gelu_float(x, "none"), {}),
    "gelu_tanh": (lambda x: gelu_float(x, "tanh"), {}),
}
_RISING = {"sigmoid", "tanh", "hardsigmoid", "softplus", "celu", "selu", "logsigmoid",
           "softsign", "hardtanh", "relu"}


def _check(fn: str, params: tuple) -> tuple[float, ...]:
    if fn not in POINTWISE:
        raise ValueError(f"pointwise function must be one of {', '.join(POINTWISE)}, not {fn!r}")
    names = tuple(POINTWISE[fn][1])
    if len(params) > len(names):
        raise ValueError(f"{fn} takes {len(names)} parameters ({', '.join(names) or 'none'}), "
                         f"not {len(params)}")
    out = []
    for name, v in zip(names, params):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{fn}'s {name} must be a finite number, not {v!r}")
        out.append(float(v))
    if fn in ("softplus", "celu") and out and out[0] == 0:
        raise ValueError(f"{fn}'s {names[0]} must not be 0")
    if fn == "hardtanh" and len(out) == 2 and not out[0] < out[1]:
        raise ValueError(f"hardtanh's min_val must be below its max_val, not {out[0]!r} and "
                         f"{out[1]!r}")
    return tuple(out)


def pointwise_float(fn: str, x: float, params: tuple = ()) -> float:
    """``fn`` of one value (:data:`POINTWISE`), in float64, with its ``params`` (in the order
    of the table's parameter column; fewer take the defaults)."""
    return POINTWISE[fn][0](float(x), *_check(fn, tuple(params)))


def pointwise_params(fn: str, in_scale: float, out_scale: float,
                     params: tuple = ()) -> GeluParams:
    """The table of ``fn`` for int8 input at ``in_scale`` and int8 output at ``out_scale``."""
    f, args = POINTWISE[fn][0] if fn in POINTWISE else None, _check(fn, tuple(params))
    return table_of(lambda x: f(x, *args), in_scale, out_scale)


def pointwise_rising(fn: str, params: tuple = ()) -> bool:
    """Whether ``fn`` with ``params`` never decreases (a max pool commutes with it)."""
    args = _check(fn, tuple(params))
    if fn == "elu":
        return (args[0] if args else 1.0) >= 0
    return fn in _RISING


_OPS = ("add", "sub", "mul", "div")


def check_expr(tree) -> tuple:
    """``tree`` (see the module docstring) with its functions' parameters checked and as
    floats; ``ValueError`` naming what is wrong otherwise."""
    if not isinstance(tree, tuple) or not tree:
        raise ValueError(f"an expression must be a non-empty tuple, not {tree!r}")
    kind = tree[0]
    if kind == "x" and len(tree) == 1:
        return tree
    if kind == "c" and len(tree) == 2:
        v = tree[1]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"an expression's constant must be a finite number, not {v!r}")
        return ("c", float(v))
    if kind == "fn" and len(tree) == 4:
        return ("fn", tree[1], _check(tree[1], tuple(tree[2])), check_expr(tree[3]))
    if kind in _OPS and len(tree) == 3:
        a, b = check_expr(tree[1]), check_expr(tree[2])
        if kind == "div" and (b[0] != "c" or b[1] == 0):
            raise ValueError(f"an expression divides only by a number other than 0, not by "
                             f"{expr_text(b)}")
        return (kind, a, b)
    raise ValueError(f"not an expression node: {tree!r}")


def expr_float(tree: tuple, x: float) -> float:
    """``tree`` at ``x``, in float64."""
    kind = tree[0]
    if kind == "x":
        return float(x)
    if kind == "c":
        return float(tree[1])
    if kind == "fn":
        return POINTWISE[tree[1]][0](expr_float(tree[3], x), *tree[2])
    a, b = expr_float(tree[1], x), expr_float(tree[2], x)
    return a + b if kind == "add" else a - b if kind == "sub" else a * b if kind == "mul" \
        else a / b


def expr_params(tree: tuple, in_scale: float, out_scale: float) -> GeluParams:
    """The table of expression ``tree`` (:func:`check_expr`) for int8 input at ``in_scale``
    and int8 output at ``out_scale``."""
    tree = check_expr(tree)
    return table_of(lambda x: expr_float(tree, x), in_scale, out_scale)


def expr_text(tree: tuple) -> str:
    """``tree`` written out, e.g. ``x*sigmoid(x)``."""
    kind = tree[0]
    if kind == "x":
        return "x"
    if kind == "c":
        return f"{tree[1]:g}"
    if kind == "fn":
        args = "".join(f", {v:g}" for v in tree[2])
        return f"{tree[1]}({expr_text(tree[3])}{args})"
    sym = {"add": "+", "sub": "-", "mul": "*", "div": "/"}[kind]

    def side(t, right):
        text = expr_text(t)
        loose = t[0] in ("add", "sub") and kind in ("mul", "div", "sub") and (
            right or kind != "sub") or (right and t[0] in _OPS and kind in ("sub", "div"))
        return f"({text})" if loose else text

    return f"{side(tree[1], False)}{sym}{side(tree[2], True)}"


def substitute_expr(tree: tuple, inner: tuple) -> tuple:
    """``tree`` with its value ``("x",)`` replaced by ``inner``: ``tree`` of ``inner``."""
    if tree[0] == "x":
        return inner
    if tree[0] == "c":
        return tree
    if tree[0] == "fn":
        return (*tree[:3], substitute_expr(tree[3], inner))
    return (tree[0], substitute_expr(tree[1], inner), substitute_expr(tree[2], inner))
