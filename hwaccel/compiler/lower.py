"""Lowering: the quantized IR and a batch of int8 inputs -> one accelerator program.

Three passes. :func:`layout` says, for every value of the graph, what it is per sample and
which block of the activation scratchpad holds the whole batch's copies (a step writes it, its
last reader frees it); :func:`hwaccel.compiler.memory.plan` places the blocks by liveness; then
the program is emitted op by op with every tensor where the plan put it.

Layer-major batching: each layer runs for every sample before the next layer starts, so a
layer's weights are stored once and every sample's command reuses them
(:class:`~hwaccel.generators.accel.driver.ProgramBuilder` shares them by identity).

How each op runs
----------------
* ``QConv`` (with its fused 2x2 pool): one CONV command per sample (per-side padding and
  non-square kernels and strides are descriptor fields); a map taller than the engine's line
  buffer (``max_height``) runs as one CONV per band of output rows. A depthwise conv
  (groups = channels) is one depthwise CONV per sample (:meth:`ProgramBuilder.dwconv`: the
  processor runs its channel groups up to ``dw_groups`` a job); a kernel beyond the engine's
  ``dw_kernel`` is refused by name.
* ``QMaxPool`` not fused into a conv: one MAXPOOL command per sample.
* ``QAvgPool``: one AVGPOOL command per sample; ``QAdd``: one ADD per sample, reading both
  inputs' blocks (the ISA's commands; a preset without them refuses the layer by name).
* ``QFlatten``: nothing; the map stays channels-last and the next Linear reads it as such.
* ``QLinear`` after a flattened ``C x K x K`` map with ``K <= max_kernel``: one CONV per sample
  whose ``K x K`` kernel covers the whole map (the same sum as the Linear over the CHW flatten,
  weights reshaped ``N x C x K x K``), as :func:`hwaccel.generators.accel.cases.cnn_program`
  runs the reference CNN's fc1. Otherwise one GEMM for the whole batch: its rows are the
  samples' vectors (or every step of every sequence), which a block keeps contiguous.
  A flattened map is then one row of ``H*W*groups*lanes`` channels (channels-last, padding lanes
  meeting zero weights).
* ``QLstm``: one LSTM command per sample, at the layer's own I and H (up to the cell's sizes;
  above them a :class:`LoweringError` names the limit), from zero state. For
  the last step only, sample ``b`` writes its ``T`` steps at ``base + b*words`` in reverse sample
  order: each sample's later commands overwrite only earlier samples' early steps, so the last
  steps end up contiguous, ready to be one GEMM's rows, with no extra command or copy.
* ``QEmbedding``: gathered on the host; the program's input is the int8 embedded sequence.
* Attention ops: :mod:`.lower_attention` (on a configuration with attention units; elsewhere
  :class:`AttentionNotLowered` names the first).

Weights that do not all fit the weight scratchpad split the batch into several programs at layer
boundaries (:class:`~.builders.Program`; the host writes the next group's weights between them,
the activations stay). A block that does not fit raises :class:`DoesNotFit` naming the tensor
and the shortfall in words; so do a single layer's weights beyond the whole weight scratchpad
and a program longer than the program memory. What the preset's engines cannot run raises
:class:`LoweringError`, naming the layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ActTensor, ProgramBuilder
from ..generators.conv.layer import ConvLayer
from ..numerics import INT8
from . import im2col, ir, lower_attention
from .builders import DryBuilder, PlacedBuilder
from .errors import UnsupportedOp
from .fuse import (
    QLinearAdd,
    QLinearAddConstant,
    fuse_add,
    fuse_gelu,
    fused_add_args,
    fused_constants,
    fused_gelu_params,
)
from .lowered import Lowered, attribute
from .memory import Block, DoesNotFit, plan

__all__ = ["AttentionNotLowered", "DoesNotFit", "LoweringError", "Lowered", "Value", "layout",
           "lower", "max_batch", "linear_as_conv", "weight_groups"]


class LoweringError(ValueError):
    """A layer is beyond what the preset's engines run; names the layer and what they do run."""


class AttentionNotLowered(LoweringError, UnsupportedOp):
    """An attention op (:mod:`.ir_attention_q`) on a configuration without attention units
    (``AccelConfig.attention``): the integer twin runs it; :mod:`.lower_attention` lowers it
    where the units are."""

    def __init__(self, op, cfg: AccelConfig):
        self.op, self.where = f"{type(op).__name__[1:]} (attention)", f"layer {op.name!r}"
        ValueError.__init__(self, f"layer {op.name!r} is {self.op}: no accelerator command for "
                            f"attention yet on {cfg.slug} (no attention units: "
                            f"AccelConfig.attention); the integer twin (torch-int8) runs it")


