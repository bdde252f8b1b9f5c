"""What the compiler refuses, and the checks that refuse it.

* :class:`UnsupportedOp` -- an op or attribute it does not handle (:data:`SUPPORTED` lists what
  it does); raised while tracing (:mod:`.trace`).
* :class:`NonFiniteError` -- a NaN or an infinity where numbers are computed on: calibration
  data, an input, a weight, bias or batch-norm statistic, or a layer's activations during
  calibration. Raised before anything is computed from it, by :func:`check_finite`, so a bad
  number never becomes a scale of 1 or a garbage logit (NaN has no int8 value: cast, it
  becomes -2**63).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SUPPORTED", "UnsupportedOp", "NonFiniteError", "check_finite", "check_parameters"]

SUPPORTED = (
    "Conv2d (any kernel, strides 1 or 2 per axis, any on the model's input (its im2col "
    "patches, which the host writes), zero padding below the kernel per axis, "
    "bias optional; groups=1, depthwise (groups = in = out channels; a kernel past the "
    "depthwise engine's as the dense conv it is, channels times the MACs), or any other groups "
    "as a dense conv with zero weights between the groups: groups times the MACs; dilation d as "
    "the dense kernel of (k - 1) d + 1 with zeros between the taps; a dilated Conv1d as a k x 1 "
    "conv down its line laid out as rows of d)",
    "Conv1d over (channels, length) from the input (or a (length,) waveform's x.unsqueeze(1)) "
    "or another Conv1d, or a part of one (chunk, "
    "split, a channel slice) (as Conv2d; a line is a one-row image), with BatchNorm1d, "
    "nn.ZeroPad1d / F.pad (zeros, folded into it), AvgPool1d / F.avg_pool1d, AdaptiveAvgPool1d / "
    "F.adaptive_avg_pool1d, x.mean(-1) (its global average) and MaxPool1d / F.max_pool1d of "
    "4, 16, 64 ... at its own stride (the max-pool unit's 2 x 2 windows over the line laid out "
    "as rows of 2), or of 2 or 3 at stride 1 or 2, padding 0 or 1, of a ReLU's output (maxes "
    "b + relu(a - b) of its taps, each a depthwise conv), and its global max at any length "
    "(F.adaptive_max_pool1d(x, 1), nn.AdaptiveMaxPool1d(1), x.amax(-1), x.max(-1)[0] or "
    ".values, a MaxPool1d of the whole line: pools of 4, else windows of 2 of a ReLU's "
    "output); a line wider than the line buffer in bands of columns",
    "F.pad / nn.ZeroPad2d (zeros, per side) right before a Conv2d (folded into its padding)",
    "MaxPool2d / F.max_pool2d (a square kernel of 2, 4, 8 ... at its own stride, no padding: "
    "2 x 2 pools in a row, in ceil mode over an odd side of a ReLU's output the max of pairs of "
    "rows and of columns, each two picks at stride 2; 3 x 3 windows at stride 1 or 2, padding "
    "0 or 1, either mode, of a ReLU's output (a ResNet's MaxPool2d(3, 2, 1), SqueezeNet's): 2 x 2 "
    "pools of shifted copies and maxes b + relu(a - b) of ADDs), AdaptiveMaxPool2d / "
    "F.adaptive_max_pool2d to equal square windows of those sides, and to 1 over any map "
    "(2 x 2 pools, in ceil mode where a side is odd, of a ReLU's output)",
    "AvgPool2d / F.avg_pool2d (floor mode; at another stride than the kernel, padded with the "
    "zeros counted, or with a divisor_override: a depthwise conv of weights 1 / (kh kw)), "
    "AdaptiveAvgPool2d / F.adaptive_avg_pool2d (to a size that divides the map), "
    "x.mean((2, 3)) / x.mean((-2, -1)) (the global average, keepdim either way), x.sum((2, 3)) "
    "(the global average times the pixels) and x.amax((2, 3)) (the global max, as the "
    "adaptive pool's); so too an image viewed as (channels, pixels) by "
    "x.view(b, c, -1) or x.flatten(2) and reduced by .mean(-1), .sum(-1), .amax(-1) or "
    ".max(-1); and the mean or sum over its channels, x.mean(1, keepdim=True) and x.sum(1, "
    "keepdim=True) (a 1 x 1 conv into one channel), and the max over them, x.amax(1, "
    "keepdim=True), of a ReLU's or a gate's output (CBAM's: halvings, each two 1 x 1 picks of "
    "the channel halves and their max b + relu(a - b))",
    "ConvTranspose2d (the same stride on both axes, any kernel, padding and output padding "
    "whose output is whole stride x stride patches, not dilated; grouped or depthwise as the "
    "dense one with zeros between the groups: a conv into its output phases), nearest "
    "upsampling by a whole factor (nn.Upsample, nn.UpsamplingNearest2d, F.interpolate), "
    "nn.PixelShuffle / F.pixel_shuffle: a 1 x 1 conv whose GEMMs write each output pixel in "
    "place (a nearest upsampling's weights the identity's, and an identity one after any "
    "other conv)",
    "add of two tensors of one shape (x + y, torch.add, operator.add, .add); of a "
    "concatenation and a tensor split at the same channels, or made by convs that split so "
    "(a ResNet's shortcut), one add a part; a - b of two images or vectors of one shape (b "
    "negated by a depthwise 1 x 1 conv or diagonal Linear, folded into the conv or Linear that "
    "makes it, then an add); torch.maximum / torch.minimum / torch.max(a, b) of two such "
    "(b + relu(a - b): a difference with a ReLU, then an add)",
    "a * b of two activations on the element-wise MUL (presets with AccelConfig.elt_mul: "
    "tiny, default and theirs): of one shape (images, vectors or sequences: gated branches, a "
    "GLU's halves, a SwiGLU; nn.GLU and F.glu over an image's channels or a vector's or "
    "sequence's features: two picks, a sigmoid table and a MUL), or an image (C, H, W) and a "
    "gate (C, 1, 1) of its channels in either order (squeeze-and-excitation; y.view(b, c, 1, "
    "1), w[:, :, None, None] and expand_as read as the gate), or a gate (1, H, W) of its "
    "pixels (spread over the channels by a pick conv first: a spatial attention's); the "
    "product's scale a power-of-two multiple of its inputs'; Hardsigmoid is a clamp folded "
    "into the conv before it, and where no tables run Hardswish is its input times that clamp "
    "(a depthwise 1 x 1 conv and a MUL: MobileNetV3), x * x the MUL of x and itself, x * (a x "
    "+ b) of x and that map",
    "an image or vector and a constant of one value a channel or feature (x - mean[:, None, "
    "None], gamma * x, x / std), and numbers on an image or vector (x * 0.5, x + 1, (a + b) / "
    "2, relu6(x + 3) / 6 written out, clamps between any two numbers): a depthwise 1 x 1 conv "
    "or diagonal Linear, folded into the conv, Linear or add next to it where that is exact",
    "ReLU (nn.ReLU, torch.relu, F.relu, .relu()) fused into the Conv2d, Linear or add before "
    "it, and so ReLU6 and clamps from 0 (nn.ReLU6, F.relu6, nn.Hardtanh(0, c), torch.clamp(x, "
    "0, c), .clamp, .clip); anywhere else an element-wise ADD of its input with itself",
    "LeakyReLU (nn.LeakyReLU, F.leaky_relu, nn.PReLU of one slope; 0 <= slope < 1) on an "
    "image, sequence or vector: two element-wise ADDs (relu(x), then slope * x + (1 - slope) "
    "* relu(x)); on an image any slopes, one a channel too (nn.PReLU(C)): the ReLU's ADD, two "
    "depthwise 1 x 1 convs and an ADD",
    "torch.cat of images along channels (dim=1), or of vectors or sequences along features, "
    "read by dense Conv2d or Linear (one per part, then adds), max or average pools, "
    "depthwise Conv2d (a batch norm after it), tables and flattens (one per part); by anything "
    "else (an add, the output) joined by an identity 1 x 1 conv",
    "channel slices, chunks and shuffles of images (x[:, a:b], x.chunk(n, 1), torch.split(x, "
    "s, 1), ShuffleNet's view / transpose / view, nn.ChannelShuffle, F.channel_shuffle): its "
    "channels in an order, read as a torch.cat is, with no data moved",
    "rows and columns of an image at a step of 1 or 2 (x[:, :, ::2, ::2], a crop x[:, :, 2:-2, "
    "2:-2]: depthwise picks) and zero channels padded around it (F.pad(x, (0, 0, 0, 0, a, "
    "b)): a CIFAR ResNet's option-A shortcut): a conv that picks them, at its input's scale",
    "Flatten (nn.Flatten(), torch.flatten(x, 1), .flatten(1), .view/.reshape(batch, -1), "
    "x.squeeze(-1).squeeze(-1) and .squeeze((2, 3)) of a pooled (C, 1, 1) image), and "
    "of x.permute(0, 2, 3, 1) (Keras' order: the reader's weights picked, no data moved); a "
    "model input that only flattens read is held as the vector; a vector viewed as a square "
    "image (x.view(b, C, f, f), nn.Unflatten(1, (C, f, f)): the Linear before it a 1 x 1 conv "
    "into a depth-to-space)",
    "a channels-last image, x.permute(0, 2, 3, 1), read per pixel (LayerNorm, Linear, GELU and "
    "pointwise functions, a constant a channel, adds: a ConvNeXt block, on presets with "
    "attention units) and permuted back by permute(0, 3, 1, 2): the sequence of its pixels, "
    "no data moved",
    "Linear (on a vector, or on every step of an LSTM's output)",
    "BatchNorm2d / BatchNorm1d right after a Conv2d / Linear (eval statistics, folded into "
    "it), and on any image or vector (after an add, a ReLU, the input: a depthwise 1 x 1 conv, "
    "a diagonal Linear)",
    "LSTM (batch_first, unidirectional, no projection, zero initial state; every step, "
    "out[:, -1] or h_n[-1]; layers of any sizes up to the preset's LSTM cell; on a Conv1d's "
    "line read as steps by x.transpose(1, 2) or x.permute(0, 2, 1): a CRNN)",
    "Embedding (on the token-id input; its sequence read as a Conv1d's line by "
    "x.permute(0, 2, 1) or x.transpose(1, 2): TextCNN)",
    "Dropout and Identity (no-ops in eval mode)",
    "softmax / log_softmax / argmax over the last dimension, or sigmoid (nn.Sigmoid, "
    "torch.sigmoid, F.sigmoid), last (run on the host)",
    "pointwise activations on images, sequences or vectors, as a 256-entry table on the "
    "attention units' GELU unit (presets with attention units): a sigmoid another op reads, "
    "tanh (nn.Tanh, torch.tanh, .tanh()), SiLU, Hardswish, Hardsigmoid, Softplus, Mish, ELU, "
    "CELU, SELU, LogSigmoid, Softsign (modules and F. functions), and on a sequence Hardtanh "
    "and clamps between two numbers not from 0; and any expression of one value through them, "
    "numbers, +, -, * and / by a number (x * sigmoid(x), x * relu6(x + 3) / 6): one table",
    # attention: traced and run in float (compile() refuses them until the quantizer takes them)
    "TransformerEncoder / TransformerEncoderLayer (batch_first, norm_first either way, relu or "
    "gelu) and MultiheadAttention as self-attention (batch_first, no bias_k/bias_v, no zero "
    "attention, kdim = vdim = embed_dim; only the output read), with no mask or a causal "
    "mask / is_causal; no padding masks",
    "F.scaled_dot_product_attention (dropout_p=0, no mask or a causal one), q @ k.transpose, "
    "a scale by a number right after it, masked_fill / add of a causal mask, softmax over the "
    "last dimension, on (batch, tokens, features) or heads split by view/reshape/split/chunk "
    "and transpose/permute, then joined back by view/reshape/flatten",
    "LayerNorm / F.layer_norm (over the last axis), GELU / F.gelu, a constant added to a "
    "sequence (positional embeddings), x.mean(1) and x[:, i] of a sequence",
)


class UnsupportedOp(ValueError):
    """An op or attribute the compiler does not handle.

    Attributes ``op`` (what it is) and ``where`` (node name and module path) name it.
    """

    def __init__(self, op: str, where: str, detail: str = ""):
        self.op, self.where = op, where
        why = f": {detail}" if detail else ""
        super().__init__(f"unsupported {op} at {where}{why}. Supported: {'; '.join(SUPPORTED)}")


class NonFiniteError(ValueError):
    """NaN or infinite values in a tensor the compiler or a backend would compute on.

    The message names the tensor and the layer, counts the bad values by kind and gives the
    first one's index (batch first for data)::

        conv1.weight of layer 'conv1' (Conv2d) must be finite, not 1 NaN of 288 values
        (the first, NaN, at [4, 0, 1, 2])

    Attributes
    ----------
    what : str
        The tensor ("calibration data", "input", "conv1.weight", "calibration activations").
    layer : str or None
        The layer, as ``'name' (Type)``; ``None`` for data that enters the model.
    count, total : int
        Non-finite values, and all values, in the tensor.
    index : tuple of int
        Where the first non-finite value is (row-major order).
    value : float
        That value (nan, inf or -inf).
    """

    def __init__(self, what: str, layer: str | None, values: np.ndarray, hint: str = ""):
        bad = ~np.isfinite(values)
        first = np.unravel_index(int(np.argmax(bad)), values.shape) if values.ndim else ()
        self.what, self.layer = what, layer
        self.count, self.total = int(bad.sum()), int(values.size)
        self.index = tuple(int(i) for i in first)
        self.value = float(values[first])
        kinds = [(int(np.isnan(values).sum()), "NaN"), (int(np.isposinf(values).sum()), "+inf"),
                 (int(np.isneginf(values).sum()), "-inf")]
        counted = " and ".join(f"{n:,} {kind}" for n, kind in kinds if n)
        of = f" of layer {layer}" if layer else ""
        at = f"[{', '.join(map(str, self.index))}]"
        first = "NaN" if np.isnan(self.value) else f"{self.value:+}"
        super().__init__(f"{what}{of} must be finite, not {counted} of {self.total:,} values "
                         f"(the first, {first}, at {at}){hint}")


def _numpy(values) -> np.ndarray:
    if hasattr(values, "detach"):
        return values.detach().to("cpu").double().numpy()
    return np.asarray(values)


def check_finite(values, what: str, layer: str | None = None, *, hint: str = "") -> None:
    """Raise :class:`NonFiniteError` if the torch tensor or array ``values`` holds a NaN or an
    infinity (integer data passes at once); ``hint`` ends the message."""
    if hasattr(values, "detach"):
        if not values.is_floating_point():
            return
        import torch

        if bool(torch.isfinite(values).all()):
            return
    else:
        values = np.asarray(values)
        if not np.issubdtype(values.dtype, np.floating) or np.isfinite(values).all():
            return
    raise NonFiniteError(what, layer, _numpy(values), hint)


def check_parameters(module, path: str) -> None:
    """Every floating parameter and buffer of ``module`` (its own, not its children's: weights,
    biases, batch-norm statistics) must be finite; named ``<path>.<parameter>``."""
    layer = f"{path!r} ({type(module).__name__})"
    for group in (module.named_parameters(recurse=False), module.named_buffers(recurse=False)):
        for name, tensor in group:
            if tensor is not None:
                check_finite(tensor, f"{path}.{name}", layer)
