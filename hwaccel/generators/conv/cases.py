"""Convolution test cases, written once and used by every level (golden, float, RTL, bench)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...numerics import requant_params
from ..operands import fill
from .config import ConvConfig
from .layer import ConvLayer, check_layer, same_padding

__all__ = ["LayerCase", "make_case", "random_cases", "directed_cases", "CNN_LAYERS", "cnn_cases",
           "estimated_cycles", "DEPTHWISE_LAYERS"]

#: The reference CNN's convolutions (3x3, no padding, ReLU); conv1 and conv2 are max-pooled.
CNN_LAYERS = {
    "conv1": ConvLayer(28, 28, 1, 32, 3, 1, 0, True, True),
    "conv2": ConvLayer(13, 13, 32, 64, 3, 1, 0, True, True),
    "conv3": ConvLayer(5, 5, 64, 64, 3, 1, 0, True, False),
}


#: The reference models' depthwise 3x3 layers (ReLU, TensorFlow's "same"): DS-CNN's four on
#: 25x5x64, MobileNetV1 0.25's first one on 48x48x16 at stride 1 and stride 2.
DEPTHWISE_LAYERS = {
    "dscnn_dw": ConvLayer(25, 5, 64, 64, 3, 1, 1, True, False, True),
    "mobilenet_dw_s1": ConvLayer(48, 48, 16, 16, 3, 1, 1, True, False, True),
    "mobilenet_dw_s2": ConvLayer(48, 48, 16, 16, 3, 2, same_padding(48, 48, 3, 2), True, False,
                                 True),
}


@dataclass(frozen=True)
class LayerCase:
    """A layer with its int8 tensors, int32 bias and the scales its requantizers come from."""

    name: str
    layer: ConvLayer
    x: np.ndarray          # Cin x H x W
    w: np.ndarray          # Cout x Cin x KH x KW
    bias: np.ndarray       # Cout, int32 at scale s_in * s_w
    s_in: float
    s_w: np.ndarray        # Cout
    s_out: float

    @property
    def requant(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel ``(multiplier, shift)`` from ``s_in * s_w / s_out`` (numerics)."""
        params = [requant_params(self.s_in * float(s) / self.s_out) for s in self.s_w]
        return (np.array([p.multiplier for p in params], dtype=np.int64),
                np.array([p.shift for p in params], dtype=np.int64))


