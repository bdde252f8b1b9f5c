"""The systolic-array Component: R x C int8 MACs, output- or weight-stationary.

Interface (both dataflows)
--------------------------
``activations``  In  stream of ``{data: R x int8, last}``
``weights``      In  stream of ``C x int8``
``result``       Out stream of ``{data: C x acc, last}``

Output-stationary (``os``)
    One beat of ``activations`` and one of ``weights`` together are one reduction step ``k``:
    ``A[m0:m0+R, k]`` and ``B[k, n0:n0+C]``. ``last`` closes the tile; the tile's R result rows
    (``C[m0+r, n0:n0+C]``, ``r = 0..R-1``) leave in order, ``last`` on row R-1.

Weight-stationary (``ws``)
    ``weights`` carries a tile ``B[k0:k0+R, n0:n0+C]`` as R beats, row 0 first. Each
    ``activations`` beat is one row ``A[m, k0:k0+R]`` and yields one result row of partial sums
    ``A[m, k0:k0+R] @ B[k0:k0+R, n0:n0+C]``; ``last`` closes the fold and frees its weights.

Hardware decisions
------------------
* Activations are broadcast along a PE row (fanout C) while weights (OS) or partial sums (WS)
  move one PE row per cycle. Only rows are skewed, so a tile's R result rows complete one per
  cycle, all C columns at once: no column de-skew registers and no C-1 cycles of skew latency.
* OS needs no shadow registers: a PE row's accumulator is read into the result FIFO in the very
  cycle the next tile's first product overwrites it. Tiles therefore stream back to back; each
  costs max(K, R) cycles (R result rows leave at one per cycle), never K + R + C - 2.
* WS double-buffers the weights: every PE holds two banks, each activation carries its bank bit
  through the skew, and the next tile's rows load while the current fold runs. A bank may be
  rewritten from the cycle after its fold's last activation was accepted: rows are written in
  order, one per cycle at most, and row i of that activation reads its weight i cycles later.
* Each multiply has registered operands and a twice-registered product before the add
  (:func:`hwaccel.hdl.dsp.registered_product`, ``config.mult_latency`` = 3 cycles). On ECP5 the
  first two are the MULT18X18D's own input and output registers, so the 3.93 ns multiply is not
  in series with fabric routing (an 8x8 array: 81 MHz unregistered, 119-137 MHz with a fabric
  product register), and the third gives the DSP-to-adder route its own cycle. The step flags
  travel beside the products, so the extra stages only add latency.
* Results go through a FIFO guarded by credits, so back-pressure on ``result`` stalls the inputs
  and never loses or overwrites a result. The FIFO (:class:`ResultFIFO`) keeps its "not empty"
  flag in a register computed from the next fill level, so ``result.ready`` reaches only a
  couple of LUTs before a register (amaranth's ``SyncFIFO`` recomputes ``level != 0`` and
  ``level != depth`` after the register; on ECP5 that loop was the 8x8 OS critical path: 141.7
  MHz, 157.1 MHz with the registered flag).
"""

from __future__ import annotations

from functools import reduce

from amaranth.hdl import Cat, Elaboratable, Module, Mux, Shape, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ...hdl.dsp import registered_product
from .config import SystolicConfig

__all__ = ["SystolicArray", "ResultFIFO", "activation_layout", "weight_layout", "result_layout"]


def activation_layout(cfg: SystolicConfig) -> data.StructLayout:
    return data.StructLayout({"data": data.ArrayLayout(signed(cfg.in_bits), cfg.rows), "last": 1})


def weight_layout(cfg: SystolicConfig) -> data.ArrayLayout:
    return data.ArrayLayout(signed(cfg.in_bits), cfg.cols)


def result_layout(cfg: SystolicConfig) -> data.StructLayout:
    return data.StructLayout({"data": data.ArrayLayout(signed(cfg.acc_bits), cfg.cols), "last": 1})


