"""The compiler's typed IR: a float graph traced from PyTorch and its integer-only quantization.

A model is a DAG over *named values*: the per-sample input is the value :data:`INPUT`, and
every op reads the values it names in ``inputs`` and produces one value, named by the op's
``name``. A value may feed several ops (a residual block's input feeds its branch and its
shortcut). Ops are kept in a topological order, the order the accelerator's programs run
them, layer-major; the graph's ``output`` names the value the model returns. An op built
without ``inputs`` reads the op before it (or the input): a chain needs no names.

Float IR (:class:`Graph`, made by :mod:`.trace`)
    :class:`Embedding` (token ids in, gathered on the host), :class:`Conv2d` (+ReLU; any
    kernel, per-axis stride, per-side zero padding, dense or depthwise), :class:`MaxPool2d`
    (2x2, stride 2), :class:`AvgPool2d` (kernel = stride), :class:`Add` (+ReLU),
    :class:`Flatten`, :class:`Linear` (+ReLU), :class:`LSTM` (one or more layers, batch first,
    every step or the last step out) and a host ``head`` (``logits``, ``softmax``,
    ``log_softmax`` or ``argmax``). Weights are float64 numpy arrays, exactly the module's.

Quantized IR (:class:`QGraph`, made by :mod:`.quantize`)
    Integer tensors and requantizers only (:class:`QEmbedding`, :class:`QConv` with an optional
    fused 2x2 max-pool, :class:`QMaxPool`, :class:`QAvgPool`, :class:`QAdd`, :class:`QFlatten`,
    :class:`QLinear`, :class:`QLstm`): it fully determines the accelerator's arithmetic. The
    only floats it holds are the input scale and the output scale (how the host turns floats
    into int8 and int8 logits back into floats) and, per op, the scales it was derived from,
    kept for :meth:`QGraph.describe`.

Shapes are per sample: ``(C, H, W)`` for an image, ``(F,)`` for a vector, ``(T, F)`` for a
sequence and ``(T,)`` for token ids. Padding is ``(top, left, bottom, right)``, as the conv
engine's layer descriptor has it; an int means the same on every side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..generators.lstm.model import GateShapes, LstmParams

if TYPE_CHECKING:
    from ..numerics import AddRequant

__all__ = ["Shape", "INPUT", "HEADS", "Embedding", "Conv2d", "MaxPool2d", "AvgPool2d", "Add",
           "Flatten", "Linear", "LstmWeights", "LSTM", "Graph", "QEmbedding", "QConv",
           "QMaxPool", "QAvgPool", "QAdd", "QFlatten", "QLinear", "QLstm", "QGraph",
           "out_shape", "macs", "pair", "sides", "squash"]

Shape = tuple[int, ...]
#: The name of the model's input value.
INPUT = "input"
#: What the host does with the output value; the accelerator always produces the logits.
HEADS = ("logits", "softmax", "log_softmax", "argmax")


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

    def _weights(self):
        return self.weight


@dataclass(frozen=True, eq=False)
class MaxPool2d:
    """2x2 max-pool, stride 2, floor mode (the only max-pooling the hardware has)."""

    name: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class AvgPool2d:
    """Average over ``kernel`` (``(kh, kw)``) windows at stride ``kernel``, floor mode: a
    global pool when the kernel is the whole map."""

    name: str
    kernel: tuple[int, int]
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Add:
    """The element-wise sum of its two ``inputs`` (same shape), then ReLU if ``relu``."""

    name: str
    relu: bool = False
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Flatten:
    """``(C, H, W)`` to ``(C*H*W,)`` in PyTorch's (channel, row, column) order."""

    name: str
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Linear:
    """``weight`` is ``N x K``: applied to a vector, or to every step of a sequence."""

    name: str
    weight: np.ndarray
    bias: np.ndarray
    relu: bool = False
    inputs: tuple[str, ...] = ()


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
    name: str
    inputs: tuple[str, ...] = ()


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
class QFlatten:
    name: str
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