def make_case(name: str, layer: ConvLayer, rng: np.random.Generator, style: str = "random",
              scale: str = "typical") -> LayerCase:
    """Random tensors for ``layer``. ``scale`` picks the requantizers: ``typical`` (outputs
    spread over int8), ``saturate`` (huge multipliers) or ``tiny`` (shifts at SHIFT_MAX)."""
    cin, cout = layer.cin, layer.cout
    x = fill(rng, (cin, layer.height, layer.width), style)
    w = fill(rng, (cout, layer.group_cin, layer.kernel_h, layer.kernel_w),
             style if style != "min" else "max")
    if style == "min":
        w = -w - 1  # -128 x -128: the largest product
    s_in = 0.02
    # The std of a sum of uniform int8 products.
    spread = math.sqrt(layer.taps * layer.group_cin) * 74.0 * 74.0
    s_out_base = s_in * 0.01 * spread / 40.0      # so that outputs spread over about +-40
    s_w = 0.01 * rng.uniform(0.5, 2.0, cout)
    if scale == "saturate":
        s_w = s_w * 2.0 ** 20
    elif scale == "tiny":
        s_w = s_w * 2.0 ** -60
    if style == "extremes":
        bias = rng.choice(np.array([-(2 ** 31), 2 ** 31 - 1, 0], dtype=np.int64), cout)
    else:
        bias = rng.integers(-int(spread) // 2, int(spread) // 2 + 1, cout, dtype=np.int64)
    return LayerCase(name, layer, x, w, bias, s_in, s_w, s_out_base)


def estimated_cycles(cfg: ConvConfig, layer: ConvLayer) -> int:
    """Issue cycles of ``layer`` on ``cfg`` (output pixels x blocks x chunks per block)."""
    from .layer import descriptor

    d = descriptor(cfg, layer)
    oh, ow = layer.out_size
    return oh * ow * d["weight_words"]


def _random_padding(cfg: ConvConfig, rng: np.random.Generator, h: int, w: int, kernel,
                    stride):
    """No padding, torch's "same", TensorFlow's "same" or random sides (within max_pad)."""
    kind = str(rng.choice(["zero", "same", "tf", "sides", "sides"]))
    if kind == "zero":
        return 0
    if kind == "same":
        return "same"
    if kind == "tf":
        return same_padding(h, w, kernel, stride)
    kh, kw = kernel
    top = int(rng.integers(0, min(cfg.max_pad, kh - 1) + 1))
    left = int(rng.integers(0, min(cfg.max_pad, kw - 1) + 1))
    bottom = int(rng.integers(0, min(cfg.max_pad, kh - 1 - top) + 1))
    right = int(rng.integers(0, min(cfg.max_pad, kw - 1 - left) + 1))
    return top, left, bottom, right


def random_layer(cfg: ConvConfig, rng: np.random.Generator, budget: int) -> ConvLayer:
    """A random layer the engine can run, under ``budget`` issue cycles: square and non-square
    kernels, a stride of 1 or 2 on each axis, padding of every kind :func:`_random_padding`
    draws."""
    while True:
        kh = int(rng.integers(1, cfg.max_kernel + 1))
        kw = kh if rng.random() < 0.5 else int(rng.integers(1, cfg.max_kernel + 1))
        stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
        if rng.random() < 0.6:
            stride = (stride[0], stride[0])
        h = int(rng.choice([1, int(rng.integers(1, cfg.max_height + 1))]))
        w = int(rng.choice([1, int(rng.integers(1, cfg.max_width + 1))]))
        cin = int(rng.choice([1, int(rng.integers(1, cfg.max_cin + 1))]))
        cout = int(rng.integers(1, cfg.max_cout + 1))
        try:
            layer = ConvLayer(h, w, cin, cout, (kh, kw), stride,
                              _random_padding(cfg, rng, h, w, (kh, kw), stride),
                              bool(rng.integers(2)), bool(cfg.pool and rng.integers(2)))
            check_layer(cfg, layer)
        except ValueError:
            continue  # the kernel does not fit the padded input, or the padding the engine
        if estimated_cycles(cfg, layer) <= budget:
            return layer


def dw_most(cfg: ConvConfig) -> int:
    """The most channels a depthwise layer (one that does not pool) runs on ``cfg``."""
    return min(cfg.dw_groups * cfg.dw_channels, cfg.max_cin, cfg.max_cout)


def random_depthwise(cfg: ConvConfig, rng: np.random.Generator) -> ConvLayer:
    """A random depthwise layer: kernels up to ``dw_kernel`` a side, 1 to ``dw_groups`` channel
    groups' channels (one group when it pools), strides 1/2 per axis, every kind of padding."""
    while True:
        kh = int(rng.integers(1, cfg.dw_kernel + 1))
        kw = kh if rng.random() < 0.6 else int(rng.integers(1, cfg.dw_kernel + 1))
        stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
        if rng.random() < 0.6:
            stride = (stride[0], stride[0])
        h = int(rng.choice([1, int(rng.integers(1, cfg.max_height + 1))]))
        w = int(rng.choice([1, int(rng.integers(1, cfg.max_width + 1))]))
        c = int(rng.integers(1, dw_most(cfg) + 1))
        try:
            layer = ConvLayer(h, w, c, c, (kh, kw), stride,
                              _random_padding(cfg, rng, h, w, (kh, kw), stride),
                              bool(rng.integers(2)), bool(cfg.pool and rng.integers(2)), True)
            check_layer(cfg, layer)
        except ValueError:
            continue
        return layer


def random_cases(cfg: ConvConfig, count: int, seed: int, budget: int = 1500) -> list[LayerCase]:
    """``count`` random layers, a quarter of them depthwise (drawn from their own generator,
    so the other layers keep their distribution)."""
    rng = np.random.default_rng(seed)
    drng = np.random.default_rng([seed, 1])
    out = []
    for i in range(count):
        dw = drng.random() < 0.25
        layer = random_depthwise(cfg, drng) if dw else random_layer(cfg, rng, budget)
        style = str(rng.choice(["random"] * 6 + ["extremes", "min", "max"]))
        scale = str(rng.choice(["typical"] * 6 + ["saturate", "tiny"]))
        out.append(make_case(f"rand{i}", layer, rng, style, scale))
    return out


def directed_cases(cfg: ConvConfig) -> list[LayerCase]:
    """Corners: 1x1 image and kernel, the largest kernel with "same" padding, stride 2 on odd
    sizes, channel counts one past the lanes and blocks, extreme values, packed and grouped,
    non-square kernels and strides, padding different on each side."""
    rng = np.random.default_rng(2024)
    K, L, B = cfg.max_kernel, cfg.lanes, cfg.block
    cin_big = min(cfg.max_cin, L + 1)
    shapes = [
        ("one", ConvLayer(1, 1, 1, 1, 1, 1, 0, False, False), "random", "typical"),
        ("one_same", ConvLayer(1, 1, 1, 1, K, 1, "same", True, False), "random", "typical"),
        ("kmax_same", ConvLayer(cfg.max_height, cfg.max_width, 1, min(cfg.max_cout, B + 1), K,
                                1, "same", True, cfg.pool), "random", "typical"),
        ("stride2_odd", ConvLayer(min(cfg.max_height, 7), min(cfg.max_width, 5), cin_big,
                                  min(cfg.max_cout, B + 1), min(K, 3), 2, "same", False, False),
         "random", "typical"),
        ("min_min", ConvLayer(3, 4, cin_big, 2, min(K, 2), 1, 0, False, False), "min",
         "typical"),
        ("extremes", ConvLayer(min(cfg.max_height, 5), 3, cin_big, min(cfg.max_cout, 2 * B),
                               min(K, 3), 1, "same", True, False), "extremes", "saturate"),
        ("tiny_scale", ConvLayer(2, 3, 2, 2, 1, 2, 0, False, False), "random", "tiny"),
    ]
    H, W, cout = min(cfg.max_height, 8), min(cfg.max_width, 6), min(cfg.max_cout, B + 1)
    kh, kw = K, max(1, min(K - 1, 4))
    ke = K - K % 2 if K > 1 else 1
    shapes += [
        # Non-square, packed when it fits (DS-CNN's first layer is 10x4 at stride 2 on one
        # channel), TensorFlow's "same" (more at the bottom/right), the full map.
        ("tall_tf_s2", ConvLayer(cfg.max_height, cfg.max_width, 1, cout, (kh, kw), 2,
                                 same_padding(cfg.max_height, cfg.max_width, (kh, kw), 2)),
         "random", "typical"),
        # Wide kernel, grouped channels, stride 2 along the columns only, padding on two sides.
        ("wide_s12", ConvLayer(H, W, cin_big, cout, (kw, kh), (1, 2),
                               (0, min(cfg.max_pad, kh - 1), min(cfg.max_pad, kw - 1), 0), False),
         "extremes", "typical"),
        # A tall even kernel with more padding at the top than at the bottom, stride 2 down.
        ("tall_top", ConvLayer(H, W, 2, cout, (ke, 1), (2, 1), (ke // 2, 0, (ke - 1) // 2, 0)),
         "random", "typical"),
    ]
    # Depthwise: a group's channels, 3x3 "same" at stride 1, TensorFlow's "same" at stride 2
    # (0, 0, 1, 1), a non-square kernel with stride 2 along the columns only; the most
    # channels (several groups), and several groups of one pixel each (a group's weight
    # words arrive while the one before it issues).
    D, C, CG = cfg.dw_kernel, cfg.dw_channels, dw_most(cfg)
    he, we = max(H - H % 2, 2), max(W - W % 2, 2)
    shapes += [
        ("dw_same", ConvLayer(H, W, C, C, D, 1, "same", True, False, True), "random",
         "typical"),
        ("dw_tf_s2", ConvLayer(he, we, C, C, D, 2, same_padding(he, we, D, 2), True, cfg.pool,
                               True), "extremes", "saturate"),
        ("dw_wide_s12", ConvLayer(H, W, C, C, (max(D - 1, 1), D), (1, 2),
                                  (0, min(cfg.max_pad, D - 1), 0, 0), False, False, True),
         "min", "typical"),
        ("dw_groups", ConvLayer(H, W, CG, CG, D, 1, "same", True, False, True), "random",
         "typical"),
        ("dw_pixel_groups", ConvLayer(1, 1, CG, CG, D, 1, "same", False, False, True),
         "random", "typical"),
    ]
    if K >= 3:   # TensorFlow's "same" at stride 2 with 3x3 on an even map: 0, 0, 1, 1
        he, we = max(H - H % 2, 2), max(W - W % 2, 2)
        shapes.append(("tf_same_3x3_s2", ConvLayer(he, we, cin_big, cout, 3, 2,
                                                   same_padding(he, we, 3, 2), True, cfg.pool),
                       "random", "typical"))
    return [make_case(n, layer, rng, style, scale) for n, layer, style, scale in shapes]


def cnn_cases(seed: int) -> list[LayerCase]:
    """The reference CNN's three conv layers (with pools) with random int8 tensors."""
    rng = np.random.default_rng(seed)
    return [make_case(name, layer, rng) for name, layer in CNN_LAYERS.items()]