class ResultFIFO(Elaboratable):
    """A first-word-fall-through FIFO, cycle for cycle like amaranth's ``SyncFIFO``, whose read
    side is driven by registers.

    ``r_rdy`` (not empty) and ``single`` (exactly one row held) are registers computed from the
    next fill level, so a read's handshake ``r_en & r_rdy`` feeds only their next-state LUTs, the
    read pointer and the level counter. A write is taken whenever ``w_en`` is set: the array's
    credits guarantee room, so there is no ``w_rdy`` (and no ``level != depth`` compare).
    """

    def __init__(self, width: int, depth: int):
        if depth < 2:
            raise ValueError(f"ResultFIFO depth must be at least 2, not {depth}")
        self.width, self.depth = width, depth
        self.w_data, self.w_en = Signal(width), Signal()
        self.r_data, self.r_en, self.r_rdy = Signal(width), Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        depth = self.depth
        storage = m.submodules.storage = Memory(shape=self.width, depth=depth, init=[])
        w_port, r_port = storage.write_port(), storage.read_port(domain="comb")
        produce = Signal(range(depth))  # one per line: named in the RTL (formal harness reads them)
        consume = Signal(range(depth))
        level = Signal(range(depth + 1))
        single = Signal()
        do_read, do_write = self.r_en & self.r_rdy, self.w_en
        m.d.comb += [
            w_port.addr.eq(produce), w_port.data.eq(self.w_data), w_port.en.eq(do_write),
            r_port.addr.eq(consume), self.r_data.eq(r_port.data),
        ]
        with m.If(do_write):
            m.d.sync += produce.eq(Mux(produce == depth - 1, 0, produce + 1))
        with m.If(do_read):
            m.d.sync += consume.eq(Mux(consume == depth - 1, 0, consume + 1))
        up, down = do_write & ~do_read, do_read & ~do_write
        with m.If(up):
            m.d.sync += level.eq(level + 1)
        with m.Elif(down):
            m.d.sync += level.eq(level - 1)
        # Next level != 0 and == 1, from the current flags (level 0 is ~r_rdy, level 1 single).
        m.d.sync += [
            self.r_rdy.eq(do_write | (self.r_rdy & ~(down & single))),
            single.eq(Mux(up, ~self.r_rdy, Mux(down, level == 2, single))),
        ]
        return m


