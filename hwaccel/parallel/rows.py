"""The figures every ``hwaccel parallel`` row carries, whatever the mode (the JSON keys the
command documents); each mode's row adds its own."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ParallelRow"]


@dataclass(frozen=True, kw_only=True)
class ParallelRow:
    """One configuration's figures: simulated and modelled cycles, the same against one
    instance (``single_*``), speedup and efficiency (speedup / instances), mismatches against
    golden, hardware throughput at ``clock_mhz`` and the simulator's wall-clock throughput,
    kept apart."""

    mode: str
    instances: int
    batch: int
    shared_host_port: bool
    cycles: int
    model_cycles: int
    single_cycles: int
    single_model_cycles: int
    speedup: float
    efficiency: float
    mismatches: int
    link_utilization: float
    bubble_fraction: float | None
    hw_samples_per_second: float
    clock_mhz: float
    clock_source: str
    sim_samples_per_second: float
    wall_seconds: float
    workers: int | None = None
    note: str = ""

    def to_json(self) -> dict:
        return asdict(self)
