"""The host side of the accelerator's port: addresses, memory images, and a fast host.

:func:`load_writes` turns a :class:`~.driver.ProgramBuilder` into the host-port writes that
load it; :class:`HarnessHost` performs them on the Verilator C++ harness
(:mod:`hwaccel.sim.harness`), starts the program and lets the clock run in C++ until STATUS.busy
drops -- the simulation path the runtime uses. The cocotb bench (:mod:`hwaccel.sim.tb_accel`)
performs the very same writes and reads, one per clock edge, as this host does.
"""

from __future__ import annotations

import numpy as np

from ...hdl.pack import unpack
from .config import AccelConfig
from .driver import ActTensor, ProgramBuilder, from_words
from .isa import CONTROL_RESET, CONTROL_START, COUNTERS, Region, status_fields

__all__ = ["address", "load_writes", "start_word", "HarnessHost"]


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


class HarnessHost:
    """The accelerator in the C++ harness, driven through its host port.

    Parameters
    ----------
    design : hwaccel.sim.runner.Design
        An emitted accelerator.
    config : AccelConfig
    """

    def __init__(self, design, config: AccelConfig):
        from ...sim.harness import Harness

        self.cfg = config
        self.h = Harness(design)
        self.h.reset()

    def close(self) -> None:
        self.h.close()

    def write(self, addr: int, data: int) -> None:
        h = self.h
        h.set("host__addr", addr)
        h.set("host__wdata", data)
        h.set("host__we", 1)
        h.step(1)
        h.set("host__we", 0)

    def read(self, addr: int) -> int:
        h = self.h
        h.set("host__addr", addr)
        h.set("host__re", 1)
        h.step(1)
        h.set("host__re", 0)
        return h.get("host__rdata")

    def write_many(self, writes) -> None:
        """``(address, data)`` writes on consecutive cycles, ``we`` held high throughout."""
        h = self.h
        h.set("host__we", 1)
        for addr, data in writes:
            h.set("host__addr", addr)
            h.set("host__wdata", data)
            h.step(1)
        h.set("host__we", 0)

    def load(self, prog: ProgramBuilder) -> None:
        self.write_many(load_writes(self.cfg, prog))

    def run(self, pc: int = 0, limit: int = 50_000_000) -> int:
        """Start at ``pc`` and clock in C++ until STATUS.busy drops; returns the cycles."""
        self.write(address(self.cfg, Region.REG, 0), start_word(pc))
        return self.h.run_until("busy", 0, limit)

    def soft_reset(self) -> None:
        self.write(address(self.cfg, Region.REG, 0), CONTROL_RESET)

    def status(self) -> dict:
        return status_fields(self.read(address(self.cfg, Region.REG, 0)))

    def counters(self) -> dict:
        return {name: self.read(address(self.cfg, Region.REG, 1 + i))
                for i, name in enumerate(COUNTERS)}

    def read_act(self, start: int, count: int) -> np.ndarray:
        lanes = self.cfg.lanes
        rows = [unpack(self.read(address(self.cfg, Region.ACT, start + i)), 8, lanes)
                for i in range(count)]
        return np.array(rows, dtype=np.int64).reshape(count, lanes)

    def read_tensor(self, t: ActTensor) -> np.ndarray:
        words = np.zeros((t.addr + t.words, self.cfg.lanes), dtype=np.int64)
        words[t.addr:] = self.read_act(t.addr, t.words)
        return from_words(words, t)
