"""The LSTM cell engine Component: P int8 MAC lanes, weights on chip, whole sequences.

The config's ``input_size`` and ``hidden_size`` are the *largest* sizes the cell runs. With
``runtime_size=True`` the cell has a ``size`` input and runs any ``1 <= I <= input_size``,
``1 <= H <= hidden_size`` exactly as a cell generated for that size would (same beats, same
cycles, same h); without it the size is the config's.

Interface
---------
``size``     In  ``{input_size, hidden_size}`` (only with ``runtime_size``): the size of the load
             it comes with. It must hold its value with every beat of a load; the cell registers
             it with each beat, so the sequences after a load run that load's size.
``weights``  In  stream of ``P x int8``: a load is ``slots * (I + H)`` beats (``slots =
             ceil(4H / P)`` of the load's size); beat ``a`` holds word ``a`` of every lane's
             weight memory (see :mod:`.driver` for the order).
``params``   In  stream of ``{bias, mult_x, shift_x, mult_h, shift_h}``: 4H beats, PyTorch's gate
             row order.
``x``        In  stream of ``{data: I_max x int8, last}``: one beat per step (elements ``I`` and
             up are ignored); ``last`` ends a sequence (the next beat starts a new one from
             h = c = 0).
``h``        Out stream of ``{data: H_max x int8, last}``: ``h_t`` (elements ``H`` and up are 0)
             after every step (``output="all"``, ``last`` on the sequence's last step) or after a
             sequence's last step only (``"last"``).
             The layout equals ``x``'s for I_max = H_max, so a second layer takes this stream as
             its x.

A load is accepted only while no sequence is in flight, and x only once a whole load is in.

Hardware decisions
------------------
* Output stationary over gate rows: lane ``p`` owns lane rows ``p + s*P`` (``s < slots``) and
  keeps them in ``slots`` accumulator pairs. Lane row ``q`` is gate ``q % 4`` of hidden unit
  ``q // 4`` (the four gates of a unit side by side), so the rows of any H are the first 4H and
  unit ``j``'s four accumulators sit at fixed rows ``4j .. 4j+3`` whatever H is: the snapshot
  needs no size-dependent mux. One element of ``[x_t; h_{t-1}]`` is broadcast to all lanes
  for ``slots`` cycles (one per owned row), so a step is ``slots * (I + H)`` issue cycles and
  every lane's weight memory is read sequentially: one address counter, no per-lane addressing.
  Rows past 4H (padding, or a smaller H's unused rows) accumulate but are never read.
* Sizes are registers loaded with the weights: I, H and ``slots`` (a sum of constant
  comparisons, no divider) end the sequencer's phases and the gate unit's pass; the load's own
  beat counters follow the ``size`` input directly.
* x and h products accumulate separately because their scales differ; each is requantized by
  its own per-row multiplier in the gate unit (numerics: ``gate_preactivation``). That costs 8
  multipliers in the gate unit instead of a rescaling multiplier per lane.
* The gate unit is decoupled by a snapshot: when a step's last product has landed, all
  accumulator pairs are copied into four shift chains (one per gate, H_max long) that feed the
  gate unit one hidden unit per cycle, with no wide mux; a pass shifts out exactly H units.
  The lanes go straight on with x_{t+1} (known early), overlapping the gate unit of step t;
  only the h part of step t+1 waits, and only for the h elements it is about to read (a
  counter), since the gate unit emits h_t in index order.
* Sigmoid and tanh are 512-entry ROMs (numerics tables), read by magnitude; the ROMs and the
  parameter memories are synchronous, so they map onto block RAM.
* The h output goes through a 2-deep FIFO guarded by credits: a step that will emit only starts
  its gate unit when a FIFO slot is reserved, so back-pressure stalls the engine, never loses h.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ...numerics import GATE_FMT, INT8
from .config import LstmConfig
from .gate_unit import build_gate_unit

__all__ = ["LstmCell", "vector_layout", "weight_layout", "param_layout", "size_layout",
           "ceil_div", "MAC_LATENCY"]

#: Cycles from issuing an element to its products being in the accumulators (read, multiply, add).
MAC_LATENCY = 3


def _index_shape(n: int) -> range:
    """Shape of an index below ``n``; at least one bit (a 0-bit signal lints as [-1:0])."""
    return range(max(n, 2))


def vector_layout(size: int) -> data.StructLayout:
    return data.StructLayout({"data": data.ArrayLayout(signed(INT8.bits), size), "last": 1})


def size_layout(cfg: LstmConfig) -> data.StructLayout:
    """A run's ``{input_size, hidden_size}``, up to the config's (the largest)."""
    return data.StructLayout({"input_size": range(cfg.input_size + 1),
                              "hidden_size": range(cfg.hidden_size + 1)})


def ceil_div(value, divisor: int, most: int):
    """``ceil(value / divisor)`` for ``1 <= value <= most * divisor`` as a sum of constant
    comparisons (``#{m >= 0 : m * divisor < value}``): no divider, any divisor."""
    total = Const(1, range(most + 1))
    for k in range(1, most):
        total = total + (value > k * divisor)
    return total


def weight_layout(cfg: LstmConfig) -> data.ArrayLayout:
    return data.ArrayLayout(signed(INT8.bits), cfg.lanes)


def param_layout(cfg: LstmConfig) -> data.StructLayout:
    return data.StructLayout({
        "bias": signed(GATE_FMT.bits),
        "mult_x": unsigned(cfg.mult_bits), "shift_x": unsigned(cfg.shift_bits),
        "mult_h": unsigned(cfg.mult_bits), "shift_h": unsigned(cfg.shift_bits),
    })


class LstmCell(wiring.Component):
    """One LSTM layer built from an :class:`LstmConfig`.

    Parameters
    ----------
    config : LstmConfig
        Its sizes are the largest the cell runs.
    runtime_size : bool
        Add the ``size`` input (else the cell runs the config's sizes only).

    Members
    -------
    size : ``In(size_layout(config))`` (only with ``runtime_size``)
    weights : ``In(stream.Signature(weight_layout(config)))``
    params : ``In(stream.Signature(param_layout(config)))``
    x : ``In(stream.Signature(vector_layout(config.input_size)))``
    h : ``Out(stream.Signature(vector_layout(config.hidden_size)))``

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`LstmConfig`.
    """

    def __init__(self, config: LstmConfig, *, runtime_size: bool = False):
        if not isinstance(config, LstmConfig):
            raise TypeError(f"config must be an LstmConfig, not {config!r}")
        self.config = config
        self.runtime_size = bool(runtime_size)
        members = {"size": In(size_layout(config))} if runtime_size else {}
        super().__init__({**members,
            "weights": In(stream.Signature(weight_layout(config))),
            "params": In(stream.Signature(param_layout(config))),
            "x": In(stream.Signature(vector_layout(config.input_size))),
            "h": Out(stream.Signature(vector_layout(config.hidden_size))),
        })

    def elaborate(self, platform):
        cfg = self.config
        I, H, P, R = cfg.input_size, cfg.hidden_size, cfg.lanes, cfg.slots
        m = Module()

        # --- output FIFO and its credits -------------------------------------------------------
        out_fifo = m.submodules.out_fifo = SyncFIFO(
            width=Shape.cast(vector_layout(H)).width, depth=2)
        m.d.comb += [self.h.valid.eq(out_fifo.r_rdy), self.h.payload.eq(out_fifo.r_data),
                     out_fifo.r_en.eq(self.h.ready)]
        credits = Signal(range(3), init=2)

        # --- sizes: the load's (``size``), registered with each beat for the sequences -------
        if self.runtime_size:
            in_i, in_h = self.size.input_size, self.size.hidden_size
        else:
            in_i, in_h = Const(I, range(I + 1)), Const(H, range(H + 1))
        in_r = ceil_div(4 * in_h, P, R)
        i_n = Signal(range(I + 1), init=I)
        h_n = Signal(range(H + 1), init=H)
        r_n = Signal(range(R + 1), init=R)

        # --- loading ---------------------------------------------------------------------------
        w_mem = m.submodules.w_mem = memory.Memory(shape=unsigned(P * INT8.bits),
                                                   depth=cfg.weight_depth, init=[])
        w_wr, w_rd = w_mem.write_port(), w_mem.read_port()
        # One parameter memory per gate, so the gate unit reads i, f, g, o of unit j at once.
        par_mems = [memory.Memory(shape=param_layout(cfg), depth=max(H, 2), init=[])
                    for _ in range(4)]
        for g, mem in enumerate(par_mems):
            m.submodules[f"par_mem{g}"] = mem
        par_wr = [mem.write_port() for mem in par_mems]
        par_rd = [mem.read_port() for mem in par_mems]

        seq_open = Signal()   # a sequence's first x beat is in, its last is not
        x_full = Signal(2)
        mac_idle, cell_free = Signal(), Signal()
        engine_idle = Signal()
        m.d.comb += engine_idle.eq(~seq_open & ~x_full.any() & mac_idle & cell_free)

        w_addr = Signal(range(cfg.weight_depth))
        w_k, w_s = Signal(_index_shape(I + H)), Signal(_index_shape(R))  # element, slot
        p_gate, p_j = Signal(range(4)), Signal(_index_shape(H))
        w_done, p_done = Signal(), Signal()   # the last load of each kind is complete
        m.d.comb += [self.weights.ready.eq(engine_idle), self.params.ready.eq(engine_idle)]
        take_w = self.weights.valid & engine_idle
        take_p = self.params.valid & engine_idle
        m.d.comb += [w_wr.addr.eq(w_addr), w_wr.data.eq(self.weights.payload), w_wr.en.eq(take_w)]
        with m.If(take_w | take_p):
            m.d.sync += [i_n.eq(in_i), h_n.eq(in_h), r_n.eq(in_r)]
        w_slot_end = w_s == in_r - 1
        w_end = w_slot_end & (w_k == in_i + in_h - 1)
        with m.If(take_w):
            m.d.sync += [w_addr.eq(Mux(w_end, 0, w_addr + 1)), w_done.eq(w_end),
                         w_s.eq(Mux(w_slot_end, 0, w_s + 1))]
            with m.If(w_slot_end):
                m.d.sync += w_k.eq(Mux(w_end, 0, w_k + 1))
        for g in range(4):
            m.d.comb += [par_wr[g].addr.eq(p_j), par_wr[g].data.eq(self.params.payload),
                         par_wr[g].en.eq(take_p & (p_gate == g))]
        with m.If(take_p):
            m.d.sync += p_done.eq((p_gate == 3) & (p_j == in_h - 1))
            with m.If(p_j == in_h - 1):
                m.d.sync += [p_j.eq(0), p_gate.eq(p_gate + 1)]
            with m.Else():
                m.d.sync += p_j.eq(p_j + 1)

        # --- x double buffer -------------------------------------------------------------------
        x_buf = [Signal(data.ArrayLayout(signed(INT8.bits), I), name=f"x_buf{b}") for b in (0, 1)]
        x_first, x_last = Signal(2), Signal(2)
        x_wbank, x_rbank = Signal(), Signal()
        # A load that is waiting goes first, so x is never taken in the cycle a load begins.
        load_waiting = engine_idle & (self.weights.valid | self.params.valid)
        x_ok = w_done & p_done & ~x_full.bit_select(x_wbank, 1) & ~load_waiting
        m.d.comb += self.x.ready.eq(x_ok)
        take_x = self.x.valid & x_ok
        with m.If(take_x):
            m.d.sync += [seq_open.eq(~self.x.payload.last), x_wbank.eq(~x_wbank)]
        for b in (0, 1):
            with m.If(take_x & (x_wbank == b)):
                m.d.sync += [x_buf[b].eq(self.x.payload.data), x_full[b].eq(1),
                             x_first[b].eq(~seq_open), x_last[b].eq(self.x.payload.last)]

        # --- MAC sequencer ---------------------------------------------------------------------
        k = Signal(_index_shape(max(I, H)))
        s = Signal(_index_shape(R))
        r_addr = Signal(range(cfg.weight_depth))
        step_first, step_last = Signal(), Signal()
        h_buf = Signal(data.ArrayLayout(signed(INT8.bits), H))
        h_count = Signal(range(H + 1))    # elements of h_t the gate unit has written so far
        issue, phase_h, elem = Signal(), Signal(), Signal(signed(INT8.bits))
        drain = Signal(range(MAC_LATENCY))
        snap = Signal()                   # the step's accumulators go to the gate unit
        emit = Signal()
        m.d.comb += emit.eq(step_last if cfg.output == "last" else 1)
        with m.If(issue):
            m.d.sync += r_addr.eq(r_addr + 1)
            with m.If(s == r_n - 1):
                m.d.sync += [s.eq(0), k.eq(k + 1)]
            with m.Else():
                m.d.sync += s.eq(s + 1)
        last_slot = s == r_n - 1
        next_ready = x_full.bit_select(x_rbank, 1)

        def start_step():
            m.d.sync += [k.eq(0), s.eq(0), r_addr.eq(0),
                         step_first.eq(x_first.bit_select(x_rbank, 1)),
                         step_last.eq(x_last.bit_select(x_rbank, 1))]

        # The sequencer's state is a plain register decoded with If chains: Amaranth's FSM emits
        # partial case statements that verilator -Wall flags (CASEINCOMPLETE).
        IDLE, XPH, HPH, DRAIN = range(4)
        state = Signal(range(4), init=IDLE)
        with m.If(state == IDLE):
            m.d.comb += mac_idle.eq(1)
            with m.If(next_ready):
                start_step()
                m.d.sync += state.eq(XPH)
        with m.Elif(state == XPH):
            m.d.comb += [issue.eq(1), elem.eq(Mux(x_rbank, x_buf[1][k], x_buf[0][k]))]
            with m.If(last_slot & (k == i_n - 1)):
                m.d.sync += [k.eq(0), x_rbank.eq(~x_rbank), drain.eq(0)]
                for b in (0, 1):
                    with m.If(x_rbank == b):
                        m.d.sync += x_full[b].eq(0)
                # A sequence's first step has h_{-1} = 0: no h products at all.
                m.d.sync += state.eq(Mux(step_first, DRAIN, HPH))
        with m.Elif(state == HPH):
            # h_{t-1}[k] exists once the gate unit has written it (it writes in index order).
            m.d.comb += [issue.eq(k < h_count), phase_h.eq(1), elem.eq(h_buf[k])]
            with m.If(issue & last_slot & (k == h_n - 1)):
                m.d.sync += [drain.eq(0), state.eq(DRAIN)]
        with m.Else():
            # Wait for the last products to land, then for the gate unit to be empty (it shares
            # h_count and c with the step before) and, if the step emits, for a reserved output
            # FIFO slot. The next step may start in the same cycle.
            with m.If(drain != MAC_LATENCY - 1):
                m.d.sync += drain.eq(drain + 1)
            with m.Elif(cell_free & (~emit | (credits != 0))):
                m.d.comb += snap.eq(1)
                with m.If(next_ready):
                    start_step()
                    m.d.sync += state.eq(XPH)
                with m.Else():
                    m.d.sync += state.eq(IDLE)
        m.d.sync += credits.eq(credits - (snap & emit) + (out_fifo.r_rdy & out_fifo.r_en))

        # --- MAC lanes: read the weight word, multiply, accumulate (MAC_LATENCY = 3) -----------
        m.d.comb += [w_rd.addr.eq(r_addr), w_rd.en.eq(1)]
        v1, ok1, ph1, f1 = Signal(signed(INT8.bits)), Signal(), Signal(), Signal()
        s1 = Signal(_index_shape(R))
        m.d.sync += [v1.eq(elem), ok1.eq(issue), ph1.eq(phase_h), s1.eq(s), f1.eq(k == 0)]
        ok2, ph2, s2, f2 = Signal(), Signal(), Signal(_index_shape(R)), Signal()
        m.d.sync += [ok2.eq(ok1), ph2.eq(ph1), s2.eq(s1), f2.eq(f1)]
        acc_x, acc_h = {}, {}   # by gate row q = s * P + p; padding rows have none
        for p in range(P):
            prod = Signal(signed(2 * INT8.bits), name=f"prod{p}")
            m.d.sync += prod.eq(v1 * w_rd.data[p * INT8.bits:(p + 1) * INT8.bits].as_signed())
            for sl in range(R):
                q = sl * P + p
                if q >= cfg.rows:
                    continue
                ax = acc_x[q] = Signal(signed(cfg.acc_bits), name=f"acc_x{q}")
                ah = acc_h[q] = Signal(signed(cfg.acc_bits), name=f"acc_h{q}")
                # f2: the phase's first element starts the sum afresh, so no clearing is needed.
                with m.If(ok2 & (s2 == sl)):
                    with m.If(ph2):
                        m.d.sync += ah.eq(Mux(f2, 0, ah) + prod)
                    with m.Else():
                        m.d.sync += ax.eq(Mux(f2, 0, ax) + prod)

        # --- snapshot chains: gate g of unit j is lane row 4j + g; one unit out per cycle -------
        rd_active, rd_j = Signal(), Signal(_index_shape(H))
        rd_first, rd_last, rd_emit = Signal(), Signal(), Signal()
        chains = []
        for g in range(4):
            cx = [Signal(signed(cfg.acc_bits), name=f"snap_x{g}_{j}") for j in range(H)]
            ch = [Signal(signed(cfg.acc_bits), name=f"snap_h{g}_{j}") for j in range(H)]
            for j in range(H):
                with m.If(snap):
                    # A first step's h accumulators hold a previous sequence's sums: use 0.
                    m.d.sync += [cx[j].eq(acc_x[4 * j + g]),
                                 ch[j].eq(Mux(step_first, 0, acc_h[4 * j + g]))]
                with m.Elif(rd_active & (j + 1 < H)):
                    m.d.sync += [cx[j].eq(cx[min(j + 1, H - 1)]), ch[j].eq(ch[min(j + 1, H - 1)])]
            chains.append((cx[0], ch[0]))
        with m.If(snap):
            m.d.sync += [rd_active.eq(1), rd_j.eq(0), rd_first.eq(step_first),
                         rd_last.eq(step_last), rd_emit.eq(emit), h_count.eq(0)]
        with m.Elif(rd_active):
            m.d.sync += rd_j.eq(rd_j + 1)
            with m.If(rd_j == h_n - 1):
                m.d.sync += rd_active.eq(0)

        busy = build_gate_unit(m, cfg, par_rd=par_rd, chains=chains, start=rd_active, j=rd_j,
                               h_n=h_n,
                               first=rd_first, last=rd_last, emit=rd_emit, h_buf=h_buf,
                               h_count=h_count, out_fifo=out_fifo)
        m.d.comb += cell_free.eq(~rd_active & ~busy)
        return m
