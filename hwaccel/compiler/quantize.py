"""Post-training quantization: the float IR -> the integer IR (:class:`hwaccel.compiler.ir.QGraph`).

* Activations: one symmetric int8 scale per tensor, ``c / 127``, where the clip ``c`` is the
  one that minimizes the tensor's quantization error (rounding inside ``[-c, c]`` plus clipping
  beyond it, squared, summed) over the calibration data (:func:`.calibrate.mse_clip`, the MSE
  calibration of TensorRT and OpenVINO). ``max|x|`` (no calibration value saturates) spends most
  codes on a tail few values reach. Two tensors keep ``c = max|x|``: the graph's output
  (clipped logits could tie the top classes; an anomaly score would lose its largest errors)
  and every tensor with fewer than :data:`.calibrate.MIN_VALUES` non-zero calibration values
  (too few to estimate a tail). The choice uses the calibration data only and changes only
  scales (so multipliers and biases): the integer arithmetic is the same for every choice.
  A ReLU output uses only the upper half
  of the codes; that is the price of zero point 0, which the hardware has. A tensor that is all
  zero on the calibration data (the input, or a layer whose ReLU or zero weights silence it)
  has no range to measure: it gets :data:`ZERO_RANGE_SCALE` = 1/127, the scale of the range
  [-1, 1] (1.0 maps to 127), so later inputs up to 1.0 in magnitude are represented and larger
  ones saturate.
* Before calibrating, the channels of a conv's output that only a depthwise conv reads are
  equalized (:mod:`.equalize`: channel ``c`` scaled by ``r[c]`` in the producer, by
  ``1 / r[c]`` in the depthwise kernel, so that every channel spans the tensor's range; the
  float model computes the same, both layers' int8 weights are the same integers). One scale
  per tensor otherwise leaves a narrow channel few codes and much relative noise, which the
  depthwise kernel amplifies. On MobileNetV1 (5-epoch recipe, 360 held-out samples) int8
  top-1 agrees with float on 0.958 of the samples at ``max|x|``, 0.967 with MSE clips alone,
  0.981 with both.
* Bad numbers are refused before anything is computed (:class:`.errors.NonFiniteError`): NaN
  or infinite calibration data, weights, biases, batch-norm statistics (:mod:`.trace`), a
  layer's float activations on the calibration data (an overflow inside the float model,
  named by layer) and inputs (:func:`quantize_input`). Inputs beyond the calibrated range
  saturate to -128 or 127 (never wrap); :mod:`.saturation` counts how many do, per layer.
* Weights: symmetric int8 per output channel, ``max|w[c]| / 127`` (an all-zero channel gets
  scale 1: any scale is exact for it).
* Bias: int32 at ``s_in * s_w[c]`` (round half even), at most :data:`BIAS_MAX` in magnitude. A
  bias beyond it (a channel whose inputs calibrate near zero, as an untrained deep network's
  last layers' do: their activations shrink layer by layer) coarsens its channel's weight scale
  to ``|b[c]| / (s_in * BIAS_MAX)`` until it fits. Its products then sum to at most ``K * 127 *
  128 / 2**30`` of the bias (under one int8 step of an output the bias dominates), and the
  accumulator keeps ``2**30`` for them.
* Requantizers: :func:`hwaccel.numerics.requant_params` of ``s_in * s_w[c] / s_out``.
* A MaxPool2d right after a Conv2d is fused into it (the engine pools after requantizing; max
  commutes with the monotonic requantizer, so only rounding differs from the float order).
* Residual adds: the output scale is calibrated like every other tensor's; each input keeps
  its own scale and gets its own multiplier (:func:`hwaccel.numerics.add_params` of
  ``s_a / s_out`` and ``s_b / s_out``).
* Products (:class:`~.ir_float.Mul`): the MUL's requantizer is a shift, so the output's scale is
  ``s_a * s_b * 2**S``, the least power-of-two multiple of the operands' at or above the
  calibrated one (:func:`hwaccel.numerics.mul_shift`): at most twice as coarse.
* A pick keeps its input's scale: a conv whose weights are 0 and 1, at most one 1 an output
  channel, with no bias (the tracer's pixel and channel picks, a nearest upsampling's copy,
  a depth-to-space's writer; :func:`is_pick`) outputs some of its input's values and zeros, so
  at that scale its requantizer returns each int8 value unchanged: no rounding more.
* The ops of an overlapping max pool (:mod:`.fold_pools`: shifted copies, negations, the
  maxes' ADDs; ``exact``) keep their input's scale, so each returns its int8 values unchanged
  (or negated, or summed within int8): the pool's int8 result is the int8 max, exactly.
* Average pools keep their input's scale (an average of int8 values is an int8 value,
  :func:`hwaccel.numerics.average`); depthwise convolutions get per-channel weight scales as
  every conv does (one output channel per input channel).
* LSTM layers: :func:`hwaccel.generators.lstm.model.quantize_lstm` at the input's scale; h is
  int8 at 2**-7 by construction, which is the next layer's input scale.
* Embedding: the table as int8 at one scale (``max|table| / 127``): the gathered rows are the
  first LSTM's x, which has one scale, and no token's row saturates.
* Attention ops (scores, probabilities, LayerNorm, GELU, heads, positional embeddings):
  :mod:`.quantize_attention`.
"""

