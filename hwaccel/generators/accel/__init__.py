"""The accelerator: scratchpads, command processor, DMA, counters around the conv engine."""

from .config import PRESETS, AccelConfig
from .driver import ActTensor, ProgramBuilder
from .isa import COUNTERS, Cause, Op, Region, command_layout
from .model import GoldenResult, run_program

__all__ = ["AccelConfig", "PRESETS", "ActTensor", "ProgramBuilder", "COUNTERS", "Cause", "Op",
           "Region", "command_layout", "GoldenResult", "run_program"]
