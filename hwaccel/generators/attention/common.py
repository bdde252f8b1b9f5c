"""Stream layouts and small datapath pieces shared by the attention units."""

from __future__ import annotations

import math

from amaranth.hdl import Array, Cat, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory

from ...hdl.delay import delay
from ...numerics import INT8
from ...numerics.layernorm import RSQRT_SHIFT

__all__ = ["word_layout", "out_layout", "lane_tables", "table_entry", "packed_writer",
           "lane_max", "round_shift_var", "sat8", "tree_sum", "tree_reduce", "tree_stages",
           "delay", "any_of", "slot_regs", "put_slot", "bit_length", "rsqrt_steps",
           "TREE_LEVELS_PER_STAGE"]

#: Levels of a lane tree (compare-select or add) between registers: two keep an 8-bit maximum
#: or an 18-bit sum of 16 lanes off the critical path (one level of 16 was 34.7 MHz on ECP5).
TREE_LEVELS_PER_STAGE = 2


def word_layout(lanes: int) -> data.ArrayLayout:
    """One stream word: ``lanes`` int8 values, lane ``i`` holding row position ``word*lanes+i``."""
    return data.ArrayLayout(signed(INT8.bits), lanes)


def out_layout(lanes: int) -> data.StructLayout:
    """What every unit emits: a word and ``last`` on a row's (or a stream's) last word."""
    return data.StructLayout({"data": word_layout(lanes), "last": 1})


def lane_tables(m, name: str, row, depth: int, lanes: int, *, addr, data, en):
    """``lanes`` copies of one table of ``depth`` rows of ``row`` (an ``ArrayLayout`` of
    entries), written together a row a cycle (``addr``, ``data``, ``en``: one enable per entry,
    from :func:`packed_writer`); returns one synchronous read port per copy.

    One memory per lane, each with one write and one read port, maps to one block RAM (or LUT
    RAM) per lane directly; a single memory with ``lanes`` read ports is the same hardware
    after the synthesizer replicates it, but Yosys's memory mapper failed on 16 ports."""
    ports = []
    for i in range(lanes):
        mem = memory.Memory(shape=row, depth=depth, init=[])
        m.submodules[f"{name}{i}"] = mem
        wr = mem.write_port(granularity=1)
        m.d.comb += [wr.addr.eq(addr), wr.data.eq(data), wr.en.eq(en)]
        ports.append(mem.read_port())
    return ports


def table_entry(m, port, index, en, name: str):
    """Look entry ``index`` up through read port ``port`` of a :func:`lane_tables` table when
    ``en``: the row ``index // row_entries`` is read, and its entry ``index % row_entries``
    selected by a register that holds as the port's data does. Returns the entry (valid the
    cycle after ``en``, held while ``en`` is low)."""
    row_entries = port.data.shape().length
    low = (row_entries - 1).bit_length()
    sel = Signal(range(row_entries), name=f"{name}_sel")
    m.d.comb += [port.addr.eq(index >> low), port.en.eq(en)]
    with m.If(en):
        m.d.sync += sel.eq(index[:low])
    return port.data[sel]


