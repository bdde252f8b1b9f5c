"""The command processor's GEMM tiling (:mod:`.processor`): the tiles of a GEMM or MATMUL
command, N tiles outermost, then M tiles, then K tiles, one multiply deep per cycle."""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Mux, Signal

from .beats import to_words

__all__ = ["gemm_tiling", "RIPE"]

#: RUN cycles after which the next GEMM tile's registers are settled (the tile pipeline is three
#: deep), and the next command's checks and first tile (:func:`gemm_tiling`: its word in
#: the first RUN cycle, CALC's registers, its first tile's shape, then its products, four
#: deep). A tile job takes far longer (descriptor, DMA read latency, the engine's pipeline
#: before its first result); should one ever end sooner, the processor waits (``done_seen``),
#: which costs cycles the models would catch, never a wrong tile.
RIPE = 4


def gemm_tiling(proc, m, ccmd, cmd, chk, *, check, run, tiled) -> SimpleNamespace:
    """Processor ``proc``'s GEMM tiling (GEMM and MATMUL), one multiply deep per cycle.

    N tiles (``n0``: first block) outermost, so M tiles of one N tile share its weights;
    then M tiles; K tiles (``k0``: first word of the row) innermost, so partial sums live
    only for one M x N tile. M tiles: whole max_height x max_width tiles, then whole rows,
    then the rest (no divider); with K tiled, rows of at most psum_width pixels.

    The first tile's shape (``geo_*``) is registered with ``check`` (as the checked command
    ``ccmd``'s job fields load) from it. While a tile of the running command ``cmd`` runs
    (at least :data:`RIPE` cycles: descriptor, DMA latency and the engine's pipeline come
    first), a free-running pipeline computes the loop state after it (``nxt_*``), then the
    next tile's shape, then its products; TILE only copies and adds. ``tiled``: the running
    command is tiled, a register (in RUN it equals ``chk.mm.run.tiled``: the running command
    loads before its ISSUE).
    """
    cfg, conv = proc.config, proc.config.conv
    mm = chk.mm
    ad, wd = cfg.act_depth, cfg.wgt_depth
    mg, mb = conv.max_groups, conv.max_blocks
    mw, mh, pw = conv.max_width, conv.max_height, cfg.psum_width
    r = mm.run   # the running command's K and N words and row strides (matmul_tiling)
    kw, nb, sa, sc = r.kw, r.nb, r.sa, r.sc
    rem = Signal(range(ad + 1))                       # rows of A left in this N tile
    k0, n0 = Signal(range(ad + 1), name="k0"), Signal(range(ad + 1), name="n0")
    a_ptr, c_ptr = Signal(range(ad + 1), name="a_ptr"), Signal(range(ad + 1), name="c_ptr")
    w_nt, w_k = (Signal(range(wd + 1), name=n) for n in ("w_nt", "w_k"))   # N / K tile's weights
    state = (rem, k0, n0, a_ptr, c_ptr, w_nt, w_k)
    nxt = tuple(Signal.like(s, name=f"nxt_{s.name}") for s in state)
    # MATMUL's gatherer: the running tile's k0 and n0, in RUN the next tile's (it loads
    # them while idle, so they hold from the cycle before the next ISSUE).
    m.d.comb += mm.tile(Mux(run, nxt[1], k0), Mux(run, nxt[2], n0))
    more = Signal()
    k_tiled = Signal()
    tn_cur = Signal(range(mw * mh + 1))               # pixels of the running tile
    geo_g, geo_b = Signal(range(mg + 1), name="geo_g"), Signal(range(mb + 1), name="geo_b")
    geo_w, geo_h = Signal(range(mw + 1), name="geo_w"), Signal(range(mh + 1), name="geo_h")
    geo_tn = Signal(range(mw * mh + 1))
    geo_ww = Signal(range(mg * mb + 1), name="geo_ww")
    geo_kwb = Signal(range((ad + 1) * mb + 1), name="geo_kwb")
    geo_end = Signal()   # the tile is its N tile's last K tile (``k0 + geo_g == kw``)

    def geometry(kleft, bleft, remv, tiled):
        """The shape of a tile with ``kleft`` K words and ``bleft`` N blocks left from its
        first, and ``remv`` rows of A left in its N tile, each ``(signal, value)``."""
        full = ~tiled & (remv >= mw * mh)             # then the width is mw too
        tw = Mux(tiled, Mux(remv >= pw, pw, remv), Mux(remv >= mw, mw, remv))
        return [(geo_g, Mux(kleft >= mg, mg, kleft)), (geo_end, kleft <= mg),
                (geo_b, Mux(bleft >= mb, mb, bleft)),
                (geo_w, tw), (geo_h, Mux(full, mh, 1)), (geo_tn, Mux(full, mw * mh, tw))]

    # Stage 1: the running tile against the loop bounds, and its products.
    last_k, more_m, more_n = (Signal(name=n) for n in ("last_k", "more_m", "more_n"))
    g_cur, b_cur = proc.job_desc.groups, proc.job_desc.blocks
    k_next, n_next = Signal.like(k0), Signal.like(n0)
    wk_next = Signal.like(w_k)
    step_a = Signal(range((ad + 1) * mw * mh + 1))   # the running tile's rows of A
    step_c = Signal.like(step_a)                     # and of C
    kwb = Signal.like(geo_kwb)
    m.d.sync += [last_k.eq(k0 + g_cur == kw), more_m.eq(rem != tn_cur),
                 more_n.eq(n0 + b_cur != nb), k_next.eq(k0 + g_cur), n_next.eq(n0 + b_cur),
                 wk_next.eq(w_k + proc.job_desc.weight_words), step_a.eq(tn_cur * sa),
                 step_c.eq(tn_cur * sc), kwb.eq(kw * b_cur)]
    # Stage 2: the loop state after it (next K tile, else next M tile, else next N tile),
    # and the K words and N blocks left from its first (``kw - n_k0``, ``nb - n_n0``), so
    # the next tile's shape is a compare of registers (the subtracts behind the choice of
    # the running command's or the checked one's into ``geo_b`` were dfd1651's second
    # placed path, 13.6 ns).
    n_rem, n_k0, n_n0, n_a, n_c, n_wnt, n_wk = nxt
    n_kleft, n_bleft = Signal.like(k0, name="nxt_kleft"), Signal.like(n0, name="nxt_bleft")
    with m.If(~last_k):
        m.d.sync += [n_rem.eq(rem), n_k0.eq(k_next), n_n0.eq(n0), n_a.eq(a_ptr),
                     n_c.eq(c_ptr), n_wnt.eq(w_nt), n_wk.eq(wk_next),
                     n_kleft.eq(kw - k_next), n_bleft.eq(nb - n0)]
    with m.Elif(more_m):
        m.d.sync += [n_rem.eq(rem - tn_cur), n_k0.eq(0), n_n0.eq(n0), n_a.eq(a_ptr + step_a),
                     n_c.eq(c_ptr + step_c), n_wnt.eq(w_nt), n_wk.eq(w_nt),
                     n_kleft.eq(kw), n_bleft.eq(nb - n0)]
    with m.Else():
        w_next = w_nt + kwb + b_cur
        m.d.sync += [n_rem.eq(cmd.count), n_k0.eq(0), n_n0.eq(n_next), n_a.eq(cmd.src),
                     n_c.eq(cmd.dst + to_words(cfg, n_next)), n_wnt.eq(w_next), n_wk.eq(w_next),
                     n_kleft.eq(kw), n_bleft.eq(nb - n_next)]
    m.d.sync += more.eq(~last_k | more_m | more_n)
    # Stages 3 and 4: the next tile's shape, then its products; after the running
    # command's last tile, the checked command's first (its checks ran ahead).
    ckw, cnb = chk.mm.kw, chk.mm.nb
    # (``tiled``, not the running command's opcode decoded here: the decode in front of the
    # choices, their subtracts and compares into ``geo_b`` was a placed path at ef1bf89,
    # 14.3 ns)
    own = tiled & more
    # K's words beside the shape too (``geo_kw``), so the product's factors are both
    # registers: the choice of the running command's K or the checked one's in front of the
    # multiply was the netlist estimate's deepest path at 60c88e2 (15.8 ns).
    geo_kw = Signal.like(Mux(own, kw, ckw), name="geo_kw")
    # Each candidate's shape is worked out from registers, and ``own`` picks one last.
    first_geo = geometry(ckw, cnb, ccmd.count, ckw > mg)   # the checked command's first tile
    own_geo = geometry(n_kleft, n_bleft, n_rem, k_tiled)
    with m.If(run):
        m.d.sync += [*(g.eq(Mux(own, a, b)) for (g, a), (_, b) in zip(own_geo, first_geo)),
                     geo_kw.eq(Mux(own, kw, ckw)),
                     geo_ww.eq(geo_g * geo_b), geo_kwb.eq(geo_kw * geo_b)]
    # The checked command's first tile (after the stages: it may load in the running
    # command's last RUN cycle).
    with m.If(check):
        m.d.sync += [*(g.eq(v) for g, v in first_geo),
                     k_tiled.eq(ckw > mg), geo_ww.eq(chk.mm.desc.weight_words),
                     geo_kwb.eq(ckw * chk.mm.desc.blocks),
                     rem.eq(ccmd.count), k0.eq(0), n0.eq(0), a_ptr.eq(ccmd.src),
                     c_ptr.eq(ccmd.dst), w_nt.eq(ccmd.wgt), w_k.eq(ccmd.wgt)]

    def load(job, *, ahead=False, first=False):
        """The job of the tile ``geo_*`` describes: in TILE (the command's first tile), with
        ``ahead`` in the cycle the running tile ends, from the loop state after it, or with
        ``first`` the checked command's first tile as the running command retires."""
        _, k0, _, a_ptr, c_ptr, w_nt, w_k = nxt if ahead else state
        sa_, sc_ = sa, sc
        if first:
            k0, a_ptr, c_ptr, w_nt, w_k = 0, ccmd.src, ccmd.dst, ccmd.wgt, ccmd.wgt
            sa_, sc_ = chk.mm.sa, chk.mm.sc
        ends_k = geo_end   # registered with the shape: no add and compare into the job
        return [
            job.job_desc.width.eq(geo_w), job.job_desc.out_width.eq(geo_w),
            job.job_desc.height.eq(geo_h), job.job_desc.out_height.eq(geo_h),
            job.job_desc.groups.eq(geo_g), job.job_desc.blocks.eq(geo_b),
            job.job_desc.weight_words.eq(geo_ww),
            job.job_desc.acc_in.eq(k0 != 0) if not first else job.job_desc.acc_in.eq(0),
            job.job_desc.acc_out.eq(~ends_k),
            job.job_keep.eq(ends_k),
            job.job_src.eq(a_ptr + k0), job.job_src_count.eq(geo_tn * geo_g),
            job.job_src_run.eq(geo_g), job.job_src_stride.eq(sa_),
            job.job_dst.eq(c_ptr), job.job_dst_count.eq(geo_tn * to_words(cfg, geo_b)),
            job.job_dst_run.eq(to_words(cfg, geo_b)), job.job_dst_stride.eq(sc_),
            # This K tile's weight beats, then its N tile's requantizers after all K tiles.
            job.job_wgt.eq(w_k), job.job_wgt_count.eq(geo_ww + geo_b),
            job.job_wgt_run.eq(geo_ww), job.job_wgt_stride.eq(w_nt + geo_kwb - w_k),
            job.job_fab_pixels.eq(geo_tn), job.job_fab_words.eq(geo_ww), tn_cur.eq(geo_tn),
        ]

    def advance():
        return [s.eq(n) for s, n in zip(state, nxt)]

    return SimpleNamespace(load=load, advance=advance, more=more, own=own)
