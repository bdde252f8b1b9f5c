"""The conv engine's depthwise window register (see :mod:`.engine`, "Depthwise mode")."""

from __future__ import annotations

from amaranth.hdl import Mux, Signal

from .config import ConvConfig

__all__ = ["depthwise_window"]


def depthwise_window(m, cfg: ConvConfig, issue: dict, row_words: list, stage) -> list:
    """The ``dw_kernel x dw_kernel`` register of line-buffer words: a read (``rd``) shifts
    the rows' words in as its last column at stage 1 (a row's first read, ``rd_first``, zeroes
    the other columns: a row starts at its first image column, the left padding being zeros
    without a read), and a chunk's lane ``k`` takes position ``dw_taps[c*lanes + k]``
    (row-major, or ring by ring) of the register as it is after that cycle's shift (so a
    pixel's last read and its first chunk share a cycle). Returns the ``lanes`` stage-2
    words."""
    L, DK = cfg.lanes, cfg.dw_kernel
    s1_rd = stage("s1_rd", issue["rd"])
    s1_first = stage("s1_rd_first", issue["rd_first"])
    s1_dc = stage("s1_dc", issue["dc"], issue["dc"].shape())
    s1_nx = stage("s1_nx", issue["nx"])
    win = [[Signal(L * 8, name=f"win_r{r}_j{j}") for j in range(DK)] for r in range(DK)]
    view = []
    for r in range(DK):
        # A row's first read clears the older columns (the left padding is zeros). With
        # ``nx`` the words are the next row's first read: this cycle's chunk sees its own
        # padding column (zeros) or no read, and the register keeps the next row's column.
        new = Mux(s1_nx, 0, row_words[r])
        shifted = [*(Mux(s1_first, 0, word) for word in win[r][1:]), new]
        view += [Mux(s1_rd, shifted[j], win[r][j]) for j in range(DK)]
        with m.If(s1_nx):
            m.d.sync += [*(win[r][j].eq(0) for j in range(DK - 1)),
                         win[r][DK - 1].eq(row_words[r])]
        with m.Elif(s1_rd):
            m.d.sync += [win[r][j].eq(shifted[j]) for j in range(DK)]
    # With ``dw_beats`` beats a pixel, chunk ``i`` is chunk ``i % dw_chunks`` of beat ``h = i //
    # dw_chunks``, whose multipliers take the word's channels ``h x block`` on (``block`` a lane).
    DB, dwc, taps = cfg.dw_beats, cfg.dw_chunks, cfg.dw_taps
    bits = L * 8 if DB == 1 else cfg.block * 8
    out = []
    for k in range(L):
        word = Signal(bits, name=f"dw_word{k}")
        with m.Switch(s1_dc):
            for i in range(cfg.dw_words):   # the last chunk is the default (lint: no gaps)
                with m.Case(i) if i < cfg.dw_words - 1 else m.Default():
                    h, p = i // dwc, i % dwc * L + k
                    r, j = taps[p] if p < DK * DK else (0, 0)
                    src = 0 if p >= DK * DK else view[r * DK + j][h * bits:(h + 1) * bits]
                    m.d.comb += word.eq(src)
        out.append(stage(f"s2_dw{k}", word, bits, reset_less=True))   # data: no reset
    return out