def packed_writer(m, name: str, port, *, entry_bits: int, row_entries: int, count,
                  max_count: int, allow, restart=None, open_load=None):
    """Take packed beats (:mod:`.packing`) from stream ``port`` and write their entries into
    memory rows of ``row_entries`` entries, one row a cycle, from entry 0 of the load on.

    ``count`` (an int or a signal up to ``max_count``) is the load's entries; after the last
    beat the next beat starts a new load, as does ``restart``. ``port`` is ready when ``allow``
    and no beat is held or the held beat writes its last row this cycle. Returns ``(addr,
    data, en, busy)``: the row, its entries (an ``ArrayLayout`` of ``row_entries`` unsigned
    entries) and one write enable per entry, registered (a row is written the cycle after it
    is cut from the beat: the beat's selects and the memories' write ports on separate
    cycles), and whether a beat is held or a row still to be written. ``open_load`` (a
    signal, optional) is driven high from a load's ``restart`` or first beat taken to its
    last beat taken: with ``busy``, whether a load is under way (the memory not yet whole)."""
    payload = Value.cast(port.payload)
    load_bits = len(payload)
    k, p, eb = load_bits // entry_bits, row_entries, entry_bits
    assert k >= 1, "a beat holds at least one entry"
    chunks = math.ceil(k / p) + 1
    rows = math.ceil(max_count / p) + 1
    beat = Signal(chunks * p * eb, name=f"{name}_beat")
    prev = Signal(p * eb, name=f"{name}_prev")
    staged = Signal(name=f"{name}_staged")
    kj = Signal(range(k + 1), name=f"{name}_kj")            # entries of the held beat
    sh = Signal(range(p + 1), name=f"{name}_sh")            # p - its first entry's slot
    off = Signal(signed((k + 2 * p).bit_length() + 1), name=f"{name}_off")   # c*p - first
    c = Signal(range(chunks), name=f"{name}_chunk")
    row = Signal(range(rows + 1), name=f"{name}_row")
    done = Signal(range(max_count + k + 1), name=f"{name}_done")   # entries before the next
    nxt_first = Signal(range(p), name=f"{name}_nfirst")
    nxt_row = Signal(range(rows + 1), name=f"{name}_nrow")
    last_row = Signal(name=f"{name}_last")

    cur = beat.word_select(c, p * eb)
    both = Cat(prev, cur)                          # the row: both[sh*eb:(sh+p)*eb]
    shifted = Array(both[min(x, p) * eb:(min(x, p) + p) * eb]     # every code of sh listed
                    for x in range(1 << len(sh)))[sh]
    # The row is registered on its way to the memories (written the cycle after).
    row_addr = Signal.like(row, name=f"{name}_waddr")
    row_data = Signal(data.ArrayLayout(unsigned(eb), p), name=f"{name}_data")
    en = Signal(p, name=f"{name}_en")
    pending = Signal(name=f"{name}_pending")
    m.d.comb += [last_row.eq(staged & (off + p >= kj)),
                 port.ready.eq(allow & (~staged | last_row))]
    m.d.sync += [row_addr.eq(row), row_data.eq(shifted), pending.eq(staged),
                 en.eq(Mux(staged, Cat(*[(off + b >= 0) & (off + b < kj) for b in range(p)]),
                           0))]
    with m.If(staged):
        m.d.sync += [prev.eq(cur), c.eq(c + 1), off.eq(off + p), row.eq(row + 1)]
        with m.If(last_row):
            m.d.sync += staged.eq(0)
    left = count - done
    with m.If(port.valid & port.ready):
        m.d.sync += [beat.eq(payload[:k * eb]), staged.eq(1), c.eq(0),
                     sh.eq(p - nxt_first), off.eq(-nxt_first), row.eq(nxt_row),
                     kj.eq(Mux(left < k, left, k))]
        with m.If(done + k >= count):
            m.d.sync += [done.eq(0), nxt_first.eq(0), nxt_row.eq(0)]
            if open_load is not None:
                m.d.sync += open_load.eq(0)
        with m.Else():
            step, extra = divmod(k, p)
            wrap = nxt_first + extra >= p
            if open_load is not None:
                m.d.sync += open_load.eq(1)
            m.d.sync += [done.eq(done + k),
                         nxt_first.eq(Mux(wrap, nxt_first + extra - p, nxt_first + extra)),
                         nxt_row.eq(nxt_row + step + wrap)]
    if restart is not None:
        with m.If(restart):
            m.d.sync += [done.eq(0), nxt_first.eq(0), nxt_row.eq(0)]
            if open_load is not None:
                m.d.sync += open_load.eq(1)
    return row_addr, row_data, en, staged | pending


