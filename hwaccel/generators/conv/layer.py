"""The driver: a convolution layer's shape, its checks, and the beats that run it on the engine.

``plan_layer`` turns one layer (int8 input ``C x H x W``, int8 weights ``Cout x Cin x KH x KW``,
int32 bias and per-output-channel requantizers) into the exact beat sequences of the engine's
four input streams and knows how to read the ``result`` beats back into ``Cout x OH x OW``.

Weight order (what one weight word holds)
-----------------------------------------
The engine multiplies one *chunk* of the flattened im2col window (order ky, kx, cin) per cycle.

* **packed** (``KW * Cin <= lanes``, e.g. the CNN's conv1, DS-CNN's 10x4 first layer): a
  line-buffer word holds the last ``KW`` pixels of a row, so a chunk holds whole kernel rows:
  ``rows_per_chunk = lanes // (KW*Cin)`` rows of ``KW*Cin`` lanes each. Chunks per output
  block: ``ceil(KH / rows_per_chunk)``.
* **grouped** (otherwise): a chunk is one channel group (``lanes`` channels) of one tap
  ``(ky, kx)``. Chunks per output block: ``KH * KW * ceil(Cin / lanes)``.

* **depthwise** (``groups = cin = cout``, a kernel up to ``dw_kernel = 3`` a side): the
  engine keeps a ``dw_kernel x dw_kernel`` register of line-buffer words (rows ``r``, columns
  ``j``, the window's last column at ``j = dw_kernel - 1``); lane ``k`` of chunk ``c`` is
  register position ``p = c*lanes + k``, ``(r, j) = divmod(p, dw_kernel)``, and its weight for
  channel ``n`` is ``w[n, 0, r, j - (dw_kernel - KW)]`` (zero outside the kernel): ``dw_chunks
  = ceil(dw_kernel**2 / lanes)`` words a beat of a *channel group* of ``dw_channels``
  channels. With ``dw_beats = lanes / block > 1`` (a power of two) a group is a whole word of
  ``lanes`` channels, computed in ``dw_beats`` beats of ``block`` channels each (beat ``h``:
  channels ``h x block`` on, its own ``dw_chunks`` words and requantizer); else it is
  ``min(lanes, block)`` channels in one beat. A layer walks up to ``dw_groups`` groups (one
  when it pools), one after the other (descriptor ``blocks`` = groups, see :mod:`.engine`,
  "Depthwise mode"): each group's ``dw_words = dw_beats x dw_chunks`` weight words then the
  next's, ``dw_beats`` requantizer words a group, the activations a group's image after the
  other and the results too (a pixel's beats together). More channels are several layers
  (the accelerator's processor runs them as jobs of up to ``dw_groups`` groups).

Weights of lanes that hold no window element are zero, which is why the engine never needs to
mask activation lanes beyond ``Cin``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...config import check_bool, check_int
from ...hdl.pack import pack, unpack
from ...numerics import INT8, SHIFT_MAX
from .config import ConvConfig
from .layouts import layer_layout, pack_struct

__all__ = ["ConvLayer", "LayerPlan", "check_layer", "descriptor", "plan_layer", "same_padding"]


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
    g = _geometry(cfg, layer)
    if g["blocks"] * g["chunks"] > cfg.weight_depth:
        raise ValueError(f"weights must fit the engine's weight memory ({cfg.weight_depth} words "
                         f"of {cfg.slug}), not {g['blocks']} blocks x {g['chunks']} chunks")


def _geometry(cfg: ConvConfig, layer: ConvLayer) -> dict:
    kh, kw, cin, lanes = layer.kernel_h, layer.kernel_w, layer.cin, cfg.lanes
    if layer.depthwise:
        return {"packed": False, "depthwise": True, "groups": 1, "row_lanes": lanes,
                "shift_lanes": lanes, "rows_per_chunk": 1, "chunks": cfg.dw_words,
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
    g = _geometry(cfg, layer)
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


@dataclass(frozen=True)
class LayerPlan:
    """The beats for one layer and how to read its results back."""

    config: ConvConfig
    layer: ConvLayer
    layer_beat: int
    weights: list[int]
    requant: list[int]
    activations: list[int]
    result_count: int

    def assemble(self, words: list[int]) -> tuple[np.ndarray, list[int]]:
        """``Cout x OH x OW`` int64 output (pooled if the layer pools) and the ``last`` flags."""
        cfg, layer = self.config, self.layer
        if len(words) != self.result_count:
            raise ValueError(f"expected {self.result_count} result beats, got {len(words)}")
        oh, ow = layer.result_size
        # A block's channels: ``block`` output channels, or a depthwise group's
        # ``dw_channels``; a depthwise layer's results come group after group, a pixel's
        # ``dw_beats`` beats (``pb`` channels each) together.
        per, db = (cfg.dw_channels, cfg.dw_beats) if layer.depthwise else (cfg.block, 1)
        pb = per // db
        nb = math.ceil(layer.cout / per)
        out = np.zeros((nb * per, oh, ow), dtype=np.int64)
        lasts = []
        for i, w in enumerate(words):
            b, pix = divmod(i, oh * ow * db) if layer.depthwise else divmod(i, nb)[::-1]
            (pix, h), c0 = divmod(pix, db), b * per
            y, x = divmod(pix, ow)
            out[c0 + h * pb:c0 + (h + 1) * pb, y, x] = unpack(w, 8, cfg.block)[:pb]
            lasts.append((w >> (8 * cfg.block)) & 1)
        return out[: layer.cout], lasts

    def expected_lasts(self) -> list[int]:
        return [int(i == self.result_count - 1) for i in range(self.result_count)]


def _depthwise_words(cfg: ConvConfig, layer: ConvLayer, w: np.ndarray) -> list[int]:
    """A depthwise channel group's ``dw_words`` weight words (``w``: its channels' filters; see
    the module docstring): each beat's ``dw_chunks``, beat after beat."""
    lanes, blk, dk = cfg.lanes, cfg.block, cfg.dw_kernel
    kh, kw = layer.kernel_h, layer.kernel_w
    words = []
    for h in range(cfg.dw_beats):
        wh = w[h * blk:(h + 1) * blk]
        for c in range(cfg.dw_chunks):
            word = np.zeros((lanes, blk), dtype=np.int64)
            for lane in range(lanes):
                r, j = divmod(c * lanes + lane, dk)
                kx = j - (dk - kw)
                if r < kh and 0 <= kx < kw:
                    word[lane, :len(wh)] = wh[:, 0, r, kx]
            words.append(pack(word.reshape(-1).tolist(), 8))
    return words