from __future__ import annotations

import numpy as np

from ..generators.lstm.model import H_SCALE, quantize_lstm
from ..numerics import INT8, add_params, mul_shift, requant_params
from ..numerics import quantize as quantize_values
from . import ir
from .calibrate import mse_clips
from .equalize import depthwise_pairs, equalize
from .errors import check_finite
from .quantize_attention import quantize_op as quantize_attention_op
from .reference import ranges

__all__ = ["quantize", "quantize_input", "apply_head", "weight_scales", "is_pick",
           "ZERO_RANGE_SCALE", "BIAS_MAX"]

#: The scale of an activation tensor that is all zero on the calibration data: that of the
#: range [-1, 1] (1.0 maps to 127). Any scale represents zero exactly; this one is stated so
#: the result is predictable, and it keeps values of the order of one usable.
ZERO_RANGE_SCALE = 1.0 / INT8.max

#: The largest int32 bias magnitude, half of int32's range: the other half is the products'.
BIAS_MAX = 1 << 30


def _scale(amax: float) -> float:
    """A per-tensor int8 scale for values up to ``amax`` (:data:`ZERO_RANGE_SCALE` for an
    all-zero tensor)."""
    return amax / INT8.max if amax > 0 else ZERO_RANGE_SCALE


def _check_weights(op) -> None:
    """The float IR's tensors must be finite (the tracer checks the module's; this covers an IR
    built by other means)."""
    arrays = [("weight", getattr(op, "weight", None)), ("bias", getattr(op, "bias", None))]
    for k, lw in enumerate(getattr(op, "layers", ())):
        arrays += [(f"{n}_l{k}", getattr(lw, n)) for n in ("w_ih", "w_hh", "b_ih", "b_hh")]
    for name, a in arrays:
        if a is not None:
            check_finite(a, f"{op.name}.{name}", f"{op.name!r} ({type(op).__name__})")


def is_pick(op) -> bool:
    """Whether conv ``op`` only picks its input's values: weights of 0 and 1, at most one 1 an
    output channel, no bias, not grouped and no ReLU cap (a ReLU keeps a subset of them)."""
    w = getattr(op, "weight", None)
    return (isinstance(op, ir.Conv2d) and op.groups == 1 and op.cap is None
            and not np.any(op.bias) and np.isin(w, (0.0, 1.0)).all()
            and bool((w.reshape(len(w), -1).sum(axis=1) <= 1).all()))


def weight_scales(w: np.ndarray) -> np.ndarray:
    """Per-output-channel (first axis) symmetric int8 scales."""
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    return np.where(amax > 0, amax / INT8.max, 1.0)


def _affine(w: np.ndarray, b: np.ndarray, s_in: float, s_out: float) -> tuple:
    """Integer weights, bias and per-channel requantizers of a conv or linear layer; a channel
    whose bias exceeds :data:`BIAS_MAX` steps at ``s_in * s_w`` gets a coarser weight scale."""
    s_w = weight_scales(w)
    if b.size:
        s_w = np.maximum(s_w, np.abs(b) / (s_in * BIAS_MAX))
    q = np.rint(w / s_w.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.int64)
    bias = np.rint(b / (s_in * s_w))
    rq = [requant_params(s_in * s / s_out) for s in s_w]
    return (q, bias.astype(np.int64), np.array([r.multiplier for r in rq], dtype=np.int64),
            np.array([r.shift for r in rq], dtype=np.int64))


