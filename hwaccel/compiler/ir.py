"""The compiler's typed IR: a float graph traced from PyTorch and its integer-only quantization.

A model is a *chain*: every op takes the previous op's output (per sample; the batch dimension
is implicit) and nothing else. That is what the accelerator's programs run, layer-major.

Float IR (:class:`Graph`, made by :mod:`.trace`)
    :class:`Embedding` (token ids in, gathered on the host), :class:`Conv2d` (+ReLU),
    :class:`MaxPool2d` (2x2, stride 2), :class:`Flatten`, :class:`Linear` (+ReLU),
    :class:`LSTM` (one or more layers, batch first, every step or the last step out) and a
    host ``head`` (``logits``, ``softmax``, ``log_softmax`` or ``argmax``). Weights are float64
    numpy arrays, exactly the module's.

Quantized IR (:class:`QGraph`, made by :mod:`.quantize`)
    Integer tensors and requantizers only (:class:`QEmbedding`, :class:`QConv` with an optional
    fused 2x2 max-pool, :class:`QMaxPool`, :class:`QFlatten`, :class:`QLinear`, :class:`QLstm`):
    it fully determines the accelerator's arithmetic. The only floats it holds are the input
    scale and the output scale (how the host turns floats into int8 and int8 logits back into
    floats) and, per op, the scales it was derived from, kept for :meth:`QGraph.describe`.

Shapes are per sample: ``(C, H, W)`` for an image, ``(F,)`` for a vector, ``(T, F)`` for a
sequence and ``(T,)`` for token ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..generators.lstm.model import GateShapes, LstmParams

__all__ = ["Shape", "Embedding", "Conv2d", "MaxPool2d", "Flatten", "Linear", "LstmWeights",
           "LSTM", "Graph", "HEADS", "QEmbedding", "QConv", "QMaxPool", "QFlatten", "QLinear",
           "QLstm", "QGraph", "out_shape", "macs"]

Shape = tuple[int, ...]
#: What the host does with the last op's output; the accelerator always produces the logits.
HEADS = ("logits", "softmax", "log_softmax", "argmax")


# --- float IR ------------------------------------------------------------------------------------
# eq=False: the ops hold numpy arrays, whose == is elementwise; identity is what a graph needs.
@dataclass(frozen=True, eq=False)
class Embedding:
    """``weight`` is ``V x D``; token ids in, ``(T, D)`` out (gathered on the host)."""

    name: str
    weight: np.ndarray


@dataclass(frozen=True, eq=False)
class Conv2d:
    """``weight`` is ``Cout x Cin x K x K``; zero padding ``padding`` on every side."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    stride: int = 1
    padding: int = 0
    relu: bool = False


@dataclass(frozen=True, eq=False)
class MaxPool2d:
    """2x2 max-pool, stride 2, floor mode (the only pooling the hardware has)."""

    name: str


@dataclass(frozen=True, eq=False)
class Flatten:
    """``(C, H, W)`` to ``(C*H*W,)`` in PyTorch's (channel, row, column) order."""

    name: str


@dataclass(frozen=True, eq=False)
class Linear:
    """``weight`` is ``N x K``: applied to a vector, or to every step of a sequence."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    relu: bool = False


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


@dataclass(frozen=True, eq=False)
class Graph:
    """A traced model: ``input_shape`` per sample, ``tokens`` when the input is token ids."""

    input_shape: Shape
    tokens: bool
    ops: tuple
    head: str = "logits"

    def shapes(self) -> list[Shape]:
        """The input shape, then every op's output shape."""
        out = [self.input_shape]
        for op in self.ops:
            out.append(out_shape(op, out[-1]))
        return out

    @property
    def output_shape(self) -> Shape:
        return self.shapes()[-1]


# --- quantized IR --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class QEmbedding:
    """``table`` is the int8 ``V x D`` table at ``scale`` (one scale for the whole table)."""

    name: str
    table: np.ndarray
    scale: float


