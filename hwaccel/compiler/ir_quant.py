"""The quantized IR's ops: integer tensors and requantizers only (:mod:`.ir` describes the IR;
import it from there)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..generators.lstm.model import LstmParams
from .ir_float import _Conv

if TYPE_CHECKING:
    from ..numerics import AddRequant

__all__ = ["QEmbedding", "QConv", "QMaxPool", "QAvgPool", "QAdd", "QMul", "QFlatten", "QUnflatten",
           "QSeqView", "QDepthToSpace", "QLinear", "QLstm"]


# --- quantized IR --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class QEmbedding:
    """``table`` is the int8 ``V x D`` table at ``scale`` (one scale for the whole table)."""

    name: str
    table: np.ndarray
    scale: float
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class QConv(_Conv):
    """``y = sat(requant(conv(x, w) + bias))`` (ReLU in the bounds), then a 2x2 pool if ``pool``.

    ``w`` int8 ``Cout x Cin/groups x KH x KW``; ``bias`` int32 at ``s_in * s_w``;
    ``multiplier`` and ``shift`` per output channel (:class:`hwaccel.numerics.Requant`);
    ``stride``, ``padding`` and ``groups`` as :class:`Conv2d`.
    """

    name: str
    w: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    stride: int | tuple[int, int]
    padding: int | tuple[int, int, int, int]
    relu: bool
    pool: bool
    s_in: float = 0.0
    s_out: float = 0.0
    groups: int = 1
    inputs: tuple[str, ...] = ()

    def _weights(self):
        return self.w


@dataclass(frozen=True, eq=False)
class QMaxPool:
    """:class:`~.ir_float.MaxPool2d` of int8 values (``line``: 1 x 4 windows of a line)."""

    name: str
    inputs: tuple[str, ...] = ()
    line: bool = False


@dataclass(frozen=True, eq=False)
class QAvgPool:
    """:func:`hwaccel.numerics.average` over each ``kernel`` window: the output keeps the
    input's scale (an average of int8 values is an int8 value)."""

    name: str
    kernel: tuple[int, int]
    s: float = 0.0
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class QAdd:
    """:func:`hwaccel.numerics.add_requantize` of ``inputs[0]`` (at ``s_a``) and ``inputs[1]``
    (at ``s_b``) with ``params`` into ``s_out``, ReLU in the bounds if ``relu``."""

    name: str
    params: AddRequant
    relu: bool
    s_a: float = 0.0
    s_b: float = 0.0
    s_out: float = 0.0
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class QMul:
    """:func:`hwaccel.numerics.mul_requantize` of ``inputs[0]`` (at ``s_a``) and ``inputs[1]``
    (at ``s_b``; with ``gate`` one pixel of the first's channels) with ``shift``, into ``s_out
    = s_a * s_b * 2**shift``, ReLU in the bounds if ``relu``."""

    name: str
    shift: int
    relu: bool
    gate: bool = False
    s_a: float = 0.0
    s_b: float = 0.0
    s_out: float = 0.0
    inputs: tuple[str, ...] = ()
    ARITY = 2

    def out_shape(self, shape, *more):
        return shape


@dataclass(frozen=True, eq=False)
class QFlatten:
    name: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class QUnflatten:
    """:class:`~.ir_float.Unflatten` of int8 values: it keeps the scale, and moves no data."""

    name: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class QSeqView:
    """:class:`~.ir_float.SeqView` of int8 values: it keeps the scale, and moves no data."""

    name: str
    to_line: bool = False
    inputs: tuple[str, ...] = ()
    hw: tuple[int, int] | tuple = ()


@dataclass(frozen=True, eq=False)
class QDepthToSpace:
    """:class:`~.ir_float.DepthToSpace` of int8 values: it keeps the scale. The accelerator
    runs it as the 1 x 1 conv before it, writing its outputs where this puts them
    (:meth:`~.lower_emit._Emitter.depth_to_space`)."""

    name: str
    factor: int
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class QLinear:
    """``y = sat(requant(x @ w.T + bias))``; ``w`` int8 ``N x K``, the rest as :class:`QConv`."""

    name: str
    w: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    relu: bool
    s_in: float = 0.0
    s_out: float = 0.0
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class QLstm:
    """One LSTM layer on the cell (h is int8 at 2**-7); ``last_step`` keeps only the last h."""

    name: str
    params: LstmParams
    last_step: bool
    s_in: float = 0.0
    inputs: tuple[str, ...] = ()
