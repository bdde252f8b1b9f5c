"""The activation scratchpad as two banks: even words in one, odd words in the other.

Each bank is a block RAM with one read and one write port, as the whole scratchpad was, and
together they hold exactly its words. The read port takes one address ``x`` and returns, one
cycle later, word ``x`` (``rdata``, as a one-bank memory would) and word ``x + 1`` (``rnext``):
consecutive words always sit in different banks, so both are read in the same cycle at no
extra memory. Every reader that wants one word a cycle (the DMAs, the host, the MATMUL gather)
sees the memory it saw before; the element-wise unit reads two words of an operand at once
(:mod:`.eltwise`), so an ADD moves one word a cycle through one read port.

Bank 0 holds word ``2i`` at ``i``, bank 1 word ``2i + 1`` at ``i``. A read of ``x`` addresses
bank 1 at ``x >> 1``, and bank 0 at ``x >> 1`` too, or, for a read of a pair (``pair``), at
``rup``, which the reader keeps equal to ``(x + 1) >> 1``; ``x``'s low bit, registered, selects
which bank's data is word ``x``. So ``rnext`` is word ``x + 1`` only for a pair read (the
element-wise unit's, which keeps ``rup`` in registers beside its pointers): no adder is on the
path from the readers' addresses into the block RAMs, which fan out to sixteen DP16KD a bank
and, on ECP5, to the compare Yosys adds to give a read the old word when the other port writes
it (the netlist estimate's deepest path at a063651, 15.2 ns, ran through that adder). Past the
last word, ``rnext`` is any word (the address wraps in its bank); no reader uses it there.
Writes go to the bank of the address's low bit, and land a cycle after they are presented:
the write port's address, data and enable are registers, so the job's kind, the units' result
choice and the store's address are not in front of the block RAMs' write pins (the path into
their write enables was one of c5086a7's slowest, 12.9 ns). No datapath reader uses a word read
in the cycle it lands (a job reads its inputs before its results can land on them, the next
job's reads start cycles after the last store, and a copy between instances reads one and
writes another), so the banks are ``no_rw_check``: Yosys adds no read-during-write logic (on
ECP5 a delayed write, an address compare and a multiplexer on every bit the block RAMs return,
in front of every reader of the scratchpad). What such a read returns is undefined, as a block
RAM's is; in simulation with :data:`..conv.rw.RW_POISON` it is the word inverted, and the
accelerator's benches stay exact with it (``tests/test_accel_rw.py``): the evidence, not a
proof. The host's reads (``rhost``) may meet a landing write (a word written in the cycle
before, or a job's last store as a soft reset gives the host the port): they take the landing
word from a register (a multiplexer on the host's read data only).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..conv.rw import NO_RW_CHECK, data_register, read_data

__all__ = ["ActBanks"]


class ActBanks(wiring.Component):
    """``depth`` words of ``width`` bits in two banks.

    Members
    -------
    raddr : ``In``               the read address (every cycle; data one cycle later)
    pair, rup : ``In``           read a pair: ``rup`` is ``(raddr + 1) >> 1``
    rdata, rnext : ``Out``       words ``raddr`` and (a pair) ``raddr + 1`` of the previous cycle
    rhost : ``Out``              ``rdata`` with the write that landed in the read's cycle
    waddr, wdata, wen : ``In``   write ``wdata`` at ``waddr`` when ``wen``: it lands on the
                                 next edge (the registers load on this one)
    """

    def __init__(self, width: int, depth: int):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        if not isinstance(depth, int) or depth < 2:
            raise ValueError(f"depth must be an integer of at least 2, not {depth!r}")
        self.width, self.depth = width, depth
        super().__init__({
            "raddr": In(range(depth)), "pair": In(1), "rup": In(range((depth + 1) // 2)),
            "rdata": Out(width), "rnext": Out(width), "rhost": Out(width),
            "waddr": In(range(depth)), "wdata": In(width), "wen": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        banks = [memory.Memory(shape=unsigned(self.width), depth=(self.depth + 1 - b) // 2,
                               init=[], attrs=NO_RW_CHECK) for b in (0, 1)]
        m.submodules.even, m.submodules.odd = banks
        rd = [bank.read_port() for bank in banks]
        wr = [bank.write_port() for bank in banks]
        half = self.raddr >> 1
        odd = Signal()                       # the last read address was odd
        m.d.sync += odd.eq(self.raddr[0])
        w_en = Signal(name="w_en")
        w_addr, w_data = data_register(self.waddr.shape(), "w_addr"), data_register(
            self.width, "w_data")
        m.d.sync += [w_en.eq(self.wen), w_addr.eq(self.waddr), w_data.eq(self.wdata)]
        for b, port in enumerate(wr):
            m.d.comb += [port.addr.eq(w_addr >> 1), port.data.eq(w_data),
                         port.en.eq(w_en & (w_addr[0] == b))]
        data = [read_data(m, w, r, f"act_{name}") for w, r, name in zip(wr, rd, ("even", "odd"))]
        landed, hit = data_register(self.width, "landed"), Signal(name="landed_hit")
        m.d.sync += [landed.eq(w_data), hit.eq(w_en & (w_addr == self.raddr))]
        m.d.comb += [
            rd[0].addr.eq(Mux(self.pair, self.rup, half)), rd[1].addr.eq(half),
            self.rdata.eq(Mux(odd, data[1], data[0])),
            self.rnext.eq(Mux(odd, data[0], data[1])),
            self.rhost.eq(Mux(hit, landed, self.rdata)),
        ]
        return m
