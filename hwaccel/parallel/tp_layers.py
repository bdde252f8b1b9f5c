"""A layer's shares over the instances of a tensor-parallel group (:mod:`.tp` describes the
splits): each share lowered from a one-layer graph of the sliced layer and run by a runner
(:func:`golden_runner`, or :class:`.tp_rtl.RtlRunner`), and what they compute. A replicated
layer (and every layer of a one-instance plan) is one program that every instance runs on the
same input, so it is run once and its outputs and cycles stand for each instance's."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..compiler import ir
from ..generators.accel.model import run_program
from ..generators.accel.perf import program_perf
from ..numerics import INT32, requantize

__all__ = ["TpError", "Share", "TpLayer", "word_parts", "segments", "layer", "golden_runner"]


class TpError(ValueError):
    """A tensor-parallel partition that cannot run; the message names the layer or instance."""


@dataclass(frozen=True)
class Share:
    """Instance ``instance``'s part of a layer: channels ``[lo, hi)`` (output channels for
    ``n``, input channels for ``k``; the whole layer when replicated), its program's exact
    ``cycles`` as run (the golden interpreter's runs take the cycle model's; the RTL's, its
    counter), ``wgt_words``, ``commands`` and the input words it reads (``act_top``; 0 and
    empty when it has no part), ``value``: what it computes (``n``: its int8 output
    channels; ``k``: its int32 partial sums of every output channel; ``b``: its samples'
    outputs; replicated: the whole int8 output), and ``model_cycles``: the cycle model's
    (:func:`~hwaccel.generators.accel.perf.program_perf`)."""

    instance: int
    lo: int
    hi: int
    cycles: int
    wgt_words: int
    commands: int
    act_top: int = 0
    value: object = None
    model_cycles: int = 0

    @property
    def empty(self) -> bool:
        return self.hi <= self.lo


@dataclass(frozen=True)
class TpLayer:
    """One layer as the instances share it. ``chunks``: words of each output chunk a collective
    moves (batch included; ``n``: instance ``j``'s slice, ``k``: chunk ``j`` of the output);
    ``out_words``: the whole output's words; ``output``: the whole int8 output (what the next
    layer reads); ``reason``: why it is replicated or batch-split; ``gather``: whether its
    collective runs (a ``b`` layer before another keeps its samples' rows)."""

    name: str
    op: object
    split: str
    shares: tuple[Share, ...]
    chunks: tuple[int, ...]
    out_words: int
    output: object = None
    reason: str = ""
    gather: bool = True


def word_parts(channels: int, lanes: int, parts: int) -> list[tuple[int, int]]:
    """``channels`` cut into ``parts`` ranges of whole words, as even as words allow (the first
    ranges take the extra words; trailing ranges may be empty)."""
    words = -(-channels // lanes)
    q, r = divmod(words, parts)
    out, w = [], 0
    for j in range(parts):
        n = q + (j < r)
        out.append((min(w * lanes, channels), min((w + n) * lanes, channels)))
        w += n
    return out


def segments(qg) -> list[tuple[tuple, object]]:
    """The chain's layers, each with the ops it lowers from (a Flatten, a vector's view as an
    image or a line's view as a sequence joins the next op, and the 1 x 1 conv of a
    depth-to-space joins it: it writes the depth-to-space's layout)."""
    ops = list(qg.ops[1:] if qg.tokens else qg.ops)
    if not qg.is_chain:
        bad = next((op for op in ops if len(op.inputs) != 1), ops[-1])
        raise TpError(f"tensor parallelism runs chain models (each layer reads the one before); "
                      f"layer {bad.name!r} reads {', '.join(bad.inputs)}")
    out, pending = [], []
    into = {op.inputs[0] for op in ops if isinstance(op, ir.QDepthToSpace)}  # its conv writes it
    for op in ops:
        if isinstance(op, ir.QATTENTION_OPS):
            raise TpError(f"layer {op.name!r} is an attention op: tensor parallelism splits "
                          f"Conv, Linear and replicates LSTM and pool layers only")
        pending.append(op)
        if not isinstance(op, (ir.QFlatten, ir.QUnflatten, ir.QSeqView)) and op.name not in into:
            out.append((tuple(pending), op))
            pending = []
    if pending:
        raise TpError(f"the model ends with a view ({pending[-1].name!r}) and no layer after")
    return out


def _subgraph(ops, shape) -> ir.QGraph:
    first = dataclasses.replace(ops[0], inputs=(ir.INPUT,))
    rest = tuple(dataclasses.replace(op, inputs=()) for op in ops[1:])
    return ir.QGraph(input_shape=tuple(shape), tokens=False, input_scale=1.0,
                     ops=(first, *rest), output_scale=1.0)


def _lower(cfg, qg, x, what):
    from ..compiler.lower import lower
    from ..compiler.memory import DoesNotFit

    try:
        low = lower(qg, cfg, x)
    except (DoesNotFit, ValueError) as exc:
        raise TpError(f"{what} cannot run on {cfg.slug}: {exc}") from exc
    if len(low.programs) != 1:
        raise TpError(f"{what} does not fit one program on {cfg.slug} (its weights need "
                      f"{len(low.programs)} weight groups)")
    return low


def golden_runner(cfg):
    """Runs a share's program on the golden interpreter: ``(int8 outputs, cycles)``, the
    cycles :func:`~hwaccel.generators.accel.perf.program_perf`'s (the RTL's counter, equal by
    the accelerator's tests)."""

    def run(low, what):
        prog = low.programs[0]
        res = run_program(cfg, low.builder.act, prog.wgt, prog.commands)
        if res.error or not res.done:
            raise RuntimeError(f"{what}: the golden interpreter faulted: {res.cause}")
        return (np.asarray(low.ints(res.act), dtype=np.int64),
                program_perf(cfg, prog.commands).cycles)

    return run


def _share(cfg, j, lo, hi, low, value, cycles) -> Share:
    prog = low.programs[0]
    return Share(j, lo, hi, cycles, prog.wgt_top, len(prog.commands), low.builder.act_top,
                 value, program_perf(cfg, prog.commands).cycles)


def _sliced_out(op, lo, hi):
    """``op`` with output channels ``[lo, hi)``."""
    pick = lambda a: a[lo:hi] if np.ndim(a) else a  # noqa: E731
    return dataclasses.replace(op, w=op.w[lo:hi], bias=pick(op.bias),
                               multiplier=pick(op.multiplier), shift=pick(op.shift))


def _sliced_in(ops, shape, lo, hi):
    """The Linear of ``ops`` (Flatten first or not) on input channels ``[lo, hi)`` of a value of
    per-sample ``shape``: its ops, the sub-input's shape, the weight columns it keeps."""
    op = ops[-1]
    if len(ops) == 2:                     # a flattened C x H x W map, CHW order
        c, h, w = shape
        cols = np.arange(lo * h * w, hi * h * w)
        sub_shape = (hi - lo, h, w)
    else:                                 # vector or sequence: channels last
        cols = np.arange(lo, hi)
        sub_shape = (*shape[:-1], hi - lo)
    lin = dataclasses.replace(op, w=op.w[:, cols], bias=np.zeros_like(op.bias))
    return (*ops[:-1], lin), sub_shape, cols


def _channel_axis(x: np.ndarray) -> int:
    return 1 if x.ndim == 4 else -1


def _words(cfg, low) -> int:
    return sum(t.words for t in low.outputs)


def layer(cfg, ops, op, x, n, split, lstm, run) -> tuple[TpLayer, np.ndarray]:
    """Layer ``op`` (lowered from ``ops``: a Flatten may come first) on the int8 batch ``x``
    over ``n`` instances, each share's program run by ``run`` (:func:`golden_runner`, or
    :class:`.tp_rtl.RtlRunner`): its :class:`TpLayer` and its int8 output (the whole layer's,
    assembled from the shares)."""
    lanes, shape = cfg.lanes, x.shape[1:]
    whole = _subgraph(ops, shape)
    name = op.name
    rep = _replicated_reason(op)
    if isinstance(op, ir.QLstm) and n > 1 and lstm == "batch":
        return _batch_split(cfg, whole, op, x, n, run)
    if rep or n == 1:
        low = _lower(cfg, whole, x, f"layer {name!r}")
        y, cycles = run(low, f"layer {name!r}")
        shares = tuple(_share(cfg, j, 0, 1, low, y, cycles) for j in range(n))
        return TpLayer(name, op, "whole" if n == 1 else "replicated", shares, (),
                       _words(cfg, low), y, "one instance" if n == 1 else rep), y
    if split == "k" and not isinstance(op, ir.QLinear):
        raise TpError(f"layer {name!r} is a {type(op).__name__[1:]}: K-split applies to Linear "
                      f"layers only (a conv's window sums are not taken out of the engine, and "
                      f"a fused pool needs the requantized sums); use --tp-split n or auto")
    if split == "n":
        outs, shares, chunks = [], [], []
        for j, (lo, hi) in enumerate(word_parts(op.w.shape[0], lanes, n)):
            what = f"layer {name!r} (output channels {lo}..{hi}) on instance {j}"
            if hi <= lo:
                shares.append(Share(j, lo, hi, 0, 0, 0))
                chunks.append(0)
                continue
            low = _lower(cfg, _subgraph((*ops[:-1], _sliced_out(op, lo, hi)), shape), x, what)
            y, cycles = run(low, what)
            outs.append(y)
            shares.append(_share(cfg, j, lo, hi, low, y, cycles))
            chunks.append(_words(cfg, low))
        y = np.concatenate(outs, axis=_channel_axis(outs[0]))
        return TpLayer(name, op, "n", tuple(shares), tuple(chunks), sum(chunks), y), y
    # K-split
    flat = x.reshape(len(x), -1) if len(ops) == 2 else x
    acc, shares = None, []
    cin = shape[0] if len(ops) == 2 else shape[-1]
    for j, (lo, hi) in enumerate(word_parts(cin, lanes, n)):
        what = f"layer {name!r} (input channels {lo}..{hi}) on instance {j}"
        if hi <= lo:
            shares.append(Share(j, lo, hi, 0, 0, 0))
            continue
        sops, sub_shape, cols = _sliced_in(ops, shape, lo, hi)
        sx = x[:, lo:hi] if len(ops) == 2 else x[..., lo:hi]
        low = _lower(cfg, _subgraph(sops, sub_shape), sx, what)
        part = flat[..., cols] @ op.w[:, cols].T + (op.bias if j == 0 else 0)
        if part.min() < INT32.min or part.max() > INT32.max:
            raise TpError(f"{what}: its partial sums leave int32")
        shares.append(_share(cfg, j, lo, hi, low, part, run(low, what)[1]))
        acc = part if acc is None else acc + part
        if acc.min() < INT32.min or acc.max() > INT32.max:
            raise TpError(f"layer {name!r}: the reduced sums leave int32 at instance {j}")
    y = requantize(acc, op.multiplier, op.shift, relu=op.relu)
    full = _lower(cfg, whole, x, f"layer {name!r}")
    rows = _words(cfg, full) // -(-op.w.shape[0] // lanes)
    chunks = tuple(rows * -(-(hi - lo) // lanes)
                   for lo, hi in word_parts(op.w.shape[0], lanes, n))
    return TpLayer(name, op, "k", tuple(shares), chunks, _words(cfg, full), y), y


def _batch_split(cfg, whole, op, x, n, run) -> tuple[TpLayer, np.ndarray]:
    """An LSTM layer's samples over the instances (``b``), each running the whole layer on its
    own; the outputs are gathered unless the next layer is split the same way."""
    outs, shares, chunks = [], [], []
    for j, (lo, hi) in enumerate(word_parts(len(x), 1, n)):
        what = f"layer {op.name!r} (samples {lo}..{hi}) on instance {j}"
        if hi <= lo:
            shares.append(Share(j, lo, hi, 0, 0, 0))
            chunks.append(0)
            continue
        low = _lower(cfg, whole, x[lo:hi], what)
        y, cycles = run(low, what)
        outs.append(y)
        shares.append(_share(cfg, j, lo, hi, low, y, cycles))
        chunks.append(_words(cfg, low))
    y = np.concatenate(outs, axis=0)
    return TpLayer(op.name, op, "b", tuple(shares), tuple(chunks), sum(chunks), y,
                   "LSTM: the cell runs a whole sequence from zero state, so the group splits "
                   "the batch's sequences"), y


def _replicated_reason(op) -> str:
    if isinstance(op, ir.QLstm):
        return ("LSTM: the cell runs a whole sequence from zero state; splitting its hidden "
                "units needs every instance's h at every step")
    if isinstance(op, ir.QConv) and op.groups > 1:
        return "depthwise conv: no reduction to share"
    if isinstance(op, (ir.QMaxPool, ir.QAvgPool)):
        return "pool: element-wise on the whole tensor"
    if isinstance(op, (ir.QConv, ir.QLinear)):
        return ""
    return f"{type(op).__name__[1:]}: not split"
