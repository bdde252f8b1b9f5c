"""``rtl``: the lowered programs on the accelerator's Verilog, in the Verilator C++ harness.

Each batch is loaded through the host port, started, and clocked in C++ until STATUS.busy
drops (:class:`hwaccel.sim.host.HarnessHost`); then STATUS is checked (a fault is
an error with its cause and pc), the hardware's own ``cycles`` counter is read, and only the
output tensors are read back. The Verilator build is cached by a hash of the Verilog; it and the
Verilog emission happen in :meth:`RtlBackend.open`, before the timed run.
"""

from __future__ import annotations

from functools import cache

from ...sim.runner import SimError
from . import BackendUnavailable
from .programs import ProgramBackend

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
        self.design = None   # the emitted design, when given (a Dask worker gets the parent's)

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

        design = self.design if self.design is not None else _design(compiled.config)
        self.host = HarnessHost(design, compiled.config)

    def close(self) -> None:
        if self.host is not None:
            self.host.close()
            self.host = None

    def execute(self, compiled, lowered, index: int):
        """Every program of the batch in turn on one activation scratchpad
        (:meth:`~.programs.ProgramBackend.run_on_host`), each clocked until it is done or
        ``limit`` cycles have passed."""
        host = self.host

        def wait(where):
            try:
                host.run(limit=self.limit)
            except SimError as exc:  # the harness's bounded wait ran out
                raise RtlTimeout(f"{self.name}: {where} still busy after {self.limit:,} "
                                 f"cycles (pc {host.status()['pc']}); pass limit= if the "
                                 f"program is that long") from exc
            return host.status()

        return self.run_on_host(compiled, lowered, index, wait)
