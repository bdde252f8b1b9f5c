"""The model's first convolution as a 1x1 conv over patches the host writes (im2col).

The host writes a model's input into the activation scratchpad anyway, so it may as well write
it in the layout the first layer reads best. A conv whose input has few channels (MobileNet's
96 x 96 x 3, ResNet-8's 32 x 32 x 3) wastes most of the engine's lanes: a line-buffer word
carries one pixel's 3 channels of 16, so the engine spends a cycle per input pixel (or per
kernel row) on a sliver of its MACs. Written as patches instead -- output pixel ``(oy, ox)``'s
``KH x KW x Cin`` window, flattened in ``(ky, kx, c)`` order, ``ceil(KH*KW*Cin / lanes)``
words -- the layer is a 1x1 conv (a GEMM of ``OH*OW`` rows by ``K = KH*KW*Cin`` by ``Cout``)
over a ``K x OH x OW`` map: MobileNet's 27 values take 2 words, so 2 cycles per output pixel
where the line buffer took 4 per stride-2 window, and the host writes 4,608 input words
instead of 9,216. It runs as one CONV per sample (one engine job, its 2x2 pool fused as any
conv's), not as a GEMM command, whose M tiles of ``max_width`` rows pay a job's overhead each.

Exact by construction: the patches only move int8 values (no arithmetic on the host), a padded
tap is written as the input's zero point, which is 0 for the symmetric int8 of
:mod:`hwaccel.numerics`, and the 1x1 conv's integer sum over ``K`` is the convolution's (same
products, same bias, same requantizer). Its output is the conv's channels-last map, the layout
the next layer reads.

:func:`first_conv` decides: only the op that reads the model's input, only when nothing else
reads it, only a dense conv, and only when the cycle model
(:func:`hwaccel.generators.accel.perf.program_perf` of the layer's commands both ways) says the
patches are faster, or when the engine cannot run the conv over its input at all (a kernel
past ``max_kernel``: DS-CNN's 10 x 4 stem on ``ecp5``, whose line buffer takes kernels up to
3 x 3), since a 1x1 conv needs no window. Lowering falls back to the plain input when the
patches do not fit the activation scratchpad at the batch asked for
(:func:`hwaccel.compiler.lower.lower`), unless only the patches run the conv
(:func:`patches_only`): then the batch does not fit. Patches of more channels than the engine
takes run as a GEMM, which has no pool: where only the patches run the conv, its fused 2 x 2
pool then runs as a MAXPOOL of its own (:func:`unfused_pool`).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import replace

import numpy as np

from ..generators.accel.config import AccelConfig
from . import ir

__all__ = ["first_conv", "patches_only", "patches", "patch_weights", "patch_channels",
           "layer_cycles", "as_pointwise", "emit", "unfused_pool"]

_DECIDED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_UNFUSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def patch_channels(op) -> int:
    """``K = KH * KW * Cin``: the values of one output pixel's window."""
    cout, cin, kh, kw = op.w.shape
    return cin * kh * kw


def patches(op, x: np.ndarray) -> np.ndarray:
    """``K x OH x OW``: every output pixel's window of the ``C x H x W`` int8 input ``x``,
    flattened ``(ky, kx, c)``; padded taps are 0 (the symmetric int8 zero point)."""
    x = np.asarray(x, dtype=np.int64)
    c, h, w = x.shape
    (kh, kw), (sh, sw), (top, left, bottom, right) = op.kernel, op.strides, op.pads
    oh, ow = op.out_size(h, w)
    xp = np.zeros((c, h + top + bottom, w + left + right), dtype=np.int64)
    xp[:, top:top + h, left:left + w] = x
    out = np.empty((kh, kw, c, oh, ow), dtype=np.int64)
    for ky in range(kh):
        for kx in range(kw):
            out[ky, kx] = xp[:, ky:ky + (oh - 1) * sh + 1:sh, kx:kx + (ow - 1) * sw + 1:sw]
    return out.reshape(kh * kw * c, oh, ow)


def patch_weights(op) -> np.ndarray:
    """``K x Cout``: the conv's weights in the patches' ``(ky, kx, c)`` order."""
    w = np.asarray(op.w, dtype=np.int64)
    return w.transpose(2, 3, 1, 0).reshape(patch_channels(op), w.shape[0])


def layer_cycles(cfg: AccelConfig, op, shape: tuple, as_patches: bool) -> int | None:
    """The cycle model's cycles of ``op`` alone on one sample of ``shape`` (``C x H x W``),
    run as lowering would (CONV or bands, over the input or its patches), its DONE included;
    ``None`` when the preset cannot run it that way."""
    from ..generators.accel.perf import program_perf
    from .lower import LoweringError, Value, _Emitter

    c, h, w = shape
    oh, ow = op.out_size(h, w)
    groups = lambda n: math.ceil(n / cfg.lanes)  # noqa: E731
    k, n = patch_channels(op), op.w.shape[0]
    if as_patches:
        x = Value("input", "patches", k, oh, ow, oh * ow * groups(k))
    else:
        x = Value("input", "image", c, h, w, h * w * groups(c))
    vals = {ir.INPUT: x, op.name: Value("out", "image", n, oh, ow, oh * ow * groups(n))}
    em = _Emitter(cfg, vals, {"input": 0, "out": x.stride}, 1, False)
    em.b.act_top = x.stride
    try:
        em.op(op)
    except (LoweringError, ValueError):
        return None
    return sum(program_perf(cfg, p.commands).cycles for p in em.b.finish())


