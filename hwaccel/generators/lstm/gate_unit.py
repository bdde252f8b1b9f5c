"""The LSTM cell's gate unit: requantize, sigmoid/tanh, cell update, h -- one hidden unit a cycle.

Part of :class:`~.cell.LstmCell` (not a Component of its own: it shares the cell's h buffer,
its counter and its output FIFO). Every number follows :mod:`hwaccel.numerics`
(``gate_preactivation``, ``sigmoid_fx``, ``tanh_fx``, ``cell_update``); the stages are:

=====  =====================================================================================
C0     hidden unit j's four (acc_x, acc_h) pairs leave the snapshot chains; per-gate parameter
       memories are read at j
C1     acc_x * mult_x and acc_h * mult_h for the four gates (8 multipliers)
C2     round-shift by each row's shift, saturate to int32, add, add bias, saturate: z
C3     sigmoid/tanh ROM reads by |z|; c_{t-1}[j] read
C4     activations by symmetry (sigmoid: 1 - e, tanh: -e for z < 0); c_{t-1} (0 on a first step)
C5     f * c_{t-1} and i * g
C6     c_t = round/saturate, written back
C7     tanh ROM read by |c_t|
C8     tanh(c_t) by symmetry
C9     h = round/saturate(o * tanh(c_t)) into the h buffer; the h counter releases it to the MACs
C10    after the step's last unit, h_t (the whole buffer) enters the output FIFO if it emits
=====  =====================================================================================

:data:`GATE_LATENCY` is this fixed latency (C0 to C9).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory

from ...numerics import (
    ACT_FMT,
    ACT_ONE,
    CELL_FMT,
    FX_FRAC,
    GATE_FMT,
    GATE_PART_FMT,
    H_FRAC,
    INT8,
    SIGMOID_INDEX_SHIFT,
    SIGMOID_TABLE,
    TANH_INDEX_SHIFT,
    TANH_TABLE,
)
from .config import LstmConfig

__all__ = ["build_gate_unit", "GATE_LATENCY"]

GATE_LATENCY = 10
_SIGMOID_GATES = (0, 1, 3)   # i, f, o; g (2) takes tanh


def _sat(value, fmt):
    """``value`` clamped into the signed format ``fmt`` (an expression)."""
    return Mux(value > fmt.max, fmt.max, Mux(value < fmt.min, fmt.min, value))


def _round_shift_var(value, shift):
    """``(value + 2**(shift-1)) >> shift`` for a variable ``shift >= 1``, as
    ``((value >> (shift - 1)) + 1) >> 1`` (the same round half up, no wide adder before the
    shifter)."""
    return ((value >> (shift - 1)[:len(shift)]) + 1) >> 1


def _round_shift(value, shift: int):
    return (value + (1 << (shift - 1))) >> shift


def _index(value, shift: int, last: int):
    """Table index of a signed value: ``min(|value| >> shift, last)``."""
    mag = Mux(value < 0, -value, value)
    return Mux((mag >> shift) > last, last, mag >> shift)


def build_gate_unit(m: Module, cfg: LstmConfig, *, par_rd, chains, start, j, h_n, first, last,
                    emit, h_buf, h_count, out_fifo):
    """Add the gate unit to ``m``; returns a signal that is high while any stage holds work.

    ``h_n`` is the run's hidden size (at most ``cfg.hidden_size``): a pass is units ``0 ..
    h_n - 1`` and h_t leaves with its elements from ``h_n`` on zeroed."""
    H = cfg.hidden_size
    act = signed(ACT_FMT.bits)
    tab_bits = max(max(SIGMOID_TABLE), max(TANH_TABLE)).bit_length()
    last_entry = len(SIGMOID_TABLE) - 1
    sig_rom = m.submodules.sigmoid_rom = memory.Memory(
        shape=unsigned(tab_bits), depth=len(SIGMOID_TABLE), init=SIGMOID_TABLE)
    tanh_rom = m.submodules.tanh_rom = memory.Memory(
        shape=unsigned(tab_bits), depth=len(TANH_TABLE), init=TANH_TABLE)
    # Depth >= 2: a 1-deep memory has a 0-bit address, which lints as [-1:0].
    c_mem = m.submodules.c_mem = memory.Memory(shape=signed(CELL_FMT.bits), depth=max(H, 2),
                                               init=[])
    c_rd, c_wr = c_mem.read_port(), c_mem.write_port()

    # Control travels beside the data: valid, j, and the step's flags.
    ctl = {"v": start, "j": j, "first": first, "last": last, "emit": emit, "endj": j == h_n - 1}
    stages = [ctl]
    for n in range(1, GATE_LATENCY + 1):
        nxt = {}
        for key, sig in stages[-1].items():
            reg = Signal(range(max(H, 2)) if key == "j" else 1, name=f"g{n}_{key}")
            m.d.sync += reg.eq(sig)
            nxt[key] = reg
        stages.append(nxt)

    # C0 -> C1
    for g in range(4):
        m.d.comb += [par_rd[g].addr.eq(j), par_rd[g].en.eq(1)]
    ax1 = [Signal(signed(cfg.acc_bits), name=f"ax1_{g}") for g in range(4)]
    ah1 = [Signal(signed(cfg.acc_bits), name=f"ah1_{g}") for g in range(4)]
    for g, (cx, ch) in enumerate(chains):
        m.d.sync += [ax1[g].eq(cx), ah1[g].eq(ch)]

    # C1 -> C2
    prod_bits = cfg.acc_bits + cfg.mult_bits + 1
    px2 = [Signal(signed(prod_bits), name=f"px2_{g}") for g in range(4)]
    ph2 = [Signal(signed(prod_bits), name=f"ph2_{g}") for g in range(4)]
    sx2 = [Signal(cfg.shift_bits, name=f"sx2_{g}") for g in range(4)]
    sh2 = [Signal(cfg.shift_bits, name=f"sh2_{g}") for g in range(4)]
    b2 = [Signal(signed(GATE_FMT.bits), name=f"b2_{g}") for g in range(4)]
    for g in range(4):
        par = par_rd[g].data
        m.d.sync += [px2[g].eq(ax1[g] * par.mult_x), ph2[g].eq(ah1[g] * par.mult_h),
                     sx2[g].eq(par.shift_x), sh2[g].eq(par.shift_h), b2[g].eq(par.bias)]

    # C2 -> C3
    z3 = [Signal(signed(GATE_FMT.bits), name=f"z3_{g}") for g in range(4)]
    for g in range(4):
        part_x = _sat(_round_shift_var(px2[g], sx2[g]), GATE_PART_FMT)
        part_h = _sat(_round_shift_var(ph2[g], sh2[g]), GATE_PART_FMT)
        total = Signal(signed(GATE_PART_FMT.bits + 2), name=f"zsum_{g}")
        m.d.comb += total.eq(part_x + part_h + b2[g])
        m.d.sync += z3[g].eq(_sat(total, GATE_FMT))

    # C3 -> C4: ROM reads by magnitude, c_{t-1} read.
    neg4 = [Signal(name=f"neg4_{g}") for g in range(4)]
    ents = []
    for g in range(4):
        sig = g in _SIGMOID_GATES
        rp = (sig_rom if sig else tanh_rom).read_port()
        shift = SIGMOID_INDEX_SHIFT if sig else TANH_INDEX_SHIFT
        m.d.comb += [rp.addr.eq(_index(z3[g], shift, last_entry)), rp.en.eq(1)]
        m.d.sync += neg4[g].eq(z3[g] < 0)
        ents.append(rp.data)
    m.d.comb += [c_rd.addr.eq(stages[3]["j"]), c_rd.en.eq(1)]

    # C4 -> C5
    a5 = [Signal(act, name=f"a5_{g}") for g in range(4)]
    for g in range(4):
        if g in _SIGMOID_GATES:
            m.d.sync += a5[g].eq(Mux(neg4[g], ACT_ONE - ents[g], ents[g]))
        else:
            m.d.sync += a5[g].eq(Mux(neg4[g], -ents[g], ents[g]))
    c5 = Signal(signed(CELL_FMT.bits))
    m.d.sync += c5.eq(Mux(stages[4]["first"], 0, c_rd.data))

    # C5 -> C6
    i5, f5, g5, o5 = a5
    fc6 = Signal(signed(ACT_FMT.bits + CELL_FMT.bits), name="fc6")
    ig6 = Signal(signed(2 * ACT_FMT.bits), name="ig6")
    o6 = Signal(act, name="o6")
    m.d.sync += [fc6.eq(f5 * c5), ig6.eq(i5 * g5), o6.eq(o5)]

    # C6 -> C7: the new cell state, written back.
    c_new = Signal(signed(CELL_FMT.bits))
    m.d.comb += c_new.eq(_sat(_round_shift(fc6 + ig6, FX_FRAC), CELL_FMT))
    m.d.comb += [c_wr.addr.eq(stages[6]["j"]), c_wr.data.eq(c_new),
                 c_wr.en.eq(stages[6]["v"])]
    c7, o7 = Signal(signed(CELL_FMT.bits)), Signal(act)
    m.d.sync += [c7.eq(c_new), o7.eq(o6)]

    # C7 -> C8 -> C9: tanh(c_t).
    tp = tanh_rom.read_port()
    m.d.comb += [tp.addr.eq(_index(c7, TANH_INDEX_SHIFT, last_entry)), tp.en.eq(1)]
    neg8, o8 = Signal(), Signal(act)
    m.d.sync += [neg8.eq(c7 < 0), o8.eq(o7)]
    t9, o9 = Signal(act), Signal(act)
    m.d.sync += [t9.eq(Mux(neg8, -tp.data, tp.data)), o9.eq(o8)]

    # C9 -> C10: h into the buffer (released to the MAC lanes by the counter).
    h9 = Signal(signed(INT8.bits))
    m.d.comb += h9.eq(_sat(_round_shift(o9 * t9, 2 * FX_FRAC - H_FRAC), INT8))
    c9 = stages[9]
    with m.If(c9["v"]):
        m.d.sync += h_count.eq(h_count + 1)
        for idx in range(H):
            with m.If(c9["j"] == idx):
                m.d.sync += h_buf[idx].eq(h9)

    # C10: the complete h_t enters the output FIFO (its slot was reserved at the snapshot).
    c10 = stages[10]
    # Elements past the run's H hold an earlier, larger run's h: they leave as 0.
    h_out = Cat(*[Mux(idx < h_n, h_buf[idx], 0) for idx in range(H)], c10["last"])
    m.d.comb += [out_fifo.w_data.eq(h_out),
                 out_fifo.w_en.eq(c10["v"] & c10["endj"] & c10["emit"])]

    busy = Signal()
    m.d.comb += busy.eq(_any([st["v"] for st in stages[1:]]))
    return busy


def _any(sigs):
    out = 0
    for sig in sigs:
        out = out | sig
    return out
