"""The conv engine's depthwise window register (:mod:`.engine`'s depthwise mode).

A depthwise layer has no reduction over channels, so the broadcast mapping (lane = channel of one
tap, block = output channel) would use only the diagonal, ``1/block`` of the MACs. Instead the lane
dimension runs over kernel taps and the block dimension over the channels of one channel group:
multiplier ``(k, n)`` takes channel ``n`` of window word ``k`` (a mux at its activation input) times
``W[k][n] = w[n][tap k]``, and the column sums are the per-channel window sums. The taps come from a
``dw_kernel x dw_kernel`` register of line-buffer words (``dw_kernel = min(dw_max_kernel,
max_kernel)``): the row memories all read one column a cycle, so one read gives a whole column of
the window (rows picked by the ring crossbar, rows outside the image zeroed), shifted in as the
register's last column. An output row's first pixel reads its ``KW - left`` image columns (its first
read clears the register: the left padding is zeros without a read), each later one its ``stride``
new columns; a pixel's last read and its first chunk share a cycle (the lanes see the register after
the shift), then its ``dw_chunks = ceil(dw_kernel**2 / lanes)`` chunks issue back to back (above 3 x
3 with one beat a pixel, those its kernel fills: ``dw_issue``). The next output row's first read
shares the cycle of a row's last chunk when that cycle reads nothing or only a padding column
(masked, so the read port is free): the rows are addressed in the next row's ring slots, the chunk
sees its zero padding column and the register keeps the read for the next row. Lane ``k`` of chunk
``c`` is register position ``dw_taps[c*lanes + k]`` (row-major; above 3 x 3 ring by ring), fixed in
hardware: a smaller kernel sits in the register's top-right corner and the planner zeroes the other
weights, so the mux is a constant per lane and chunk. Cost per pixel: ``stride_w - 1 + dw_issue``
cycles (a row start ``KW - 1 - left`` more, one less when its first read came early): 3x3 at stride
1 on 16 lanes is 1 cycle with 9 of 16 lanes busy (56%), on 4 lanes 3 cycles (75%). A channel group
is ``dw_channels = min(lanes, block)`` channels (one activation word), or, when the lanes are
``dw_beats`` (a power of two) blocks, the whole word of ``lanes`` channels in ``dw_beats`` beats:
beat ``h``'s chunks take channels ``n + h x block`` of the window words (the lane select picks that
slice, so each multiplier keeps one input), its own ``dw_chunks`` weight words and requantizer, and
a pixel's beats issue back to back (``dw_words = dw_beats x dw_chunks`` chunks; the accelerator
joins them into a word). A layer of ``blocks`` groups (at most ``dw_groups``, one when it pools; the
planner's layers and the accelerator's jobs alike) walks them one after the other: its activations
arrive group after group (each group's image in turn), its beats as each group's ``dw_words`` weight
words then its ``dw_beats`` requantizers. Group ``g``'s rows are word ``g`` of each line-buffer
column, so the writer stores the next group's first ``row_slots - top`` rows while the sequencer
still reads the current one (a ring slot is shared only within a group), and a stride's dropped rows
of a group are stored once its last pixel issued; the run phase begins once the first group's weight
words and first requantizer are in, the others load meanwhile, and a group issues once its
requantizers are in. A group's first read clears the window register as a row's does. Kernels above
``dw_kernel`` are refused. The register is ``dw_kernel**2`` words of flip-flops (on ``default``, 7 x
7 words of 16 lanes: 6,272 bits); with ``dw_trim`` a pixel of a kernel of side ``s`` issues
``ceil(s**2 / lanes)`` chunks (:meth:`.ConvConfig.dw_issue`), so a 3 x 3 one on 16 lanes takes one,
as on a 3 x 3 register.

Bounds: a layer's activations arrive one word (one group of one pixel) a cycle and the line buffer
reads one column a cycle, right padding columns included, so a group costs at least its input words
and its column reads: at stride 2 four input words per output pixel (14% of 16 x 16 MACs at best),
on DS-CNN's 5-wide map 6 reads per row of 5 pixels. Beating that takes a wider input path, not a
different fabric mapping.
"""

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