def first_conv(qg: ir.QGraph, cfg: AccelConfig):
    """The op to run as a 1x1 conv over host-written patches, or ``None`` (see the module
    docstring for when)."""
    return _decided(qg, cfg)[0]


def patches_only(qg: ir.QGraph, cfg: AccelConfig) -> bool:
    """The first conv runs over its patches and could not over its input (a kernel past the
    engine's ``max_kernel``, DS-CNN's 10 x 4 on ``ecp5``): a batch whose patches do not fit
    does not fit at all."""
    return _decided(qg, cfg)[1]


def _decided(qg: ir.QGraph, cfg: AccelConfig) -> tuple:
    per = _DECIDED.setdefault(qg, {})
    if cfg not in per:
        per[cfg] = _decide(qg, cfg)
    return per[cfg]


def _decide(qg: ir.QGraph, cfg: AccelConfig) -> tuple:
    if qg.tokens or len(qg.input_shape) != 3 or not qg.ops:
        return None, False
    op = qg.ops[0]
    if (not isinstance(op, ir.QConv) or op.depthwise or op.inputs != (ir.INPUT,)
            or qg.output == ir.INPUT or any(ir.INPUT in o.inputs for o in qg.ops[1:])
            or any(isinstance(o, ir.QDepthToSpace) and o.inputs == (op.name,) for o in qg.ops)):
        return None, False
    shape = tuple(qg.input_shape)
    cols = layer_cycles(cfg, op, shape, True)
    if cols is None:
        return None, False
    plain = layer_cycles(cfg, op, shape, False)
    if plain is None:   # a 1x1 conv over the patches needs no window
        return op, True
    return (op if cols < plain else None), False


def unfused_pool(qg: ir.QGraph, cfg: AccelConfig) -> ir.QGraph:
    """``qg`` with its first conv's fused 2 x 2 pool as a MAXPOOL of its own (the conv keeping
    its name, so its MACs and cycles are reported under it, and the pool ``<name>.pool``, which
    its readers read) where only that runs the conv at all: its kernel is past the engine's
    ``max_kernel`` and its patches are more channels than the engine takes (a 5 x 5 stem's 75
    on the ECP5 presets), so they run as a GEMM, which has no pool. The same integers: the
    pool is the max of the requantized values either way. ``qg`` itself otherwise."""
    per = _UNFUSED.setdefault(qg, {})   # lowered again at every batch max_batch tries
    if cfg not in per:   # (None: qg itself, which the cache must not hold)
        per[cfg] = _unfused(qg, cfg)
    return per[cfg] or qg


def _unfused(qg: ir.QGraph, cfg: AccelConfig) -> ir.QGraph | None:
    if qg.tokens or len(qg.input_shape) != 3 or not qg.ops:
        return None
    op, shape = qg.ops[0], tuple(qg.input_shape)
    if (not isinstance(op, ir.QConv) or not op.pool or _decided(qg, cfg)[0] is not None
            or layer_cycles(cfg, op, shape, False) is not None):
        return None
    conv, pool = replace(op, pool=False), ir.QMaxPool(f"{op.name}.pool", inputs=(op.name,))
    reader = lambda o: replace(o, inputs=tuple(pool.name if v == op.name else v  # noqa: E731
                                               for v in o.inputs))
    split = replace(qg, ops=(conv, pool, *map(reader, qg.ops[1:])),
                    output=pool.name if qg.output == op.name else qg.output)
    return split if _decided(split, cfg) == (conv, True) else None


def as_pointwise(op):
    """``op`` as the 1x1 conv it is over its patches: weights ``Cout x K x 1 x 1`` in the
    patches' order, stride 1, no padding; bias, requantizer, ReLU and pool unchanged."""
    w = patch_weights(op).T[:, :, None, None]
    return replace(op, w=w, stride=1, padding=0)


def emit(em, op, xs) -> None:
    """Lowering's ``_Emitter`` ``em`` runs ``op`` on its patches ``xs``: a 1x1 CONV per
    sample over the ``K x OH x OW`` patch map (one engine job, the pool fused as for any
    conv; a map taller than the line buffer runs in bands as any conv does), or, with more
    ``K`` than the engine's ``max_cin`` (a patchify stem's 4 x 4 x 3 = 48 on ``tiny``) or
    rows wider than its line buffer and no pool, the GEMM of its pixels any such 1x1 conv
    runs as (:func:`~.lower_types.wide_pointwise`)."""
    from .lower_types import wide_pointwise

    pw = as_pointwise(op)
    if wide_pointwise(em.cfg, pw, xs[0].channels, xs[0].width):
        return em.pointwise_gemm(pw, xs)
    em.conv(pw, xs, pw.w, stride=1, padding=0, pool=op.pool)
