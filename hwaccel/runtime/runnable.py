"""``hwaccel.compile``: the compiler's :class:`~hwaccel.compiler.program.CompiledModel`, made
runnable on every backend by name.

The compiler knows nothing of backends (its stages end at programs and the integer IR's
arithmetic); this is where the runtime attaches them, so imports run down the stages:
runtime -> compiler -> generators.
"""

from __future__ import annotations

import numpy as np

from ..compiler.program import CompiledModel
from ..compiler.program import compile as compile_model

__all__ = ["Runnable", "compile"]


class Runnable(CompiledModel):
    """A :class:`~hwaccel.compiler.program.CompiledModel` that runs on the backends."""

    def execute(self, backend: str, x, **opts):
        """Run on the backend called ``backend``: its full
        :class:`~hwaccel.runtime.backends.BackendRun` (logits, timings, cycles)."""
        from .backends import get

        return get(backend).run(self, x, **opts)

    def run(self, backend: str, x, **opts) -> np.ndarray:
        """Float logits ``[batch, classes]`` of ``x`` on the backend called ``backend``."""
        return self.execute(backend, x, **opts).logits


def compile(model, example, **options) -> Runnable:  # noqa: A001
    """:func:`hwaccel.compiler.compile` (same arguments, same errors), runnable by backend name:
    ``hwaccel.compile(model, x[:8]).run("golden", x)``."""
    return compile_model(model, example, cls=Runnable, **options)
