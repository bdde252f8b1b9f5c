"""The driver: a convolution layer's shape, its checks, and the beats that run it on the engine.

``plan_layer`` turns one layer (int8 input ``C x H x W``, int8 weights ``Cout x Cin x K x K``,
int32 bias and per-output-channel requantizers) into the exact beat sequences of the engine's
four input streams and knows how to read the ``result`` beats back into ``Cout x OH x OW``.

Weight order (what one weight word holds)
-----------------------------------------
The engine multiplies one *chunk* of the flattened im2col window (order ky, kx, cin) per cycle.

* **packed** (``K * Cin <= lanes``, e.g. the CNN's conv1): a line-buffer word holds the last
  ``K`` pixels of a row, so a chunk holds whole kernel rows: ``rows_per_chunk = lanes // (K*Cin)``
  rows of ``K*Cin`` lanes each. Chunks per output block: ``ceil(K / rows_per_chunk)``.
* **grouped** (otherwise): a chunk is one channel group (``lanes`` channels) of one tap
  ``(ky, kx)``. Chunks per output block: ``K * K * ceil(Cin / lanes)``.

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

__all__ = ["ConvLayer", "LayerPlan", "check_layer", "descriptor", "plan_layer"]


@dataclass(frozen=True)
class ConvLayer:
    """One convolution layer's shape (validated on its own; :func:`check_layer` checks it
    against an engine).

    ``padding`` is an int from 0 to ``(kernel - 1) // 2`` (zeros on every side) or ``"same"``,
    which means ``(kernel - 1) // 2`` (torch's "same" for odd kernels at stride 1). ``pool``
    adds a 2x2 stride-2 max-pool (floor mode, as ``torch.nn.functional.max_pool2d``).
    """

    height: int
    width: int
    cin: int
    cout: int
    kernel: int = 3
    stride: int = 1
    padding: int | str = 0
    relu: bool = True
    pool: bool = False

    def __post_init__(self):
        for name in ("height", "width", "cin", "cout", "kernel"):
            check_int(name, getattr(self, name), min=1)
        if self.stride not in (1, 2) or isinstance(self.stride, bool):
            raise ValueError(f"stride must be 1 or 2, not {self.stride!r}")
        if self.padding != "same":
            check_int("padding", self.padding, min=0, max=(self.kernel - 1) // 2)
        check_bool("relu", self.relu)
        check_bool("pool", self.pool)
        oh, ow = self.out_size
        if oh < 1 or ow < 1:
            raise ValueError(f"kernel must fit the padded {self.height}x{self.width} input "
                             f"(padding {self.pad}), not {self.kernel!r}")

    @property
    def pad(self) -> int:
        return (self.kernel - 1) // 2 if self.padding == "same" else int(self.padding)

    @property
    def out_size(self) -> tuple[int, int]:
        """Convolution output ``(OH, OW)`` (before pooling)."""
        p, k, s = self.pad, self.kernel, self.stride
        return (self.height + 2 * p - k) // s + 1, (self.width + 2 * p - k) // s + 1

    @property
    def result_size(self) -> tuple[int, int]:
        """What the engine emits: ``out_size``, halved (floor) when pooling."""
        oh, ow = self.out_size
        return (oh // 2, ow // 2) if self.pool else (oh, ow)

    @property
    def macs(self) -> int:
        oh, ow = self.out_size
        return oh * ow * self.cout * self.cin * self.kernel ** 2


def check_layer(cfg: ConvConfig, layer: ConvLayer) -> None:
    """Raise ``ValueError`` naming the parameter and the engine's limit if ``cfg`` cannot run it."""
    limits = (("width", "max_width"), ("height", "max_height"), ("cin", "max_cin"),
              ("cout", "max_cout"), ("kernel", "max_kernel"))
    for field, limit in limits:
        value, most = getattr(layer, field), getattr(cfg, limit)
        if value > most:
            raise ValueError(f"{field} must be at most {most} ({limit} of {cfg.slug}), "
                             f"not {value!r}")
    if layer.pool and not cfg.pool:
        raise ValueError(f"pool needs an engine built with pool=True; {cfg.slug} has none")


