"""``compile``: a PyTorch model to a :class:`CompiledModel` for one accelerator preset.

The pipeline is trace (:mod:`.trace`, the float IR) -> post-training quantization
(:mod:`.quantize`, the integer IR) -> lowering (:mod:`.lower`, accelerator programs). A
:class:`CompiledModel` holds every stage's result; the runtime
(:func:`hwaccel.runtime.compile`, which ``hwaccel.compile`` is) wraps it so it runs on any
backend by name (:mod:`hwaccel.runtime.backends`)::

    cm = hwaccel.compile(model, example, preset="default", calibration=x_train[:256])
    logits = cm.run("golden", x_test)           # float [batch, classes]
    low = cm.lower(cm.quantize_input(x_test[:8]))
    act = run_program(cm.config, low.builder.act, low.builder.wgt, low.builder.commands).act
    low.logits(act)                              # the same logits, read from the scratchpad
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..generators.accel.config import MODEL_PRESETS, PRESETS, AccelConfig
from . import ir

__all__ = ["CompiledModel", "compile"]


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A model compiled for one accelerator configuration.

    Attributes
    ----------
    module : torch.nn.Module
        The float model it was compiled from (the float backends run it).
    graph : ir.Graph
        The float IR.
    qgraph : ir.QGraph
        The integer IR: it determines every integer the accelerator computes.
    config : AccelConfig
        The accelerator preset the programs are for.
    """

    module: object
    graph: ir.Graph
    qgraph: ir.QGraph
    config: AccelConfig

    # --- inputs and programs -------------------------------------------------------------------
    def quantize_input(self, x) -> np.ndarray:
        """Float inputs (torch or numpy, batch first) to int8 values (int64 array), or token ids
        checked against the embedding's vocabulary."""
        from .quantize import quantize_input

        return quantize_input(self.qgraph, x)

    def lower(self, x_int: np.ndarray):
        """One accelerator program for the batch ``x_int`` (see :class:`.lower.Lowered`);
        raises :class:`.memory.DoesNotFit` if the batch is larger than :attr:`max_batch`, and
        :attr:`refusal` if the preset cannot run the model."""
        from .lower import lower

        if self.refusal is not None:
            raise self.refusal

        return lower(self.qgraph, self.config, x_int)

    def lower_batches(self, x_int: np.ndarray):
        """``(slice, Lowered)`` for consecutive batches of at most :attr:`max_batch` samples."""
        size = self.max_batch
        for i in range(0, len(x_int), size):
            part = slice(i, min(i + size, len(x_int)))
            yield part, self.lower(x_int[part])

    @property
    def max_batch(self) -> int:
        """The largest batch one program holds on this preset (memories and program memory)."""
        if self.refusal is not None:
            raise self.refusal
        cached = self.__dict__.get("_max_batch")
        if cached is None:
            from .lower import max_batch

            cached = max_batch(self.qgraph, self.config)
            object.__setattr__(self, "_max_batch", cached)
        return cached

    @property
    def refusal(self) -> Exception | None:
        """Why the preset cannot run the model (a :class:`.lower.LoweringError` or
        :class:`.memory.DoesNotFit` at batch 1), when it was compiled with ``strict=False``;
        ``None`` when it runs."""
        return self.__dict__.get("_refusal")

    # --- the integer IR's own arithmetic ---------------------------------------------------------
    def saturation(self, x) -> list:
        """How many int8 values saturate on the inputs ``x``, at the input's quantization and
        at every requantizer (:func:`.saturation.saturation`, exact: the integer twin)."""
        from .saturation import saturation

        return saturation(self.qgraph, x)

    def int8_forward(self, x_int: np.ndarray, device: str = "cpu") -> np.ndarray:
        """The integer IR's outputs (int64, int8 values) computed in torch on ``device``."""
        from .int8 import forward

        return forward(self.qgraph, x_int, device)

    def postprocess(self, logits: np.ndarray) -> np.ndarray:
        """The model's host head on ``logits`` (softmax, log-softmax, argmax or nothing)."""
        from .quantize import apply_head

        return apply_head(self.graph.head, logits)

    # --- facts ---------------------------------------------------------------------------------
    @property
    def macs_per_sample(self) -> int:
        shapes = self.graph.shapes()
        return sum(ir.macs(op, shapes[op.inputs[0]]) for op in self.graph.ops)

    def describe(self) -> str:
        """A table of the quantized layers: shapes, scales, MACs and the engine that runs each."""
        from .describe import describe

        return describe(self.qgraph, self.config)


