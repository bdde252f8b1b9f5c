"""Design-space exploration: sweep generator configs, model their cycles, synthesize them.

``points`` (what a sweep evaluates) -> ``evaluate`` (cycle models + synthesis, cached) ->
``sweep`` (Dask, results as JSON and CSV) -> ``plots`` (PNG views); ``command`` is
``hwaccel sweep``.
"""

from __future__ import annotations

from .evaluate import PointResult, evaluate
from .points import DesignPoint, Space, load_space, make_space
from .sweep import SweepResult, pareto, run_sweep

__all__ = ["DesignPoint", "Space", "make_space", "load_space", "evaluate", "PointResult",
           "run_sweep", "SweepResult", "pareto"]
