"""Lowering: the quantized IR and a batch of int8 inputs -> one accelerator program.

Layer-major batching: each layer runs for every sample before the next layer starts, so a
layer's weights are stored once and every sample's command reuses them
(:class:`~hwaccel.generators.accel.driver.ProgramBuilder` shares them by identity).

How each op runs
----------------
* ``QConv`` (with its fused 2x2 pool): one CONV command per sample.
* ``QMaxPool`` not fused into a conv: one MAXPOOL command per sample.
* ``QFlatten``: nothing; the map stays channels-last and the next Linear reads it as such.
* ``QLinear`` after a flattened ``C x K x K`` map with ``K <= max_kernel``: one CONV per sample
  whose ``K x K`` kernel covers the whole map (the same sum as the Linear over the CHW flatten,
  weights reshaped ``N x C x K x K``), as :func:`hwaccel.generators.accel.cases.cnn_program`
  runs the reference CNN's fc1. Otherwise one GEMM for the whole batch: its rows are the
  samples' vectors (or every step of every sequence), which the memory plan keeps contiguous.
  A flattened map is then one row of ``H*W*groups*lanes`` channels (channels-last, padding lanes
  meeting zero weights).
* ``QLstm``: one LSTM command per sample (the cell starts every sequence from zero state). For
  the last step only, sample ``b`` writes its ``T`` steps at ``base + b*words`` in reverse sample
  order: each sample's later commands overwrite only earlier samples' early steps, so the last
  steps end up contiguous, ready to be one GEMM's rows, with no extra command or copy.
* ``QEmbedding``: gathered on the host; the program's input is the int8 embedded sequence.

Memory plan: each layer's outputs for the whole batch are one block of the activation
scratchpad, placed first-fit; a block is released once the next layer has consumed it. A block
that does not fit raises :class:`DoesNotFit` naming the tensor and the shortfall in words; so do
weights that overflow the weight scratchpad and programs longer than the program memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ActTensor, ProgramBuilder, from_words
from ..generators.conv.layer import ConvLayer
from ..numerics import INT8
from . import ir
from .memory import DoesNotFit, DryBuilder, Memory, PlacedBuilder

__all__ = ["DoesNotFit", "LoweringError", "Lowered", "lower", "max_batch", "describe"]


class LoweringError(ValueError):
    """A layer's shape is beyond what the preset's engines run; names the layer and the limit."""


@dataclass(frozen=True, eq=False)
class Lowered:
    """A batch as one accelerator program.

    Attributes
    ----------
    builder : ProgramBuilder
        Memory images and commands, DONE appended.
    outputs : tuple of ActTensor
        Each sample's output tensor in the activation scratchpad.
    kind : str
        How an output tensor reads back: ``vector`` (N), ``seq`` (T x N), ``image`` (C x H x W)
        or ``flat`` (an image flattened in CHW order).
    output_scale : float
        The float value of one int8 step of the outputs.
    """

    builder: ProgramBuilder
    outputs: tuple[ActTensor, ...]
    kind: str
    output_scale: float

    @property
    def batch(self) -> int:
        return len(self.outputs)

    @property
    def span(self) -> tuple[int, int]:
        """``(first word, words)`` of the scratchpad range that holds every output."""
        lo = min(t.addr for t in self.outputs)
        return lo, max(t.addr + t.words for t in self.outputs) - lo

    def ints(self, act) -> np.ndarray:
        """The int8 outputs ``[batch, ...]`` from activation words (``words x lanes`` values,
        e.g. ``run_program(...).act``, covering at least :attr:`span`)."""
        act = np.asarray(act, dtype=np.int64)
        return np.stack([_read(act, t, self.kind) for t in self.outputs])

    def logits(self, act) -> np.ndarray:
        """:meth:`ints` dequantized: float64 ``[batch, classes]`` (or the output's shape)."""
        return self.ints(act).astype(np.float64) * self.output_scale


def _read(act: np.ndarray, t: ActTensor, kind: str) -> np.ndarray:
    y = from_words(act, t)  # C x H x W
    if kind == "vector":
        return y[:, 0, 0]
    if kind == "seq":
        return y[:, 0, :].T
    return y.reshape(-1) if kind == "flat" else y


@dataclass
class _Value:
    block: str                    # its block in the memory plan
    kind: str                     # image | flat | vector | seq
    tensors: list[ActTensor]      # one per sample, in sample order


# --- lowering ------------------------------------------------------------------------------------
class _Lowerer:
    def __init__(self, cfg: AccelConfig, dry: bool = False):
        self.cfg = cfg
        self.b = DryBuilder(cfg) if dry else PlacedBuilder(cfg)
        self.mem = Memory(cfg)

    def groups(self, channels: int) -> int:
        return math.ceil(channels / self.cfg.lanes)

    def engine(self, name: str, fn):
        """``fn()``, with an engine-limit error re-raised naming the layer."""
        try:
            return fn()
        except DoesNotFit:
            raise
        except ValueError as exc:
            raise LoweringError(f"layer {name!r} cannot run on {self.cfg.slug}: {exc}") from exc

    def block(self, name: str, per: int, count: int) -> int:
        return self.mem.alloc(name, per * count)

    def put(self, name: str, xs: list[np.ndarray], kind: str) -> _Value:
        per = ActTensor(0, *xs[0].shape, self.cfg.lanes).words
        base = self.block(name, per, len(xs))
        out = []
        for i, x in enumerate(xs):
            self.b.at = base + i * per
            out.append(self.b.put(x))
        return _Value(name, kind, out)

    # --- ops -----------------------------------------------------------------------------------
    def conv(self, name, cur: _Value, w, bias, mult, shift, *, stride, padding, relu, pool,
             kind="image") -> _Value:
        t0 = cur.tensors[0]
        layer = self.engine(name, lambda: ConvLayer(t0.height, t0.width, t0.channels, w.shape[0],
                                                    w.shape[2], stride, padding, relu, pool))
        self.b.layer = name
        oh, ow = layer.result_size
        per = oh * ow * self.groups(layer.cout)
        base = self.block(f"{name} output", per, len(cur.tensors))
        out = []
        for i, t in enumerate(cur.tensors):
            self.b.at = base + i * per
            out.append(self.engine(name, lambda t=t: self.b.conv(
                t, w, bias, mult, shift, stride=stride, padding=padding, relu=relu, pool=pool)))
        self.mem.release(cur.block)
        return _Value(f"{name} output", kind, out)

    def maxpool(self, op: ir.QMaxPool, cur: _Value) -> _Value:
        t0 = cur.tensors[0]
        per = (t0.height // 2) * (t0.width // 2) * t0.groups
        self.b.layer = op.name
        base = self.block(f"{op.name} output", per, len(cur.tensors))
        out = []
        for i, t in enumerate(cur.tensors):
            self.b.at = base + i * per
            out.append(self.engine(op.name, lambda t=t: self.b.maxpool(t)))
        self.mem.release(cur.block)
        return _Value(f"{op.name} output", "image", out)

    def linear(self, op: ir.QLinear, cur: _Value) -> _Value:
        t0 = cur.tensors[0]
        if cur.kind == "flat" and linear_as_conv(self.cfg, t0.height, t0.width):
            w = op.w.reshape(op.w.shape[0], t0.channels, t0.height, t0.width)
            return self.conv(op.name, cur, w, op.bias, op.multiplier, op.shift, stride=1,
                             padding=0, relu=op.relu, pool=False, kind="vector")
        n, batch = op.w.shape[0], len(cur.tensors)
        rows_per = t0.width if cur.kind == "seq" else 1
        if cur.kind == "flat":  # one row of every pixel's words, channels-last
            k = t0.words * self.cfg.lanes
            wk = np.zeros((t0.height, t0.width, t0.groups * self.cfg.lanes, n), dtype=np.int64)
            chw = op.w.T.reshape(t0.channels, t0.height, t0.width, n)
            wk[:, :, : t0.channels] = chw.transpose(1, 2, 0, 3)
            wk = wk.reshape(k, n)
        else:
            k, wk = t0.channels, op.w.T
        stride = t0.words
        assert all(t.addr == t0.addr + i * stride for i, t in enumerate(cur.tensors))
        a = self.b.view(t0, k, 1, batch * rows_per)
        self.b.layer = op.name
        per = rows_per * self.groups(n)
        self.b.at = self.block(f"{op.name} output", per, batch)
        out = self.engine(op.name, lambda: self.b.gemm(a, wk, op.bias, op.multiplier, op.shift,
                                                       relu=op.relu))
        self.mem.release(cur.block)
        tensors = [ActTensor(out.addr + i * per, n, 1, rows_per, self.cfg.lanes)
                   for i in range(batch)]
        return _Value(f"{op.name} output", "seq" if cur.kind == "seq" else "vector", tensors)

    def lstm(self, op: ir.QLstm, cur: _Value) -> _Value:
        lc, p = self.cfg.lstm, op.params
        if lc is None:
            raise LoweringError(f"layer {op.name!r} is an LSTM and {self.cfg.slug} has no LSTM "
                                f"cell (lstm=None)")
        for what, value, cell in (("input_size", p.input_size, lc.input_size),
                                  ("hidden_size", p.hidden_size, lc.hidden_size)):
            if value != cell:
                raise LoweringError(f"layer {op.name!r} has {what} {value} and the LSTM cell of "
                                    f"{self.cfg.slug} runs {what} {cell} only")
        self.b.layer = op.name
        gh, steps, batch = self.groups(lc.hidden_size), cur.tensors[0].width, len(cur.tensors)
        name = f"{op.name} output"
        if op.last_step:
            base = self.mem.alloc(name, (batch + steps - 1) * gh)
            order = range(batch - 1, -1, -1)
        else:
            base = self.block(name, steps * gh, batch)
            order = range(batch)
        stride = gh if op.last_step else steps * gh
        for i in order:
            self.b.at = base + i * stride
            self.engine(op.name, lambda i=i: self.b.lstm(cur.tensors[i], p))
        self.mem.release(cur.block)
        if op.last_step:
            last = base + (steps - 1) * gh
            return _Value(name, "vector", [ActTensor(last + i * gh, lc.hidden_size, 1, 1,
                                                     self.cfg.lanes) for i in range(batch)])
        return _Value(name, "seq", [ActTensor(base + i * stride, lc.hidden_size, 1, steps,
                                              self.cfg.lanes) for i in range(batch)])


def linear_as_conv(cfg: AccelConfig, height: int, width: int) -> bool:
    """Whether a Linear over a flattened ``height x width`` map runs as one CONV whose kernel
    covers the map (square, more than one pixel, within the engine's kernel)."""
    return height == width and 1 < height <= cfg.conv.max_kernel


def _inputs(qg: ir.QGraph, x_int: np.ndarray) -> tuple[list[np.ndarray], str, tuple]:
    """Per-sample ``C x H x W`` tensors to store, their kind, and the ops still to lower."""
    ops = qg.ops
    if qg.tokens:
        emb, ops = ops[0], ops[1:]
        x = emb.table[x_int]                                  # B x T x D
        return [s.T[:, None, :] for s in x], "seq", ops
    if x_int.ndim == 4:
        return list(x_int), "image", ops
    if x_int.ndim == 3:
        return [s.T[:, None, :] for s in x_int], "seq", ops
    return [s[:, None, None] for s in x_int], "vector", ops


def lower(qg: ir.QGraph, cfg: AccelConfig, x_int, *, dry: bool = False) -> Lowered:
    """The program that runs ``qg`` on the batch ``x_int`` (int8 values, or token ids).

    ``dry``: plan memory and count commands without encoding anything (what
    :func:`max_batch` searches with); its builder holds no program.
    """
    x_int = np.asarray(x_int, dtype=np.int64)
    if x_int.ndim < 1 or tuple(x_int.shape[1:]) != tuple(qg.input_shape) or len(x_int) == 0:
        raise ValueError(f"x_int must have shape (batch >= 1, {', '.join(map(str, qg.input_shape))}"
                         f"), not {x_int.shape}")
    lo, hi = (0, len(qg.ops[0].table) - 1) if qg.tokens else (INT8.min, INT8.max)
    if x_int.min() < lo or x_int.max() > hi:
        what = "token ids" if qg.tokens else "int8 values (CompiledModel.quantize_input)"
        raise ValueError(f"x_int must hold {what} in [{lo}, {hi}], not "
                         f"{int(x_int.min())}..{int(x_int.max())}")
    lw = _Lowerer(cfg, dry)
    xs, kind, ops = _inputs(qg, x_int)
    cur = lw.put("input", xs, kind)
    for op in ops:
        if isinstance(op, ir.QConv):
            cur = lw.conv(op.name, cur, op.w, op.bias, op.multiplier, op.shift, stride=op.stride,
                          padding=op.padding, relu=op.relu, pool=op.pool)
        elif isinstance(op, ir.QMaxPool):
            cur = lw.maxpool(op, cur)
        elif isinstance(op, ir.QFlatten):
            cur = _Value(cur.block, "flat", cur.tensors)
        elif isinstance(op, ir.QLinear):
            cur = lw.linear(op, cur)
        elif isinstance(op, ir.QLstm):
            cur = lw.lstm(op, cur)
        else:
            raise TypeError(f"op must be a quantized IR op the lowering knows, not {op!r}")
    lw.b.done()
    n = len(lw.b.commands)
    if n > cfg.prog_depth:
        raise DoesNotFit(f"the program ({n} commands for a batch of {len(x_int)}) does not fit "
                         f"the program memory of {cfg.slug} ({cfg.prog_depth} commands); short "
                         f"by {n - cfg.prog_depth} commands")
    return Lowered(lw.b, tuple(cur.tensors), cur.kind, qg.output_scale)


def _dummy(qg: ir.QGraph, batch: int) -> np.ndarray:
    return np.zeros((batch, *qg.input_shape), dtype=np.int64)


def max_batch(qg: ir.QGraph, cfg: AccelConfig) -> int:
    """The largest batch that :func:`lower` fits on ``cfg`` (raises what batch 1 raises)."""
    lower(qg, cfg, _dummy(qg, 1), dry=True)

    def fits(n: int) -> bool:
        try:
            lower(qg, cfg, _dummy(qg, n), dry=True)
            return True
        except DoesNotFit:
            return False

    lo, hi = 1, 2
    while hi <= cfg.act_depth and fits(hi):  # every sample takes at least one input word
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def describe(qg: ir.QGraph, cfg: AccelConfig) -> str:
    """One line per quantized op: shapes, scales, MACs per sample and the command that runs it."""
    shapes = qg.shapes()
    head = (f"{'layer':12s} {'op':10s} {'in':>14s} {'out':>14s} {'s_in':>10s} {'s_out':>10s} "
            f"{'MACs':>10s}  runs as")
    lines = [f"{cfg.slug}: input scale "
             f"{'token ids' if qg.input_scale is None else f'{qg.input_scale:.4g}'}, "
             f"output scale {qg.output_scale:.4g}", head, "-" * len(head)]
    prev = None
    for op, s_in, s_out in zip(qg.ops, shapes, shapes[1:]):
        kind = type(op).__name__[1:]
        sc_in = sc_out = ""
        if isinstance(op, ir.QConv):
            runs = "CONV" + (" + 2x2 pool" if op.pool else "")
        elif isinstance(op, ir.QLinear):
            flat = isinstance(prev, ir.QFlatten) and len(s_in) == 1
            hw = shapes[qg.ops.index(prev)][1:] if flat else ()
            runs = ("CONV (kernel covers the map)" if flat and linear_as_conv(cfg, *hw)
                    else "GEMM (whole batch)")
        else:
            runs = {"QMaxPool": "MAXPOOL", "QFlatten": "(a view, no command)",
                    "QLstm": "LSTM per sample", "QEmbedding": "host gather"}[type(op).__name__]
        if isinstance(op, (ir.QConv, ir.QLinear)):
            sc_in, sc_out = f"{op.s_in:.4g}", f"{op.s_out:.4g}"
        elif isinstance(op, ir.QLstm):
            sc_in, sc_out = f"{op.s_in:.4g}", f"{2.0 ** -7:.4g}"
        elif isinstance(op, ir.QEmbedding):
            sc_out = f"{op.scale:.4g}"
        fmt = lambda s: "x".join(map(str, s))  # noqa: E731
        lines.append(f"{op.name:12s} {kind:10s} {fmt(s_in):>14s} {fmt(s_out):>14s} "
                     f"{sc_in:>10s} {sc_out:>10s} {ir.macs(op, s_in):>10,d}  {runs}")
        prev = op
    return "\n".join(lines)
