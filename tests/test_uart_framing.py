"""The host link's framing: CRC-16 and reply parsing in Python, and every fault the bridge
names, on the board's design in Verilator (the same build as tests/test_fpga_backend.py): a
bad frame is answered with its fault, and never changes a scratchpad. Each region's words travel
at their own width, counted byte by byte on the simulated line."""

from __future__ import annotations

import random

import pytest

from hwaccel.generators.accel import PRESETS
from hwaccel.generators.accel.host import address
from hwaccel.generators.accel.isa import COUNTERS, Region
from hwaccel.generators.board import BridgeConfig
from hwaccel.generators.board.framing import (
    Fault,
    LinkError,
    Op,
    crc16,
    crc16_masks,
    parse_reply,
    reply,
    request,
)

BRIDGE = BridgeConfig(PRESETS["tiny"], divisor=1, max_words=16, gap=64, name="tiny_sim")
CFG = BRIDGE.accel
#: bytes of a word on the link by region: ACT, WGT, PROG, REG
WA, WW, WP, WR = BRIDGE.region_bytes


# --- Python ----------------------------------------------------------------------------------
def test_crc16_is_ccitt_false_and_the_masks_compute_it(seed):
    assert crc16(b"123456789") == 0x29B1   # the catalogue's check value
    masks, rng = crc16_masks(), random.Random(seed)
    for _ in range(500):
        crc, byte = rng.getrandbits(16), rng.getrandbits(8)
        bits = crc | byte << 16
        got = sum((bin(bits & mask).count("1") & 1) << j for j, mask in enumerate(masks))
        assert got == crc16(bytes([byte]), crc)


def test_replies_that_are_damaged_are_named():
    good = reply(Fault.OK, b"\x01\x02\x03")
    assert parse_reply(good).payload == b"\x01\x02\x03"
    flipped = good[:5] + bytes([good[5] ^ 0x10]) + good[6:]
    with pytest.raises(LinkError, match=r"failed its checksum"):
        parse_reply(flipped)
    with pytest.raises(LinkError, match=r"starts with 0x5A, not 0xA5"):
        parse_reply(request(Op.INFO))
    with pytest.raises(LinkError, match=r"a reply of length 3 has 9 bytes, not 8"):
        parse_reply(good[:-1])


def test_info_of_another_protocol_version_is_named():
    from hwaccel.generators.board.framing import INFO_BYTES, LinkMismatch, parse_info

    old = bytes([1, 27, 0, 16, 11]) + b"\x00" * 4   # version 1: one word width for all
    with pytest.raises(LinkMismatch, match=r"INFO reports protocol version 1, this host "
                                           r"speaks version 2 \(rebuild the bitstream"):
        parse_info(old)
    with pytest.raises(LinkError, match=rf"an INFO reply carries {INFO_BYTES} bytes, not 9"):
        parse_info(bytes([2]) + old[1:])


# --- the bridge in Verilator -----------------------------------------------------------------
@pytest.fixture(scope="module")
def line():
    from hwaccel.runtime.serial_sim import SimSerial
    from hwaccel.sim.harness import Harness
    from hwaccel.sim.runner import design_for

    link = SimSerial(Harness(design_for(BRIDGE)), BRIDGE.divisor)
    yield link
    link.close()


def exchange(line, raw: bytes):
    line.write(raw)
    head = line.read(4)
    return parse_reply(head + line.read(int.from_bytes(head[2:4], "little") + 2))


def write_frame(addr: int, words: list[int], width: int | None = None) -> bytes:
    """A WRITE of ``words`` at ``addr``, each ``width`` bytes (default: its region's)."""
    width = width or BRIDGE.region_bytes[addr >> CFG.addr_bits]
    return request(Op.WRITE, addr.to_bytes(4, "little")
                   + b"".join(w.to_bytes(width, "little") for w in words))


def read_word(line, addr: int) -> int:
    r = exchange(line, request(Op.READ, addr.to_bytes(4, "little") + (1).to_bytes(2, "little")))
    assert r.fault == Fault.OK
    return int.from_bytes(r.payload, "little")


def assert_fault(r, fault: Fault, op: int, length: int):
    assert r.fault == fault, f"expected {fault.name}, got {r.fault.name}"
    assert r.payload == bytes([op]) + length.to_bytes(2, "little")


def test_good_frames_round_trip(line, seed):
    rng = random.Random(seed)
    words = [rng.getrandbits(CFG.act_bits) for _ in range(5)]   # an ACT word's width
    base = address(CFG, Region.ACT, 100)
    assert exchange(line, write_frame(base, words)).fault == Fault.OK
    r = exchange(line, request(Op.READ, base.to_bytes(4, "little") + (5).to_bytes(2, "little")))
    assert r.fault == Fault.OK and len(r.payload) == 5 * WA
    assert [int.from_bytes(r.payload[i * WA:(i + 1) * WA], "little") for i in range(5)] == words
    r = exchange(line, request(Op.COUNTERS))
    assert r.fault == Fault.OK and len(r.payload) == 6 * len(COUNTERS)


