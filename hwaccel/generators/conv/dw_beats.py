"""A depthwise pixel's beats in the conv sequencer (:mod:`.sequencer`): with ``dw_beats > 1`` a
channel group is a whole activation word, computed ``block`` channels a beat, each beat its own
``dw_chunks`` chunks and requantizer (see :mod:`.engine`, "Depthwise mode"). With one beat a
pixel each helper gives what the sequencer had without it, so those netlists do not change."""

from __future__ import annotations

from functools import reduce
from operator import or_

from amaranth.hdl import Const, Mux, Signal

from .config import ConvConfig

__all__ = ["group_words", "beat_ends", "beat_of", "beat_blocks", "group_rq"]


def group_words(cfg: ConvConfig, kernel_h, kernel_w):
    """A depthwise group's weight words, a pixel's chunks: ``dw_words`` (a constant), or with
    ``dw_trim`` those of the kernel's side (:meth:`.ConvConfig.dw_issue`), an expression."""
    if not cfg.dw_trim:
        return cfg.dw_words
    dk, side = cfg.dw_kernel, Mux(kernel_h > kernel_w, kernel_h, kernel_w)
    words = Const(cfg.dw_issue(dk, dk), range(cfg.dw_words + 1))
    for s in range(dk - 1, 0, -1):
        if cfg.dw_issue(s, s) != cfg.dw_issue(s + 1, s + 1):
            words = Mux(side <= s, cfg.dw_issue(s, s), words)
    return words


def beat_ends(cfg: ConvConfig, dc, last_dc):
    """A depthwise chunk ``dc`` (of a pixel's ``dw_words``) first and last of its beat's
    ``dw_chunks``; with one beat a pixel, the pixel's first and last."""
    if cfg.dw_beats == 1:
        return dc == 0, last_dc
    dwc = cfg.dw_chunks
    if dwc == 1:
        return Const(1), Const(1)
    hs = range(cfg.dw_beats)
    return (reduce(or_, [dc == h * dwc for h in hs]),
            reduce(or_, [dc == h * dwc + dwc - 1 for h in hs]))


def beat_of(m, cfg: ConvConfig, dc):
    """The beat ``h = dc // dw_chunks`` of a depthwise pixel's chunk ``dc``."""
    DB, dwc = cfg.dw_beats, cfg.dw_chunks
    if dwc == 1:
        return dc[:DB.bit_length() - 1]
    h = Signal(range(DB), name="dw_beat")
    with m.Switch(dc):
        for i in range(cfg.dw_words):
            with m.Case(i):
                m.d.comb += h.eq(i // dwc)
    return h


def beat_blocks(cfg: ConvConfig, d):
    """Descriptor ``d``'s result beats a pixel of a group, as blocks: its ``blocks``, and for a
    depthwise one ``dw_beats`` a group (the requantizers it loads, the beats the pool stage
    takes a pixel)."""
    if cfg.dw_beats == 1:
        return d.blocks
    return Mux(d.depthwise, d.blocks << (cfg.dw_beats.bit_length() - 1), d.blocks)


def group_rq(cfg: ConvConfig, dw, rq_count) -> list:
    """The requantizer beats loaded, as candidates, in the units a depthwise group's chunks
    wait for: all ``dw_beats`` of a group (``p_count >> log2(dw_beats)`` groups), a block's one."""
    if cfg.dw_beats == 1:
        return rq_count
    s = cfg.dw_beats.bit_length() - 1
    return [(c, Mux(dw, v >> s, v)) for c, v in rq_count]
