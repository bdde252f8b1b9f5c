"""``rtl``: the lowered programs on the accelerator's Verilog, in the Verilator C++ harness.

Each batch is loaded through the host port, started, and clocked in C++ until STATUS.busy
drops (:class:`hwaccel.sim.host.HarnessHost`); then STATUS is checked (a fault is
an error with its cause and pc), the hardware's own ``cycles`` counter is read, and only the
output tensors are read back. The Verilator build is cached by a hash of the Verilog; it and the
Verilog emission happen in :meth:`RtlBackend.open`, before the timed run.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from ...sim.runner import SimError
from . import BackendUnavailable
from .programs import ProgramBackend, ProgramFault

__all__ = ["RtlBackend", "RtlTimeout"]


class RtlTimeout(RuntimeError):
    """The accelerator was still busy after the cycle limit."""


@cache
def _design(config):
    """Emit ``config`` once per process (elaboration takes seconds; the build is cached on disk
    by a hash of the Verilog anyway)."""
    from ...sim.runner import design_for

    return design_for(config)


class RtlBackend(ProgramBackend):
    """Options: ``limit`` -- cycles one batch may take before :class:`RtlTimeout`."""

    hardware = True

    def __init__(self, *, name: str, limit: int = 200_000_000):
        super().__init__(name=name)
        self.limit = limit
        self.host = None

    def check(self) -> str:
        from ...toolchain import MissingToolError, verilator_root

        try:
            verilator_root()
        except MissingToolError as exc:
            raise BackendUnavailable(f"{self.name}: {exc}") from exc
        return "verilator (C++ harness)"

    def run(self, compiled, x, *, limit: int | None = None, **opts):
        if limit is not None:
            self.limit = int(limit)
        return super().run(compiled, x, **opts)

    def open(self, compiled) -> None:
        from ...sim.host import HarnessHost

        self.host = HarnessHost(_design(compiled.config), compiled.config)

    def close(self) -> None:
        if self.host is not None:
            self.host.close()
            self.host = None

    def execute(self, compiled, lowered, index: int):
        """Every program of the batch in turn on one activation scratchpad; the cycles are
        the hardware's own counter over each, plus one cycle per word the host writes between
        programs (the next group's weights and commands, over the host port)."""
        host, cfg = self.host, compiled.config
        cycles = lowered.host_words
        for k, load in enumerate(lowered.loads()):
            where = f"batch {index}" + (f" program {k + 1} of {len(lowered.programs)}" if k
                                        else "")
            host.soft_reset()
            host.load(load)
            try:
                host.run(limit=self.limit)
            except SimError as exc:  # the harness's bounded wait ran out
                pc = host.status()["pc"]
                raise RtlTimeout(f"{self.name}: {where} still busy after {self.limit:,} "
                                 f"cycles (pc {pc}); pass limit= if the program is that "
                                 f"long") from exc
            status = host.status()
            if status["error"] or not status["done"]:
                raise ProgramFault(f"{self.name}: {where} faulted: cause "
                                   f"{status['cause'].name} at pc {status['pc']}")
            cycles += host.counters()["cycles"]  # cleared when a program starts
        first, words = lowered.span  # only the outputs are read back over the host port
        image = np.zeros((cfg.act_depth, cfg.lanes), dtype=np.int64)
        image[first:first + words] = host.read_act(first, words)
        return image, cycles
