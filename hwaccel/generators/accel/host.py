"""The host side of the accelerator's port: addresses and memory images.

:func:`load_writes` turns a :class:`~.driver.ProgramBuilder` into the host-port writes that
load it. Hosts that perform them -- :class:`hwaccel.sim.host.HarnessHost` on the Verilator C++
harness, the cocotb bench ``sim/tb_accel.py`` one write per clock edge -- live with the
simulators: nothing under ``generators`` imports one.
"""

from __future__ import annotations

from .config import AccelConfig
from .driver import ProgramBuilder
from .isa import CONTROL_START, Region

__all__ = ["address", "load_writes", "start_word"]


def address(cfg: AccelConfig, region: Region, offset: int) -> int:
    return (int(region) << cfg.addr_bits) | offset


def start_word(pc: int = 0) -> int:
    return CONTROL_START | (pc << 16)


def load_writes(cfg: AccelConfig, prog: ProgramBuilder) -> list[tuple[int, int]]:
    """``(address, data)`` host writes that load ``prog``'s memory images and commands."""
    from ...hdl.pack import pack

    out = [(address(cfg, Region.ACT, i), pack(row.tolist(), 8))
           for i, row in enumerate(prog.act[: prog.act_top])]
    out += [(address(cfg, Region.WGT, i), w) for i, w in enumerate(prog.wgt[: prog.wgt_top])]
    out += [(address(cfg, Region.PROG, i), c) for i, c in enumerate(prog.commands)]
    return out