@dataclass(frozen=True)
class Value:
    """A value of the graph as the program holds it: sample ``i``'s ``channels x height x
    width`` tensor at word ``offset + i * stride`` of ``block``; ``kind`` says how it reads."""

    block: str
    kind: str                     # image | flat | vector | seq | patches (im2col)
    channels: int
    height: int
    width: int
    stride: int
    offset: int = 0
    row_words: int | None = None  # words per row when wider than the channels' (a head's slice)

    def tensors(self, base: int, batch: int, lanes: int) -> list[ActTensor]:
        return [ActTensor(base + self.offset + i * self.stride, self.channels, self.height,
                          self.width, lanes) for i in range(batch)]


def linear_as_conv(cfg: AccelConfig, height: int, width: int) -> bool:
    """Whether a Linear over a flattened ``height x width`` map runs as one CONV whose kernel
    covers the map (square, more than one pixel, within the engine's kernel)."""
    return height == width and 1 < height <= cfg.conv.max_kernel


def _refuse(cfg: AccelConfig, op) -> None:
    """Raise :class:`LoweringError` for an op the preset has no command for."""
    for kind, command, method in ((ir.QAdd, "ADD", "add"), (ir.QAvgPool, "AVGPOOL", "avgpool")):
        if isinstance(op, kind) and not hasattr(ProgramBuilder, method):
            raise LoweringError(f"layer {op.name!r} is {type(op).__name__[1:]} and the ISA of "
                                f"{cfg.slug} has no {command} command")