def lane_max(values):
    """The largest of signed values, as a balanced tree of compare-and-select."""
    vals = list(values)
    while len(vals) > 1:
        nxt = [Mux(a > b, a, b) for a, b in zip(vals[::2], vals[1::2])]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def tree_sum(values):
    """The sum of values as a balanced adder tree (widths grow one bit a level)."""
    vals = list(values)
    while len(vals) > 1:
        nxt = [a + b for a, b in zip(vals[::2], vals[1::2])]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def tree_stages(lanes: int) -> int:
    """Registers inside :func:`tree_reduce` of ``lanes`` values (its caller registers the
    result): one after every :data:`TREE_LEVELS_PER_STAGE` levels but the last."""
    levels = (lanes - 1).bit_length()
    return max(0, (levels - 1) // TREE_LEVELS_PER_STAGE)


def tree_reduce(m, values, op, name: str):
    """``op`` over ``values`` as a balanced tree with a register after every
    :data:`TREE_LEVELS_PER_STAGE` levels (not after the last: the caller registers the
    result); the result is :func:`tree_stages` cycles late."""
    vals, level, stages = list(values), 0, 0
    while len(vals) > 1:
        nxt = [op(a, b) for a, b in zip(vals[::2], vals[1::2])]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals, level = nxt, level + 1
        if level % TREE_LEVELS_PER_STAGE == 0 and len(vals) > 1:
            regs = [Signal(v.shape(), name=f"{name}_t{stages}_{i}") for i, v in enumerate(vals)]
            m.d.sync += [r.eq(v) for r, v in zip(regs, vals)]
            vals, stages = regs, stages + 1
    assert stages == tree_stages(len(list(values)))
    return vals[0]


def slot_regs(name: str, shape, count: int) -> Array:
    """``count`` registers ``<name><k>``, read by a slot index (an ``Array``)."""
    return Array(Signal(shape, name=f"{name}{k}") for k in range(count))


def put_slot(m, regs, idx, value) -> None:
    """``regs[idx] <= value`` (in the current condition), one compare a register: an
    ``Array`` as an assignment target becomes a case Verilator's lint calls incomplete."""
    for k, reg in enumerate(regs):
        with m.If(idx == k):
            m.d.sync += reg.eq(value)


def any_of(sigs):
    """The OR of signals (0 for none)."""
    out = 0
    for sig in sigs:
        out = out | sig
    return out


def round_shift_var(value, shift_m1):
    """``(value + 2**(shift-1)) >> shift`` for a variable ``shift >= 1``, given ``shift - 1``
    (a register, so no subtract sits before the shifter), as ``((value >> (shift - 1)) + 1)
    >> 1``: the same round half up (floor shifts), without a wide adder in front of the
    shifter."""
    return ((value >> shift_m1) + 1) >> 1


def sat8(value):
    """``value`` clamped into int8."""
    return Mux(value > INT8.max, INT8.max, Mux(value < INT8.min, INT8.min, value))


def bit_length(value):
    """``value.bit_length()`` of an unsigned value: a balanced tree of halves (the upper half
    when it is not zero), ``log2`` levels of muxes rather than one per bit."""
    n = len(value)
    if n == 1:
        return value
    lo = n // 2
    return Mux(value[lo:] != 0, bit_length(value[lo:]) + lo, bit_length(value[:lo]))


def rsqrt_steps(m, name: str, k: int, steps: int, big: int, *, busy, start, w):
    """A bitwise reciprocal square root, ``k`` root bits a cycle from bit ``steps - 1`` down
    while ``busy`` (``start`` loads ``w``, the mantissa already shifted to ``w << 2 * (steps -
    1)``); returns the root with this cycle's bits (the result in the last step's cycle).

    The greedy choice takes bit ``b`` when ``(r + 2**b)**2 * w <= 2**62``: with ``P = r*r*w``,
    ``A = (r*w) << (b+1)`` and ``B = w << 2b``, that is ``P + A + B <= 2**62``. The registers
    keep ``rest = 2**62 - P`` and ``S = A + B``, so a bit is one subtract (``S <= rest``) and a
    select, the next ``S`` (either way) added from ``A`` and ``B`` beside it."""
    top = 1 << (2 * RSQRT_SHIFT)                   # 2**62
    rest = Signal(top.bit_length(), name=f"{name}_rest")
    acc_a, acc_b = Signal(big, name=f"{name}_a"), Signal(big, name=f"{name}_b")
    acc_s = Signal(big + 1, name=f"{name}_s")
    r = Signal(steps, name=f"{name}_r")
    e_cur, a_cur, b_cur, s_cur, q_cur = rest, acc_a, acc_b, acc_s, r
    for j in range(k):                             # k greedy steps chained in one cycle
        diff = Signal(signed(big + 2), name=f"{name}_diff{j}")
        take = Signal(name=f"{name}_take{j}")
        e_new = Signal.like(rest, name=f"{name}_rest{j}")
        a_new, b_new = (Signal(big, name=f"{name}_{x}{j}") for x in "ab")
        s_new = Signal.like(acc_s, name=f"{name}_s{j}")
        q_new = Signal(steps, name=f"{name}_r{j}")
        half_a, quarter_b = a_cur >> 1, b_cur >> 2
        m.d.comb += [diff.eq(e_cur - s_cur),
                     take.eq(diff >= 0),
                     e_new.eq(Mux(take, diff, e_cur)),
                     a_new.eq(Mux(take, half_a + b_cur, half_a)),
                     b_new.eq(quarter_b),
                     s_new.eq(Mux(take, half_a + b_cur + quarter_b, half_a + quarter_b)),
                     q_new.eq(Cat(take, q_cur)[:steps])]
        e_cur, a_cur, b_cur, s_cur, q_cur = e_new, a_new, b_new, s_new, q_new
    with m.If(busy):
        m.d.sync += [rest.eq(e_cur), acc_a.eq(a_cur), acc_b.eq(b_cur), acc_s.eq(s_cur),
                     r.eq(q_cur)]
    with m.If(start):
        m.d.sync += [rest.eq(top), acc_a.eq(0), acc_b.eq(w), acc_s.eq(w), r.eq(0)]
    return q_cur
