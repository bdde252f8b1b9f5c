"""The accelerator on the Verilator C++ harness, driven through its host port.

:class:`HarnessHost` performs the host-port writes of :func:`hwaccel.generators.accel.host.
load_writes`, starts the program and lets the clock run in C++ until STATUS.busy drops -- the
simulation path the runtime uses. The cocotb bench (``sim/tb_accel.py``) performs the very same
writes and reads, one per clock edge.
"""

from __future__ import annotations

import numpy as np

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ActTensor, ProgramBuilder, from_words
from ..generators.accel.host import address, load_writes, start_word
from ..generators.accel.isa import CONTROL_RESET, COUNTERS, Region, status_fields
from ..hdl.pack import unpack
from .harness import Harness

__all__ = ["HarnessHost"]


class HarnessHost:
    """The accelerator in the C++ harness, driven through its host port.

    Parameters
    ----------
    design : hwaccel.sim.runner.Design
        An emitted accelerator.
    config : AccelConfig
    """

    def __init__(self, design, config: AccelConfig):
        self.cfg = config
        self.h = Harness(design)
        self.h.reset()

    @classmethod
    def of(cls, config: AccelConfig) -> HarnessHost:
        """``config``'s accelerator, emitted and built (or found in the build cache); use it
        as a context manager to close it."""
        from .runner import design_for

        return cls(design_for(config), config)

    def __enter__(self) -> HarnessHost:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

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
