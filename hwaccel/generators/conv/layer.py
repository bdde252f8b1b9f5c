"""The driver: a convolution layer's shape, its checks and its descriptor; the beats that run it
on the engine are :mod:`.plan`'s, in the weight order below.

``plan_layer`` (:mod:`.plan`) turns one layer (int8 input ``C x H x W``, int8 weights ``Cout x
Cin x KH x KW``, int32 bias and per-output-channel requantizers) into the exact beat sequences
of the engine's four input streams and knows how to read the ``result`` beats back into ``Cout
x OH x OW``.

Weight order (what one weight word holds)
-----------------------------------------
The engine multiplies one *chunk* of the flattened im2col window (order ky, kx, cin) per cycle.

* **packed** (``KW * Cin <= lanes``, e.g. the CNN's conv1, DS-CNN's 10x4 first layer): a
  line-buffer word holds the last ``KW`` pixels of a row, so a chunk holds whole kernel rows:
  ``rows_per_chunk = lanes // (KW*Cin)`` rows of ``KW*Cin`` lanes each. Chunks per output
  block: ``ceil(KH / rows_per_chunk)``.
* **grouped** (otherwise): a chunk is one channel group (``lanes`` channels) of one tap
  ``(ky, kx)``. Chunks per output block: ``KH * KW * ceil(Cin / lanes)``.

* **depthwise** (``groups = cin = cout``, a kernel up to ``dw_kernel`` a side, 3 to 7): the engine
  keeps a ``dw_kernel x dw_kernel`` register of line-buffer words (rows ``r``, columns ``j``, the
  window's last column at ``j = dw_kernel - 1``); lane ``k`` of chunk ``c`` is register position
  ``(r, j) = dw_taps[c*lanes + k]`` (row-major, or ring by ring), and its weight for channel ``n``
  is ``w[n, 0, r, j - (dw_kernel - KW)]`` (zero outside the kernel): ``dw_chunks = ceil(dw_kernel**2
  / lanes)`` words a beat of a *channel group* of ``dw_channels`` channels. With ``dw_beats = lanes
  / block > 1`` (a power of two) a group is a whole word of ``lanes`` channels, computed in
  ``dw_beats`` beats of ``block`` channels each (beat ``h``: channels ``h x block`` on, its own
  ``dw_chunks`` words and requantizer); else it is ``min(lanes, block)`` channels in one beat. A
  layer walks up to ``dw_groups`` groups (one when it pools), one after the other (descriptor
  ``blocks`` = groups, see :mod:`.engine`, "Depthwise mode"): each group's ``dw_words = dw_beats x
  dw_chunks`` weight words then the next's, ``dw_beats`` requantizer words a group, the activations
  a group's image after the other and the results too (a pixel's beats together). More channels are
  several layers (the accelerator's processor runs them as jobs of up to ``dw_groups`` groups).

Weights of lanes that hold no window element are zero, which is why the engine never needs to
mask activation lanes beyond ``Cin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ...config import check_bool, check_int
from .config import ConvConfig

__all__ = ["ConvLayer", "check_layer", "descriptor", "geometry", "same_padding"]


def _pair(name: str, value) -> tuple[int, int]:
    """``(h, w)`` from an int (both axes) or a pair."""
    if isinstance(value, tuple) and len(value) == 2:
        return value
    if isinstance(value, tuple):
        raise ValueError(f"{name} must be an int or a (height, width) pair, not {value!r}")
    return value, value


def same_padding(height: int, width: int, kernel, stride=1) -> tuple[int, int, int, int]:
    """TensorFlow's "same" padding ``(top, left, bottom, right)``: ``ceil(n / s)`` outputs, the
    total ``max((ceil(n/s) - 1) s + k - n, 0)`` split with the odd one at the bottom/right
    (3x3 at stride 2 on an even map: 0, 0, 1, 1; DS-CNN's 10x4 at stride 2 on 49x10: 4, 1, 5, 1).
    """
    (kh, kw), (sh, sw) = _pair("kernel", kernel), _pair("stride", stride)
    th = max((-(-height // sh) - 1) * sh + kh - height, 0)
    tw = max((-(-width // sw) - 1) * sw + kw - width, 0)
    return th // 2, tw // 2, th - th // 2, tw - tw // 2


@dataclass(frozen=True)
class ConvLayer:
    """One convolution layer's shape (validated on its own; :func:`check_layer` checks it
    against an engine).

    ``kernel`` and ``stride`` are an int (both axes) or a ``(height, width)`` pair; a stride is
    1 or 2 on each axis. ``padding`` (zeros) is an int (every side), a ``(height, width)`` pair
    (top and bottom, left and right), a ``(top, left, bottom, right)`` quadruple (see
    :func:`same_padding` for TensorFlow's "same") or ``"same"``: torch's, a total of
    ``kernel - 1`` per axis, the odd one at the bottom/right. On each axis the two sides sum to
    less than the kernel, so a window always holds an image pixel and outputs never outgrow
    inputs. ``pool`` adds a 2x2 stride-2 max-pool (floor mode, as
    ``torch.nn.functional.max_pool2d``). Pairs and quadruples with equal parts are stored as
    the int, so one shape has one value.
    """

    height: int
    width: int
    cin: int
    cout: int
    kernel: int | tuple[int, int] = 3
    stride: int | tuple[int, int] = 1
    padding: int | str | tuple = 0
    relu: bool = True
    pool: bool = False
    depthwise: bool = False

    def __post_init__(self):
        for name in ("height", "width", "cin", "cout"):
            check_int(name, getattr(self, name), min=1)
        kh, kw = _pair("kernel", self.kernel)
        check_int("kernel", kh, min=1)
        check_int("kernel", kw, min=1)
        for s in _pair("stride", self.stride):
            if s not in (1, 2) or isinstance(s, bool):
                raise ValueError(f"stride must be 1 or 2, not {self.stride!r}")
        pads = self.pads
        for p in pads:
            check_int("padding", p, min=0)
        if pads[0] + pads[2] >= kh or pads[1] + pads[3] >= kw:
            raise ValueError(f"padding must leave each window an image pixel (top + bottom < "
                             f"{kh}, left + right < {kw}), not {self.padding!r}")
        check_bool("relu", self.relu)
        check_bool("pool", self.pool)
        check_bool("depthwise", self.depthwise)
        if self.depthwise and self.cin != self.cout:
            raise ValueError(f"a depthwise layer has cout == cin (one filter per channel), not "
                             f"cin {self.cin}, cout {self.cout}")
        for name in ("kernel", "stride", "padding"):
            v = getattr(self, name)
            if isinstance(v, tuple) and len(set(v)) == 1:
                object.__setattr__(self, name, v[0])
        oh, ow = self.out_size
        if oh < 1 or ow < 1:
            raise ValueError(f"kernel must fit the padded {self.height}x{self.width} input "
                             f"(padding {self.padding}), not {self.kernel!r}")

    @property
    def kernel_h(self) -> int:
        return _pair("kernel", self.kernel)[0]

    @property
    def kernel_w(self) -> int:
        return _pair("kernel", self.kernel)[1]

    @property
    def stride_h(self) -> int:
        return _pair("stride", self.stride)[0]

    @property
    def stride_w(self) -> int:
        return _pair("stride", self.stride)[1]

    @property
    def pads(self) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)``."""
        p = self.padding
        if p == "same":
            (kh, kw) = _pair("kernel", self.kernel)
            return (kh - 1) // 2, (kw - 1) // 2, kh // 2, kw // 2
        if isinstance(p, str):
            raise ValueError(f"padding must be an int, a pair, a quadruple or 'same', not {p!r}")
        if isinstance(p, tuple) and len(p) == 4:
            return p
        if isinstance(p, tuple) and len(p) != 2:
            raise ValueError(f"padding must be an int, a pair, a quadruple or 'same', not {p!r}")
        ph, pw = _pair("padding", p)
        return ph, pw, ph, pw

    @property
    def pad(self) -> int:
        """The padding of a layer padded alike on every side (``ValueError`` otherwise)."""
        pads = self.pads
        if len(set(pads)) != 1:
            raise ValueError(f"padding {pads} (top, left, bottom, right) is not one int")
        return pads[0]

    @property
    def group_cin(self) -> int:
        """Input channels each output channel sums over: 1 when depthwise, else ``cin``."""
        return 1 if self.depthwise else self.cin

    @property
    def taps(self) -> int:
        """Kernel positions: ``kernel_h x kernel_w``."""
        return self.kernel_h * self.kernel_w

    @property
    def out_size(self) -> tuple[int, int]:
        """Convolution output ``(OH, OW)`` (before pooling)."""
        t, left, b, r = self.pads
        return ((self.height + t + b - self.kernel_h) // self.stride_h + 1,
                (self.width + left + r - self.kernel_w) // self.stride_w + 1)

    @property
    def result_size(self) -> tuple[int, int]:
        """What the engine emits: ``out_size``, halved (floor) when pooling."""
        oh, ow = self.out_size
        return (oh // 2, ow // 2) if self.pool else (oh, ow)

    @property
    def macs(self) -> int:
        """Multiply-accumulates, padded taps included (as published MAC counts count them)."""
        oh, ow = self.out_size
        return oh * ow * self.cout * self.group_cin * self.taps


def check_layer(cfg: ConvConfig, layer: ConvLayer) -> None:
    """Raise ``ValueError`` naming the parameter and the engine's limit if ``cfg`` cannot run it."""
    limits = (("width", "max_width"), ("height", "max_height"), ("cin", "max_cin"),
              ("cout", "max_cout"), ("kernel_h", "max_kernel"), ("kernel_w", "max_kernel"))
    for field, limit in limits:
        value, most = getattr(layer, field), getattr(cfg, limit)
        if value > most:
            raise ValueError(f"{field} must be at most {most} ({limit} of {cfg.slug}), "
                             f"not {value!r}")
    if max(layer.pads) > cfg.max_pad:
        raise ValueError(f"padding must be at most {cfg.max_pad} on each side (max_pad of "
                         f"{cfg.slug}), not {layer.pads} (top, left, bottom, right)")
    if layer.pool and not cfg.pool:
        raise ValueError(f"pool needs an engine built with pool=True; {cfg.slug} has none")
    if layer.depthwise:
        groups = 1 if layer.pool else cfg.dw_groups   # (a pooled one: one group a layer)
        if layer.cin > groups * cfg.dw_channels:
            raise ValueError(f"a depthwise layer{' that pools' if layer.pool else ''} runs at "
                             f"most {groups} channel group{'s' if groups > 1 else ''} of "
                             f"dw_channels = "
                             f"{cfg.dw_channels} channels per engine layer on {cfg.slug}, not "
                             f"{layer.cin} channels: split it into channel groups")
        if max(layer.kernel_h, layer.kernel_w) > cfg.dw_kernel:
            raise ValueError(f"a depthwise kernel must be at most {cfg.dw_kernel}x"
                             f"{cfg.dw_kernel} (dw_kernel of {cfg.slug}), not "
                             f"{layer.kernel_h}x{layer.kernel_w}")
    g = geometry(cfg, layer)
    if g["blocks"] * g["chunks"] > cfg.weight_depth:
        raise ValueError(f"weights must fit the engine's weight memory ({cfg.weight_depth} words "
                         f"of {cfg.slug}), not {g['blocks']} blocks x {g['chunks']} chunks")


def geometry(cfg: ConvConfig, layer: ConvLayer) -> dict:
    kh, kw, cin, lanes = layer.kernel_h, layer.kernel_w, layer.cin, cfg.lanes
    if layer.depthwise:
        return {"packed": False, "depthwise": True, "groups": 1, "row_lanes": lanes,
                "shift_lanes": lanes, "rows_per_chunk": 1, "chunks": cfg.dw_issue(kh, kw),
                "blocks": math.ceil(cin / cfg.dw_channels)}
    packed = kw * cin <= lanes
    if packed:
        groups, row_lanes, shift = 1, kw * cin, cin
        per_chunk = min(lanes // row_lanes, kh)
        chunks = math.ceil(kh / per_chunk)
    else:
        groups, row_lanes, shift, per_chunk = math.ceil(cin / lanes), lanes, lanes, 1
        chunks = kh * kw * groups
    return {"packed": packed, "depthwise": False, "groups": groups, "row_lanes": row_lanes,
            "shift_lanes": shift, "rows_per_chunk": per_chunk, "chunks": chunks,
            "blocks": math.ceil(layer.cout / cfg.block)}


def descriptor(cfg: ConvConfig, layer: ConvLayer) -> dict:
    """The ``layer`` beat's fields (see :func:`.layouts.layer_layout`)."""
    check_layer(cfg, layer)
    g = geometry(cfg, layer)
    oh, ow = layer.out_size
    top, left, bottom, right = layer.pads
    return {"width": layer.width, "height": layer.height, "kernel_h": layer.kernel_h,
            "kernel_w": layer.kernel_w, "pad_top": top, "pad_left": left,
            "pad_bottom": bottom, "pad_right": right, "stride2_h": int(layer.stride_h == 2),
            "stride2_w": int(layer.stride_w == 2), "relu": int(layer.relu),
            "pool": int(layer.pool), "packed": int(g["packed"]),
            "depthwise": int(g["depthwise"]), "groups": g["groups"],
            "blocks": g["blocks"], "shift_lanes": g["shift_lanes"], "row_lanes": g["row_lanes"],
            "rows_per_chunk": g["rows_per_chunk"], "weight_words": g["blocks"] * g["chunks"],
            "out_width": ow, "out_height": oh, "acc_in": 0, "acc_out": 0, "reuse": 0}
