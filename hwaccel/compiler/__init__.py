"""The compiler: PyTorch models to accelerator programs, stage by stage.

:mod:`.trace` (``nn.Module`` -> float IR, a DAG of :mod:`.ir` ops over named values; layer
readers in :mod:`.trace_ops`, batch-norm / ReLU / last-step folding in :mod:`.fold`),
:mod:`.quantize` (post-training quantization -> integer IR), :mod:`.int8` (the integer IR's
arithmetic in torch, the twin every program must equal) and :mod:`.qreference` (the same in
plain numpy, the twin's reference), :mod:`.lower` (integer IR -> the programs of a batch),
:mod:`.memory` (the scratchpad plan, by liveness, a pass between lowering and emission),
:mod:`.builders` (program builders that follow the plan; weight groups), :mod:`.describe` and
:mod:`.program` (:func:`compile`, :class:`CompiledModel`). :mod:`.errors` holds what the
compiler refuses (:class:`UnsupportedOp`, and :class:`NonFiniteError` for NaN or inf anywhere
it would compute on); :mod:`.saturation` counts the int8 values that saturate, per layer.
The compiler imports no backend: :mod:`hwaccel.runtime` runs what it produces.
Everything is imported on first use, so ``import hwaccel.compiler`` stays light.
"""

from __future__ import annotations

import importlib

__all__ = ["compile", "CompiledModel", "UnsupportedOp", "DoesNotFit", "LoweringError",
           "NonFiniteError"]

_WHERE = {"compile": "program", "CompiledModel": "program", "UnsupportedOp": "errors",
          "DoesNotFit": "memory", "LoweringError": "lower", "NonFiniteError": "errors"}


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
