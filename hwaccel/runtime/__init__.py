"""The host runtime: compile PyTorch models to accelerator programs and run them on backends.

Stages: :mod:`.trace` (``nn.Module`` -> float IR, :mod:`.ir`), :mod:`.quantize` (post-training
quantization -> integer IR), :mod:`.lower` (integer IR -> accelerator program), :mod:`.int8`
(the integer IR's arithmetic in torch), :mod:`.program` (:func:`compile`,
:class:`CompiledModel`) and :mod:`.backends` (golden, rtl, torch, xla, torch-int8 by name).
:mod:`.errors` holds what the compiler refuses (:class:`UnsupportedOp`, and
:class:`NonFiniteError` for NaN or inf anywhere it would compute on); :mod:`.saturation` counts
the int8 values that saturate, per layer.
Everything is imported on first use, so ``import hwaccel.runtime`` stays light.
"""

from __future__ import annotations

import importlib

__all__ = ["compile", "CompiledModel", "UnsupportedOp", "DoesNotFit", "LoweringError",
           "NonFiniteError"]

_WHERE = {"compile": "program", "CompiledModel": "program", "UnsupportedOp": "errors",
          "DoesNotFit": "lower", "LoweringError": "lower", "NonFiniteError": "errors"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