class SystolicArray(wiring.Component):
    """An R x C int8 systolic array built from a :class:`SystolicConfig`.

    Parameters
    ----------
    config : SystolicConfig

    Members
    -------
    activations : ``In(stream.Signature(activation_layout(config)))``
    weights : ``In(stream.Signature(weight_layout(config)))``
    result : ``Out(stream.Signature(result_layout(config)))``

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`SystolicConfig`.
    """

    def __init__(self, config: SystolicConfig):
        if not isinstance(config, SystolicConfig):
            self._MustUse__silence = True  # never built: no unused-elaboratable warning
            raise TypeError(f"config must be a SystolicConfig, not {config!r}")
        self.config = config
        super().__init__({
            "activations": In(stream.Signature(activation_layout(config))),
            "weights": In(stream.Signature(weight_layout(config))),
            "result": Out(stream.Signature(result_layout(config))),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        fifo = m.submodules.fifo = ResultFIFO(Shape.cast(result_layout(cfg)).width,
                                              cfg.result_depth)
        m.d.comb += [
            self.result.valid.eq(fifo.r_rdy),
            self.result.payload.eq(fifo.r_data),
            fifo.r_en.eq(self.result.ready),
        ]
        # Credits count result-FIFO rows not yet promised to work in flight.
        credits = Signal(range(cfg.result_depth + 1), init=cfg.result_depth)
        if cfg.dataflow == "os":
            spent = self._output_stationary(m, fifo, credits, platform)
        else:
            spent = self._weight_stationary(m, fifo, credits, platform)
        # A read returns its credit a cycle late: the FIFO's read handshake then drives only the
        # FIFO, not the input-side control across the array (on ECP5 that net's routing was
        # the critical path, 133 MHz on 8x8).
        returned = Signal()
        m.d.sync += returned.eq(fifo.r_rdy & fifo.r_en)
        m.d.sync += credits.eq(credits - spent + returned)
        return m

    # --- helpers -------------------------------------------------------------------------------
    def _skewed_rows(self, m: Module, take, bits):
        """Row r of the accepted activation vector, delayed r+1 cycles (aligned to PE row r)."""
        cfg = self.config
        rows = []
        for r in range(cfg.rows):
            stage = self.activations.payload.data[r]
            for d in range(r + 1):
                nxt = Signal(signed(cfg.in_bits), name=f"act_r{r}_d{d}")
                m.d.sync += nxt.eq(stage)
                stage = nxt
            rows.append(stage)
        return rows

    @staticmethod
    def _delay(m: Module, sig, n: int, name: str):
        for d in range(n):
            nxt = Signal.like(sig, name=f"{name}_d{d}")
            m.d.sync += nxt.eq(sig)
            sig = nxt
        return sig

    def _write_result(self, m: Module, fifo: ResultFIFO, enable, columns, last, *,
                      registered: bool = False):
        payload = Signal(result_layout(self.config))
        m.d.comb += [payload.data[j].eq(v) for j, v in enumerate(columns)]
        m.d.comb += payload.last.eq(last)
        if registered:
            payload_q, enable_q = Signal.like(payload), Signal()
            m.d.sync += [payload_q.eq(payload), enable_q.eq(enable)]
            payload, enable = payload_q, enable_q
        m.d.comb += [fifo.w_data.eq(payload), fifo.w_en.eq(enable)]

    # --- output-stationary ---------------------------------------------------------------------
    def _output_stationary(self, m: Module, fifo: ResultFIFO, credits, platform):
        cfg = self.config
        R, C = cfg.rows, cfg.cols
        acts, wts = self.activations, self.weights
        is_last = acts.payload.last

        # A tile's last step must trail the previous one by >= R cycles (its R drain cycles would
        # otherwise collide) and needs R free result rows.
        since_last = Signal(range(R + 1), init=R)
        can = ~is_last | ((since_last >= R) & (credits >= R))
        take = Signal()
        m.d.comb += [
            acts.ready.eq(wts.valid & can),
            wts.ready.eq(acts.valid & can),
            take.eq(acts.valid & wts.valid & can),
        ]
        with m.If(take & is_last):
            m.d.sync += since_last.eq(1)
        with m.Elif(since_last < R):
            m.d.sync += since_last.eq(since_last + 1)
        first = Signal(init=1)  # the next accepted step opens a tile
        with m.If(take):
            m.d.sync += first.eq(is_last)

        a_rows = self._skewed_rows(m, take, cfg.in_bits)
        # Weights and step flags move down one PE row per cycle.
        w_prev, v_prev, f_prev, l_prev = wts.payload, take, first, is_last
        drains = []
        accs = []
        for r in range(R):
            w_row = Signal(weight_layout(cfg), name=f"w_r{r}")
            v, f, l = (Signal(name=f"{n}_r{r}") for n in ("v", "f", "l"))
            m.d.sync += [w_row.eq(w_prev), v.eq(v_prev), f.eq(f_prev), l.eq(l_prev)]
            # The flags follow the products through the multiplier's registers.
            pv, pf, pl = (self._delay(m, s, cfg.mult_latency, f"p{n}_r{r}")
                          for n, s in (("v", v), ("f", f), ("l", l)))
            drain = Signal(name=f"drain_r{r}")
            m.d.sync += drain.eq(pv & pl)
            row_acc = []
            for c in range(C):
                prod = registered_product(m, a_rows[r], w_row[c], platform=platform,
                                          name=f"mul_r{r}_c{c}")
                acc = Signal(signed(cfg.acc_bits), name=f"acc_r{r}_c{c}")
                with m.If(pv):
                    m.d.sync += acc.eq(Mux(pf, 0, acc) + prod)
                row_acc.append(acc)
            accs.append(row_acc)
            drains.append(drain)
            w_prev, v_prev, f_prev, l_prev = w_row, v, f, l

        # At most one row drains per cycle (guaranteed by the R-cycle spacing of tile ends).
        columns = [reduce(lambda x, y: x | y, [Mux(drains[r], accs[r][c], 0) for r in range(R)])
                   for c in range(C)]
        # The R-way select spans the whole array: a register after it keeps that routing out of
        # the FIFO's write path.
        self._write_result(m, fifo, Cat(*drains).any(), columns, drains[R - 1], registered=True)
        return Mux(take & is_last, R, 0)

    # --- weight-stationary ---------------------------------------------------------------------
    def _weight_stationary(self, m: Module, fifo: ResultFIFO, credits, platform):
        cfg = self.config
        R, C = cfg.rows, cfg.cols
        acts, wts = self.activations, self.weights

        loaded = Signal(2)            # bank holds a complete tile not yet released by its fold
        load_bank = Signal()          # bank the loader fills next
        load_row = Signal(range(max(R, 2)))  # row the next weight beat writes
        act_bank = Signal()           # bank the next activation uses

        load_ok = ~loaded.bit_select(load_bank, 1)
        m.d.comb += wts.ready.eq(load_ok)
        load = wts.valid & load_ok
        with m.If(load):
            with m.If(load_row == R - 1):
                m.d.sync += load_row.eq(0)
                m.d.sync += load_bank.eq(~load_bank)
            with m.Else():
                m.d.sync += load_row.eq(load_row + 1)

        act_ok = loaded.bit_select(act_bank, 1) & (credits != 0)
        m.d.comb += acts.ready.eq(act_ok)
        take = acts.valid & act_ok
        is_last = acts.payload.last
        with m.If(take & is_last):
            m.d.sync += act_bank.eq(~act_bank)

        for b in range(2):
            done_loading = load & (load_bank == b) & (load_row == R - 1)
            released = take & is_last & (act_bank == b)
            with m.If(done_loading):
                m.d.sync += loaded[b].eq(1)
            with m.Elif(released):
                m.d.sync += loaded[b].eq(0)

        a_rows = self._skewed_rows(m, take, cfg.in_bits)
        bank_rows = [self._delay(m, act_bank, r + 1, f"bank_r{r}") for r in range(R)]
        psum_prev = [None] * C
        # A weight row is written the cycle after it is accepted, from registers: the handshake
        # then enables a few registers instead of every weight register of the array. This is
        # safe both ways: row r of a fold's first activation reads its weight r + 1 cycles after
        # the load completes, and a released bank's row r is last read r cycles after release.
        w_data = Signal(weight_layout(cfg))
        w_row_we = Signal(R)
        w_bank = Signal()
        m.d.sync += [w_data.eq(wts.payload), w_bank.eq(load_bank),
                     w_row_we.eq(Mux(load, 1 << load_row, 0))]
        for r in range(R):
            w0 = Signal(weight_layout(cfg), name=f"w0_r{r}")
            w1 = Signal(weight_layout(cfg), name=f"w1_r{r}")
            with m.If(w_row_we[r]):
                with m.If(w_bank):
                    m.d.sync += w1.eq(w_data)
                with m.Else():
                    m.d.sync += w0.eq(w_data)
            for c in range(C):
                prod = registered_product(m, a_rows[r], Mux(bank_rows[r], w1[c], w0[c]),
                                          platform=platform, name=f"mul_r{r}_c{c}")
                psum = Signal(signed(cfg.acc_bits), name=f"psum_r{r}_c{c}")
                m.d.sync += psum.eq(prod if r == 0 else psum_prev[c] + prod)
                psum_prev[c] = psum

        # Row R-1 sees an activation R cycles after it is taken; then the multiply and the add.
        out_valid = self._delay(m, take, R + cfg.mult_latency + 1, "out_valid")
        out_last = self._delay(m, is_last, R + cfg.mult_latency + 1, "out_last")
        self._write_result(m, fifo, out_valid, psum_prev, out_last)
        return take
