"""Tensor-parallel shares run on the Verilated accelerator.

:class:`RtlRunner` is a runner for :func:`.tp.plan`: each share's program runs on one Verilated
instance of the preset (the C++ harness, driven as the runtime's ``rtl`` backend drives it: soft
reset, load the inputs, weights and commands, start, clock until STATUS.busy drops) and answers
the outputs read back from its scratchpad and the hardware's ``cycles`` counter. The
instances of a group are the same design with different memory contents, so one harness runs
every share in turn (each from a soft reset and a fresh load: nothing carries over between
shares). A K-split share's program runs too (its cycles are the RTL's); its int32 partial sums
are computed by :mod:`.tp_layers`, since the hardware emits only requantized int8.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RtlRunner"]


class RtlRunner:
    """``run(lowered, what) -> (int8 outputs, cycles)`` on the RTL of ``cfg``; a context
    manager (closes the harness)."""

    def __init__(self, cfg, limit: int = 50_000_000):
        from ..runtime.backends.rtl import _design
        from ..sim.host import HarnessHost

        self.cfg, self.limit = cfg, limit
        self.host = HarnessHost(_design(cfg), cfg)
        self.runs = 0

    def __enter__(self) -> RtlRunner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.host.close()

    def __call__(self, low, what: str):
        from ..runtime.backends.programs import ProgramFault

        cfg, host = self.cfg, self.host
        host.soft_reset()
        host.load(low.loads()[0])
        host.run(limit=self.limit)
        status = host.status()
        if status["error"] or not status["done"]:
            raise ProgramFault(f"{what}: the program faulted on the RTL: cause "
                               f"{status['cause'].name} at pc {status['pc']}")
        cycles = host.counters()["cycles"]
        first, words = low.span
        image = np.zeros((cfg.act_depth, cfg.lanes), dtype=np.int64)
        image[first:first + words] = host.read_act(first, words)
        self.runs += 1
        return np.asarray(low.ints(image), dtype=np.int64), cycles