def _clips(graph: ir.Graph, calibration, x_max: float, amax: dict) -> dict[str, float]:
    """The calibrated range of the input and of every requantized value: the MSE-optimal clip
    (:func:`.calibrate.mse_clips`), except the graph's output, which keeps ``max|x|``."""
    ranged = {ir.INPUT: x_max, **amax}
    names = [op.name for op in graph.ops if isinstance(op, (ir.Conv2d, ir.Linear, ir.Add, ir.Mul))
             and op.name != graph.output and not getattr(op, "exact", False)]
    if not graph.tokens:
        names.append(ir.INPUT)
    return ranged | mse_clips(graph, calibration, ranged, names)


def quantize(graph: ir.Graph, calibration, what: str = "calibration data") -> ir.QGraph:
    """The integer IR of ``graph``, activation scales calibrated on the batch ``calibration``
    (``what`` names it in errors). Raises :class:`.errors.NonFiniteError` before calibrating if
    it or a weight holds a NaN or an infinity, or if a layer's activations on it do."""
    import torch

    calibration = ir.graph_input(graph, torch.as_tensor(calibration))
    if tuple(calibration.shape[1:]) != tuple(graph.input_shape) or len(calibration) == 0:
        raise ValueError(f"calibration must have shape (batch >= 1, {ir.input_text(graph)}), "
                         f"not {tuple(calibration.shape)}")
    check_finite(calibration, what)
    for op in graph.ops:
        _check_weights(op)
    x_max, amax, channel_max = ranges(graph, calibration,
                                      channels=dict(depthwise_pairs(graph)))
    graph = equalize(graph, channel_max=channel_max)  # changes no value's range: see .equalize
    clip = _clips(graph, calibration, x_max, amax)
    s_in = None if graph.tokens else _scale(clip[ir.INPUT])
    scale = {ir.INPUT: s_in}        # every float value's int8 scale
    alias = {ir.INPUT: ir.INPUT}    # float value -> the quantized value that holds it
    readers = graph.readers()
    out, fused = [], set()
    for op in graph.ops:
        if op.name in fused:
            continue
        ins = tuple(alias[v] for v in op.inputs)
        s = scale[op.inputs[0]]
        name, s_out = op.name, s
        if isinstance(op, ir.Embedding):
            s_out = _scale(float(np.abs(op.weight).max()))
            out.append(ir.QEmbedding(op.name, quantize_values(op.weight, s_out), s_out, ins))
        elif isinstance(op, (ir.Conv2d, ir.Linear)):
            s_out = s if getattr(op, "exact", False) or is_pick(op) else _scale(clip[op.name])
            q = _affine(op.weight, op.bias, s, s_out)
            if isinstance(op, ir.Linear):
                out.append(ir.QLinear(op.name, *q, op.relu, s, s_out, ins))
            else:
                nxt = readers[op.name]
                pool = (len(nxt) == 1 and isinstance(nxt[0], ir.MaxPool2d) and not nxt[0].line
                        and op.name != graph.output)
                out.append(ir.QConv(op.name, *q, op.stride, op.padding, op.relu, pool, s, s_out,
                                    op.groups, ins))
                if pool:  # the engine pools after requantizing: the pool's value is the conv's
                    fused.add(nxt[0].name)
                    alias[nxt[0].name], scale[nxt[0].name] = op.name, s_out
        elif isinstance(op, ir.MaxPool2d):
            out.append(ir.QMaxPool(op.name, ins, op.line))
        elif isinstance(op, ir.AvgPool2d):
            out.append(ir.QAvgPool(op.name, op.kernel, s, ins))
        elif isinstance(op, ir.Add):
            w_a, w_b = op.weights
            s_a, s_b = scale[op.inputs[0]], scale[op.inputs[1]]
            if op.exact and (s_a != s_b or op.weights != (1.0, 1.0)):
                raise ValueError(f"layer {op.name!r}: an exact add needs one scale and weights "
                                 f"(1, 1), not {s_a:.3g}, {s_b:.3g} and {op.weights}")
            s_out = s_a if op.exact else _scale(clip[op.name])
            try:
                params = add_params(w_a * s_a / s_out, w_b * s_b / s_out)
            except ValueError as exc:
                raise ValueError(f"layer {op.name!r}: the add's scales {s_a:.3g} and {s_b:.3g} "
                                 f"into {s_out:.3g} have no requantizer: {exc}") from exc
            out.append(ir.QAdd(op.name, params, op.relu, s_a, s_b, s_out, ins))
        elif isinstance(op, ir.Mul):   # the output's scale: a power of two times the inputs'
            s_a, s_b = scale[op.inputs[0]], scale[op.inputs[1]]
            shift = mul_shift(_scale(clip[op.name]) / (s_a * s_b))
            s_out = s_a * s_b * 2.0**shift
            out.append(ir.QMul(op.name, shift, op.relu, op.gate, s_a, s_b, s_out, ins))
        elif isinstance(op, ir.Flatten):
            out.append(ir.QFlatten(op.name, ins))
        elif isinstance(op, ir.Unflatten):   # a view: the scale is the input's
            out.append(ir.QUnflatten(op.name, ins))
        elif isinstance(op, ir.SeqView):   # a view: the scale is the input's
            out.append(ir.QSeqView(op.name, op.to_line, ins, op.hw))
        elif isinstance(op, ir.DepthToSpace):   # a reordering: the scale is the input's
            out.append(ir.QDepthToSpace(op.name, op.factor, ins))
        elif isinstance(op, ir.LSTM):
            for k, lw in enumerate(op.layers):
                name = op.name if len(op.layers) == 1 else f"{op.name}.{k}"
                p = quantize_lstm(lw.w_ih, lw.w_hh, lw.b_ih, lw.b_hh, x_scale=s_out)
                last = op.last_step and k == len(op.layers) - 1
                out.append(ir.QLstm(name, p, last, s_out, ins))
                ins, s_out = (name,), H_SCALE
        elif isinstance(op, ir.ATTENTION_OPS):
            q, s_out = quantize_attention_op(op, ins, scale, amax, graph)
            out.append(q)
        else:
            raise TypeError(f"op must be a float IR op, not {op!r}")
        alias[op.name], scale[op.name] = name, s_out
    return ir.QGraph(graph.input_shape, graph.tokens, s_in, tuple(out), scale[graph.output],
                     graph.head, output=alias[graph.output], input_view=graph.input_view)


