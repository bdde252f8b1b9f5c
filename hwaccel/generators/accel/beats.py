"""Conv result beats and activation words when the conv engine's ``block`` is below its ``lanes``.

A result beat holds ``block`` output channels and an activation word ``lanes``; with ``block =
lanes / k`` (``k`` = :attr:`.config.AccelConfig.word_beats`, a power of two) a word is ``k``
consecutive beats. The engine emits a pixel's output blocks one after the other (pixel, then
block), and a CONV's or GEMM's blocks a pixel are a multiple of ``k`` (the processor's checks),
so a pixel's beats make whole words, in order: :func:`join_beats` holds ``k - 1`` beats and
presents a word with the ``k``-th, in that beat's cycle, so a job's stores and its end keep
their cycles. The commands still count N in blocks (the engine's, the weights' and the
requantizers' unit); what addresses or counts the activation scratchpad takes words
(:func:`to_words`). With ``k = 1`` each function returns its input, so such a preset's netlist
is the one it was before any of this.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Signal, Value

from .config import AccelConfig

__all__ = ["join_beats", "pad_to_words", "to_words", "whole_words"]


def to_words(cfg: AccelConfig, blocks):
    """``blocks`` (a count or an offset in result beats) in activation words: a shift."""
    k = cfg.word_beats
    return blocks if k == 1 else blocks >> (k.bit_length() - 1)


def whole_words(cfg: AccelConfig, blocks):
    """Whether ``blocks`` result beats make whole words: their low bits are 0. Only for ``k >
    1`` (the checks leave it out at ``k = 1``, so such a netlist stays as it was)."""
    return blocks[: cfg.word_beats.bit_length() - 1] == 0


def join_beats(m, cfg: AccelConfig, valid, data, *, take, restart):
    """The words of the conv engine's beats ``valid`` / ``data``, taken while ``take``:
    ``(valid, data)`` of a word, valid in its last beat's cycle. ``restart`` (a job's start, a
    reset) begins a new word."""
    k = cfg.word_beats
    if k == 1:
        return valid, data
    data = Value.cast(data)   # (a view's len() counts its elements, not its bits)
    held = [Signal(len(data), name=f"beat_{i}") for i in range(k - 1)]
    phase = Signal(range(k), name="beat_phase")
    last = phase == k - 1
    with m.If(valid & take):
        m.d.sync += phase.eq(phase + 1)   # wraps at k, a power of two
        m.d.sync += [h.eq(v) for h, v in zip(held, [*held[1:], data])]
    with m.If(restart):
        m.d.sync += phase.eq(0)
    return valid & last, Cat(*held, data)


def pad_to_words(cfg: AccelConfig, w, axis: int, bias, multiplier, shift) -> tuple:
    """``(w, bias, multiplier, shift)`` with ``w``'s output channels (``axis``) and their
    requantizers padded to whole words when a beat is less than a word: the padding channels'
    weights and biases are 0, so they store zeros, as a word's unused channels hold (the
    driver's CONV and GEMM)."""
    n = w.shape[axis]
    pad = -n % cfg.lanes if cfg.word_beats > 1 else 0
    if not pad:
        return w, bias, multiplier, shift
    widths = [(0, 0)] * w.ndim
    widths[axis] = (0, pad)
    b, mu, sh = (np.broadcast_to(np.asarray(v, dtype=np.int64), (n,))
                 for v in (bias, multiplier, shift))
    return (np.pad(w, widths), np.pad(b, (0, pad)), np.pad(mu, (0, pad), mode="edge"),
            np.pad(sh, (0, pad), mode="edge"))
