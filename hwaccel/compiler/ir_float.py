"""The float IR's ops as traced from convolutional and recurrent models, and the helpers every
IR module shares (:mod:`.ir` describes the IR; import it from there)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..generators.lstm.model import GateShapes

__all__ = ["Shape", "INPUT", "HEADS", "Embedding", "Conv2d", "MaxPool2d", "AvgPool2d", "Add",
           "Mul", "Flatten", "Unflatten", "SeqView", "DepthToSpace", "Linear", "LstmWeights",
           "LSTM", "pair", "sides", "squash"]


Shape = tuple[int, ...]
#: The name of the model's input value.
INPUT = "input"
#: What the host does with the output value; the accelerator always produces the logits.
HEADS = ("logits", "softmax", "log_softmax", "argmax", "sigmoid")


def pair(v) -> tuple[int, int]:
    """``(h, w)`` of an int or a pair."""
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def sides(p) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of an int padding or a quadruple."""
    return tuple(int(v) for v in p) if isinstance(p, (tuple, list)) else (int(p),) * 4


def squash(v):
    """An int when every part of ``v`` is equal (one shape, one value), else the tuple."""
    if isinstance(v, (tuple, list)):
        return int(v[0]) if len(set(v)) == 1 else tuple(int(x) for x in v)
    return int(v)