def test_bad_checksum_is_named_and_writes_nothing(line):
    addr = address(CFG, Region.ACT, 7)
    assert exchange(line, write_frame(addr, [0x1234])).fault == Fault.OK
    frame = bytearray(write_frame(addr, [0x5678]))
    frame[-1] ^= 0x01   # the checksum's last bit
    assert_fault(exchange(line, bytes(frame)), Fault.BAD_CRC, Op.WRITE, 4 + WA)
    frame = bytearray(write_frame(addr, [0x5678]))
    frame[8] ^= 0x80    # a data bit: the checksum no longer matches
    assert_fault(exchange(line, bytes(frame)), Fault.BAD_CRC, Op.WRITE, 4 + WA)
    assert read_word(line, addr) == 0x1234


def test_bad_length_is_named(line):
    assert_fault(exchange(line, request(Op.STATUS, b"\x00")), Fault.BAD_LENGTH, Op.STATUS, 1)
    short = write_frame(address(CFG, Region.ACT, 0), [1])
    body = short[1:4 + 4 + WA - 1]   # one byte less of the word, length field to match
    body = bytes([Op.WRITE]) + (3 + WA).to_bytes(2, "little") + body[3:]
    frame = b"\xa5" + body + crc16(body).to_bytes(2, "little")
    assert_fault(exchange(line, frame), Fault.BAD_LENGTH, Op.WRITE, 3 + WA)
    zero = request(Op.READ, address(CFG, Region.ACT, 0).to_bytes(4, "little") + b"\x00\x00")
    assert_fault(exchange(line, zero), Fault.BAD_LENGTH, Op.READ, 6)


def test_unknown_opcode_is_named(line):
    assert_fault(exchange(line, request(0x3F, b"\x01\x02")), Fault.BAD_OPCODE, 0x3F, 2)


def test_address_out_of_range_is_named(line):
    past = address(CFG, Region.ACT, CFG.act_depth - 1).to_bytes(4, "little") + b"\x02\x00"
    assert_fault(exchange(line, request(Op.READ, past)), Fault.BAD_ADDRESS, Op.READ, 6)
    reg = write_frame(address(CFG, Region.REG, 2), [0])   # only CONTROL and WATCHDOG take writes
    assert_fault(exchange(line, reg), Fault.BAD_ADDRESS, Op.WRITE, 4 + WR)
    high = (1 << 31 | address(CFG, Region.ACT, 0)).to_bytes(4, "little") + b"\x01\x00"
    assert_fault(exchange(line, request(Op.READ, high)), Fault.BAD_ADDRESS, Op.READ, 6)


def test_bad_sync_and_a_truncated_frame_are_named(line):
    assert_fault(exchange(line, b"\x00\x11\x22"), Fault.BAD_SYNC, 0x00, 0)
    frame = write_frame(address(CFG, Region.ACT, 0), [9])
    line.write(frame[:6])   # then the line goes quiet
    head = line.read(4)
    r = parse_reply(head + line.read(int.from_bytes(head[2:4], "little") + 2))
    assert_fault(r, Fault.TRUNCATED, Op.WRITE, 4 + WA)
    assert exchange(line, request(Op.STATUS)).fault == Fault.OK   # the link recovered


def test_memory_access_while_busy_is_refused(line, seed):
    import numpy as np

    from hwaccel.generators.accel import ProgramBuilder
    from hwaccel.runtime.serial_link import DeviceFault, LinkHost

    rng = np.random.default_rng(seed)
    prog = ProgramBuilder(CFG)   # eight 3x3 convs of 4 channels on 8x8: thousands of cycles
    x = prog.put(rng.integers(-128, 128, (4, 8, 8)))
    w = rng.integers(-128, 128, (4, 4, 3, 3))
    for _ in range(8):
        x = prog.conv(x, w, np.zeros(4, dtype=np.int64), 1 << 14, 24, padding=1)
    prog.done()
    host = LinkHost(line, CFG)
    host.soft_reset()
    host.load(prog)
    host.start(0)
    assert host.status()["busy"]
    with pytest.raises(DeviceFault, match=r"answered BUSY: accelerator busy .* to READ"):
        host.read(address(CFG, Region.ACT, 0))
    with pytest.raises(DeviceFault, match=r"answered BUSY"):
        host.start(0)
    host.soft_reset()
    assert not host.status()["busy"]


