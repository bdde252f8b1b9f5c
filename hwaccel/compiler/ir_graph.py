"""The IR's graphs (:class:`Graph`, :class:`QGraph`: a checked DAG of ops over named values) and
what each op makes and costs (:func:`out_shape`, :func:`macs`); :mod:`.ir` describes the IR."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .ir_attention import ATTENTION_OPS, MatMul
from .ir_attention_q import QATTENTION_OPS, QMatMul
from .ir_float import (
    INPUT,
    LSTM,
    Add,
    AvgPool2d,
    Conv2d,
    DepthToSpace,
    Embedding,
    Flatten,
    Linear,
    MaxPool2d,
    Mul,
    SeqView,
    Shape,
    Unflatten,
)
from .ir_quant import (
    QAdd,
    QAvgPool,
    QConv,
    QDepthToSpace,
    QEmbedding,
    QFlatten,
    QLinear,
    QLstm,
    QMaxPool,
    QMul,
    QSeqView,
    QUnflatten,
)

__all__ = ["Graph", "QGraph", "out_shape", "macs", "graph_input", "input_text"]


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
        want = 2 if isinstance(op, (Add, QAdd)) else getattr(op, "ARITY", 1)
        if len(op.inputs) != want and not (want is None and op.inputs):
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
    input_view: Shape | None = None   # the model's own input shape where it differs (a line)


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
    input_view: Shape | None = None   # the model's own input shape where it differs (a line)


def graph_input(g, x):
    """A batch ``x`` of the model's inputs as ``g`` (a :class:`Graph` or :class:`QGraph`) takes
    them: a Conv1d model's ``(batch, C, L)`` (its ``input_view``) reshaped to ``(batch, C, 1,
    L)``, the image the IR holds it as (:mod:`.trace_line`); anything else as it is."""
    view = getattr(g, "input_view", None)
    if view is not None and tuple(x.shape[1:]) == tuple(view):
        return x.reshape(len(x), *g.input_shape)
    return x


def input_text(g) -> str:
    """The per-sample input shape a user gives ``g``, for error messages."""
    return ", ".join(map(str, g.input_view or g.input_shape))


# --- shapes and work -----------------------------------------------------------------------------
def out_shape(op, shape: Shape, *more: Shape) -> Shape:
    """The per-sample output shape of ``op`` (float or quantized) on inputs of ``shape``."""
    if isinstance(op, ATTENTION_OPS + QATTENTION_OPS + (Mul, QMul)):
        return op.out_shape(shape, *more)
    if isinstance(op, (Embedding, QEmbedding)):
        table = op.weight if isinstance(op, Embedding) else op.table
        return (shape[0], table.shape[1])
    if isinstance(op, (Conv2d, QConv)):
        h, wd = op.out_size(*shape[1:])
        if getattr(op, "pool", False):
            h, wd = h // 2, wd // 2
        return (op._weights().shape[0], h, wd)
    if isinstance(op, (MaxPool2d, QMaxPool)):
        return (shape[0], 1, shape[2] // 4) if op.line else (shape[0], shape[1] // 2,
                                                             shape[2] // 2)
    if isinstance(op, (AvgPool2d, QAvgPool)):
        return (shape[0], shape[1] // op.kernel[0], shape[2] // op.kernel[1])
    if isinstance(op, (Add, QAdd)):
        return shape
    if isinstance(op, (Flatten, QFlatten)):
        return (int(np.prod(shape)),)
    if isinstance(op, (Unflatten, QUnflatten)):
        if len(shape) != 1:
            raise ValueError(f"op {op.name!r} (Unflatten) reads a vector, not {shape}")
        return (shape[0], 1, 1)
    if isinstance(op, (SeqView, QSeqView)):
        return (shape[1], *(op.hw or (1, shape[0]))) if op.to_line else (
            shape[1] * shape[2], shape[0])
    if isinstance(op, (DepthToSpace, QDepthToSpace)):
        f = op.factor
        return (shape[0] // (f * f), shape[1] * f, shape[2] * f)
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
    as the published figures of the MLPerf Tiny models count it, and a dilated Conv1d's taps
    with no weight do not, as lowering skips them, :mod:`.line_view`; a product of two
    activations counts as a Linear does, :mod:`.ir_attention`)."""
    if isinstance(op, (MatMul, QMatMul)):
        return op.macs(shape)
    if isinstance(op, (Conv2d, QConv)):
        w = op._weights()
        cout, cin_g, kh, kw = w.shape
        oh, ow = op.out_size(*shape[1:])
        if shape[1] == kh == 1:   # a line's taps with no weight (a dilated Conv1d's) do nothing
            kw = max(1, int(np.count_nonzero(np.any(w != 0, axis=(0, 1, 2)))))
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