@dataclass(frozen=True, eq=False)
class QConv:
    """``y = sat(requant(conv(x, w) + bias))`` (ReLU in the bounds), then a 2x2 pool if ``pool``.

    ``w`` int8 ``Cout x Cin x K x K``; ``bias`` int32 at ``s_in * s_w``; ``multiplier`` and
    ``shift`` per output channel (:class:`hwaccel.numerics.Requant`).
    """

    name: str
    w: np.ndarray
    bias: np.ndarray
    multiplier: np.ndarray
    shift: np.ndarray
    stride: int
    padding: int
    relu: bool
    pool: bool
    s_in: float = 0.0
    s_out: float = 0.0


@dataclass(frozen=True, eq=False)
class QMaxPool:
    name: str


@dataclass(frozen=True, eq=False)
class QFlatten:
    name: str


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


@dataclass(frozen=True, eq=False)
class QLstm:
    """One LSTM layer on the cell (h is int8 at 2**-7); ``last_step`` keeps only the last h."""

    name: str
    params: LstmParams
    last_step: bool
    s_in: float = 0.0


@dataclass(frozen=True, eq=False)
class QGraph:
    """The quantized model. ``input_scale`` quantizes float inputs (``None`` for token ids);
    ``output_scale`` turns the int8 outputs back into floats."""

    input_shape: Shape
    tokens: bool
    input_scale: float | None
    ops: tuple
    output_scale: float
    head: str = "logits"
    notes: tuple[str, ...] = field(default=())

    def shapes(self) -> list[Shape]:
        out = [self.input_shape]
        for op in self.ops:
            out.append(out_shape(op, out[-1]))
        return out

    @property
    def output_shape(self) -> Shape:
        return self.shapes()[-1]


# --- shapes and work -----------------------------------------------------------------------------
def _conv_size(n: int, k: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - k) // stride + 1


def out_shape(op, shape: Shape) -> Shape:
    """The per-sample output shape of ``op`` (float or quantized) on an input of ``shape``."""
    if isinstance(op, (Embedding, QEmbedding)):
        table = op.weight if isinstance(op, Embedding) else op.table
        return (shape[0], table.shape[1])
    if isinstance(op, (Conv2d, QConv)):
        w = op.weight if isinstance(op, Conv2d) else op.w
        k = w.shape[2]
        h, wd = (_conv_size(n, k, op.stride, op.padding) for n in shape[1:])
        if getattr(op, "pool", False):
            h, wd = h // 2, wd // 2
        return (w.shape[0], h, wd)
    if isinstance(op, (MaxPool2d, QMaxPool)):
        return (shape[0], shape[1] // 2, shape[2] // 2)
    if isinstance(op, (Flatten, QFlatten)):
        return (int(np.prod(shape)),)
    if isinstance(op, (Linear, QLinear)):
        w = op.weight if isinstance(op, Linear) else op.w
        return (*shape[:-1], w.shape[0])
    if isinstance(op, LSTM):
        h = op.layers[-1].hidden_size
        return (h,) if op.last_step else (shape[0], h)
    if isinstance(op, QLstm):
        h = op.params.hidden_size
        return (h,) if op.last_step else (shape[0], h)
    raise TypeError(f"op must be an IR op, not {op!r}")


def macs(op, shape: Shape) -> int:
    """Multiply-accumulates of ``op`` per sample on an input of ``shape`` (the float work: a
    fused pool and the host's gathers count nothing)."""
    if isinstance(op, (Conv2d, QConv)):
        w = op.weight if isinstance(op, Conv2d) else op.w
        cout, cin, k, _ = w.shape
        oh, ow = (_conv_size(n, k, op.stride, op.padding) for n in shape[1:])
        return oh * ow * cout * cin * k * k
    if isinstance(op, (Linear, QLinear)):
        w = op.weight if isinstance(op, Linear) else op.w
        rows = shape[0] if len(shape) == 2 else 1
        return rows * w.shape[0] * w.shape[1]
    if isinstance(op, LSTM):
        return shape[0] * sum(4 * lw.hidden_size * (lw.input_size + lw.hidden_size)
                              for lw in op.layers)
    if isinstance(op, QLstm):
        p = op.params
        return shape[0] * 4 * p.hidden_size * (p.input_size + p.hidden_size)
    return 0