def test_info_reports_each_regions_width(line):
    from hwaccel.generators.board.framing import VERSION, parse_info

    r = exchange(line, request(Op.INFO))
    info = parse_info(r.payload)
    assert info.version == VERSION == 2
    # tiny: 4 lanes of int8 (32 bits); a weight word of 216 bits (the widest of the conv
    # engine's 4 x 4 bytes, the requantizer's and the LSTM's parameter words); a 189-bit
    # command; a 48-bit counter register
    assert info.region_bytes == (4, 27, 24, 6) == (WA, WW, WP, WR)
    assert info.word_bytes == 27 and info.max_words == BRIDGE.max_words


def test_a_write_and_read_move_exactly_their_regions_bytes(line, seed):
    """Bytes counted on the line against frames worked out by hand: sync, code, length (2),
    the payload, CRC (2)."""
    from hwaccel.runtime.serial_link import LinkHost

    rng = random.Random(seed)
    host = LinkHost(line, CFG)
    acts = [rng.getrandbits(32) for _ in range(5)]
    out, inp = line.bytes_written, line.bytes_read
    host.write_many([(address(CFG, Region.ACT, 40 + i), a) for i, a in enumerate(acts)])
    assert line.bytes_written - out == 4 + (4 + 5 * 4) + 2   # 30 (145 at 27 bytes a word)
    assert line.bytes_read - inp == 4 + 0 + 2                # an empty OK reply
    out, inp = line.bytes_written, line.bytes_read
    assert host.read_words(address(CFG, Region.ACT, 40), 5) == acts
    assert line.bytes_written - out == 4 + (4 + 2) + 2       # addr, count
    assert line.bytes_read - inp == 4 + 5 * 4 + 2            # 26 (141 at 27 bytes a word)
    wgts = [rng.getrandbits(216) for _ in range(2)]
    out = line.bytes_written
    host.write_many([(address(CFG, Region.WGT, 9 + i), w) for i, w in enumerate(wgts)])
    assert line.bytes_written - out == 4 + (4 + 2 * 27) + 2
    assert host.read_words(address(CFG, Region.WGT, 9), 2) == wgts
    with pytest.raises(ValueError, match=r"ACT words are 4 bytes on the link: word 0 of the "
                                         r"WRITE at 0x28 is 0x1[0-9A-F]{8}"):
        host.write(address(CFG, Region.ACT, 40), 1 << 32 | acts[0])


def test_a_word_of_another_regions_width_is_refused(line):
    act, wgt = address(CFG, Region.ACT, 12), address(CFG, Region.WGT, 3)
    assert exchange(line, write_frame(act, [0xCAFE])).fault == Fault.OK
    assert exchange(line, write_frame(wgt, [0xBEEF])).fault == Fault.OK
    # whole words of another region pass the header's check; the checksum holds; the region's
    # width refuses them and nothing is written
    assert_fault(exchange(line, write_frame(act, [7], width=WW)), Fault.BAD_LENGTH, Op.WRITE,
                 4 + WW)
    assert_fault(exchange(line, write_frame(wgt, [7, 8], width=WA)), Fault.BAD_LENGTH,
                 Op.WRITE, 4 + 2 * WA)
    assert_fault(exchange(line, write_frame(act, [7, 8, 9], width=WR)), Fault.BAD_LENGTH,
                 Op.WRITE, 4 + 3 * WR)
    assert read_word(line, act) == 0xCAFE and read_word(line, wgt) == 0xBEEF
    # a READ whose reply would pass 65535 bytes at its region's width
    too_many = act.to_bytes(4, "little") + (0xFFFF // WA + 1).to_bytes(2, "little")
    assert_fault(exchange(line, request(Op.READ, too_many)), Fault.BAD_LENGTH, Op.READ, 6)


def test_counters_over_the_link_are_the_models(line, seed):
    """COUNTERS carries every counter of isa.COUNTERS (the energy ones included), in order,
    each equal to the cycle model's for the program."""
    import numpy as np

    from hwaccel.generators.accel import ProgramBuilder
    from hwaccel.generators.accel.perf import program_perf
    from hwaccel.numerics import add_params
    from hwaccel.runtime.serial_link import LinkHost

    rng = np.random.default_rng(seed)
    prog = ProgramBuilder(CFG)
    x = prog.put(rng.integers(-128, 128, (4, 6, 6)))
    x = prog.conv(x, rng.integers(-128, 128, (8, 4, 3, 3)), np.zeros(8, dtype=np.int64),
                  1 << 14, 22, padding=1, pool=True)
    prog.add(x, x, add_params(0.5, 0.75), relu=True)
    prog.done()
    host = LinkHost(line, CFG)
    host.soft_reset()
    host.load(prog)
    status = host.run()
    assert status["done"] and not status["error"]
    got = host.counters()
    assert list(got) == list(COUNTERS) and COUNTERS[-3:] == ("act_reads", "act_writes",
                                                             "weight_reads")
    assert got == program_perf(CFG, prog.commands).counters
    assert got["act_reads"] > 0 and got["weight_reads"] > 0
