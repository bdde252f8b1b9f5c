"""The quantized IR's ops for attention and transformer encoders (:mod:`.ir` describes the IR;
import it from there), made by :mod:`.quantize_attention` from the float ops of
:mod:`.ir_attention`.

Every value stays an int8 tensor at one scale per tensor, and every integer operation is
:mod:`hwaccel.numerics`' own:

* :class:`QMatMul`: int8 x int8 products summed exactly (int32: ``K * 2**14`` for ``K`` up to
  2**17), then :func:`~hwaccel.numerics.requantize` with ``M / 2**S ~ scale * s_a * s_b /
  s_out``; the float op's ``scale`` (1/sqrt(d) of the scores) is folded into ``M``. ``P . V``
  reads 7-bit probabilities (0..127 at 1/127, :data:`~hwaccel.numerics.PROB_SCALE`) as an
  ordinary int8 operand, as :mod:`hwaccel.numerics.softmax` defines them.
* :class:`QSoftmax`: :func:`~hwaccel.numerics.softmax_int` with the exponent table of the score
  scale (:func:`~hwaccel.numerics.softmax_params`); causal rows see columns ``j <= i``. Out at
  1/127 always.
* :class:`QLayerNorm`: :func:`~hwaccel.numerics.layernorm_int`, ``G``, ``B`` and the shift from
  gamma, beta, eps and the two scales (:func:`~hwaccel.numerics.layernorm_params`).
* :class:`QGelu`: the 256-entry table of :func:`~hwaccel.numerics.gelu_params` (or of
  :func:`~hwaccel.numerics.pointwise_params`: a :class:`~.ir_attention.Pointwise`).
* :class:`QSlice`, :class:`QConcat`, :class:`QToken`: views (no arithmetic; the scale is
  kept). A concatenation's inputs share one scale: the quantizer requantizes each head's
  ``P . V`` straight into the scale calibrated for the joined value (each head's own
  requantizer targets it, so joining costs nothing).
* :class:`QAddConstant`: a positional embedding, quantized at its own scale
  (``max|value| / 127``) and added with the residual ADD's arithmetic
  (:func:`~hwaccel.numerics.add_params`, :func:`~hwaccel.numerics.add_requantize`).
* :class:`QTokenMean`: the exact int8 average over the tokens
  (:func:`~hwaccel.numerics.average` of the exact sum); the scale is kept.

:mod:`.lower_attention` lowers them to the attention commands on a configuration with attention
units (the golden interpreter and the RTL run those); elsewhere :mod:`.lower` refuses them by
name. The integer twin (:mod:`.int8`) and the integer reference (:mod:`.qreference`) run them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .ir_attention import Concat, Gelu, LayerNorm, MatMul, Slice, Softmax, Token, TokenMean
from .ir_float import Shape

if TYPE_CHECKING:
    from ..numerics import AddRequant, GeluParams, LayerNormParams, SoftmaxParams

__all__ = ["QMatMul", "QSoftmax", "QLayerNorm", "QGelu", "QSlice", "QConcat", "QAddConstant",
           "QTokenMean", "QToken", "QATTENTION_OPS", "QUNIT_OPS"]


@dataclass(frozen=True, eq=False)
class QMatMul:
    """``requantize(a @ b, multiplier, shift)`` of two int8 activations (``b`` transposed when
    ``transpose_b``), ``a`` at ``s_a``, ``b`` at ``s_b``, out at ``s_out``; ``scale`` is the
    float op's, folded into ``multiplier``."""

    name: str
    n: int
    transpose_b: bool
    multiplier: int
    shift: int
    scale: float = 1.0
    s_a: float = 0.0
    s_b: float = 0.0
    s_out: float = 0.0
    inputs: tuple[str, ...] = ()
    ARITY: ClassVar[int] = 2

    def out_shape(self, a: Shape, b: Shape = None) -> Shape:
        return MatMul(self.name, self.n, transpose_b=self.transpose_b).out_shape(a, b)

    def macs(self, a: Shape) -> int:
        return a[0] * a[1] * self.n


