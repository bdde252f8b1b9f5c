"""The accelerator's memories: the activation scratchpad (two banks, :mod:`.act_banks`), the
weight scratchpad, the program memory and the conv engine's partial sums, with their ports.

Only the host writes the weight and program memories, while no program runs and their read
ports are its own: no read uses a word written in its cycle, so Yosys need not add
read-during-write logic (ECP5: a delayed write, a compare, a mux after the RAM; 514 flip-flops
at d03b902). The conv engine reads a result beat's partial sums as its block starts and writes
them as it ends, never in one cycle: ``no_rw_check`` too (evidence as for :mod:`.act_banks`).
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import unsigned
from amaranth.lib import memory

from ..conv.layouts import psum_bits
from ..conv.rw import NO_RW_CHECK, read_data
from .act_banks import ActBanks
from .config import AccelConfig
from .isa import command_layout

__all__ = ["memories", "psum_to"]


def memories(m, cfg: AccelConfig) -> SimpleNamespace:
    """The memories as submodules of ``m``: ``act`` (the banks) with ``act_rd`` / ``act_wr``
    views of its ports, and the ports ``wgt_rd``, ``wgt_wr``, ``prog_rd``, ``prog_wr``,
    ``psum_rd`` and ``psum_wr`` (:func:`psum_to` connects the last two)."""
    act = m.submodules.act = ActBanks(cfg.act_bits, cfg.act_depth)   # word pairs
    wgt = m.submodules.wgt = memory.Memory(shape=unsigned(cfg.wgt_bits),
                                           depth=cfg.wgt_depth, init=[], attrs=NO_RW_CHECK)
    prog = m.submodules.prog = memory.Memory(shape=command_layout(cfg),
                                             depth=cfg.prog_depth, init=[], attrs=NO_RW_CHECK)
    wgt_rd, wgt_wr = wgt.read_port(), wgt.write_port()     # (the ports' signals are named
    prog_rd, prog_wr = prog.read_port(), prog.write_port()  # after these variables)
    psum = m.submodules.psum = memory.Memory(shape=unsigned(psum_bits(cfg.conv)),
                                             depth=cfg.psum_depth, init=[], attrs=NO_RW_CHECK)
    psum_rd, psum_wr = psum.read_port(), psum.write_port()
    return SimpleNamespace(act=act, act_rd=SimpleNamespace(addr=act.raddr, data=act.rdata),
                           act_wr=SimpleNamespace(addr=act.waddr, data=act.wdata, en=act.wen),
                           wgt_rd=wgt_rd, wgt_wr=wgt_wr, prog_rd=prog_rd, prog_wr=prog_wr,
                           psum_rd=psum_rd, psum_wr=psum_wr)


def psum_to(m, mem: SimpleNamespace, conv) -> None:
    """Connect the partial sums' ports of ``mem`` (:func:`memories`) to the conv engine."""
    rd, wr = mem.psum_rd, mem.psum_wr
    m.d.comb += [rd.addr.eq(conv.psum_raddr), conv.psum_rdata.eq(read_data(m, wr, rd, "psum")),
                 wr.addr.eq(conv.psum_waddr), wr.data.eq(conv.psum_wdata),
                 wr.en.eq(conv.psum_we)]
