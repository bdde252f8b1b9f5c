"""The conv engine's issue logic: the line-buffer writer and the chunk sequencer (see
:mod:`.engine`, "Line buffer and chunking", and :mod:`.window`).

Timing: the sums of the descriptor and the counters (the window's last row and column, its
rows' padding bounds, the writer's limit) are kept in registers worked out a cycle ahead
(:func:`.ahead.kept`), and so are the compares of the counters with them
(:func:`.ahead.flags`, from the counters' next values, :func:`.ahead.next_values`): the issue
condition ``go`` is a few gates of flip-flops, and what it gates (the counters' steps, the
row memories' read address, the first stage's registers, the streams' ``ready``) only selects
between values built beside it.
Where both sides of a compare step late, every pair of candidate next values is compared and
the late conditions select the result (:func:`.ahead.compare`)."""

from __future__ import annotations

from operator import eq, ge, gt, lt

from amaranth.hdl import Cat, Const, Mux, Signal

from .ahead import choices, compare, flags, held, kept, late_step, next_values, stepped
from .config import ConvConfig
from .dw_beats import beat_ends, beat_of, group_rq, group_words
from .limits import layer_sums, line_word, window_rows, within

__all__ = ["issue_logic"]


def issue_logic(m, cfg: ConvConfig, desc, layer, activations, run, fill, start, banks,
                w_rd, w_count, rq_count) -> dict:
    """The writer (stores the ``activations`` stream into the row memories ``banks``, from
    the load phase on: ``fill``) and the sequencer (issues one chunk a cycle in the run phase:
    ``run``); ``start`` is the cycle the ``layer`` descriptor transfers; ``w_count`` and
    ``rq_count`` are the next values of the weight and requantizer beats loaded so far, as
    :func:`.ahead.choices` with the register as their hold case (:func:`.ahead.held`; a
    depthwise channel group issues once its own are in; ``w_count``'s first candidate the count
    plus one, a beat taken; its hold case, the weight count itself, is ``w_loaded`` below).
    The issue condition ``go`` is of registers only (``credit``, which the engine drives,
    too): the compares it needs (the writer's progress against the window, the requantizer
    and weight beats against the block, the read column against the window's last) are kept
    as flags worked out a cycle ahead from the counters' next values (:func:`.ahead.next_values`).
    Returns the signals the datapath (:meth:`.engine.ConvEngine._pipeline`) and the state
    machine use.

    A depthwise layer walks ``blocks`` channel groups, group after group (its activations
    arrive that way: each group's image in turn). Group ``g``'s rows live at word ``g`` of each
    column (``col * max_groups + g``), so the writer stores the next group's first rows while
    the sequencer reads the current one: a ring slot is shared only within a group."""
    L, NS, G = cfg.lanes, cfg.row_slots, cfg.max_groups
    new = layer.payload
    KH = desc.kernel_h
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
    dc = Signal(range(max(cfg.dw_words, 2)))      # (beat h's chunks: h*dw_chunks on)
    DB = cfg.dw_beats
    dw = desc.depthwise
    # Writer counters: input row, padded column, channel group.
    w_row, w_col = Signal(range(cfg.max_height + 1)), Signal(range(cfg.row_words + 1))
    w_g, w_slot = Signal(range(G)), Signal(range(NS))
    w_grp = Signal(range(cfg.max_blocks))         # depthwise: the writer's channel group
    w_base = Signal(range(cfg.weight_depth))     # depthwise: the group's first weight word
    sr = Signal(L * 8)
    lim_new = layer_sums(cfg, new)
    lim, lim_n, _ = kept(m, layer_sums(cfg, desc), start, lim_new)
    kx_lo = Mux(desc.packed, lim["kw_hi"], 0)
    stride_h, stride_w = Mux(desc.stride2_h, 2, 1), Mux(desc.stride2_w, 2, 1)
    # The read column's and the writer's counters: their next values (the flags compare them).
    rcol_n, w_row_n, w_col_n, w_g_n, w_grp_n = next_values(m, rcol, w_row, w_col, w_g, w_grp)
    with m.If(start):
        m.d.sync += [ytop.eq(0), xbase.eq(0), w_addr.eq(0), done.eq(0),
                     w_slot.eq(0), w_base.eq(0), dc.eq(0), base_slot.eq(-new.pad_top)]
        m.d.comb += [w_row_n.eq(0), w_g_n.eq(0), w_grp_n.eq(0), rcol_n.eq(new.pad_left),
                     w_col_n.eq(Mux(new.packed, 0, new.pad_left))]

    # The sequencer's steps, each taken in a cycle with ``go``: a kernel row (``ky`` moves
    # on), a block's last chunk (``ky`` back to 0), a pixel's (``pix``), an output row's
    # (``row``: ``ytop`` moves on) and a depthwise channel group's (``grp``: ``ytop`` back to
    # 0). They are of registers only; ``go`` (the issue condition, which arrives last) gates
    # the registers they update.
    go = Signal()
    step = desc.rows_per_chunk
    # Each counter at its last value: flags a cycle ahead, like the issue condition's.
    counters = ("g", "kx", "ky", "nb", "ox", "oy")
    last_g, last_kx, last_ky, last_nb, last_ox, last_oy = (
        Signal(name=f"last_{k}") for k in counters)
    dwc = group_words(cfg, KH, desc.kernel_w)      # a depthwise group's words, chunks
    last_dc = dc == dwc - 1
    kx_end = ~dw & last_g & last_kx
    pix = (dw & last_dc) | (kx_end & last_ky & last_nb)
    row = pix & last_ox
    grp = row & dw & last_oy & ~last_nb
    # The chunk and pixel counters move only with ``go``: a chunk steps ``g``, then ``kx``,
    # then ``ky`` by ``step``, then the block ``nb`` (depthwise: ``nb`` is the channel group,
    # stepped at its last pixel); the pixel ``ox``, then ``oy``. Each step is of registers,
    # and so are the flags' compares of it and of the value without ``go``: ``go`` selects last.
    moves = {
        "g": (g, Mux(dw, g, Mux(last_g, 0, g + 1)), 0),
        "kx": (kx, Mux(dw | ~last_g, kx, Mux(last_kx, kx_lo, kx + 1)),
               Mux(new.packed, new.kernel_w - 1, 0)),
        "ky": (ky, Mux(kx_end, Mux(last_ky, 0, ky + step), ky), 0),
        "nb": (nb, Mux(dw, Mux(grp, nb + 1, nb),
                       Mux(kx_end & last_ky, Mux(last_nb, 0, nb + 1), nb)), 0),
        "ox": (ox, Mux(pix, Mux(last_ox, 0, ox + 1), ox), 0),
        "oy": (oy, Mux(row, Mux(grp, 0, oy + 1), oy), 0),
    }
    stepping = {k: late_step(m, r, k, go, v, start, first) for k, (r, v, first) in moves.items()}
    limits = {"g": (eq, "g_hi"), "kx": (eq, "kw_hi"), "ky": (ge, "ky_lim"), "nb": (eq, "nb_hi"),
              "ox": (eq, "ox_hi"), "oy": (eq, "oy_hi")}
    # ``ox``'s steps as candidates (:func:`.ahead.choices`): its compares run beside ``pix``,
    # which only selects (its decode in front of the step's muxes and the compare was
    # dfd1651's fourth placed path, 13.4 ns into ``last_ox``).
    stepping["ox"] = choices(m, ox, "ox", [(go & pix & last_ox, 0), (go & pix, ox + 1),
                                           (start, 0)])
    for flag, k in zip((last_g, last_kx, last_ky, last_nb, last_ox, last_oy), counters):
        op, key = limits[k]
        m.d.sync += flag.eq(compare(op, stepping[k], [(None, lim_n[key])]))
    nb_held = held(stepping["nb"], nb)   # (for the flags gated by ``fill``)
    # ytop + stride_h, as ytop stores it: ytop's next value at an output row's end.
    ytop_n = Signal.like(ytop)
    with m.If(start):
        m.d.sync += ytop_n.eq(Mux(new.stride2_h, 2, 1))
    with m.Elif(go & row):
        m.d.sync += ytop_n.eq(Mux(grp, stride_h, ytop_n + stride_h))
    # ky moves only within a row (and ky + step < KH there, so lo, hi and kleft just step).
    rows, _, _ = kept(m, {**window_rows(desc, lim, ytop), "lo": ytop + ky - top,
                     "hi": lim["hb"] - (ytop + ky), "kleft": lim["kh_hi"] - ky},
                 start, window_rows(new, lim_new, 0), go,
                 lambda r: [(grp, window_rows(desc, lim, 0)),
                            (row, window_rows(desc, lim, ytop_n)),
                            (kx_end & last_ky, {k: v for k, v in
                                                window_rows(desc, lim, ytop).items()
                                                if k in ("lo", "hi", "kleft")}),
                            (kx_end, {"lo": r["lo"] + step, "hi": r["hi"] - step,
                                      "kleft": r["kleft"] - step})])
    # The window's last column, and a depthwise group's last weight word (plus one).
    # (the next pixel's: xlast + stride, one adder where xbase + stride + kw_hi took two)
    xlast = kept(
        m, {"xlast": xbase + desc.kernel_w - 1}, start, {"xlast": lim_new["kw_hi"]}, go,
        lambda r: [(row, {"xlast": lim["kw_hi"]}), (pix, {"xlast": r["xlast"] + stride_w})])[0][
        "xlast"]
    # The next group's need too, a register, so the flag's candidate is not two adders
    # from ``w_base`` (the netlist estimate's deepest path at 3360b44, 13.1 ns); and each
    # less one: where a beat is taken the count's next value is ``w_loaded + 1``, and
    # ``need <= w_loaded + 1`` is compared as ``need - 1 <= w_loaded``, no adder in front of
    # the compare (the estimate's deepest path at 820183c, 12.9 ns). (``w_need1`` holds
    # ``w_base + dwc - 1``; its ``now`` is written without the ``- 1``, which would make the
    # shape signed: ``kept`` reads ``now`` only for the registers' shapes.)
    most, dwn = cfg.dw_words, group_words(cfg, new.kernel_h, new.kernel_w)
    needs_w = kept(m, {"w_need": w_base + most, "w_need_g": w_base + 2 * most,
                       "w_need1": w_base + most, "w_need_g1": w_base + 2 * most}, start,
                   {"w_need": dwn, "w_need_g": 2 * dwn, "w_need1": dwn - 1,
                    "w_need_g1": 2 * dwn - 1}, go,
                   lambda r: [(grp, {"w_need": r["w_need_g"], "w_need_g": r["w_need_g"] + dwc,
                                     "w_need1": r["w_need_g1"],
                                     "w_need_g1": r["w_need_g1"] + dwc})])[0]
    # (After a start no weight word is in: the flag is 0, as :func:`.ahead.held` has it.)
    w_need_c = choices(m, needs_w["w_need"], "w_need", [(go & grp, needs_w["w_need_g"])])
    w_need1_c = choices(m, needs_w["w_need1"], "w_need1", [(go & grp, needs_w["w_need_g1"])])
    (w_taken, _), (_, w_loaded) = w_count

    def w_ok_of(cands):   # (``w_need_c``'s conditions select last, as in :func:`compare`)
        (cond, (need, need1)), rest = cands[0], cands[1:]
        ok = Mux(w_taken, need1 <= w_loaded, need <= w_loaded)
        return ok if cond is None else Mux(cond, ok, w_ok_of(rest))
    w_ok = fill & w_ok_of([(c, (v, v1)) for (c, v), (_, v1)
                           in zip(w_need_c, w_need1_c, strict=True)])
    # The flags, worked out a cycle ahead: the writer a group ahead of or behind the
    # sequencer (depthwise), past the window's last row or on it (this window's, and the
    # next row's for ``nx``), past the column a chunk needs or the image's first; the read
    # column past the window's last, on it, or past the image; the block's requantizer in,
    # and (a depthwise group) its weight words; the writer's room (a group ahead, and beside
    # the window), its counters at their ends, its column in the image.
    # The window-row flags read 0 in the cycle after a start, rather than follow the new
    # descriptor's sums: nothing is stored yet, so ``avail`` is 0 either way and no chunk,
    # read or ``nx`` issues in that cycle. They, the group flags and the weight and
    # requantizer flags read 0 outside the load and run phases (``fill``), where nothing
    # reads them, so they compare the counters' candidates without ``start``'s
    # (:func:`.ahead.held`).
    # The flags comparing two counters that both step late (the writer's row, column, word
    # and group, the read column, the window's last row and column) or one with a limit
    # compare every pair of candidate next values (:func:`compare`); the steps' conditions,
    # below, are these signals.
    w_step, w_inc, w_wrap, rd, nx_if = Signal(), Signal(), Signal(), Signal(), Signal()
    wr_c = Signal()   # the writer stores a word (``wr``)
    w_row_c = choices(m, w_row, "w_row", [(w_inc & w_wrap, 0), (w_inc, w_row + 1)])
    w_col_c = choices(m, w_col, "w_col", [
        (w_inc, Mux(desc.packed, 0, left)), (w_step, w_col + 1),
        (start, Mux(new.packed, 0, new.pad_left))])
    rcol_c = choices(m, rcol, "rcol", [(go & row, Mux(nx_if, left + 1, left)),
                                        (rd, rcol + 1), (start, new.pad_left)])
    xlast_c = choices(m, xlast, "xlast", [(start, lim_new["kw_hi"]), (go & row, lim["kw_hi"]),
                                           (go & pix, xlast + stride_w)])

    def lim_c(k):
        return choices(m, lim[k], f"{k}_n", [(start, lim_new[k])])

    # The window's last rows at a group's first output row and at the next output row, kept
    # too, so the row flags' candidates are registers.
    needs = ("need_row", "need_row_n", "wlim")

    def need_at(d, lim_d, y):
        return {f"{k}_at": v for k, v in window_rows(d, lim_d, y).items() if k in needs}

    need_0 = kept(m, need_at(desc, lim, 0), start, need_at(new, lim_new, 0))[0]
    need_r = kept(m, need_at(desc, lim, ytop_n), start,
                  need_at(new, lim_new, Mux(new.stride2_h, 2, 1)), go,
                  [(grp, need_at(desc, lim, stride_h)),
                   (row, need_at(desc, lim, stepped(m, ytop_n, ytop_n + stride_h, "ytop_s")))])[0]

    def past_on(need):   # (after a start they read 0: see above)
        c = choices(m, rows[need], need, [(go & grp, need_0[f"{need}_at"]),
                                           (go & row, need_r[f"{need}_at"])])
        return fill & compare(lt, c, w_row_c), fill & compare(eq, c, w_row_c)

    left_c, end_c = lim_c("left"), lim_c("col_end")
    # The writer's room and end: its row's candidates against the window's limit (its
    # candidates too) and the descriptor's; at a start the row is 0.
    wlim_c = choices(m, rows["wlim"], "wlim", [(go & grp, need_0["wlim_at"]),
                                              (go & row, need_r["wlim_at"])])

    def w_row_vs(op, first, cands):   # (``cands`` may step with ``go``: they select last)
        return Mux(start, op(0, first), compare(lambda c, w: op(w, c), cands, w_row_c))

    (row_past, row_on), (row_past_n, row_on_n) = past_on("need_row"), past_on("need_row_n")
    # The writer's channel group and word as candidates too (their steps follow ``wr``; at
    # a start the group is 0, as ``nb``, so neither is ahead).
    w_grp_c = choices(m, w_grp, "w_grp", [(w_inc & w_wrap, w_grp + 1)])
    w_g_c = choices(m, w_g, "w_g", [(w_step, 0), (wr_c, w_g + 1), (start, 0)])
    f = flags(m, ahead=fill & compare(lt, nb_held, w_grp_c),
               behind=fill & compare(gt, nb_held, w_grp_c),
               row_past=row_past, row_on=row_on,
               col_past_r=compare(lt, rcol_c, w_col_c),
               col_past_x=compare(lt, xlast_c, w_col_c),
               rcol_past=compare(gt, rcol_c, xlast_c), rcol_on=compare(eq, rcol_c, xlast_c),
               rq_ok=fill & compare(lt, nb_held, group_rq(cfg, dw, rq_count)), w_ok=w_ok,
               room_ahead=w_row_vs(lt, lim_new["wlim0"], [(None, lim["wlim0"])]),
               room=w_row_vs(lt, lim_new["wlim0"], wlim_c),
               written=w_row_vs(eq, lim_new["height"], [(None, lim["height"])]),
               w_g_last=compare(eq, w_g_c, lim_c("g_hi")),
               w_col_last=compare(eq, w_col_c, lim_c("w_last")),
               w_row_last=Mux(start, lim_new["h_hi"] == 0,
                              compare(eq, w_row_c, [(None, lim["h_hi"])])),
               w_grp_last=Mux(start, lim_new["nb_hi"] == 0,
                              compare(eq, w_grp_c, [(None, lim["nb_hi"])])),
               in_image=compare(ge, w_col_c, left_c) & compare(lt, w_col_c, end_c),
               row_past_n=row_past_n, row_on_n=row_on_n,
               col_past_l=compare(gt, w_col_c, left_c), rcol_out=compare(ge, rcol_c, end_c))
    written = f["written"]

    # Writer: may fill row w_row once the window no longer needs the row it overwrites.
    # A packed row shifts through its padding columns (the word at a column holds the
    # kernel row ending there); a grouped or depthwise one skips them (masked on read).
    first_col = Mux(desc.packed, 0, left)
    in_image = f["in_image"]
    # It starts with the load phase (``fill``): the image's first rows need no weights.
    # Depthwise: a writer a group ahead of the sequencer fills that group's first ring slots,
    # one a group behind (rows a stride drops) stores freely, as after the last pixel.
    # (w_row + top < ytop + NS, or < NS a group ahead.)
    ahead, behind = dw & f["ahead"], dw & f["behind"]
    room = Mux(ahead, f["room_ahead"], f["room"])
    allowed = fill & ~written & (done | behind | room)
    m.d.comb += activations.ready.eq(allowed & in_image)
    wr = allowed & (~in_image | activations.valid)
    m.d.comb += wr_c.eq(wr)
    pixel = Mux(in_image, activations.payload.as_value(), 0)
    # The new pixel enters at the top of the row's shift register (zero at a row start).
    # (``w_col == 0`` as a register from the column's candidates, a cycle ahead: the compare
    # in front of the shift and into every row's write data was a placed path at ef1bf89,
    # 14.2 ns; a reset leaves the column 0)
    col0 = Signal(init=1, name="w_col0")
    m.d.sync += col0.eq(compare(eq, w_col_c, [(None, 0)]))
    shifted = (Cat(Mux(col0, 0, sr), pixel) >> (desc.shift_lanes * 8))[: L * 8]
    for b, (wp, _) in enumerate(banks):
        m.d.comb += [wp.addr.eq(w_col * G + w_g + w_grp), wp.data.eq(shifted),
                     wp.en.eq(wr & (w_slot == b))]
    m.d.comb += [w_step.eq(wr & f["w_g_last"]), w_inc.eq(w_step & f["w_col_last"]),
                 w_wrap.eq(dw & f["w_row_last"] & ~f["w_grp_last"])]
    with m.If(wr):
        m.d.sync += sr.eq(shifted)
        m.d.comb += w_g_n.eq(w_g + 1)
        with m.If(w_step):
            m.d.comb += [w_g_n.eq(0), w_col_n.eq(w_col + 1)]
            with m.If(w_inc):
                m.d.sync += w_slot.eq(w_slot + 1)
                m.d.comb += [w_col_n.eq(first_col), w_row_n.eq(w_row + 1)]
                with m.If(w_wrap):
                    m.d.sync += w_slot.eq(0)
                    m.d.comb += [w_row_n.eq(0), w_grp_n.eq(w_grp + 1)]

    # Sequencer: a chunk may issue once the writer has stored the window's last row
    # (``need_row``) up to its last column (``xlast``; depthwise: the column it reads).
    # Depthwise reads the window's columns one at a time (``rd``), before the pixel's first
    # chunk or with it, and never between its chunks (the window register is in use).
    def stored(row_past, row_on, col_past):
        return ahead | ~behind & (row_past | (row_on & col_past))

    avail = stored(f["row_past"], f["row_on"], Mux(dw, f["col_past_r"], f["col_past_x"]))
    m.d.comb += rd.eq(run & ~done & dw & (dc == 0) & ~f["rcol_past"] & avail)
    # (the same as (rcol == xlast) & rd within ``go``, which has rd's other terms)
    dw_ready = f["rcol_past"] | (f["rcol_on"] & (dc == 0) & avail)
    credit = Signal()
    # The block's requantizer is in (depthwise: the group's weight words too; a dense layer's
    # run phase begins with all of its weight words in).
    rq_in = desc.reuse | (f["rq_ok"] & (~dw | f["w_ok"]))
    m.d.comb += go.eq(run & ~done & credit & rq_in & Mux(dw, dw_ready, avail))
    dw_first, dw_last = beat_ends(cfg, dc, last_dc)
    first = Mux(dw, dw_first, (g == 0) & (kx == kx_lo) & (ky == 0))
    last = Mux(dw, dw_last, last_g & last_kx & last_ky)
    # (a depthwise pixel's last beat ends it; with one beat a pixel that is ``last``)
    px_last = last if DB == 1 else Mux(dw, last_dc, last)
    end = px_last & last_nb & last_ox & last_oy

    # Depthwise: the next output row's first read (its column ``left``) shares the cycle of
    # a row's last chunk when that cycle reads nothing or a padding column (the read port is
    # free) and the writer has stored it: ``nx`` addresses the next row's ring slots, the
    # window register loads the read as the next row's first column after the chunk.
    # ``nx_if`` is the same without ``go``, for what ``go`` already gates.
    nx = Signal()
    avail_n = stored(f["row_past_n"], f["row_on_n"], f["col_past_l"])
    # (~rd | rcol >= col_end: within ``go``, a depthwise rd is rcol == xlast, and rcol <= xlast)
    m.d.comb += [nx_if.eq(dw & px_last & last_ox & ~last_oy & avail_n
                          & (f["rcol_past"] | f["rcol_out"])),
                 nx.eq(go & nx_if)]

    def next_pixel(group=False):
        m.d.sync += xbase.eq(xbase + stride_w)
        if not group:
            m.d.sync += w_addr.eq(0)
        with m.If(last_ox):
            m.d.sync += [xbase.eq(0), ytop.eq(ytop_n), base_slot.eq(base_slot + stride_h)]
            m.d.comb += rcol_n.eq(Mux(nx_if, left + 1, left))
            with m.If(last_oy):
                m.d.sync += done.eq(1)
                if group:   # depthwise: the next channel group, if any, from its first row
                    with m.If(~last_nb):
                        m.d.sync += [done.eq(0), ytop.eq(0), base_slot.eq(-top),
                                     w_base.eq(w_base + dwc), w_addr.eq(w_base + dwc)]

    with m.If(rd):
        m.d.comb += rcol_n.eq(rcol + 1)
    with m.If(go):
        with m.If(dw):
            m.d.sync += [dc.eq(dc + 1), w_addr.eq(w_addr + 1)]
            with m.If(last_dc):
                m.d.sync += [dc.eq(0), w_addr.eq(w_base)]
                next_pixel(group=True)
        with m.Else():
            m.d.sync += w_addr.eq(w_addr + 1)
            with m.If(kx_end & last_ky & last_nb):
                next_pixel()

    # ``nx`` (late: it follows ``go``) only selects between values worked out for both cases
    # (the next row's or this one's), so it is not in front of the adders and compares.
    col_now = Mux(dw, rcol, xbase + kx)                # ``nx`` implies ``dw``
    addr = Mux(nx, line_word(cfg, left, nb),
               Mux(dw, line_word(cfg, rcol, nb), line_word(cfg, xbase + kx, g)))
    m.d.comb += [rp.addr.eq(addr) for _, rp in banks]

    # A padding column reads as zeros (grouped and depthwise rows do not store it).
    col_ok = desc.packed | Mux(nx, within(left, left, lim["col_end"]),
                               within(col_now, left, lim["col_end"]))
    m.d.comb += w_rd.addr.eq(w_addr)
    row_sel = []
    for r in range(cfg.segments):
        slot = Signal(range(NS), name=f"slot{r}")
        m.d.comb += slot.eq(Mux(nx, base_slot + stride_h + ky + r, base_slot + ky + r))
        # input row + top inside the image, this row's window or the next one's
        row_ok = Mux(nx, (rows["lo_n"] >= -r) & (rows["hi_n"] >= r),
                     (rows["lo"] >= -r) & (rows["hi"] >= r))
        # Rows past min(lanes, max_kernel) serve only the depthwise window.
        dense = ((r < step) & (rows["kleft"] >= r)) if r < min(L, cfg.max_kernel) else Const(0)
        ok = Mux(dw, r < KH, dense) & row_ok & col_ok
        row_sel.append((slot, ok))
    # A depthwise row's first read (column ``left``) clears the window register: the
    # left padding columns it holds are zeros without a read.
    return {"go": go, "first": first, "last": last, "end": end,
            "nb": nb if DB == 1 else Mux(dw, Cat(beat_of(m, cfg, dc), nb), nb), "rows": row_sel,
            "done": done, "written": written, "credit": credit, "rd": rd, "dc": dc,
            "rd_first": rd & (rcol == left), "nx": nx}
