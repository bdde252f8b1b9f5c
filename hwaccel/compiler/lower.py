"""Lowering: the quantized IR and a batch of int8 inputs -> one accelerator program.

Three passes. :func:`layout` says, for every value of the graph, what it is per sample and
which block of the activation scratchpad holds the whole batch's copies (a step writes it, its
last reader frees it); :func:`hwaccel.compiler.memory.plan` places the blocks by liveness; then
the program is emitted op by op with every tensor where the plan put it (:mod:`.lower_emit`).
What the passes share (the errors, :class:`Value`, :func:`linear_as_conv`) is in
:mod:`.lower_types`, and the batch-level helpers (:func:`max_batch`, :func:`weight_groups`) in
:mod:`.lower_batch`; this module re-exports them.

Layer-major batching: each layer runs for every sample before the next layer starts, so a
layer's weights are stored once and every sample's command reuses them
(:class:`~hwaccel.generators.accel.driver.ProgramBuilder` shares them by identity).

How each op runs
----------------
* ``QConv`` (with its fused 2x2 pool): one CONV command per sample (per-side padding and non-square
  kernels and strides are descriptor fields); a map taller than the engine's line buffer
  (``max_height``) runs as one CONV per band of output rows (with a fused pool, an even number
  of the conv's rows a band). A 1x1 conv (stride 1, no padding or pool) with more channels than
  the engine's ``max_cin`` or ``max_cout``, or rows wider than its ``max_width``, is one GEMM per
  sample, of its pixels by its ``Cin x Cout`` weights (channels-last, the same map), which the
  processor tiles in hardware
  (:meth:`~.lower_emit._Emitter.pointwise_gemm`). A depthwise conv (groups = channels) is one
  depthwise CONV per sample (:meth:`ProgramBuilder.dwconv`: the processor runs its channel groups up
  to ``dw_groups`` a job); a kernel beyond the engine's ``dw_kernel`` arrives as the dense conv
  it is (:mod:`.split_kernels`).
* A chain of convs whose intermediate maps only the next conv reads (a MobileNetV2 block's
  expansion, depthwise and projection), when the plain plan does not fit: a band of output rows
  at a time, each conv over the rows the next one's windows need, the intermediate maps held a
  band at a time (:mod:`.lower_bands`; rows that two bands' windows share are computed twice;
  a first conv over im2col patches can start a chain, its patches whole).
  A depthwise conv over a map taller than the line buffer runs in bands of rows as a dense one.
* ``QMaxPool`` not fused into a conv: one MAXPOOL command per sample; a line's (``MaxPool1d(4)``)
  over the line laid out as rows of 2, in bands of the unit's ``max_height`` rows
  (:meth:`~.lower_emit._Emitter.line_maxpool`). A line wider than the line buffer under a
  kernel wider than 1 runs as one CONV per band of output columns
  (:meth:`~.lower_emit._Emitter.conv_bands`).
* ``QAvgPool``: one AVGPOOL command per sample (a map beyond the unit's rows: one per band
  of window rows, a long line's windows folded into rows it holds,
  :func:`~hwaccel.generators.accel.avg_view.avg_parts`); ``QAdd``: one ADD per sample,
  reading both inputs' blocks (the ISA's commands; a preset without them refuses the layer
  by name).
* ``QFlatten``: nothing; the map stays channels-last and the next Linear reads it as such.
* ``QUnflatten``: nothing; a vector's words are a one-pixel image's.
* ``QSeqView``: nothing; a line's pixels are a sequence's steps word for word, so the LSTM or
  Conv1d after it reads the same words.
* ``QDepthToSpace``: nothing of its own; the 1 x 1 conv it reads (a ConvTranspose2d's, a nearest
  upsampling's) runs as GEMMs that write its output where it puts it, ``f`` a sample per input
  row (:meth:`~.lower_emit._Emitter.depth_to_space`); after anything else it is refused
  (:func:`~.lower_types.depth_to_space_convs`).
* ``QLinear`` after a flattened ``C x K x K`` map with ``K <= max_kernel``: one CONV per sample
  whose ``K x K`` kernel covers the whole map (the same sum as the Linear over the CHW flatten,
  weights reshaped ``N x C x K x K``), as :func:`hwaccel.generators.accel.cases.cnn_program`
  runs the reference CNN's fc1. Otherwise one GEMM for the whole batch: its rows are the
  samples' vectors (or every step of every sequence), which a block keeps contiguous.
  A flattened map is then one row of ``H*W*groups*lanes`` channels (channels-last, padding lanes
  meeting zero weights). A GEMM whose weights (``(kw + 1) x nb`` words) exceed the whole weight
  scratchpad runs in parts of its output blocks that fit: a one-row GEMM per row and part,
  writing the part's words of the row, each part's weights stored once for all its rows
  (:meth:`~.lower_emit._Emitter.linear_parts`; the FC autoencoder on ``ecp5_144`` and ``tiny``).
* ``QLstm``: one LSTM command per sample, at the layer's own I and H (up to the cell's sizes;
  above them a :class:`LoweringError` names the limit), from zero state. For
  the last step only, sample ``b`` writes its ``T`` steps at ``base + b*words`` in reverse sample
  order: each sample's later commands overwrite only earlier samples' early steps, so the last
  steps end up contiguous, ready to be one GEMM's rows, with no extra command or copy.
* ``QEmbedding``: gathered on the host; the program's input is the int8 embedded sequence.
* Attention ops: :mod:`.lower_attention` (on a configuration with attention units; elsewhere
  :class:`AttentionNotLowered` names the first).

Weights that do not all fit the weight scratchpad split the batch into several programs at layer
boundaries and between a Linear's parts (:class:`~.builders.Program`; the host writes the next
group's weights between them, the activations stay). So do one sample's commands beyond the
program memory (long lines and tall maps in many bands), split between layers (:func:`_breaks`;
a batch of more than one sample is not split, so such a model's largest batch is one). A block
that does not fit raises :class:`DoesNotFit` naming the tensor and the shortfall in words; so do
a single layer's weights beyond the whole weight scratchpad (a Linear's: one output block's), a
single layer's commands beyond the program memory, and a batch's program longer than it. What
the preset's engines cannot run raises :class:`LoweringError`, naming the layer.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ProgramBuilder
from ..numerics import INT8
from . import im2col, ir, lower_attention, lower_bands
from .fuse import QLinearAdd, QLinearAddConstant, fuse_add, fuse_gelu, fused_constants
from .lower_batch import _inputs, max_batch, weight_groups
from .lower_emit import _Emitter
from .lower_types import (
    AttentionNotLowered,
    LoweringError,
    Value,
    depth_to_space_convs,
    gemm_parts,
    linear_as_conv,
    wide_pointwise,
)
from .lowered import Lowered, attribute
from .memory import Block, DoesNotFit, plan

__all__ = ["AttentionNotLowered", "DoesNotFit", "LoweringError", "Lowered", "Value", "layout",
           "lower", "max_batch", "linear_as_conv", "wide_pointwise", "gemm_parts",
           "weight_groups"]


def _refuse(cfg: AccelConfig, op) -> None:
    """Raise :class:`LoweringError` for an op the preset has no command for."""
    for kind, command, method in ((ir.QAdd, "ADD", "add"), (ir.QAvgPool, "AVGPOOL", "avgpool")):
        if isinstance(op, kind) and not hasattr(ProgramBuilder, method):
            raise LoweringError(f"layer {op.name!r} is {type(op).__name__[1:]} and the ISA of "
                                f"{cfg.slug} has no {command} command")
    if isinstance(op, ir.QMul) and not cfg.elt_mul:
        raise LoweringError(f"layer {op.name!r} is a product of two activations (Mul) and "
                            f"{cfg.slug} has no element-wise product (AccelConfig.elt_mul: "
                            f"the presets tiny and default have it)")


def layout(qg: ir.QGraph, cfg: AccelConfig, batch: int, patches: bool = True,
           chains: tuple = ()) -> tuple[dict, list[Block]]:
    """Every value's :class:`Value` (by name) and the blocks of a batch of ``batch``, in the
    order their steps write them (step ``k`` is the ``k``-th op lowered; the input is -1).
    ``patches``: the input is written as the first conv's im2col patches where
    :func:`.im2col.first_conv` says so (kind ``patches``: ``K x OH x OW``). ``chains``:
    :class:`.lower_bands.Chain` s run in bands at their last conv's step, each intermediate
    map a ``"<conv> band"`` block of one band, written and freed at that step."""
    attention = next((op for op in qg.ops if isinstance(op, ir.QUNIT_OPS)), None)
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
    d2s = depth_to_space_convs(qg)
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
        if isinstance(op, ir.QUnflatten):   # a vector's words are a pixel's channels
            vals[op.name] = Value(x.block, "image", x.channels, 1, 1, x.stride, x.offset)
            continue
        if isinstance(op, ir.QSeqView):   # a line's pixels are a sequence's steps, word for word
            hw = op.hw or (1, x.height * x.width)
            vals[op.name] = Value(x.block, "image", x.channels, *hw, x.stride, x.offset) \
                if op.to_line else Value(x.block, "seq", x.channels, 1, x.height * x.width,
                                         x.stride, x.offset)
            continue
        if isinstance(op, ir.QDepthToSpace):   # the conv before it wrote it (its block)
            f = op.factor
            vals[op.name] = Value(x.block, "image", x.channels // (f * f), x.height * f,
                                  x.width * f, x.stride, x.offset)
            continue
        if isinstance(op, ir.QConv) and op.name in d2s:   # words as the depth-to-space's
            c, f = op.w.shape[0], d2s[op.name].factor
            v = Value(name, "image", c, x.height, x.width,
                      x.height * x.width * f * f * groups(c // (f * f)))
        elif isinstance(op, ir.QConv):
            oh, ow = ((x.height, x.width) if x.kind == "patches"
                      else op.out_size(x.height, x.width))
            oh, ow = (oh // 2, ow // 2) if op.pool else (oh, ow)
            v = Value(name, "image", op.w.shape[0], oh, ow, oh * ow * groups(op.w.shape[0]))
        elif isinstance(op, (ir.QMaxPool, ir.QAvgPool)):
            kh, kw = op.kernel if isinstance(op, ir.QAvgPool) else (1, 4) if op.line else (2, 2)
            oh, ow = x.height // kh, x.width // kw
            v = Value(name, "image", x.channels, oh, ow, oh * ow * groups(x.channels))
        elif isinstance(op, (ir.QAdd, ir.QMul)):
            v = Value(name, x.kind, x.channels, x.height, x.width,
                      x.height * x.width * groups(x.channels))
            if getattr(op, "gate", False):   # the gate's copy a MUL reads (:mod:`.lower_emit`)
                words[f"{op.name} gate"] = (groups(x.channels) + 1) * batch
                made[f"{op.name} gate"] = step
        elif isinstance(op, ir.QLinear):
            n = op.w.shape[0]
            if x.kind == "flat" and linear_as_conv(cfg, (x.channels, x.height, x.width), n):
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
    end = {}   # a chain's conv -> the step that runs the chain (its last conv's)
    for ch in chains:
        j = next(k for k, op in enumerate(ops) if op is ch.ops[-1])
        end |= dict.fromkeys((op.name for op in ch.ops), j)
        for k, op in enumerate(ch.ops[:-1]):
            del words[f"{op.name} output"], made[f"{op.name} output"]
            band = f"{op.name} band"
            words[band], made[band] = ch.buffer_words(k, lanes), j
            vals[op.name] = dataclasses.replace(vals[op.name], block=band)
    last: dict[str, int | None] = {}
    for step, op in enumerate(ops):
        for v in (*op.inputs, *lower_attention.constant_reads(op)):   # a chain reads late
            last[vals[v].block] = max(last.get(vals[v].block, -1), end.get(op.name, step))
    last[vals[qg.output].block] = None  # the output stays
    blocks = [Block(b, words[b], made[b], last.get(b, made[b])) for b in made]
    return vals, blocks


def _fit(qg: ir.QGraph, cfg: AccelConfig, batch: int) -> tuple[dict, dict, tuple]:
    """The values, the plan and the banded chains: the plain layout if it fits; else the
    first conv's plain input in place of its patches (unless it runs over patches only); else
    chains in bands (:func:`.lower_bands.search`). Raises the plain layout's
    :class:`DoesNotFit` when none fits."""
    tries = (True,) if im2col.patches_only(qg, cfg) else (True, False)
    for patches in tries:
        try:
            return (*_planned(qg, cfg, batch, patches, ()), ())
        except DoesNotFit as exc:
            err = exc
    ops = qg.ops[1:] if qg.tokens else qg.ops
    for patches in tries:
        plain, _ = layout(qg, cfg, batch, patches)
        chains = lower_bands.search(ops, cfg, plain, qg.output, depth_to_space_convs(qg),
                                    lambda c, p=patches: _fits(qg, cfg, batch, p, c))
        if chains is not None:
            return (*_planned(qg, cfg, batch, patches, chains), chains)
    raise err


def _planned(qg, cfg, batch, patches, chains) -> tuple[dict, dict]:
    vals, blocks = layout(qg, cfg, batch, patches, chains)
    return vals, plan(blocks, cfg)


def _fits(qg, cfg, batch, patches, chains) -> bool:
    try:
        _planned(qg, cfg, batch, patches, chains)
        return True
    except DoesNotFit:
        return False


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


def _breaks(cfg: AccelConfig, counts: dict[str, int]) -> frozenset:
    """The layers that start a new program so that one sample's programs each fit the program
    memory (``counts``: each layer's commands, in order; its DONE the last word of each): as
    many layers a program as fit, in order. A layer longer than the program memory alone is
    refused by name."""
    room, used, out = cfg.prog_depth - 1, 0, set()
    for name, n in counts.items():
        if n > room:
            raise DoesNotFit(f"layer {name!r} alone takes {n} commands for a sample, and the "
                             f"program memory of {cfg.slug} holds {cfg.prog_depth} (DONE "
                             f"included); short by {n - room} commands")
        if used + n > room:
            out.add(name)
            used = 0
        used += n
    return frozenset(out)


def lower(qg: ir.QGraph, cfg: AccelConfig, x_int, *, dry: bool = False) -> Lowered:
    """The program that runs ``qg`` on the batch ``x_int`` (int8 values, or token ids).

    ``dry``: plan memory and count commands without encoding anything (what
    :func:`max_batch` searches with); its builder holds no program. One sample's commands
    beyond the program memory run as several programs, split between layers (:func:`_breaks`),
    emitted again on the same memory plan.
    """
    x_int = ir.graph_input(qg, np.asarray(x_int, dtype=np.int64))
    if x_int.ndim < 1 or tuple(x_int.shape[1:]) != tuple(qg.input_shape) or len(x_int) == 0:
        raise ValueError(f"x_int must have shape (batch >= 1, {ir.input_text(qg)}), not "
                         f"{x_int.shape}")
    lo, hi = (0, len(qg.ops[0].table) - 1) if qg.tokens else (INT8.min, INT8.max)
    if x_int.min() < lo or x_int.max() > hi:
        what = "token ids" if qg.tokens else "int8 values (CompiledModel.quantize_input)"
        raise ValueError(f"x_int must hold {what} in [{lo}, {hi}], not "
                         f"{int(x_int.min())}..{int(x_int.max())}")
    qg = fuse_add(fuse_gelu(qg, cfg), cfg)   # GELUs and ADDs into their GEMMs (:mod:`.fuse`)
    qg = im2col.unfused_pool(qg, cfg)        # a stem's pool apart where only that runs it
    fit = _fit(qg, cfg, len(x_int))
    low, counts = _emit(qg, cfg, x_int, fit, dry, frozenset())
    if low is None:   # a sample's layers in programs that each fit
        low, _ = _emit(qg, cfg, x_int, fit, dry, _breaks(cfg, counts))
    return low


def _emit(qg: ir.QGraph, cfg: AccelConfig, x_int: np.ndarray, fit: tuple, dry: bool,
          breaks: frozenset) -> tuple[Lowered | None, dict[str, int]]:
    """The commands of ``qg`` on the values, plan and chains ``fit`` (:func:`_fit`), a new
    program at each layer in ``breaks``; and each layer's command count. None in place of the
    program when one sample's commands, not yet split, are past the program memory."""
    vals, where, chains = fit
    batch = len(x_int)
    em = _Emitter(cfg, vals, where, batch, dry)
    em.bands = {ch.ops[-1].name: ch for ch in chains}
    em.banded = {op.name for ch in chains for op in ch.ops[:-1]}
    em.joint = lower_attention.projection_groups(qg, cfg.lanes)
    em.d2s = depth_to_space_convs(qg)
    first = qg.ops[0].name if qg.tokens else ir.INPUT
    xs = _inputs(qg, x_int)
    if vals[first].kind == "patches":  # host-side layout only: im2col.patches moves values
        xs = [im2col.patches(qg.ops[0], x) for x in xs]
    em.put(first, xs)
    for op in lower_attention.constants(qg):   # positional embeddings, one copy each
        em.put(f"{op.name} constant", [op.value.T[:, None, :]])
    for op in fused_constants(qg):   # a fused one: a copy a sample, in the GEMM's output
        em.put(op.name, [op.value.T[:, None, :]] * batch)
    b, counts = em.b, {}
    for op in qg.ops[1:] if qg.tokens else qg.ops:   # marks: who emitted which command
        if not isinstance(op, (ir.QFlatten, ir.QUnflatten, ir.QSeqView, ir.QDepthToSpace,
                               *lower_attention.VIEWS)):
            if op.name in breaks and b.commands:
                b.next_program()
            before = len(b.commands) + sum(len(p.commands) - 1 for p in b.programs)
            em.op(op)
            counts[op.name] = len(b.commands) + sum(len(p.commands) - 1
                                                    for p in b.programs) - before
            em.marks.append((op.name, len(b.programs), len(b.commands)))
    programs, layer_pcs = attribute(b.finish(), em.marks)
    for k, p in enumerate(programs):
        n = len(p.commands)
        if n > cfg.prog_depth:
            if batch == 1 and not breaks:
                return None, counts
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
                   layer_pcs, chains), counts

