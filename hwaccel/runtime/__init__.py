"""The host runtime: run what the compiler (:mod:`hwaccel.compiler`) produced, on backends.

:func:`compile` (which ``hwaccel.compile`` is) returns the compiler's model made runnable
(:class:`~.runnable.Runnable`); :mod:`.backends` runs it by name (golden, rtl, torch, xla,
torch-int8) and :mod:`.compare` puts the backends side by side (``hwaccel compare``).
The compiler's errors are re-exported here, where users have imported them from.
Everything is imported on first use, so ``import hwaccel.runtime`` stays light.
"""

from __future__ import annotations

import importlib

__all__ = ["compile", "Runnable", "UnsupportedOp", "DoesNotFit", "LoweringError",
           "NonFiniteError"]

_WHERE = {"compile": ".runnable", "Runnable": ".runnable",
          "UnsupportedOp": "hwaccel.compiler.errors", "DoesNotFit": "hwaccel.compiler.memory",
          "LoweringError": "hwaccel.compiler.lower", "NonFiniteError": "hwaccel.compiler.errors"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
