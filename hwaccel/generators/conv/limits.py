"""The descriptor's sums the conv sequencer (:mod:`.sequencer`) compares its counters with
or adds to them, and the window's row sums at an output row; the sequencer keeps them in
registers worked out a cycle ahead (:func:`.ahead.kept`); and the line buffer's column tests and
word addresses."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux

from .config import ConvConfig

__all__ = ["layer_sums", "line_word", "window_rows", "within"]


def layer_sums(cfg: ConvConfig, d) -> dict:
    """A descriptor's sums the sequencer compares counters with or adds to them (fixed through
    a layer; see :func:`window_rows` for the row ones)."""
    top, stride = d.pad_top, Mux(d.stride2_h, 2, 1)
    return {"g_hi": d.groups - 1, "kw_hi": d.kernel_w - 1, "nb_hi": d.blocks - 1,
            "ox_hi": d.out_width - 1, "oy_hi": d.out_height - 1, "h_hi": d.height - 1,
            "kh_hi": d.kernel_h - 1,
            "ky_lim": d.kernel_h - d.rows_per_chunk,            # last_ky: ky + step >= KH
            "col_end": d.width + d.pad_left,                   # past the image's last column
            "w_last": Mux(d.packed, d.width + d.pad_left + d.pad_right - 1,
                          d.width + d.pad_left - 1),           # the writer's last column
            "kb": d.kernel_h - 1 - top, "kbs": d.kernel_h - 1 - top + stride,
            "hb": d.height + top - 1, "hbs": d.height + top - 1 - stride,
            "ts": stride - top, "wlim0": cfg.row_slots - top,
            "left": d.pad_left, "height": d.height}


def window_rows(d, lim: dict, y) -> dict:
    """The window's row sums at ``ytop = y`` (``oy * stride``), ``ky = 0`` (``lim``: the
    descriptor ``d``'s :func:`layer_sums`): the last input row it needs (clamped to the image)
    for this output row and the next, the padding bounds (row ``r`` of a chunk is in the image
    if ``lo >= -r`` and ``hi >= r``; ``lo``, ``hi`` and ``kleft``, the kernel rows left, move
    with ``ky``) of this window and the next row's (depthwise: ``ky`` = 0), and the writer's
    limit (it may store input row ``w_row`` while ``w_row < wlim``, i.e. w_row + top < ytop +
    row_slots)."""
    def clamp(b):
        return Mux(b > lim["h_hi"], lim["h_hi"], b)

    return {"need_row": clamp(y + lim["kb"]), "need_row_n": clamp(y + lim["kbs"]),
            "lo_n": y + lim["ts"], "hi_n": lim["hbs"] - y, "wlim": y + lim["wlim0"],
            "lo": y - d.pad_top, "hi": lim["hb"] - y, "kleft": lim["kh_hi"]}


def within(v, first, end):
    """``first <= v < end``: a padded column inside the image (``end`` = left + width)."""
    return (v >= first) & (v < end)


def line_word(cfg: ConvConfig, col, sub):
    """Line-buffer word ``col * max_groups + sub`` (``sub`` < max_groups); with a power of two
    of groups and ``sub`` no wider, the bits side by side (no adder)."""
    G = cfg.max_groups
    bits = G.bit_length() - 1
    if G == 1 << bits and len(sub) <= bits:
        return Cat(sub, Const(0, bits - len(sub)), col)
    return col * G + sub
