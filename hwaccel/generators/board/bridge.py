"""The UART bridge: framed requests in, the accelerator's host port driven, framed replies out.

The frame format, the ops and the fault codes are :mod:`.framing`'s. A request is received
whole -- header, payload into a block-RAM buffer, checksum -- before anything acts on it, so a
WRITE whose checksum fails writes nothing. A fault found before the frame's end (bad sync,
opcode, length, a UART framing error) sends the bridge to discard bytes until the line has been
quiet for ``gap`` cycles before it replies; a frame that stops arriving is TRUNCATED after the
same quiet time. Bytes that arrive while a request executes or its reply is sent are
discarded (the protocol is one request, then its reply): a frame cut that way is answered as a
bad one when its rest arrives.

Every word travels at its region's own width (:func:`.framing.region_bytes`: an activation
word's bytes in the ACT region, a weight word's in WGT, a command word's in PROG, a register's in
REG). A WRITE's length passes the header check if it is an address and 1..``max_words`` words
of some region; once the frame's checksum holds, a length that is not whole words of the
addressed region is BAD_LENGTH, and nothing is written. The buffer holds ``max_words`` of the
widest region's words.

Reads go through the host port one word at a time (``re``, then ``rdata`` the next cycle), each
sent least significant byte first: the region's word bytes, :data:`.framing.STATUS_BYTES` of
STATUS and :data:`.framing.COUNTER_BYTES` of each counter.
"""

from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..accel.accelerator import host_signature
from ..accel.isa import CONTROL_RESET, CONTROL_START, COUNTERS, Reg, Region
from .config import BridgeConfig
from .crc import crc16_next
from .framing import (
    COUNTER_BYTES,
    CRC_INIT,
    FIXED_LENGTH,
    INFO_BYTES,
    STATUS_BYTES,
    SYNC_REPLY,
    SYNC_REQUEST,
    VERSION,
    Fault,
    Op,
    config_id,
    info_payload,
)
from .uart_rx import RX_LAYOUT

__all__ = ["Bridge"]