def quantize_input(qg: ir.QGraph, x) -> np.ndarray:
    """Float inputs to int8 values at the input scale (saturating; a NaN or an infinity raises
    :class:`.errors.NonFiniteError`), or token ids checked against the vocabulary; an int64
    array ``[batch, *input_shape]``."""
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").numpy()
    x = ir.graph_input(qg, np.asarray(x))
    if tuple(x.shape[1:]) != tuple(qg.input_shape):
        raise ValueError(f"x must have shape (batch, {ir.input_text(qg)}), not {x.shape}")
    if not qg.tokens:
        check_finite(x, "input")
        return quantize_values(x.astype(np.float64), qg.input_scale)
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"x must hold integer token ids, not {x.dtype}")
    vocab = qg.ops[0].table.shape[0]
    bad = (x < 0) | (x >= vocab)
    if bad.any():
        raise ValueError(f"token ids must be in [0, {vocab}), not {int(x[bad][0])}")
    return x.astype(np.int64)


def apply_head(head: str, logits: np.ndarray) -> np.ndarray:
    """The host's last step: ``logits`` unchanged, softmax, log-softmax or argmax (last axis),
    or the logistic sigmoid of each."""
    z = np.asarray(logits, dtype=np.float64)
    if head == "logits":
        return z
    if head == "argmax":
        return z.argmax(axis=-1)
    if head == "sigmoid":
        return np.exp(-np.logaddexp(0.0, -z))   # 1 / (1 + e^-z), no overflow for large |z|
    shifted = z - z.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    if head == "log_softmax":
        return log_p
    if head == "softmax":
        return np.exp(log_p)
    raise ValueError(f"head must be one of {', '.join(ir.HEADS)}, not {head!r}")