def _geometry(cfg: ConvConfig, layer: ConvLayer) -> dict:
    k, cin, lanes = layer.kernel, layer.cin, cfg.lanes
    packed = k * cin <= lanes
    if packed:
        groups, row_lanes, shift = 1, k * cin, cin
        per_chunk = min(lanes // row_lanes, k)
        chunks = math.ceil(k / per_chunk)
    else:
        groups, row_lanes, shift, per_chunk = math.ceil(cin / lanes), lanes, lanes, 1
        chunks = k * k * groups
    return {"packed": packed, "groups": groups, "row_lanes": row_lanes, "shift_lanes": shift,
            "rows_per_chunk": per_chunk, "chunks": chunks,
            "blocks": math.ceil(layer.cout / cfg.block)}


def descriptor(cfg: ConvConfig, layer: ConvLayer) -> dict:
    """The ``layer`` beat's fields (see :func:`.layouts.layer_layout`)."""
    check_layer(cfg, layer)
    g = _geometry(cfg, layer)
    oh, ow = layer.out_size
    return {"width": layer.width, "height": layer.height, "kernel": layer.kernel,
            "padding": layer.pad, "stride2": int(layer.stride == 2), "relu": int(layer.relu),
            "pool": int(layer.pool), "packed": int(g["packed"]), "groups": g["groups"],
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
        nb = math.ceil(layer.cout / cfg.block)
        out = np.zeros((nb * cfg.block, oh, ow), dtype=np.int64)
        lasts = []
        for i, w in enumerate(words):
            pix, b = divmod(i, nb)
            y, x = divmod(pix, ow)
            out[b * cfg.block:(b + 1) * cfg.block, y, x] = unpack(w, 8, cfg.block)
            lasts.append((w >> (8 * cfg.block)) & 1)
        return out[: layer.cout], lasts

    def expected_lasts(self) -> list[int]:
        return [int(i == self.result_count - 1) for i in range(self.result_count)]


def _check_int8(name: str, x: np.ndarray) -> None:
    if x.size and (x.min() < INT8.min or x.max() > INT8.max):
        raise ValueError(f"{name} must hold int8 values in [{INT8.min}, {INT8.max}]")


def plan_layer(cfg: ConvConfig, layer: ConvLayer, x, w, bias, multiplier, shift, *,
               junk_seed: int | None = None) -> LayerPlan:
    """Beats for ``layer`` on ``cfg``: ``x`` is ``Cin x H x W`` int8, ``w`` ``Cout x Cin x K x K``
    int8, ``bias`` int32 and ``multiplier``/``shift`` per output channel (numerics' Requant).

    With ``junk_seed`` the activation lanes that hold no channel carry random values instead of
    zeros (the engine must ignore them).
    """
    x, w = np.asarray(x, dtype=np.int64), np.asarray(w, dtype=np.int64)
    desc = descriptor(cfg, layer)
    k, cin, cout = layer.kernel, layer.cin, layer.cout
    if x.shape != (cin, layer.height, layer.width):
        raise ValueError(f"x must have shape {(cin, layer.height, layer.width)}, not {x.shape}")
    if w.shape != (cout, cin, k, k):
        raise ValueError(f"w must have shape {(cout, cin, k, k)}, not {w.shape}")
    _check_int8("x", x)
    _check_int8("w", w)
    lanes, blk = cfg.lanes, cfg.block
    geo = _geometry(cfg, layer)
    nb, groups = geo["blocks"], geo["groups"]
    bias, mult, sh = (np.broadcast_to(np.asarray(v, dtype=np.int64), (cout,))
                      for v in (bias, multiplier, shift))

    wp = np.zeros((nb * blk, cin, k, k), dtype=np.int64)
    wp[:cout] = w
    words = []
    step, rl = geo["rows_per_chunk"], geo["row_lanes"]
    kxs = [k - 1] if geo["packed"] else range(k)
    for b in range(nb):
        wb = wp[b * blk:(b + 1) * blk]
        for ky in range(0, k, step):
            for kx in kxs:
                for g in range(groups):
                    word = np.zeros((lanes, blk), dtype=np.int64)
                    for lane in range(lanes):
                        if geo["packed"]:
                            r, i = divmod(lane, rl)
                            if r < step and ky + r < k:
                                word[lane] = wb[:, i % cin, ky + r, i // cin]
                        elif g * lanes + lane < cin:
                            word[lane] = wb[:, g * lanes + lane, ky, kx]
                    words.append(pack(word.reshape(-1).tolist(), 8))
    assert len(words) == desc["weight_words"]

    from .layouts import requant_layout
    rq_layout = requant_layout(cfg)
    elem = rq_layout.elem_shape
    requant = []
    for b in range(nb):
        word = 0
        for n in range(blk):
            c = b * blk + n
            fields = ({"bias": bias[c], "multiplier": mult[c], "shift": sh[c]} if c < cout
                      else {"bias": 0, "multiplier": 0, "shift": 1})
            if not (1 <= fields["shift"] <= SHIFT_MAX):
                raise ValueError(f"shift must be in [1, {SHIFT_MAX}], not {fields['shift']}")
            word |= pack_struct(elem, fields) << (n * elem.size)
        requant.append(word)

    rng = np.random.default_rng(junk_seed) if junk_seed is not None else None
    used = cin if geo["packed"] else lanes
    acts = []
    for y in range(layer.height):
        for xx in range(layer.width):
            for g in range(groups):
                lane_vals = np.zeros(lanes, dtype=np.int64)
                chans = x[g * lanes:(g + 1) * lanes, y, xx] if not geo["packed"] else x[:, y, xx]
                lane_vals[: len(chans)] = chans
                if rng is not None:
                    junk = rng.integers(INT8.min, INT8.max + 1, lanes)
                    first_junk = len(chans) if geo["packed"] or g == groups - 1 else used
                    lane_vals[first_junk:] = junk[first_junk:]
                acts.append(pack(lane_vals.tolist(), 8))
    oh, ow = layer.result_size
    return LayerPlan(cfg, layer, pack_struct(layer_layout(cfg), desc), words, requant, acts,
                     oh * ow * nb)
