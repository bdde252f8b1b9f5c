"""What the lowering's passes share (:mod:`.lower`, :mod:`.lower_emit`, :mod:`.lower_attention`,
:mod:`.im2col`): its errors, :class:`Value` (where a value of the graph lives) and the rule
that runs a Linear over a flattened map as one CONV, and the rules that run a wide 1x1 conv and
a Linear beyond the weight scratchpad as GEMMs. Imports nothing of the lowering, so any of them
may import it; :mod:`.lower` re-exports every name."""

from __future__ import annotations

from dataclasses import dataclass

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ActTensor
from ..generators.conv.layer import ConvLayer, check_layer
from . import ir
from .errors import UnsupportedOp

__all__ = ["AttentionNotLowered", "LoweringError", "Value", "linear_as_conv", "wide_pointwise",
           "gemm_parts", "depth_to_space_convs"]


class LoweringError(ValueError):
    """A layer is beyond what the preset's engines run; names the layer and what they do run."""


class AttentionNotLowered(LoweringError, UnsupportedOp):
    """An attention op (:mod:`.ir_attention_q`) on a configuration without attention units
    (``AccelConfig.attention``): the integer twin runs it; :mod:`.lower_attention` lowers it
    where the units are."""

    def __init__(self, op, cfg: AccelConfig):
        fn = getattr(op, "fn", "gelu")   # a pointwise function runs as the GELU unit's table
        self.op = (f"{fn} (a table on the attention units' GELU unit)" if fn != "gelu" else
                   f"{type(op).__name__[1:]} (attention)")
        self.where = f"layer {op.name!r}"
        ValueError.__init__(self, f"layer {op.name!r} is {self.op}: no accelerator command for "
                            f"it on {cfg.slug} (no attention units: AccelConfig.attention; "
                            f"presets with them: "
                            f"{', '.join(n for n in _attention_presets())}); the integer "
                            f"twin (torch-int8) runs it")


def _attention_presets() -> list[str]:
    from ..generators.accel.config import MODEL_PRESETS

    return [n for n, c in MODEL_PRESETS.items() if c.attention is not None]


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


def linear_as_conv(cfg: AccelConfig, shape: tuple[int, int, int], outputs: int) -> bool:
    """Whether a Linear over a flattened map of ``shape`` (channels, height, width) into
    ``outputs`` runs as one CONV whose kernel covers the map: square, more than one pixel, and
    one engine layer (its kernel, channels and weight memory: blocks x chunks); else it runs as
    a GEMM."""
    channels, height, width = shape
    if not (height == width and 1 < height <= cfg.conv.max_kernel):
        return False
    try:
        check_layer(cfg.conv, ConvLayer(height, width, channels, outputs, height, relu=False))
    except ValueError:
        return False
    return True


def wide_pointwise(cfg: AccelConfig, op, cin: int, width: int) -> bool:
    """Whether conv ``op`` (over a map of ``cin`` channels, ``width`` pixels a row) runs as a
    GEMM of its pixels: a 1x1 conv (stride 1, no padding, no fused pool, not grouped) with more
    input or output channels than the conv engine takes (``max_cin``, ``max_cout``) or rows
    wider than its line buffer (``max_width``)."""
    conv = cfg.conv
    return op.pointwise and not op.pool and (cin > conv.max_cin or op.w.shape[0] > conv.max_cout
                                             or width > conv.max_width)


def gemm_parts(cfg: AccelConfig, kw: int, n: int) -> int:
    """The parts of its output blocks a GEMM of ``kw`` K words into ``n`` channels runs in:
    1 when its weights (``(kw + 1) x nb`` words, :mod:`hwaccel.generators.accel.isa`) fit the
    weight scratchpad, else as few as fit; 0 when a single block's do not."""
    # Blocks in whole words (the driver pads N to words when a block is less than a word,
    # and a part is whole words too).
    k = cfg.word_beats
    nb, most = -(-n // cfg.lanes) * k, cfg.wgt_depth // (kw + 1) // k * k
    if (kw + 1) * nb <= cfg.wgt_depth:
        return 1
    return -(-nb // most) if most else 0


def depth_to_space_convs(qg) -> dict:
    """Each :class:`~.ir_quant.QDepthToSpace` of ``qg`` by the name of the conv it reads. The
    accelerator has no command that moves words: the conv writes its outputs where the
    depth-to-space puts them (:meth:`~.lower_emit._Emitter.depth_to_space`), so that conv must
    be a dense 1 x 1 (stride 1, no padding, no fused pool) that nothing else reads; anything
    else raises :class:`LoweringError` naming the layer."""
    readers, ops, out = qg.readers(), {op.name: op for op in qg.ops}, {}
    for op in qg.ops:
        if not isinstance(op, ir.QDepthToSpace):
            continue
        src = ops.get(op.inputs[0])
        if not (isinstance(src, ir.QConv) and src.pointwise and not src.pool
                and [r.name for r in readers[src.name]] == [op.name]
                and src.name != qg.output):
            what = f"layer {src.name!r}" if src is not None else "the model's input"
            raise LoweringError(
                f"layer {op.name!r} (a depth-to-space by {op.factor}: pixel_shuffle) reads "
                f"{what}: the accelerator runs one only as the 1 x 1 conv before it, writing its "
                f"outputs in place, when nothing else reads that conv (hwaccel.compile gives "
                f"each one such a conv: trace_upsample.with_writers)")
        out[src.name] = op
    return out