class _Conv:
    """Geometry shared by :class:`Conv2d` and :class:`QConv` (weights ``Cout x Cin/groups x KH
    x KW``)."""

    @property
    def kernel(self) -> tuple[int, int]:
        w = self._weights()
        return int(w.shape[2]), int(w.shape[3])

    @property
    def strides(self) -> tuple[int, int]:
        return pair(self.stride)

    @property
    def pads(self) -> tuple[int, int, int, int]:
        return sides(self.padding)

    @property
    def depthwise(self) -> bool:
        return self.groups > 1

    @property
    def pointwise(self) -> bool:
        """A dense 1 x 1 conv at stride 1, unpadded: a GEMM of its pixels."""
        return (self.kernel == (1, 1) and self.strides == (1, 1) and not any(self.pads)
                and self.groups == 1)

    def out_size(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (t, l, b, r) = self.kernel, self.strides, self.pads
        return (h + t + b - kh) // sh + 1, (w + l + r - kw) // sw + 1


# --- float IR ------------------------------------------------------------------------------------
# eq=False: the ops hold numpy arrays, whose == is elementwise; identity is what a graph needs.
@dataclass(frozen=True, eq=False)
class Embedding:
    """``weight`` is ``V x D``; token ids in, ``(T, D)`` out (gathered on the host)."""

    name: str
    weight: np.ndarray
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Conv2d(_Conv):
    """``weight`` is ``Cout x Cin/groups x KH x KW``; ``stride`` an int or ``(h, w)``;
    ``padding`` (zeros) an int or ``(top, left, bottom, right)``; ``groups`` is 1 (dense) or
    the channel count (depthwise: one output channel per input channel)."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    stride: int | tuple[int, int] = 1
    padding: int | tuple[int, int, int, int] = 0
    relu: bool = False
    groups: int = 1
    inputs: tuple[str, ...] = ()
    cap: float | None = None   # the ReLU's upper bound (ReLU6: 6.0); None: none
    #: at its input's scale: a copy or negation of values above -128 (:mod:`.fold_pools`),
    #: whose requantizer returns each value unchanged (or negated)
    exact: bool = False

    def _weights(self):
        return self.weight


@dataclass(frozen=True, eq=False)
class MaxPool2d:
    """2x2 max-pool, stride 2, floor mode (the only max-pooling the hardware has); with
    ``line``, a ``(C, 1, L)`` line's max over each 4 consecutive values (``MaxPool1d(4)``):
    the same unit's 2 x 2 windows over the line laid out as ``L // 2`` rows of 2."""

    name: str
    inputs: tuple[str, ...] = ()
    line: bool = False


@dataclass(frozen=True, eq=False)
class AvgPool2d:
    """Average over ``kernel`` (``(kh, kw)``) windows at stride ``kernel``, floor mode: a
    global pool when the kernel is the whole map."""

    name: str
    kernel: tuple[int, int]
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Add:
    """The element-wise sum of its two ``inputs`` (same shape), each times its ``weights``
    entry (both > 0; ``(1, 1)``: ``x + y``), then ReLU if ``relu`` (at most ``cap`` where one is
    given). The weights fold into the ADD's requantizer (:func:`hwaccel.numerics.add_params`):
    a LeakyReLU is two such adds (:meth:`.trace_ops.LayerReaders.leaky_relu`)."""

    name: str
    relu: bool = False
    inputs: tuple[str, ...] = ()
    cap: float | None = None
    weights: tuple[float, float] = (1.0, 1.0)
    #: at its inputs' one scale, weights (1, 1): a sum whose int8 result is exact when it is
    #: within int8 (the maxes of :mod:`.fold_pools`), not calibrated
    exact: bool = False


@dataclass(frozen=True, eq=False)
class Mul:
    """The element-wise product of its two ``inputs``: of one shape, or with ``gate`` an image
    ``(C, H, W)`` and a gate ``(C, 1, 1)`` (one pixel: each channel's factor, a
    squeeze-and-excitation block's), then ReLU if ``relu``. The MUL's requantizer is a shift
    (:func:`hwaccel.numerics.mul_requantize`)."""

    name: str
    relu: bool = False
    inputs: tuple[str, ...] = ()
    gate: bool = False
    ARITY = 2

    def out_shape(self, shape, *more):
        return shape


@dataclass(frozen=True, eq=False)
class Flatten:
    """``(C, H, W)`` to ``(C*H*W,)`` in PyTorch's (channel, row, column) order."""

    name: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Unflatten:
    """A ``(K,)`` vector read as the ``(K, 1, 1)`` image of one pixel: the same words (a
    pixel's channels), so no data moves. A Linear's output viewed as an image of more pixels
    (a decoder's ``x.view(-1, C, f, f)``) is this, a 1 x 1 conv and a :class:`DepthToSpace`
    (:mod:`.fold_unflatten`)."""

    name: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class SeqView:
    """A Conv1d's ``(C, 1, L)`` line read as the ``(L, C)`` sequence (``x.transpose(1, 2)`` into
    an LSTM: a CRNN), or with ``to_line`` a ``(T, F)`` sequence read as the line ``(F, 1, T)``
    (an embedding into a Conv1d: TextCNN). Channels-last, both are the same words: a step's or
    a pixel's features a word apart, so no data moves. So too an image ``(C, H, W)`` and the
    sequence of its pixels ``(H W, C)`` (``x.permute(0, 2, 3, 1)``: a ConvNeXt block's layer
    norm and Linears over channels), back to the image ``(F, *hw)`` with ``to_line`` and
    ``hw``."""

    name: str
    to_line: bool = False
    inputs: tuple[str, ...] = ()
    hw: tuple[int, int] | tuple = ()


@dataclass(frozen=True, eq=False)
class DepthToSpace:
    """``(C * f * f, H, W)`` to ``(C, f * H, f * W)`` as ``torch.nn.functional.pixel_shuffle``
    does it: output ``(c, f * i + a, f * j + b)`` is input ``(c * f * f + a * f + b, i, j)``. A
    ``ConvTranspose2d`` of kernel = stride and a nearest upsampling are a 1 x 1 conv into it
    (:mod:`.trace_upsample`)."""

    name: str
    factor: int
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Linear:
    """``weight`` is ``N x K``: applied to a vector, or to every step of a sequence."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    relu: bool = False
    inputs: tuple[str, ...] = ()
    cap: float | None = None


@dataclass(frozen=True, eq=False)
class LstmWeights(GateShapes):
    """One layer's weights in PyTorch's layout (gate rows i, f, g, o)."""

    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray


@dataclass(frozen=True, eq=False)
class LSTM:
    """Stacked layers from zero state; ``last_step``: only the last step's h comes out."""

    name: str
    layers: tuple[LstmWeights, ...]
    last_step: bool = False
    inputs: tuple[str, ...] = ()