def layout(qg: ir.QGraph, cfg: AccelConfig, batch: int, patches: bool = True
           ) -> tuple[dict, list[Block]]:
    """Every value's :class:`Value` (by name) and the blocks of a batch of ``batch``, in the
    order their steps write them (step ``k`` is the ``k``-th op lowered; the input is -1).
    ``patches``: the input is written as the first conv's im2col patches where
    :func:`.im2col.first_conv` says so (kind ``patches``: ``K x OH x OW``)."""
    attention = next((op for op in qg.ops if isinstance(op, ir.QATTENTION_OPS)), None)
    if attention is not None and cfg.attention is None:
        raise AttentionNotLowered(attention, cfg)
    homes = lower_attention.concat_homes(qg, cfg.lanes)
    joint = lower_attention.projection_groups(qg, cfg.lanes)   # Q, K, V as one GEMM
    lanes = cfg.lanes
    groups = lambda c: math.ceil(c / lanes)  # noqa: E731
    ops = qg.ops[1:] if qg.tokens else qg.ops
    shape = tuple(qg.input_shape[:1]) + (qg.ops[0].table.shape[1],) if qg.tokens else \
        tuple(qg.input_shape)
    first = qg.ops[0].name if qg.tokens else ir.INPUT
    col = im2col.first_conv(qg, cfg) if patches and len(shape) == 3 else None
    if col is not None:
        (oh, ow), k = col.out_size(*shape[1:]), im2col.patch_channels(col)
        vals = {first: Value("input", "patches", k, oh, ow, oh * ow * groups(k))}
    elif len(shape) == 3:
        vals = {first: Value("input", "image", *shape, shape[1] * shape[2] * groups(shape[0]))}
    elif len(shape) == 2:
        vals = {first: Value("input", "seq", shape[1], 1, shape[0], shape[0] * groups(shape[1]))}
    else:
        vals = {first: Value("input", "vector", shape[0], 1, 1, groups(shape[0]))}
    words = {"input": vals[first].stride * batch}
    made = {"input": -1}
    for step, op in enumerate(ops):
        _refuse(cfg, op)
        x = vals[op.inputs[0]]
        name = f"{op.name} output"
        if isinstance(op, ir.QATTENTION_OPS):
            vals[op.name] = lower_attention.value(op, vals, cfg, batch, homes, step, words, made)
            continue
        if v := lower_attention.joint_value(op, joint, x, cfg, batch, words, made, step):
            vals[op.name] = v
            continue
        if isinstance(op, QLinearAdd):   # the GEMM writes over the residual (:mod:`.fuse`)
            vals[op.name] = vals[op.inputs[1]]
            continue
        if isinstance(op, ir.QFlatten):
            vals[op.name] = Value(x.block, "flat", x.channels, x.height, x.width, x.stride,
                                  x.offset)
            continue
        if isinstance(op, ir.QConv):
            oh, ow = ((x.height, x.width) if x.kind == "patches"
                      else op.out_size(x.height, x.width))
            oh, ow = (oh // 2, ow // 2) if op.pool else (oh, ow)
            v = Value(name, "image", op.w.shape[0], oh, ow, oh * ow * groups(op.w.shape[0]))
        elif isinstance(op, (ir.QMaxPool, ir.QAvgPool)):
            kh, kw = op.kernel if isinstance(op, ir.QAvgPool) else (2, 2)
            oh, ow = x.height // kh, x.width // kw
            v = Value(name, "image", x.channels, oh, ow, oh * ow * groups(x.channels))
        elif isinstance(op, ir.QAdd):
            v = Value(name, x.kind, x.channels, x.height, x.width,
                      x.height * x.width * groups(x.channels))
        elif isinstance(op, ir.QLinear):
            n = op.w.shape[0]
            if x.kind == "flat" and linear_as_conv(cfg, x.height, x.width):
                v = Value(name, "vector", n, 1, 1, groups(n))
            elif x.kind == "seq":
                v = Value(name, "seq", n, 1, x.width, x.width * groups(n))
            else:
                v = Value(name, "vector", n, 1, 1, groups(n))
        elif isinstance(op, ir.QLstm):
            lc = _lstm_cell(cfg, op)
            gh, steps = groups(lc.hidden_size), x.width
            if op.last_step:  # see the module docstring: the last steps end up contiguous
                v = Value(name, "vector", lc.hidden_size, 1, 1, gh, (steps - 1) * gh)
                words[name] = (batch + steps - 1) * gh
            else:
                v = Value(name, "seq", lc.hidden_size, 1, steps, steps * gh)
        else:
            raise TypeError(f"op must be a quantized IR op the lowering knows, not {op!r}")
        vals[op.name] = v
        words.setdefault(name, v.stride * batch)
        made[name] = -1 if isinstance(op, QLinearAddConstant) else step   # the host fills it
    last: dict[str, int | None] = {}
    for step, op in enumerate(ops):
        for v in (*op.inputs, *lower_attention.constant_reads(op)):
            last[vals[v].block] = step
    last[vals[qg.output].block] = None  # the output stays
    blocks = [Block(b, words[b], made[b], last.get(b, made[b])) for b in made]
    return vals, blocks


def _lstm_cell(cfg: AccelConfig, op: ir.QLstm):
    """The cell's config for a run at ``op``'s sizes (any sizes up to the cell's)."""
    lc, p = cfg.lstm, op.params
    if lc is None:
        raise LoweringError(f"layer {op.name!r} is an LSTM and {cfg.slug} has no LSTM "
                            f"cell (lstm=None)")
    for what, value, most in (("input_size", p.input_size, lc.input_size),
                              ("hidden_size", p.hidden_size, lc.hidden_size)):
        if value > most:
            raise LoweringError(f"layer {op.name!r} has {what} {value} and the LSTM cell of "
                                f"{cfg.slug} runs {what} up to {most}")
    return lc.run(p.input_size, p.hidden_size)


class _Emitter:
    """Emits each op's commands for every sample, with tensors where the plan put them."""

    def __init__(self, cfg: AccelConfig, vals: dict, where: dict, batch: int, dry: bool):
        self.cfg, self.vals, self.where, self.batch = cfg, vals, where, batch
        self.b = DryBuilder(cfg) if dry else PlacedBuilder(cfg)

    def tensors(self, value: str) -> list[ActTensor]:
        v = self.vals[value]
        return v.tensors(self.where[v.block], self.batch, self.cfg.lanes)

    def engine(self, name: str, fn):
        """``fn()``, with an engine-limit error re-raised naming the layer."""
        try:
            return fn()
        except DoesNotFit:
            raise
        except ValueError as exc:
            raise LoweringError(f"layer {name!r} cannot run on {self.cfg.slug}: {exc}") from exc

    def per_sample(self, op, call) -> None:
        """``call(i)`` for every sample ``i``, its output at the plan's place."""
        self.b.layer = op.name
        out = self.tensors(op.name)
        for i in range(self.batch):
            self.b.at = out[i].addr
            self.engine(op.name, lambda i=i: call(i))

    def put(self, value: str, xs: list[np.ndarray]) -> None:
        for t, x in zip(self.tensors(value), xs):
            self.b.at = t.addr
            self.b.put(x)

    def op(self, op) -> None:
        if isinstance(op, ir.QATTENTION_OPS):
            return lower_attention.emit(self, op)
        xs = self.tensors(op.inputs[0])
        if isinstance(op, ir.QConv) and self.vals[op.inputs[0]].kind == "patches":
            im2col.emit(self, op, xs)
        elif isinstance(op, ir.QConv) and op.depthwise:
            self.dwconv(op, xs)
        elif isinstance(op, ir.QConv):
            self.conv(op, xs, op.w, stride=op.stride, padding=op.padding, pool=op.pool)
        elif isinstance(op, ir.QMaxPool):
            self.per_sample(op, lambda i: self.b.maxpool(xs[i]))
        elif isinstance(op, ir.QAvgPool):
            self.per_sample(op, lambda i: self.b.avgpool(xs[i], *op.kernel))
        elif isinstance(op, ir.QAdd):
            ys = self.tensors(op.inputs[1])
            self.per_sample(op, lambda i: self.b.add(xs[i], ys[i], op.params, relu=op.relu))
        elif isinstance(op, ir.QLinear):
            self.linear(op, xs)
        elif isinstance(op, ir.QLstm):
            order = range(self.batch - 1, -1, -1) if op.last_step else range(self.batch)
            self.b.layer = op.name
            v = self.vals[op.name]
            base = self.where[v.block]
            for i in order:
                self.b.at = base + i * v.stride
                self.engine(op.name, lambda i=i: self.b.lstm(xs[i], op.params))

    def conv(self, op, xs, w, *, stride, padding, pool) -> None:
        t0 = xs[0]
        if t0.height > self.cfg.conv.max_height and not pool:
            return self.conv_bands(op, xs, w)
        self.engine(op.name, lambda: ConvLayer(t0.height, t0.width, t0.channels, w.shape[0],
                                               ir.squash(w.shape[2:]), stride, padding,
                                               op.relu, pool))
        self.per_sample(op, lambda i: self.b.conv(xs[i], w, op.bias, op.multiplier, op.shift,
                                                  stride=stride, padding=padding,
                                                  relu=op.relu, pool=pool))

    def conv_bands(self, op, xs, w) -> None:
        """A map taller than the engine's line buffer: one CONV per band of output rows, each
        reading the input rows its windows cover (channels-last, a band of rows is a run of
        consecutive words, in and out), padded only where the whole map is."""
        (kh, _), (sh, _) = op.kernel, op.strides
        top, left, bottom, right = op.pads
        height, lanes = xs[0].height, self.cfg.lanes
        oh, ow = op.out_size(height, xs[0].width)
        rows = (self.cfg.conv.max_height - kh) // sh + 1  # output rows whose windows fit
        if rows < 1:
            raise LoweringError(f"layer {op.name!r} cannot run on {self.cfg.slug}: its kernel "
                                f"height {kh} exceeds the line buffer's "
                                f"{self.cfg.conv.max_height} rows")
        out = self.tensors(op.name)
        self.b.layer = op.name
        for oy0 in range(0, oh, rows):
            rb = min(rows, oh - oy0)
            iy0 = oy0 * sh - top
            iy1 = iy0 + (rb - 1) * sh + kh
            lo, hi = max(iy0, 0), min(iy1, height)
            pads = ir.squash((lo - iy0, left, iy1 - hi, right))
            for i, x in enumerate(xs):
                band = ActTensor(x.addr + lo * x.width * x.groups, x.channels, hi - lo, x.width,
                                 lanes)
                self.b.at = out[i].addr + oy0 * ow * out[i].groups
                self.engine(op.name, lambda band=band, pads=pads: self.b.conv(
                    band, w, op.bias, op.multiplier, op.shift, stride=op.stride, padding=pads,
                    relu=op.relu, pool=False))

    def dwconv(self, op, xs) -> None:
        """A depthwise conv: one depthwise CONV per sample (a kernel beyond the engine's
        ``dw_kernel`` or a padding beyond its ``max_pad`` is refused naming the layer)."""
        self.per_sample(op, lambda i: self.b.dwconv(xs[i], op.w, op.bias, op.multiplier,
                                                    op.shift, stride=op.stride,
                                                    padding=op.padding, relu=op.relu,
                                                    pool=op.pool))

    def linear(self, op: ir.QLinear, xs) -> None:
        if lower_attention.joint_linear(self, op):   # one GEMM for the group's ops
            return
        x, t0 = self.vals[op.inputs[0]], xs[0]
        if x.kind == "flat" and linear_as_conv(self.cfg, t0.height, t0.width):
            w = op.w.reshape(op.w.shape[0], t0.channels, t0.height, t0.width)
            return self.conv(op, xs, w, stride=1, padding=0, pool=False)
        n, lanes = op.w.shape[0], self.cfg.lanes
        rows_per = t0.width if x.kind == "seq" else 1
        if x.kind == "flat":  # one row of every pixel's words, channels-last
            k = t0.words * lanes
            wk = np.zeros((t0.height, t0.width, t0.groups * lanes, n), dtype=np.int64)
            chw = op.w.T.reshape(t0.channels, t0.height, t0.width, n)
            wk[:, :, : t0.channels] = chw.transpose(1, 2, 0, 3)
            wk = wk.reshape(k, n)
        else:
            k, wk = t0.channels, op.w.T
        if any(t.addr != t0.addr + i * t0.words for i, t in enumerate(xs)):  # a token's rows
            return lower_attention.linear_per_sample(self, op, xs, wk)
        a = self.b.view(t0, k, 1, self.batch * rows_per)
        self.b.layer = op.name
        self.b.at = self.tensors(op.name)[0].addr
        self.engine(op.name, lambda: self.b.gemm(a, wk, op.bias, op.multiplier, op.shift,
                                                 relu=op.relu, gelu=fused_gelu_params(op),
                                                 add=fused_add_args(self, op)))


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
    batch = len(x_int)
    qg = fuse_add(fuse_gelu(qg, cfg), cfg)   # GELUs and ADDs into their GEMMs (:mod:`.fuse`)
    vals, blocks = layout(qg, cfg, batch)
    try:
        where = plan(blocks, cfg)
    except DoesNotFit:  # the patches may be what does not fit: the plain input may
        vals, blocks = layout(qg, cfg, batch, patches=False)
        where = plan(blocks, cfg)
    em = _Emitter(cfg, vals, where, batch, dry)
    em.joint = lower_attention.projection_groups(qg, cfg.lanes)
    first = qg.ops[0].name if qg.tokens else ir.INPUT
    xs = _inputs(qg, x_int)
    if vals[first].kind == "patches":  # host-side layout only: im2col.patches moves values
        xs = [im2col.patches(qg.ops[0], x) for x in xs]
    em.put(first, xs)
    for op in lower_attention.constants(qg):   # positional embeddings, one copy each
        em.put(f"{op.name} constant", [op.value.T[:, None, :]])
    for op in fused_constants(qg):   # a fused one: a copy a sample, in the GEMM's output
        em.put(op.name, [op.value.T[:, None, :]] * batch)
    marks = []  # after each layer: (name, programs ended, commands), who emitted which command
    for op in qg.ops[1:] if qg.tokens else qg.ops:
        if not isinstance(op, (ir.QFlatten, *lower_attention.VIEWS)):
            em.op(op)
            marks.append((op.name, len(em.b.programs), len(em.b.commands)))
    b = em.b
    programs, layer_pcs = attribute(b.finish(), marks)
    for k, p in enumerate(programs):
        n = len(p.commands)
        if n > cfg.prog_depth:
            which = "the program" if len(programs) == 1 else f"program {k + 1} of {len(programs)}"
            raise DoesNotFit(f"{which} ({n} commands for a batch of {batch}) does not fit "
                             f"the program memory of {cfg.slug} ({cfg.prog_depth} commands); "
                             f"short by {n - cfg.prog_depth} commands")
    if len(programs) == 1:  # the builder is the whole program, as the driver's are
        b.commands, b.wgt, b.wgt_top = programs[0].commands, programs[0].wgt, programs[0].wgt_top
    else:
        b.commands = b.wgt = None
    out = vals[qg.output]
    return Lowered(b, tuple(em.tensors(qg.output)), out.kind, qg.output_scale, programs,
                   layer_pcs)


from .lower_batch import _inputs, max_batch, weight_groups  # noqa: E402  (they call lower)
