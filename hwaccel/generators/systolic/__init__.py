"""Systolic-array generator: config, Component, golden model and GEMM tiling."""

from .array import SystolicArray
from .config import PRESETS, SystolicConfig
from .model import gemm_reference, golden_rows, scalesim_cycles
from .tiling import GemmPlan, plan_gemm

__all__ = ["SystolicArray", "SystolicConfig", "PRESETS", "GemmPlan", "plan_gemm",
           "gemm_reference", "golden_rows", "scalesim_cycles"]