class Bridge(wiring.Component):
    """Frames from ``rx`` drive ``host``; replies go out on ``tx``.

    Parameters
    ----------
    config : BridgeConfig

    Members
    -------
    rx : ``In(stream.Signature(RX_LAYOUT))``   received bytes (always accepted)
    tx : ``Out(stream.Signature(8))``          bytes to send
    host : ``Out(host_signature(config.accel))``
    busy : ``In(1)``                          the accelerator's STATUS.busy
    """

    def __init__(self, config: BridgeConfig):
        if not isinstance(config, BridgeConfig):
            raise TypeError(f"config must be a BridgeConfig, not {config!r}")
        self.config = config
        super().__init__({"rx": In(stream.Signature(RX_LAYOUT)), "tx": Out(stream.Signature(8)),
                          "host": Out(host_signature(config.accel)), "busy": In(1)})

    def elaborate(self, platform):
        cfg, acc = self.config, self.config.accel
        w, ab = cfg.word_bytes, acc.addr_bits   # w: the widest region's word
        widths = cfg.region_bytes                # each region's word, in Region order
        assert len(widths) == len(Region) and all(0 < b <= w for b in widths)
        m = Module()
        m.submodules.buf = buf = memory.Memory(shape=8, depth=cfg.buffer_bytes, init=[])
        wr, rd = buf.write_port(), buf.read_port()

        rx, tx, host = self.rx, self.tx, self.host
        byte, got, bad = rx.payload.data, rx.valid, rx.payload.error
        m.d.comb += rx.ready.eq(1)

        code = Signal(8)            # the request's op as received
        length = Signal(16)         # its payload length as received
        idx = Signal(16)            # byte index within a header, payload or checksum
        crc = Signal(16, init=CRC_INIT)
        crc_lo = Signal(8)
        args = Signal(48)           # the payload's first six bytes (addr, count / pc)
        nwords = Signal(range(cfg.max_words + 1))
        wbytes = Signal(range(w + 1))   # bytes of a WRITE's words (its region's)
        fault = Signal(8)
        quiet = Signal(range(cfg.gap + 1))
        word = Signal(max(w, COUNTER_BYTES) * 8)
        rptr = Signal(range(cfg.buffer_bytes + 1))
        bcount = Signal(range(len(word) // 8 + 1))
        haddr = Signal(2 + ab)
        j = Signal(16)              # words done
        count = Signal(16)          # words to do
        bpw = Signal(range(len(word) // 8 + 1))   # bytes sent per word read
        reply_code = Signal(8)
        reply_len = Signal(16)
        small = Signal(INFO_BYTES * 8)   # a short reply body, sent from its low byte
        small_n = Signal(range(INFO_BYTES + 1))
        body_words = Signal()            # the body is words read through the host port
        hdr = Signal(2)

        with m.If(got):
            m.d.sync += quiet.eq(0)
        with m.Elif(quiet != cfg.gap):
            m.d.sync += quiet.eq(quiet + 1)
        silent = quiet == cfg.gap
        crc_in = crc16_next(crc, byte)

        # --- header checks, on the length's high byte as it arrives --------------------------
        l_now = Cat(length[:8], byte)
        known = Const(0, 1)
        for op in Op:
            known = known | (code == op)
        ok_len = Const(0, 1)
        for op, n in FIXED_LENGTH.items():
            ok_len = ok_len | ((code == op) & (l_now == n))
        for n_ in sorted({4 + k * b for b in set(widths) for k in range(1, cfg.max_words + 1)}):
            ok_len = ok_len | ((code == Op.WRITE) & (l_now == n_))

        # --- request decode (EXEC) -----------------------------------------------------------
        addr = args[:32]
        region = addr[ab:ab + 2]
        offset = addr[:ab]
        rcount = args[32:48]

        def by_region(values):
            return Array(values)[region]

        def whole_words(b):   # a WRITE's words of b bytes, 0 if its length is not 1..max of them
            k_ = Const(0, len(nwords))
            for k in range(1, cfg.max_words + 1):
                k_ = k_ | ((length == 4 + k * b) * k)   # at most one k matches
            return k_

        # EXEC's checks are registers, worked out every cycle from the request's fields (its
        # code, length and first six bytes), which are all registers by the checksum's first
        # byte, ten clocks or more before EXEC: as logic they ran from ``length`` through the
        # word counts, the address add and its compare into the state machine, the board
        # top's critical path (19.8 ns by :mod:`hwaccel.impl.logic_depth`, where the
        # accelerator's deepest are about 14; nextpnr estimated 25.10 MHz after placement).
        k_write = Signal.like(nwords, name="k_write")   # the WRITE's words, 0: not whole
        in_range = Signal(name="in_range")
        m.d.sync += k_write.eq(by_region([whole_words(b) for b in widths]))
        n = Mux(code == Op.WRITE, k_write, rcount)
        reg_top = Mux(code == Op.WRITE, 1 + Reg.WATCHDOG, 1 + len(COUNTERS))
        limit = Array([Const(acc.act_depth, 32), Const(acc.wgt_depth, 32),
                       Const(acc.prog_depth, 32), reg_top])[region]
        m.d.sync += in_range.eq((addr[ab + 2:32] == 0) & (offset + n <= limit))
        # A READ's count check and reply length are registers too: the length, a product on a
        # DSP block, was next on the board (``busy`` into ``reply_len``, 17.2 ns at 58.11 MHz).
        read_ok = Signal(name="read_ok")   # 1..the most words a reply's length can count
        read_len = Signal.like(reply_len, name="read_len")
        most = by_region([Const(0xFFFF // b, 16) for b in widths])
        m.d.sync += [read_ok.eq((rcount != 0) & (rcount <= most)),
                     read_len.eq(by_region([(rcount * b)[:16] for b in widths]))]
        memory_access = region != Region.REG
        info = int.from_bytes(info_payload(VERSION, widths, cfg.max_words, ab, config_id(acc)),
                              "little")

        def fail(f):
            m.d.sync += fault.eq(f)

        def begin_reply(code_, n_bytes, *, words=False, small_value=None, small_len=0):
            m.d.sync += [reply_code.eq(code_), reply_len.eq(n_bytes), body_words.eq(words),
                         crc.eq(CRC_INIT), hdr.eq(0), small_n.eq(small_len), bcount.eq(0),
                         j.eq(0)]
            if small_value is not None:
                m.d.sync += small.eq(small_value)
            m.next = "REPLY"

        # A WRITE's word is shifted in at its region's top byte (``haddr``'s region, set in
        # EXEC), so once its bytes are in it is ``word``'s low bytes, and the host port's write
        # data is the register itself: the region's pick is in front of ``word``, inside the
        # bridge, not between it and the memories it writes (placed on the board, ``word``
        # through the pick into the program memory was the deepest path after the checks).
        shifted = Array([Cat(word[8:8 * b], rd.data) for b in widths])[haddr[ab:ab + 2]]
        m.d.comb += [host.addr.eq(haddr), host.wdata.eq(word[:acc.data_bits]),
                     rd.addr.eq(rptr)]

        with m.FSM():
            with m.State("HUNT"):
                with m.If(got):
                    m.d.sync += [code.eq(byte), length.eq(0), idx.eq(0), crc.eq(CRC_INIT)]
                    with m.If(bad):
                        fail(Fault.FRAMING)
                        m.next = "DRAIN"
                    with m.Elif(byte == SYNC_REQUEST):
                        m.next = "HEADER"
                    with m.Else():
                        fail(Fault.BAD_SYNC)
                        m.next = "DRAIN"

            with m.State("HEADER"):
                with m.If(got & bad):
                    fail(Fault.FRAMING)
                    m.next = "DRAIN"
                with m.Elif(got):
                    m.d.sync += [crc.eq(crc_in), idx.eq(idx + 1)]
                    with m.If(idx == 0):
                        m.d.sync += code.eq(byte)
                    with m.Elif(idx == 1):
                        m.d.sync += length[:8].eq(byte)
                    with m.Else():
                        m.d.sync += [length[8:].eq(byte), idx.eq(0)]
                        with m.If(~known):
                            fail(Fault.BAD_OPCODE)
                            m.next = "DRAIN"
                        with m.Elif(~ok_len):
                            fail(Fault.BAD_LENGTH)
                            m.next = "DRAIN"
                        with m.Elif(l_now == 0):
                            m.next = "CHECK"
                        with m.Else():
                            m.next = "PAYLOAD"
                with m.Elif(silent):
                    fail(Fault.TRUNCATED)
                    m.next = "ERROR"

            with m.State("PAYLOAD"):
                with m.If(got & bad):
                    fail(Fault.FRAMING)
                    m.next = "DRAIN"
                with m.Elif(got):
                    m.d.comb += [wr.addr.eq(idx), wr.data.eq(byte), wr.en.eq(1)]
                    m.d.sync += [crc.eq(crc_in), idx.eq(idx + 1)]
                    for i in range(6):
                        with m.If(idx == i):
                            m.d.sync += args[8 * i:8 * i + 8].eq(byte)
                    with m.If(idx == length - 1):
                        m.d.sync += idx.eq(0)
                        m.next = "CHECK"
                with m.Elif(silent):
                    fail(Fault.TRUNCATED)
                    m.next = "ERROR"

            with m.State("CHECK"):   # the two checksum bytes
                with m.If(got & bad):
                    fail(Fault.FRAMING)
                    m.next = "DRAIN"
                with m.Elif(got & (idx == 0)):
                    m.d.sync += [crc_lo.eq(byte), idx.eq(1)]
                with m.Elif(got):
                    with m.If(Cat(crc_lo, byte) == crc):
                        m.next = "EXEC"
                    with m.Else():
                        fail(Fault.BAD_CRC)
                        m.next = "DRAIN"
                with m.Elif(silent):
                    fail(Fault.TRUNCATED)
                    m.next = "ERROR"

            with m.State("DRAIN"):   # discard the rest of a bad frame, then answer
                with m.If(silent & ~got):
                    m.next = "ERROR"

            with m.State("ERROR"):
                begin_reply(fault, 3, small_value=Cat(code, length), small_len=3)

            with m.State("EXEC"):
                with m.Switch(code):
                    with m.Case(Op.INFO):
                        begin_reply(Fault.OK, INFO_BYTES, small_value=info,
                                    small_len=INFO_BYTES)
                    with m.Case(Op.STATUS):
                        m.d.sync += [haddr.eq(Region.REG << ab | Reg.STATUS), count.eq(1),
                                     bpw.eq(STATUS_BYTES)]
                        begin_reply(Fault.OK, STATUS_BYTES, words=True)
                    with m.Case(Op.COUNTERS):
                        m.d.sync += [haddr.eq(Region.REG << ab | 1), count.eq(len(COUNTERS)),
                                     bpw.eq(COUNTER_BYTES)]
                        begin_reply(Fault.OK, COUNTER_BYTES * len(COUNTERS), words=True)
                    with m.Case(Op.READ):
                        with m.If(~read_ok):
                            fail(Fault.BAD_LENGTH)
                            m.next = "ERROR"
                        with m.Elif(~in_range):
                            fail(Fault.BAD_ADDRESS)
                            m.next = "ERROR"
                        with m.Elif(memory_access & self.busy):
                            fail(Fault.BUSY)
                            m.next = "ERROR"
                        with m.Else():
                            m.d.sync += [haddr.eq(addr), count.eq(rcount),
                                         bpw.eq(by_region([Const(b, len(bpw)) for b in widths]))]
                            begin_reply(Fault.OK, read_len, words=True)
                    with m.Case(Op.WRITE):
                        with m.If(k_write == 0):   # not whole words of its region
                            fail(Fault.BAD_LENGTH)
                            m.next = "ERROR"
                        with m.Elif(~in_range):
                            fail(Fault.BAD_ADDRESS)
                            m.next = "ERROR"
                        with m.Elif(memory_access & self.busy):
                            fail(Fault.BUSY)
                            m.next = "ERROR"
                        with m.Else():
                            m.d.sync += [haddr.eq(addr), j.eq(0), rptr.eq(4), bcount.eq(0),
                                         nwords.eq(k_write),
                                         wbytes.eq(by_region([Const(b, len(wbytes))
                                                              for b in widths]))]
                            m.next = "LOAD"
                    with m.Case(Op.START):
                        with m.If(self.busy):
                            fail(Fault.BUSY)
                            m.next = "ERROR"
                        with m.Else():
                            m.d.sync += [haddr.eq(Region.REG << ab | Reg.CONTROL),
                                         word.eq(CONTROL_START | args[:16] << 16)]
                            m.next = "CONTROL"
                    with m.Case(Op.RESET):
                        m.d.sync += [haddr.eq(Region.REG << ab | Reg.CONTROL),
                                     word.eq(CONTROL_RESET)]
                        m.next = "CONTROL"
                    with m.Default():   # unreachable: the header check refused the opcode
                        fail(Fault.BAD_OPCODE)
                        m.next = "ERROR"

            with m.State("CONTROL"):
                m.d.comb += host.we.eq(1)
                begin_reply(Fault.OK, 0)

            with m.State("LOAD"):   # a word's bytes from the buffer (one cycle of read latency)
                m.d.sync += bcount.eq(bcount + 1)
                with m.If(bcount != 0):
                    m.d.sync += word.eq(shifted)
                with m.If(bcount == wbytes):
                    m.next = "STORE"
                with m.Else():
                    m.d.sync += rptr.eq(rptr + 1)

            with m.State("STORE"):
                m.d.comb += host.we.eq(1)
                m.d.sync += [haddr.eq(haddr + 1), j.eq(j + 1), bcount.eq(0)]
                with m.If(j == nwords - 1):
                    begin_reply(Fault.OK, 0)
                with m.Else():
                    m.next = "LOAD"

            with m.State("REPLY"):   # sync, code, length
                head = Array([Const(SYNC_REPLY, 8), reply_code, reply_len[:8], reply_len[8:]])
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(head[hdr])]
                with m.If(tx.ready):
                    m.d.sync += hdr.eq(hdr + 1)
                    with m.If(hdr != 0):
                        m.d.sync += crc.eq(crc16_next(crc, tx.payload))
                    with m.If(hdr == 3):
                        with m.If(body_words):
                            m.next = "READ"
                        with m.Elif(small_n != 0):
                            m.next = "SMALL"
                        with m.Else():
                            m.next = "SUM"

            with m.State("SMALL"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(small[:8])]
                with m.If(tx.ready):
                    m.d.sync += [small.eq(small >> 8), small_n.eq(small_n - 1),
                                 crc.eq(crc16_next(crc, tx.payload))]
                    with m.If(small_n == 1):
                        m.next = "SUM"

            with m.State("READ"):
                m.d.comb += host.re.eq(1)
                m.next = "CAPTURE"

            with m.State("CAPTURE"):   # rdata holds the word from the cycle after re
                m.d.sync += word.eq(host.rdata)
                m.next = "SEND"

            with m.State("SEND"):
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(word[:8])]
                with m.If(tx.ready):
                    m.d.sync += [word.eq(word >> 8), bcount.eq(bcount + 1),
                                 crc.eq(crc16_next(crc, tx.payload))]
                    with m.If(bcount == bpw - 1):
                        m.d.sync += [bcount.eq(0), j.eq(j + 1), haddr.eq(haddr + 1)]
                        with m.If(j == count - 1):
                            m.next = "SUM"
                        with m.Else():
                            m.next = "READ"

            with m.State("SUM"):   # the checksum, low byte first
                m.d.comb += [tx.valid.eq(1), tx.payload.eq(Mux(hdr[0], crc[8:], crc[:8]))]
                with m.If(tx.ready):
                    m.d.sync += hdr.eq(hdr + 1)
                    with m.If(hdr[0]):
                        m.next = "HUNT"
        return m

