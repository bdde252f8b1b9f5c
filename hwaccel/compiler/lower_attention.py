"""Lowering of the attention ops (:mod:`.ir_attention_q`) to the attention commands
(:mod:`hwaccel.generators.accel.isa`: SOFTMAX, LAYERNORM, GELU, MATMUL), on a configuration
with attention units (``AccelConfig.attention``; others refuse them by name,
:class:`.lower.AttentionNotLowered`).

How each op runs (a sequence value is ``T`` rows of ``ceil(F / lanes)`` words per sample,
channels-last, as any tensor):

* ``QSlice``: a view, no command: the same block at a word offset, rows still as wide as the
  whole tensor's (``row_words``); a slice must start on a word boundary.
* ``QConcat``: a view: its inputs' producers write straight into their columns of the joined
  block (word offsets and row strides of MATMUL), so joining costs nothing.
* ``QToken``: a view: the token's row.
* ``QMatMul``: one MATMUL per sample (``Q . K^T`` with ``transpose``, ``P . V`` without), reading
  each head's columns of the joined ``Q``, ``K``, ``V`` in place.
* ``QSoftmax``, ``QLayerNorm``, ``QGelu``: one command for the whole batch when its rows are
  contiguous (a causal softmax: one per sample, its row index starts at 0 per sample).
* ``QAddConstant``: the constant is stored once beside the input, then one ADD per sample.
* ``QTokenMean``: one AVGPOOL per sample whose window is the whole ``1 x T`` sequence.
* A ``QLinear`` over a ``QToken`` (rows a sequence apart): one GEMM of one row per sample
  (:func:`linear_per_sample`; the GEMM has no row stride).
* Consecutive ``QLinear`` ops of one input whose outputs only heads' slices and products read
  (an attention block's Q, K and V projections): one GEMM of all their output channels
  (:func:`projection_groups`), each op's requantizers per channel as they were, so every
  integer is the same. Its output rows are the projections side by side and each projection
  is its columns of that block (word offsets and row strides, as a joined block's), so the
  fixed costs of a GEMM (decode, weight and requantizer beats, the pipeline's tail) are paid
  once, not once a projection. The GEMM is the first op's layer; the others emit nothing.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ActTensor
from . import ir
from .fuse import fused_add_args, fused_gelu_params

__all__ = ["RUNS", "VIEWS", "concat_homes", "value", "emit", "constants", "constant_reads",
           "linear_per_sample", "projection_groups", "joint_value", "joint_linear"]

#: What each op runs as (for :func:`.describe.describe`).
RUNS = {"QSlice": "(a view, no command)", "QConcat": "(a view, no command)",
        "QToken": "(a view, no command)", "QMatMul": "MATMUL per sample",
        "QSoftmax": "SOFTMAX (whole batch; causal: per sample)",
        "QLayerNorm": "LAYERNORM (whole batch)", "QGelu": "GELU (whole batch)",
        "QAddConstant": "ADD per sample (constant stored once)",
        "QTokenMean": "AVGPOOL per sample (window: the sequence)"}

#: Ops that only describe where a value lies (no command).
VIEWS = (ir.QSlice, ir.QConcat, ir.QToken)


def concat_homes(qg: ir.QGraph, lanes: int) -> dict[str, tuple[str, int, int]]:
    """For every input of a ``QConcat``: ``(concat name, word offset, words per row)``."""
    from .lower import LoweringError

    shapes = qg.shapes()
    homes = {}
    for op in qg.ops:
        if isinstance(op, ir.QConcat):
            col = 0
            total = math.ceil(shapes[op.name][-1] / lanes)
            for name in op.inputs:
                if col % lanes:
                    raise LoweringError(f"layer {op.name!r} joins {name!r} at column {col}, not "
                                        f"on a word boundary ({lanes} lanes)")
                homes[name] = (op.name, col // lanes, total)
                col += shapes[name][-1]
    return homes


def projection_groups(qg: ir.QGraph, lanes: int) -> dict[str, tuple]:
    """``{name: its group's ops, first first}`` for the ``QLinear`` ops that run as one GEMM:
    runs of at least two consecutive ``QLinear`` ops with the same one input and ReLU setting,
    every output but the last a whole number of words wide (so each starts on a word), and
    each output read only by ``QSlice`` and ``QMatMul`` ops (which read a row-strided block)
    and not the graph's output. Whether a group runs joined also needs its input's rows
    contiguous (:func:`joint_value`)."""
    readers: dict[str, set] = {}
    for op in qg.ops:
        for name in op.inputs:
            readers.setdefault(name, set()).add(type(op))

    def joinable(op) -> bool:
        return (isinstance(op, ir.QLinear) and len(op.inputs) == 1 and op.name != qg.output
                and readers.get(op.name, set()) <= {ir.QSlice, ir.QMatMul}
                and op.name in readers)

    groups: dict[str, tuple] = {}
    run: list = []
    for op in (*qg.ops, None):
        if (op is not None and joinable(op) and run and op.inputs == run[0].inputs
                and op.relu == run[0].relu and run[-1].w.shape[0] % lanes == 0):
            run.append(op)
            continue
        if len(run) > 1:
            groups.update({m.name: tuple(run) for m in run})
        run = [op] if op is not None and joinable(op) else []
    return groups


def joint_value(op, groups: dict, x, cfg: AccelConfig, batch: int, words: dict, made: dict,
                step: int):
    """The :class:`~.lower.Value` of ``op`` when it is a ``QLinear`` of one of ``groups``
    (:func:`projection_groups`): its columns of the group's one output block; ``None`` for
    any other op, or when the group's input ``x`` is not rows contiguous across the batch
    (then each runs as its own GEMM)."""
    from .lower import Value

    lanes, group = cfg.lanes, groups.get(op.name)
    if group is None or x.kind != "seq" or not _contiguous(x, lanes):
        return None
    total = math.ceil(sum(m.w.shape[0] for m in group) / lanes)
    offset = sum(m.w.shape[0] for m in group[: group.index(op)]) // lanes
    rows = x.width
    v = Value(f"{group[0].name} projections output", "seq", op.w.shape[0], 1, rows,
              rows * total, offset, total)
    words.setdefault(v.block, v.stride * batch)
    made.setdefault(v.block, step)
    return v


def joint_linear(em, op) -> bool:
    """Whether ``op`` is a ``QLinear`` of a group that runs as one GEMM (``em.joint``, its
    value in the group's block): then its first op emits the GEMM (the weights, biases and
    requantizers side by side) and the others nothing (it writes their columns)."""
    group = getattr(em, "joint", {}).get(op.name)
    if group is None or em.vals[op.name].block != f"{group[0].name} projections output":
        return False
    if op is not group[0]:
        return True
    xs = em.tensors(op.inputs[0])
    t0, batch = xs[0], em.batch
    n = [m.w.shape[0] for m in group]
    wk = np.concatenate([m.w.T for m in group], axis=1)
    bias, mult, shift = (np.concatenate([np.broadcast_to(np.asarray(getattr(m, f),
                                                                    dtype=np.int64), (k,))
                                         for m, k in zip(group, n)])
                         for f in ("bias", "multiplier", "shift"))
    a = em.b.view(t0, t0.channels, 1, batch * t0.width)
    em.b.layer = op.name
    em.b.at = em.tensors(op.name)[0].addr
    em.engine(op.name, lambda: em.b.gemm(a, wk, bias, mult, shift, relu=op.relu))
    return True


def value(op, vals: dict, cfg: AccelConfig, batch: int, homes: dict, step: int, words: dict,
          made: dict):
    """The :class:`~.lower.Value` of attention op ``op`` (a view or a block of its own, or its
    columns of a joined block); records new blocks' words and first step in ``words``,
    ``made``."""
    from .lower import LoweringError, Value

    lanes = cfg.lanes
    groups = lambda c: math.ceil(c / lanes)  # noqa: E731
    x = vals[op.inputs[0]]
    rw = x.row_words or groups(x.channels)
    if isinstance(op, ir.QSlice):
        if op.start % lanes:
            raise LoweringError(f"layer {op.name!r} slices from column {op.start}, not on a "
                                f"word boundary ({lanes} lanes)")
        return replace(x, channels=op.stop - op.start, offset=x.offset + op.start // lanes,
                       row_words=rw)
    if isinstance(op, ir.QConcat):
        home = vals[op.inputs[0]]
        if any(vals[i].block != f"{op.name} output" for i in op.inputs):
            raise LoweringError(f"layer {op.name!r} joins values that are not attention "
                                f"products written into its columns")
        return replace(home, channels=sum(vals[i].channels for i in op.inputs),
                       offset=home.offset - homes[op.inputs[0]][1], row_words=None)
    if isinstance(op, ir.QGelu) and x.kind != "seq":   # a table over an image or a vector
        v = Value(f"{op.name} output", x.kind, x.channels, x.height, x.width,
                  x.height * x.width * groups(x.channels))
        words.setdefault(v.block, v.stride * batch)
        made.setdefault(v.block, step)
        return v
    if isinstance(op, ir.QToken):
        return Value(x.block, "vector", x.channels, 1, 1, x.stride, x.offset + op.index * rw)
    if isinstance(op, ir.QMatMul):
        channels, rows = op.n, x.width
    elif isinstance(op, ir.QTokenMean):
        v = Value(f"{op.name} output", "vector", x.channels, 1, 1, groups(x.channels))
        words.setdefault(v.block, v.stride * batch)
        made.setdefault(v.block, step)
        return v
    else:   # QSoftmax, QLayerNorm, QGelu, QAddConstant: the input's shape
        channels, rows = x.channels, x.width
    if op.name in homes:    # its columns of the joined block
        concat, offset, total = homes[op.name]
        v = Value(f"{concat} output", "seq", channels, 1, rows, rows * total, offset, total)
    else:
        v = Value(f"{op.name} output", "seq", channels, 1, rows, rows * groups(channels))
    words.setdefault(v.block, v.stride * batch)
    made.setdefault(v.block, step)
    if isinstance(op, ir.QAddConstant):   # the constant: stored with the input, one copy
        c = Value(f"{op.name} constant", "seq", channels, 1, rows, 0)
        vals[c.block] = c
        words[c.block], made[c.block] = rows * groups(channels), -1
    return v


def constants(qg: ir.QGraph) -> list:
    """The ``QAddConstant`` ops (their constants are stored before the program runs)."""
    return [op for op in qg.ops if isinstance(op, ir.QAddConstant)]


def linear_per_sample(em, op, xs, wk) -> None:
    """A Linear over rows that are not contiguous across the batch (one token of each sample,
    ``QToken``): one GEMM of one row per sample (the GEMM has no row stride), all on one copy
    of the weights in the weight scratchpad."""
    out = em.tensors(op.name)
    em.b.layer = op.name
    for i, x in enumerate(xs):
        em.b.at = out[i].addr
        em.engine(op.name, lambda x=x, i=i: em.b.gemm(
            x, wk, op.bias, op.multiplier, op.shift, relu=op.relu,
            gelu=fused_gelu_params(op), add=fused_add_args(em, op, i), share=(op.name,)))


def constant_reads(op) -> tuple[str, ...]:
    """The constants ``op`` reads besides its inputs (a ``QAddConstant``'s)."""
    return (f"{op.name} constant",) if isinstance(op, ir.QAddConstant) else ()


def _contiguous(v, lanes: int) -> bool:
    rw = math.ceil(v.channels / lanes)
    return (v.row_words or rw) == rw and v.stride == v.width * rw


def emit(em, op) -> None:
    """Emit ``op``'s commands for every sample (``em`` is the lowering's emitter)."""
    b, batch, lanes = em.b, em.batch, em.cfg.lanes
    if isinstance(op, VIEWS):
        return
    xv = em.vals[op.inputs[0]]
    xs, out = em.tensors(op.inputs[0]), em.tensors(op.name)
    if isinstance(op, ir.QMatMul):
        yv, ov = em.vals[op.inputs[1]], em.vals[op.name]
        ys = em.tensors(op.inputs[1])
        rw = lambda v: v.row_words or math.ceil(v.channels / lanes)  # noqa: E731
        b.layer = op.name
        for i in range(batch):
            em.engine(op.name, lambda i=i: b.matmul_raw(
                src=xs[i].addr, sa=rw(xv), src2=ys[i].addr, sb=rw(yv), dst=out[i].addr,
                sc=rw(ov), m=xv.width, k=xv.channels, n=op.n, multiplier=op.multiplier,
                shift=op.shift, transpose=op.transpose_b))
        return
    if isinstance(op, ir.QAddConstant):
        c = em.tensors(f"{op.name} constant")[0]
        em.per_sample(op, lambda i: b.add(xs[i], c, op.params, relu=False))
        return
    if isinstance(op, ir.QTokenMean):
        em.per_sample(op, lambda i: b.avgpool(xs[i], 1, xs[i].width))
        return
    run = {ir.QSoftmax: lambda t: b.softmax(t, op.params, causal=op.causal),
           ir.QLayerNorm: lambda t: b.layernorm(t, op.params),
           ir.QGelu: lambda t: b.gelu(t, op.params)}[type(op)]
    whole = _contiguous(xv, lanes) and _contiguous(em.vals[op.name], lanes)
    if whole and not getattr(op, "causal", False):   # one command for the batch's rows
        t0 = xs[0]
        b.layer, b.at = op.name, out[0].addr
        em.engine(op.name, lambda: run(ActTensor(t0.addr, t0.channels, 1, batch * t0.width,
                                                 lanes)))
    else:
        em.per_sample(op, lambda i: run(xs[i]))