# --- graphs --------------------------------------------------------------------------------------
def _link(ops, output: str) -> tuple[tuple, str]:
    """``ops`` with every missing ``inputs`` filled in (the op before, or the input), checked:
    unique names, every input produced earlier, the output produced. Returns the ops and the
    output value (the last op's when ``output`` is empty)."""
    seen, out, prev = {INPUT}, [], INPUT
    for op in ops:
        if not op.inputs:
            op = dataclasses.replace(op, inputs=(prev,))
        if op.name in seen:
            raise ValueError(f"op names must be unique and not {INPUT!r}: {op.name!r} twice")
        missing = [v for v in op.inputs if v not in seen]
        if missing:
            raise ValueError(f"op {op.name!r} reads {missing[0]!r}, which no earlier op produces")
        want = 2 if isinstance(op, (Add, QAdd)) else 1
        if len(op.inputs) != want:
            raise ValueError(f"op {op.name!r} must read {want} value(s), not {op.inputs!r}")
        seen.add(op.name)
        out.append(op)
        prev = op.name
    output = output or prev
    if output not in seen:
        raise ValueError(f"output must be a value of the graph, not {output!r}")
    return tuple(out), output


class _Values:
    """Value shapes and readers, shared by :class:`Graph` and :class:`QGraph`."""

    def __post_init__(self):
        ops, output = _link(self.ops, self.output)
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "output", output)

    def shapes(self) -> dict[str, Shape]:
        """Every value's per-sample shape, by name (the input first, then in op order)."""
        out = {INPUT: tuple(self.input_shape)}
        for op in self.ops:
            out[op.name] = out_shape(op, *(out[v] for v in op.inputs))
        return out

    def readers(self) -> dict[str, list]:
        """Every value's reading ops, in order (the output's list is as the ops have it)."""
        out: dict[str, list] = {INPUT: [], **{op.name: [] for op in self.ops}}
        for op in self.ops:
            for v in dict.fromkeys(op.inputs):
                out[v].append(op)
        return out

    def op(self, name: str):
        """The op that produces the value ``name`` (``None`` for the input)."""
        return next((op for op in self.ops if op.name == name), None)

    @property
    def output_shape(self) -> Shape:
        return self.shapes()[self.output]

    @property
    def is_chain(self) -> bool:
        """Whether every op reads the one before it (the ops the compiler started with)."""
        prev = INPUT
        for op in self.ops:
            if op.inputs != (prev,):
                return False
            prev = op.name
        return self.output == prev


@dataclass(frozen=True, eq=False)
class Graph(_Values):
    """A traced model: ``input_shape`` per sample, ``tokens`` when the input is token ids."""

    input_shape: Shape
    tokens: bool
    ops: tuple
    head: str = "logits"
    output: str = ""


@dataclass(frozen=True, eq=False)
class QGraph(_Values):
    """The quantized model. ``input_scale`` quantizes float inputs (``None`` for token ids);
    ``output_scale`` turns the int8 outputs back into floats."""

    input_shape: Shape
    tokens: bool
    input_scale: float | None
    ops: tuple
    output_scale: float
    head: str = "logits"
    notes: tuple[str, ...] = field(default=())
    output: str = ""


# --- shapes and work -----------------------------------------------------------------------------
def out_shape(op, shape: Shape, *more: Shape) -> Shape:
    """The per-sample output shape of ``op`` (float or quantized) on inputs of ``shape``."""
    if isinstance(op, (Embedding, QEmbedding)):
        table = op.weight if isinstance(op, Embedding) else op.table
        return (shape[0], table.shape[1])
    if isinstance(op, (Conv2d, QConv)):
        h, wd = op.out_size(*shape[1:])
        if getattr(op, "pool", False):
            h, wd = h // 2, wd // 2
        return (op._weights().shape[0], h, wd)
    if isinstance(op, (MaxPool2d, QMaxPool)):
        return (shape[0], shape[1] // 2, shape[2] // 2)
    if isinstance(op, (AvgPool2d, QAvgPool)):
        return (shape[0], shape[1] // op.kernel[0], shape[2] // op.kernel[1])
    if isinstance(op, (Add, QAdd)):
        return shape
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
    fused pool, an add, an average and the host's gathers count nothing; a padded tap counts,
    as the published figures of the MLPerf Tiny models count it)."""
    if isinstance(op, (Conv2d, QConv)):
        cout, cin_g, kh, kw = op._weights().shape
        oh, ow = op.out_size(*shape[1:])
        return oh * ow * cout * cin_g * kh * kw
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