def _preset(preset) -> AccelConfig:
    if isinstance(preset, AccelConfig):
        return preset
    known = PRESETS | MODEL_PRESETS   # MODEL_PRESETS: the configurations with attention units
    if preset not in known:
        raise ValueError(f"preset must be one of {', '.join(known)} or an AccelConfig, "
                         f"not {preset!r}")
    return known[preset]


def compile(model, example, *, preset: str | AccelConfig = "default",  # noqa: A001
            calibration=None, strict: bool = True,
            cls: type = CompiledModel) -> CompiledModel:
    """Trace, quantize and check ``model`` for ``preset``.

    Parameters
    ----------
    model : torch.nn.Module
        Built from the supported ops (:data:`hwaccel.compiler.errors.SUPPORTED`); it is traced in
        eval mode (its training flag is restored afterwards).
    example : torch.Tensor
        A batch of inputs (images, or int64 token ids); it fixes the per-sample shape.
    preset : str or AccelConfig
        The accelerator (:data:`hwaccel.generators.accel.config.PRESETS`).
    calibration : torch.Tensor, optional
        Inputs whose activations set the per-tensor scales; ``example`` when not given.
    strict : bool
        When False, a model the preset cannot run still compiles: its integer IR, integer twin
        and saturation counts work, and :meth:`CompiledModel.lower` and ``max_batch`` raise
        what lowering raised (:attr:`CompiledModel.refusal`).
    cls : type
        The :class:`CompiledModel` subclass to return (the runtime's runs on backends).

    Raises
    ------
    UnsupportedOp
        An op or attribute the compiler does not handle (named, with where it is).
    DoesNotFit
        The model cannot run on the preset even at batch 1 (names the tensor or layer).
    LoweringError
        A layer the preset's engines do not run (names the layer and what they run).
        An attention op (a transformer) raises :class:`.lower.AttentionNotLowered`, both a
        LoweringError and an UnsupportedOp, on a preset without attention units (all of
        :data:`PRESETS`; ``default_attention`` of ``MODEL_PRESETS`` has them), while with
        ``strict=False`` its integer IR and integer twin work.
    NonFiniteError
        A NaN or an infinity in the calibration data, a weight, bias or batch-norm statistic,
        or a layer's float activations on the calibration data (names the tensor, the layer,
        how many values and where the first one is).
    """
    from .lower import LoweringError, max_batch
    from .memory import DoesNotFit
    from .quantize import quantize
    from .split_convs import split_outputs
    from .split_kernels import split_kernels
    from .split_pools import split_averages, split_line_means, split_wide_means
    from .split_products import tables_as_products
    from .trace import trace
    from .trace_upsample import with_writers

    cfg = _preset(preset)
    # averages over more values than the preset's AVGPOOL takes: two pools, a long line's
    # global average halvings first, a wide map's a pool of bands first (:mod:`.split_pools`);
    # kernels larger than its engine's: a stack of shifted copies and a small conv
    # (:mod:`.split_kernels`); convs wider than its engine: groups of outputs
    # (:mod:`.split_convs`), and a 1 x 1 conv to write each depth-to-space the groups' adds
    # would (:mod:`.trace_upsample`)
    graph = split_averages(trace(model, example), cfg.avg_max_window)
    graph = split_wide_means(split_line_means(graph, cfg), cfg)
    graph = split_kernels(graph, cfg)
    graph = with_writers(split_outputs(graph, cfg))
    graph = tables_as_products(graph, cfg)   # hardswish as a MUL where no tables run
    if calibration is None:
        qgraph = quantize(graph, example, "calibration data (the example: no calibration given)")
    else:
        qgraph = quantize(graph, calibration)
    cm = cls(model, graph, qgraph, cfg)
    try:
        object.__setattr__(cm, "_max_batch", max_batch(qgraph, cfg))  # fails if batch 1 cannot
    except (LoweringError, DoesNotFit) as exc:
        if strict:
            raise
        object.__setattr__(cm, "_refusal", exc)
    return cm