def _check_int8(name: str, x: np.ndarray) -> None:
    if x.size and (x.min() < INT8.min or x.max() > INT8.max):
        raise ValueError(f"{name} must hold int8 values in [{INT8.min}, {INT8.max}]")


def plan_layer(cfg: ConvConfig, layer: ConvLayer, x, w, bias, multiplier, shift, *,
               junk_seed: int | None = None) -> LayerPlan:
    """Beats for ``layer`` on ``cfg``: ``x`` is ``Cin x H x W`` int8, ``w`` ``Cout x Cin x KH x KW``
    (depthwise: ``C x 1 x KH x KW``) int8, ``bias`` int32 and ``multiplier``/``shift`` per
    output channel (numerics' Requant).

    With ``junk_seed`` the activation lanes that hold no channel carry random values instead of
    zeros (the engine must ignore them).
    """
    x, w = np.asarray(x, dtype=np.int64), np.asarray(w, dtype=np.int64)
    desc = descriptor(cfg, layer)
    kh, kw, cin, cout = layer.kernel_h, layer.kernel_w, layer.cin, layer.cout
    if x.shape != (cin, layer.height, layer.width):
        raise ValueError(f"x must have shape {(cin, layer.height, layer.width)}, not {x.shape}")
    if w.shape != (cout, layer.group_cin, kh, kw):
        raise ValueError(f"w must have shape {(cout, layer.group_cin, kh, kw)}, not {w.shape}")
    _check_int8("x", x)
    _check_int8("w", w)
    lanes, blk = cfg.lanes, cfg.block
    geo = _geometry(cfg, layer)
    nb, groups = geo["blocks"], geo["groups"]
    bias, mult, sh = (np.broadcast_to(np.asarray(v, dtype=np.int64), (cout,))
                      for v in (bias, multiplier, shift))

    # A block's channels: ``block`` output channels, or a depthwise group's ``dw_channels``.
    per = cfg.dw_channels if layer.depthwise else blk
    wp = np.zeros((nb * per, layer.group_cin, kh, kw), dtype=np.int64)
    wp[:cout] = w
    words = [word for b in range(nb if layer.depthwise else 0)
             for word in _depthwise_words(cfg, layer, w[b * per:(b + 1) * per])]
    step, rl = geo["rows_per_chunk"], geo["row_lanes"]
    kxs = [kw - 1] if geo["packed"] else range(kw)
    for b in range(0 if layer.depthwise else nb):
        wb = wp[b * blk:(b + 1) * blk]
        for ky in range(0, kh, step):
            for kx in kxs:
                for g in range(groups):
                    word = np.zeros((lanes, blk), dtype=np.int64)
                    for lane in range(lanes):
                        if geo["packed"]:
                            r, i = divmod(lane, rl)
                            if r < step and ky + r < kh:
                                word[lane] = wb[:, i % cin, ky + r, i // cin]
                        elif g * lanes + lane < cin:
                            word[lane] = wb[:, g * lanes + lane, ky, kx]
                    words.append(pack(word.reshape(-1).tolist(), 8))
    assert len(words) == desc["weight_words"]

    from .layouts import requant_layout
    rq_layout = requant_layout(cfg)
    elem = rq_layout.elem_shape
    # A requantizer beat a block; a depthwise group's ``dw_beats``, ``pb`` channels each.
    db = cfg.dw_beats if layer.depthwise else 1
    pb = per // db
    requant = []
    for b in range(nb * db):
        word = 0
        for n in range(blk):
            c = b * pb + n
            fields = ({"bias": bias[c], "multiplier": mult[c], "shift": sh[c]}
                      if n < pb and c < cout
                      else {"bias": 0, "multiplier": 0, "shift": 1})
            if not (1 <= fields["shift"] <= SHIFT_MAX):
                raise ValueError(f"shift must be in [1, {SHIFT_MAX}], not {fields['shift']}")
            word |= pack_struct(elem, fields) << (n * elem.size)
        requant.append(word)

    # A pixel's channel groups in turn (``lanes`` channels a word); a depthwise layer's groups
    # one image after the other (``dw_channels`` channels a word).
    rng = np.random.default_rng(junk_seed) if junk_seed is not None else None
    h, wd = layer.height, layer.width
    order = ([(g, y, xx) for g in range(nb) for y in range(h) for xx in range(wd)]
             if layer.depthwise else
             [(g, y, xx) for y in range(h) for xx in range(wd) for g in range(groups)])
    word_chans = per if layer.depthwise else lanes
    acts = []
    for g, y, xx in order:
        lane_vals = np.zeros(lanes, dtype=np.int64)
        chans = (x[:, y, xx] if geo["packed"]
                 else x[g * word_chans:(g + 1) * word_chans, y, xx])
        lane_vals[: len(chans)] = chans
        if rng is not None:   # the lanes no channel of this word holds
            lane_vals[len(chans):] = rng.integers(INT8.min, INT8.max + 1, lanes)[len(chans):]
        acts.append(pack(lane_vals.tolist(), 8))
    oh, ow = layer.result_size
    return LayerPlan(cfg, layer, pack_struct(layer_layout(cfg), desc), words, requant, acts,
                     oh * ow * nb * db)
