"""The float IR's ops for attention and transformer encoders (:mod:`.ir` describes the IR; import
it from there).

A self-attention layer is lowered into these and the existing :class:`~.ir_float.Linear` and
:class:`~.ir_float.Add`: Q, K and V projections (three Linears, so each gets its own scale),
per head a :class:`Slice` of each, ``Q_h . K_h^T / sqrt(d)`` (:class:`MatMul`, the scale folded
in), a row-wise :class:`Softmax` (causal or not), ``P_h . V_h`` (:class:`MatMul`), the heads
side by side (:class:`Concat`) and the output projection. Every value is per sample ``(T, F)``
(tokens by features) or ``(F,)``.

MACs (:meth:`MatMul.macs`): a product of a ``(T, K)`` by a ``(K, N)`` activation counts
``T * K * N``, as a Linear does: per head ``T * T * d`` for the scores and as many for ``P . V``.
Softmax, LayerNorm, GELU, slices, concatenations, constant adds and means count nothing, as
adds and averages count nothing in :func:`~.ir_graph.macs`.

These ops trace and run in float (:mod:`.reference`); :mod:`.quantize_attention` makes their
integer forms (:mod:`.ir_attention_q`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .ir_float import Shape

__all__ = ["MatMul", "Softmax", "LayerNorm", "Gelu", "Pointwise", "Slice", "Concat", "AddConstant",
           "TokenMean", "Token", "ATTENTION_OPS"]


def _rows(op, shape: Shape, what: str = "(tokens, features)") -> None:
    if len(shape) != 2:
        raise ValueError(f"op {op.name!r} ({type(op).__name__}) reads a {what} value, not a "
                         f"per-sample shape {shape}")


@dataclass(frozen=True, eq=False)
class MatMul:
    """``scale * a @ b`` of two activations, ``a`` ``(T, K)``; ``b`` is ``(K, n)``, or ``(n, K)``
    when ``transpose_b`` (``Q . K^T``). Out ``(T, n)``."""

    name: str
    n: int
    scale: float = 1.0
    transpose_b: bool = False
    inputs: tuple[str, ...] = ()
    ARITY: ClassVar[int] = 2

    def out_shape(self, a: Shape, b: Shape = None) -> Shape:
        _rows(self, a)
        if b is not None:
            _rows(self, b)
            n, k = b if self.transpose_b else b[::-1]
            if k != a[1] or n != self.n:
                raise ValueError(f"op {self.name!r} (MatMul) multiplies {a} by {b}"
                                 f"{'^T' if self.transpose_b else ''}, which is not (T, K) by "
                                 f"(K, {self.n})")
        return (a[0], self.n)

    def macs(self, a: Shape) -> int:
        return a[0] * a[1] * self.n


@dataclass(frozen=True, eq=False)
class Softmax:
    """Softmax of each row of a ``(T, S)`` value; ``causal``: row ``i`` sees columns ``j <= i``
    only (``T == S``), the others get probability 0."""

    name: str
    causal: bool = False
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        _rows(self, shape, "(queries, keys)")
        if self.causal and shape[0] != shape[1]:
            raise ValueError(f"op {self.name!r} (Softmax) is causal on {shape}: it needs as many "
                             f"queries as keys")
        return shape


@dataclass(frozen=True, eq=False)
class LayerNorm:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last axis (biased variance,
    as PyTorch's); ``weight`` and ``bias`` have one entry per feature."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    eps: float = 1e-5
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        if shape[-1] != len(self.weight):
            raise ValueError(f"op {self.name!r} (LayerNorm) normalizes {len(self.weight)} "
                             f"features, not the {shape[-1]} of {shape}")
        return shape


@dataclass(frozen=True, eq=False)
class Gelu:
    """GELU, exact (``x * Phi(x)``, ``approximate="none"``) or PyTorch's ``"tanh"`` form."""

    name: str
    approximate: str = "none"
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        return shape


@dataclass(frozen=True, eq=False)
class Pointwise:
    """A function of each value (:data:`hwaccel.numerics.POINTWISE`: sigmoid, tanh, SiLU,
    hardswish ...) with its ``params`` (ELU's alpha, softplus's beta and threshold), or with
    ``fn == "expr"`` the expression ``expr`` of it (:func:`hwaccel.numerics.check_expr`: ``x *
    sigmoid(x)``, ``x + 3`` ...), any shape: it runs as a table on the GELU unit."""

    name: str
    fn: str
    params: tuple[float, ...] = ()
    inputs: tuple[str, ...] = ()
    expr: tuple = ()

    def out_shape(self, shape: Shape) -> Shape:
        return shape

    def tree(self) -> tuple:
        """The function as an expression tree."""
        return self.expr if self.fn == "expr" else ("fn", self.fn, self.params, ("x",))

    def label(self) -> str:
        """The function's name, or its expression written out."""
        from ..numerics import expr_text

        return expr_text(self.expr) if self.fn == "expr" else self.fn


@dataclass(frozen=True, eq=False)
class Slice:
    """Columns ``start:stop`` of a ``(T, F)`` value (one head's share of Q, K or V)."""

    name: str
    start: int
    stop: int
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        _rows(self, shape)
        if not 0 <= self.start < self.stop <= shape[1]:
            raise ValueError(f"op {self.name!r} (Slice) takes columns {self.start}:{self.stop} "
                             f"of {shape}")
        return (shape[0], self.stop - self.start)


@dataclass(frozen=True, eq=False)
class Concat:
    """Its ``inputs`` (each ``(T, F_i)``) side by side: ``(T, sum F_i)``, the heads back into
    one value."""

    name: str
    inputs: tuple[str, ...] = ()
    ARITY: ClassVar[None] = None  # one or more

    def out_shape(self, *shapes: Shape) -> Shape:
        for s in shapes:
            _rows(self, s)
        if len({s[0] for s in shapes}) != 1:
            raise ValueError(f"op {self.name!r} (Concat) joins different token counts: {shapes}")
        return (shapes[0][0], sum(s[1] for s in shapes))


@dataclass(frozen=True, eq=False)
class AddConstant:
    """``x + value``, ``value`` a constant of the per-sample shape (learned positional
    embeddings), added on the device."""

    name: str
    value: np.ndarray
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        if tuple(self.value.shape) != tuple(shape):
            raise ValueError(f"op {self.name!r} (AddConstant) adds a {self.value.shape} "
                             f"constant to a {shape} value")
        return shape


@dataclass(frozen=True, eq=False)
class TokenMean:
    """The mean over the tokens of a ``(T, F)`` value: ``(F,)`` (a mean-pool head)."""

    name: str
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        _rows(self, shape)
        return (shape[1],)


@dataclass(frozen=True, eq=False)
class Token:
    """Token ``index`` (from 0) of a ``(T, F)`` value: ``(F,)`` (a first-token head)."""

    name: str
    index: int = 0
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        _rows(self, shape)
        if not 0 <= self.index < shape[0]:
            raise ValueError(f"op {self.name!r} (Token) takes token {self.index} of {shape}")
        return (shape[1],)


#: The float attention ops (their quantized forms: :data:`.ir_attention_q.QATTENTION_OPS`).
ATTENTION_OPS = (MatMul, Softmax, LayerNorm, Gelu, Pointwise, Slice, Concat, AddConstant, TokenMean,
                 Token)
