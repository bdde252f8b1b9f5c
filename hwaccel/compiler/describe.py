"""``CompiledModel.describe()``: one line per quantized op -- shapes, scales, MACs per sample and
the command that runs it (a first conv over host-written im2col patches says so: :mod:`.im2col`);
an op that does not read the op before it names what it reads; and the programs a model runs as
when its weights do not all fit the weight scratchpad."""

from __future__ import annotations

from ..generators.accel.config import AccelConfig
from . import im2col, ir
from .lower import LoweringError, gemm_parts, linear_as_conv, wide_pointwise
from .lower_batch import dry_lowered
from .lower_types import depth_to_space_convs
from .memory import DoesNotFit

__all__ = ["describe"]

_RUNS = {"QMaxPool": "MAXPOOL", "QFlatten": "(a view, no command)",
         "QUnflatten": "(a view, no command)",
         "QSeqView": "(a view, no command)", "QLstm": "LSTM per sample",
         "QDepthToSpace": "(written in place by the conv before it)",
         "QEmbedding": "host gather", "QAvgPool": "AVGPOOL", "QAdd": "ADD"}


def _runs(op, qg: ir.QGraph, cfg: AccelConfig, shapes: dict) -> str:
    if isinstance(op, ir.QATTENTION_OPS):
        if cfg.attention is None and isinstance(op, ir.QUNIT_OPS):
            return "no command yet (attention: integer twin only)"
        from .lower_attention import RUNS

        return RUNS[type(op).__name__]
    if isinstance(op, ir.QConv):
        d2s = depth_to_space_convs(qg).get(op.name)
        if d2s is not None:
            f = d2s.factor
            return (f"GEMM per input row and output row of each ({f} x {shapes[op.inputs[0]][1]} "
                    f"a sample), writing its pixels where {d2s.name} puts them")
        if op is qg.ops[0] and im2col.unfused_pool(qg, cfg) is not qg:
            k = im2col.patch_channels(op)
            return (f"GEMM of its pixels over im2col patches the host writes (K={k}: "
                    f"{-(-k // cfg.lanes)} words a pixel), then its 2x2 pool as a MAXPOOL (a "
                    f"GEMM has no pool)")
        if im2col.first_conv(qg, cfg) is op:
            k = im2col.patch_channels(op)
            words = -(-k // cfg.lanes)
            how = ("GEMM of its pixels" if wide_pointwise(cfg, im2col.as_pointwise(op), k,
                                                          shapes[op.name][2]) else "1x1 CONV")
            return (f"{how} over im2col patches the host writes (K={k}: {words} "
                    f"word{'s' if words > 1 else ''} a pixel)" + (" + 2x2 pool" if op.pool else ""))
        if op.depthwise:
            return ("depthwise CONV (its channel groups in turn, up to dw_groups a job)"
                    + (" + 2x2 pool" if op.pool else ""))
        if wide_pointwise(cfg, op, shapes[op.inputs[0]][0], shapes[op.inputs[0]][-1]):
            parts = gemm_parts(cfg, -(-shapes[op.inputs[0]][0] // cfg.lanes), op.w.shape[0])
            if parts > 1:
                return (f"GEMM of its pixels in {parts} parts of its outputs, a pixel at a time "
                        f"(a 1x1 conv beyond the conv engine; its weights exceed the weight "
                        f"scratchpad)")
            return ("GEMM of its pixels per sample (a 1x1 conv beyond the conv engine's channels "
                    "or rows)")
        return "CONV" + (" + 2x2 pool" if op.pool else "")
    if isinstance(op, ir.QLinear):
        from .lower_attention import projection_groups

        group = projection_groups(qg, cfg.lanes).get(op.name)
        if group is not None:   # run as one GEMM (a contiguous input: the lowering checks)
            names = ", ".join(m.name.rsplit(".", 1)[-1] for m in group)
            return (f"GEMM of {names} side by side (whole batch)" if op is group[0]
                    else f"(its columns of {group[0].name}'s GEMM)")
        prev = qg.op(op.inputs[0])
        flat = isinstance(prev, ir.QFlatten)
        if flat and linear_as_conv(cfg, shapes[prev.inputs[0]], op.w.shape[0]):
            return "CONV (kernel covers the map)"
        c, h, w = shapes[prev.inputs[0]] if flat else (shapes[op.inputs[0]][-1], 1, 1)
        parts = gemm_parts(cfg, h * w * -(-c // cfg.lanes), op.w.shape[0])
        return (f"GEMM in {parts} parts of its outputs, a row at a time (its weights exceed the "
                f"weight scratchpad)" if parts > 1 else "GEMM (whole batch)")
    if isinstance(op, ir.QMul):
        return "MUL (after 2 ADDs copying the gate)" if op.gate else "MUL"
    return _RUNS[type(op).__name__]


def _scales(op) -> tuple[str, str]:
    if isinstance(op, ir.QMatMul):
        return f"{op.s_a:.3g}x{op.s_b:.3g}", f"{op.s_out:.4g}"
    if isinstance(op, (ir.QSoftmax, ir.QLayerNorm, ir.QGelu)):
        return f"{op.s_in:.4g}", f"{op.s_out:.4g}"
    if isinstance(op, ir.QAddConstant):
        return f"{op.s_a:.3g}+{op.s_b:.3g}", f"{op.s_out:.4g}"
    if isinstance(op, (ir.QSlice, ir.QConcat, ir.QTokenMean, ir.QToken)):
        return f"{op.s:.4g}", f"{op.s:.4g}"
    if isinstance(op, (ir.QConv, ir.QLinear)):
        return f"{op.s_in:.4g}", f"{op.s_out:.4g}"
    if isinstance(op, ir.QLstm):
        return f"{op.s_in:.4g}", f"{2.0 ** -7:.4g}"
    if isinstance(op, ir.QEmbedding):
        return "", f"{op.scale:.4g}"
    if isinstance(op, ir.QAdd):
        return f"{op.s_a:.3g}+{op.s_b:.3g}", f"{op.s_out:.4g}"
    if isinstance(op, ir.QMul):
        return f"{op.s_a:.3g}x{op.s_b:.3g}", f"{op.s_out:.4g}"
    if isinstance(op, ir.QAvgPool):
        return f"{op.s:.4g}", f"{op.s:.4g}"
    return "", ""


def describe(qg: ir.QGraph, cfg: AccelConfig) -> str:
    """A table of the quantized ops: shapes, scales, MACs per sample and what runs each."""
    shapes = qg.shapes()
    head = (f"{'layer':12s} {'op':10s} {'in':>14s} {'out':>14s} {'s_in':>10s} {'s_out':>10s} "
            f"{'MACs':>10s}  runs as")
    lines = [f"{cfg.slug}: input scale "
             f"{'token ids' if qg.input_scale is None else f'{qg.input_scale:.4g}'}, "
             f"output scale {qg.output_scale:.4g}", head, "-" * len(head)]
    prev = ir.INPUT
    fmt = lambda s: "x".join(map(str, s))  # noqa: E731
    for op in qg.ops:
        s_in, s_out = shapes[op.inputs[0]], shapes[op.name]
        sc_in, sc_out = _scales(op)
        runs = _runs(op, qg, cfg, shapes)
        if op.inputs != (prev,):
            runs += f" (reads {', '.join(op.inputs)})"
        kind = getattr(op, "fn", "gelu").capitalize() if isinstance(op, ir.QGelu) else \
            type(op).__name__[1:]   # a table's function (Silu, Tanh, ...)
        lines.append(f"{op.name:12s} {kind:10s} {fmt(s_in):>14s} "
                     f"{fmt(s_out):>14s} {sc_in:>10s} {sc_out:>10s} "
                     f"{ir.macs(op, s_in):>10,d}  {runs}")
        prev = op.name
    if qg.output != prev:
        lines.append(f"output: {qg.output}")
    return "\n".join(lines + _groups(qg, cfg))


def _groups(qg: ir.QGraph, cfg: AccelConfig) -> list[str]:
    """Lines naming the banded chains and the weight groups, when the maps do not all fit
    whole or the weights one program."""
    try:
        low = dry_lowered(qg, cfg)
    except (LoweringError, DoesNotFit) as exc:
        return [f"does not run on {cfg.slug}: {exc}"]
    programs, out = low.programs, []
    if low.chains:
        out += [f"runs {len(low.chains)} chain{'s' if len(low.chains) > 1 else ''} of convs in "
                f"bands of rows: their maps do not all fit the activation scratchpad of "
                f"{cfg.slug} ({cfg.act_depth} words) whole"]
        out += [f"  {ch.describe(cfg.lanes)}" for ch in low.chains]
    if len(programs) == 1:
        return out
    why = [what for what, over in (
        (f"its weight scratchpad ({cfg.wgt_depth} words) does not hold every layer's weights",
         sum(p.wgt_top for p in programs) > cfg.wgt_depth),
        (f"its program memory ({cfg.prog_depth} commands) does not hold a sample's commands",
         sum(len(p.commands) - 1 for p in programs) + 1 > cfg.prog_depth)) if over]
    out += [f"runs as {len(programs)} programs: on {cfg.slug} {' and '.join(why)}, so the "
            f"host writes the next program's weights and commands between programs (one word "
            f"per host-port cycle, counted in the cycles)"]
    out += [f"  program {k + 1}: {', '.join(p.layers)} ({p.wgt_top} weight words, "
            f"{len(p.commands)} commands)" for k, p in enumerate(programs)]
    return out
