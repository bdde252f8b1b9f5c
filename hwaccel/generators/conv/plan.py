"""The beats that run one convolution layer on the engine, and how its results read back
(the weight order: :mod:`.layer`'s docstring)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...hdl.pack import pack, unpack
from ...numerics import INT8, SHIFT_MAX
from .config import ConvConfig
from .layer import ConvLayer, descriptor, geometry
from .layouts import layer_layout, pack_struct

__all__ = ["LayerPlan", "plan_layer"]


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
    """A depthwise channel group's weight words (``w``: its channels' filters; see the module
    docstring): each beat's ``dw_chunks``, beat after beat, or with ``dw_trim`` the chunks its
    kernel fills (:meth:`.ConvConfig.dw_issue`), lanes at :attr:`.ConvConfig.dw_taps`."""
    lanes, blk = cfg.lanes, cfg.block
    kh, kw = layer.kernel_h, layer.kernel_w
    taps, words = cfg.dw_slot_taps(kh, kw), []
    for h in range(cfg.dw_beats):
        wh = w[h * blk:(h + 1) * blk]
        for c in range(cfg.dw_issue(kh, kw) if cfg.dw_trim else cfg.dw_chunks):
            word = np.zeros((lanes, blk), dtype=np.int64)
            for lane, tap in enumerate(taps[c * lanes:(c + 1) * lanes]):
                if tap is not None:
                    r, kx = tap
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
    geo = geometry(cfg, layer)
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