@dataclass(frozen=True, eq=False)
class QSoftmax:
    """:func:`hwaccel.numerics.softmax_int` of each row (int8 at ``s_in``) with ``params``;
    out at 1/127."""

    name: str
    params: SoftmaxParams
    causal: bool
    s_in: float = 0.0
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        shape = Softmax(self.name, self.causal).out_shape(shape)
        if shape[1] > self.params.max_len:
            raise ValueError(f"op {self.name!r} (QSoftmax) has rows of {shape[1]}, longer than "
                             f"its table's max_len {self.params.max_len}")
        return shape

    @property
    def s_out(self) -> float:
        from ..numerics import PROB_SCALE

        return PROB_SCALE


@dataclass(frozen=True, eq=False)
class QLayerNorm:
    """:func:`hwaccel.numerics.layernorm_int` over the last axis, int8 at ``s_in`` to ``s_out``."""

    name: str
    params: LayerNormParams
    s_in: float = 0.0
    s_out: float = 0.0
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        w = np.zeros(self.params.channels)
        return LayerNorm(self.name, w, w).out_shape(shape)


@dataclass(frozen=True, eq=False)
class QGelu:
    """The GELU unit's table (:func:`hwaccel.numerics.gelu_int`), int8 at ``s_in`` to
    ``s_out``: GELU's, or the function ``fn``'s (:data:`hwaccel.numerics.POINTWISE`, an
    :class:`~.ir_attention.Pointwise`)."""

    name: str
    params: GeluParams
    s_in: float = 0.0
    s_out: float = 0.0
    inputs: tuple[str, ...] = ()
    fn: str = "gelu"

    def out_shape(self, shape: Shape) -> Shape:
        return Gelu(self.name).out_shape(shape)


@dataclass(frozen=True, eq=False)
class QSlice:
    """Columns ``start:stop`` (a view: the scale ``s`` is kept)."""

    name: str
    start: int
    stop: int
    s: float = 0.0
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        return Slice(self.name, self.start, self.stop).out_shape(shape)


@dataclass(frozen=True, eq=False)
class QConcat:
    """Its inputs side by side; they share the scale ``s`` (a view: no arithmetic)."""

    name: str
    s: float = 0.0
    inputs: tuple[str, ...] = ()
    ARITY: ClassVar[None] = None

    def out_shape(self, *shapes: Shape) -> Shape:
        return Concat(self.name).out_shape(*shapes)


@dataclass(frozen=True, eq=False)
class QAddConstant:
    """:func:`hwaccel.numerics.add_requantize` of the input (at ``s_a``) and the int8 constant
    ``value`` (at ``s_b``, per-sample shape) with ``params`` into ``s_out``."""

    name: str
    value: np.ndarray
    params: AddRequant
    s_a: float = 0.0
    s_b: float = 0.0
    s_out: float = 0.0
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        if tuple(self.value.shape) != tuple(shape):
            raise ValueError(f"op {self.name!r} (QAddConstant) adds a {self.value.shape} "
                             f"constant to a {shape} value")
        return shape


@dataclass(frozen=True, eq=False)
class QTokenMean:
    """:func:`hwaccel.numerics.average` over the tokens: ``(T, F)`` to ``(F,)``, scale ``s``
    kept."""

    name: str
    s: float = 0.0
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        return TokenMean(self.name).out_shape(shape)


@dataclass(frozen=True, eq=False)
class QToken:
    """Token ``index`` of a ``(T, F)`` value (a view, scale ``s`` kept)."""

    name: str
    index: int = 0
    s: float = 0.0
    inputs: tuple[str, ...] = ()

    def out_shape(self, shape: Shape) -> Shape:
        return Token(self.name, self.index).out_shape(shape)


#: The quantized attention ops (:mod:`.lower_attention` lowers them).
QATTENTION_OPS = (QMatMul, QSoftmax, QLayerNorm, QGelu, QSlice, QConcat, QAddConstant,
                  QTokenMean, QToken)
#: Those that run on the attention units: the rest are addresses (a slice, a join, a token),
#: an ADD (a constant) or an AVGPOOL (the mean over the steps), which every preset runs -- an
#: LSTM's or an embedding's mean over its steps lowers without the units.
QUNIT_OPS = (QMatMul, QSoftmax, QLayerNorm, QGelu)
