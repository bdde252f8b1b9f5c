"""The conv engine's issue logic: the line-buffer writer and the chunk sequencer (see
:mod:`.engine`, "Line buffer and chunking" and "Depthwise mode")."""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal

from .config import ConvConfig

__all__ = ["issue_logic"]


def _within(v, first, size):
    """``first <= v < first + size``: a padded row or column index inside the image."""
    return (v >= first) & (v < size + first)


def issue_logic(m, cfg: ConvConfig, desc, layer, activations, run, fill, start, banks,
                w_rd, w_count, rq_count) -> dict:
    """The writer (stores the ``activations`` stream into the row memories ``banks``, from
    the load phase on: ``fill``) and the sequencer (issues one chunk a cycle in the run phase:
    ``run``); ``start`` is the cycle the ``layer`` descriptor transfers; ``w_count`` and
    ``rq_count`` are the weight and requantizer beats loaded so far (a depthwise channel group
    issues once its own are in).
    Returns the signals the datapath (:meth:`.engine.ConvEngine._pipeline`) and the state
    machine use.

    A depthwise layer walks ``blocks`` channel groups, group after group (its activations
    arrive that way: each group's image in turn). Group ``g``'s rows live at word ``g`` of each
    column (``col * max_groups + g``), so the writer stores the next group's first rows while
    the sequencer reads the current one: a ring slot is shared only within a group."""
    L, NS, G = cfg.lanes, cfg.row_slots, cfg.max_groups
    KH, KW = desc.kernel_h, desc.kernel_w
    # Only the top and left padding move the window; the bottom and right ones are implied
    # by the output size, except that the writer stores the right padding columns too.
    top, left = desc.pad_top, desc.pad_left
    # Output-side counters: (oy, ox) pixel, nb block, then the chunk (ky, kx, g).
    oy, ox = Signal(range(cfg.max_height + 1)), Signal(range(cfg.max_width + 1))
    ytop = Signal(range(2 * cfg.max_height + 2))   # oy * stride
    xbase = Signal(range(2 * cfg.max_width + 2))   # ox * stride (padded column of kx = 0)
    base_slot = Signal(range(NS))                  # ring slot of input row ytop - top
    nb = Signal(range(cfg.max_blocks))            # block; depthwise: channel group
    ky, kx, g = Signal(range(cfg.max_kernel + L)), Signal(range(cfg.max_kernel)), Signal(
        range(G))
    w_addr = Signal(range(cfg.weight_depth))
    done = Signal()
    # Depthwise: the next padded column to read into the window register, and the chunk.
    rcol = Signal(range(cfg.max_width + cfg.max_kernel + 1))
    dc = Signal(range(max(cfg.dw_chunks, 2)))
    dw = desc.depthwise
    # Writer counters: input row, padded column, channel group.
    w_row, w_col = Signal(range(cfg.max_height + 1)), Signal(range(cfg.row_words + 1))
    w_g, w_slot = Signal(range(G)), Signal(range(NS))
    w_grp = Signal(range(cfg.max_blocks))         # depthwise: the writer's channel group
    w_base = Signal(range(cfg.weight_depth))     # depthwise: the group's first weight word
    sr = Signal(L * 8)
    kx_lo = Mux(desc.packed, KW - 1, 0)
    stride_h, stride_w = Mux(desc.stride2_h, 2, 1), Mux(desc.stride2_w, 2, 1)
    with m.If(start):
        m.d.sync += [oy.eq(0), ox.eq(0), ytop.eq(0), xbase.eq(0), nb.eq(0), ky.eq(0),
                     g.eq(0), w_addr.eq(0), done.eq(0), w_row.eq(0),
                     w_g.eq(0), w_slot.eq(0), rcol.eq(layer.payload.pad_left),
                     w_grp.eq(0), w_base.eq(0),
                     dc.eq(0), w_col.eq(Mux(layer.payload.packed, 0,
                                            layer.payload.pad_left)),
                     kx.eq(Mux(layer.payload.packed, layer.payload.kernel_w - 1, 0)),
                     base_slot.eq(-layer.payload.pad_top)]
    written = Signal()
    m.d.comb += written.eq(w_row == desc.height)

    # Writer: may fill row w_row once the window no longer needs the row it overwrites.
    # A packed row shifts through its padding columns (the word at a column holds the
    # kernel row ending there); a grouped or depthwise one skips them (masked on read).
    cols = desc.width + left + desc.pad_right
    first_col = Mux(desc.packed, 0, left)
    last_col = Mux(desc.packed, cols - 1, desc.width + left - 1)
    in_image = _within(w_col, left, desc.width)
    # It starts with the load phase (``fill``): the image's first rows need no weights.
    # Depthwise: a writer a group ahead of the sequencer fills that group's first ring slots,
    # one a group behind (rows a stride drops) stores freely, as after the last pixel.
    ahead, behind = dw & (w_grp > nb), dw & (w_grp < nb)
    allowed = fill & ~written & (done | behind
                                 | (w_row + top < Mux(ahead, 0, ytop) + NS))
    m.d.comb += activations.ready.eq(allowed & in_image)
    wr = allowed & (~in_image | activations.valid)
    pixel = Mux(in_image, activations.payload.as_value(), 0)
    # The new pixel enters at the top of the row's shift register (zero at a row start).
    shifted = (Cat(Mux(w_col == 0, 0, sr), pixel) >> (desc.shift_lanes * 8))[: L * 8]
    for b, (wp, _) in enumerate(banks):
        m.d.comb += [wp.addr.eq(w_col * G + w_g + w_grp), wp.data.eq(shifted),
                     wp.en.eq(wr & (w_slot == b))]
    with m.If(wr):
        m.d.sync += [sr.eq(shifted), w_g.eq(w_g + 1)]
        with m.If(w_g == desc.groups - 1):
            m.d.sync += [w_g.eq(0), w_col.eq(w_col + 1)]
            with m.If(w_col == last_col):
                m.d.sync += [w_col.eq(first_col), w_row.eq(w_row + 1),
                             w_slot.eq(w_slot + 1)]
                with m.If(dw & (w_row == desc.height - 1) & (w_grp != desc.blocks - 1)):
                    m.d.sync += [w_row.eq(0), w_slot.eq(0), w_grp.eq(w_grp + 1)]

    # Sequencer: a chunk may issue once the writer has stored the window's last column.
    bottom = ytop + KH - 1 - top
    need_row = Mux(bottom > desc.height - 1, desc.height - 1, bottom)
    need_col = xbase + KW - 1
    # Depthwise reads the window's columns one at a time (``rd``), before the pixel's first
    # chunk or with it, and never between its chunks (the window register is in use).
    dw_need = xbase + KW - 1
    rd = Signal()
    avail = ahead | ~behind & ((w_row > need_row)
                               | ((w_row == need_row) & (w_col > Mux(dw, rcol, need_col))))
    m.d.comb += rd.eq(run & ~done & dw & (dc == 0) & (rcol <= dw_need) & avail)
    dw_ready = (rcol > dw_need) | ((rcol == dw_need) & rd)
    credit = Signal()
    go = Signal()
    # The block's requantizer is in (depthwise: the group's weight words too; a dense layer's
    # run phase begins with all of its weight words in).
    rq_in = desc.reuse | ((rq_count > nb) & (~dw | (w_count >= w_base + cfg.dw_chunks)))
    m.d.comb += go.eq(run & ~done & credit & rq_in & Mux(dw, dw_ready, avail))
    step = desc.rows_per_chunk
    last_g, last_kx, last_ky = g == desc.groups - 1, kx == KW - 1, ky + step >= KH
    last_dc = dc == cfg.dw_chunks - 1               # a depthwise pixel's chunks
    first = Mux(dw, dc == 0, (g == 0) & (kx == kx_lo) & (ky == 0))
    last = Mux(dw, last_dc, last_g & last_kx & last_ky)
    last_nb = nb == desc.blocks - 1
    last_ox, last_oy = ox == desc.out_width - 1, oy == desc.out_height - 1
    end = last & last_nb & last_ox & last_oy

    # Depthwise: the next output row's first read (its column ``left``) shares the cycle of
    # a row's last chunk when that cycle reads nothing or a padding column (the read port is
    # free) and the writer has stored it: ``nx`` addresses the next row's ring slots, the
    # window register loads the read as the next row's first column after the chunk.
    nx = Signal()
    bottom_n = ytop + stride_h + KH - 1 - top
    need_row_n = Mux(bottom_n > desc.height - 1, desc.height - 1, bottom_n)
    avail_n = ahead | ~behind & ((w_row > need_row_n) | ((w_row == need_row_n)
                                                          & (w_col > left)))
    m.d.comb += nx.eq(go & dw & last & last_ox & ~last_oy & avail_n
                      & (~rd | (rcol >= desc.width + left)))

    def next_pixel(group=False):
        m.d.sync += [ox.eq(ox + 1), xbase.eq(xbase + stride_w)]
        if not group:
            m.d.sync += [nb.eq(0), w_addr.eq(0)]
        with m.If(last_ox):
            m.d.sync += [ox.eq(0), xbase.eq(0), oy.eq(oy + 1), ytop.eq(ytop + stride_h),
                         base_slot.eq(base_slot + stride_h), rcol.eq(Mux(nx, left + 1, left))]
            with m.If(last_oy):
                m.d.sync += done.eq(1)
                if group:   # depthwise: the next channel group, if any, from its first row
                    with m.If(~last_nb):
                        m.d.sync += [done.eq(0), oy.eq(0), ytop.eq(0), base_slot.eq(-top),
                                     nb.eq(nb + 1), w_base.eq(w_base + cfg.dw_chunks),
                                     w_addr.eq(w_base + cfg.dw_chunks)]

    with m.If(rd):
        m.d.sync += rcol.eq(rcol + 1)
    with m.If(go & dw):
        m.d.sync += [dc.eq(dc + 1), w_addr.eq(w_addr + 1)]
        with m.If(last_dc):
            m.d.sync += [dc.eq(0), w_addr.eq(w_base)]
            next_pixel(group=True)
    with m.Elif(go):
        m.d.sync += [g.eq(g + 1), w_addr.eq(w_addr + 1)]
        with m.If(last_g):
            m.d.sync += [g.eq(0), kx.eq(kx + 1)]
            with m.If(last_kx):
                m.d.sync += [kx.eq(kx_lo), ky.eq(ky + step)]
                with m.If(last_ky):
                    m.d.sync += [ky.eq(0), nb.eq(nb + 1)]
                    with m.If(last_nb):
                        next_pixel()

    # ``nx`` (late: it follows ``go``) only selects between values worked out for both cases
    # (the next row's or this one's), so it is not in front of the adders and compares.
    col_now = Mux(dw, rcol, xbase + kx)                # ``nx`` implies ``dw``
    col = Mux(nx, left, col_now)
    addr = Mux(dw, col * G + nb, col * G + g)
    m.d.comb += [rp.addr.eq(addr) for _, rp in banks]

    # A padding column reads as zeros (grouped and depthwise rows do not store it).
    col_ok = desc.packed | Mux(nx, _within(left, left, desc.width),
                               _within(col_now, left, desc.width))
    m.d.comb += w_rd.addr.eq(w_addr)
    rows = []
    for r in range(cfg.segments):
        slot = Signal(range(NS), name=f"slot{r}")
        m.d.comb += slot.eq(Mux(nx, base_slot + stride_h + ky + r, base_slot + ky + r))
        # input row + top, this row's window or the next one's
        row_ok = Mux(nx, _within(ytop + stride_h + ky + r, top, desc.height),
                     _within(ytop + ky + r, top, desc.height))
        # Rows past min(lanes, max_kernel) serve only the depthwise window.
        dense = ((r < step) & (ky + r < KH)) if r < min(L, cfg.max_kernel) else Const(0)
        ok = Mux(dw, r < KH, dense) & row_ok & col_ok
        rows.append((slot, ok))
    # A depthwise row's first read (column ``left``) clears the window register: the
    # left padding columns it holds are zeros without a read.
    return {"go": go, "first": first, "last": last, "end": end, "nb": nb, "rows": rows,
            "done": done, "written": written, "credit": credit, "rd": rd, "dc": dc,
            "rd_first": rd & (rcol == left), "nx": nx}
