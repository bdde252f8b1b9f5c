"""A user's model for ``hwaccel advise`` and ``hwaccel compare --model FILE.py:NAME``.

``NAME`` in the Python file ``FILE.py`` is one of

* an ``nn.Module`` (an instance), or a callable taking no arguments that returns one: the
  inputs are then drawn at random, standard normal, of the per-sample shape ``--input-shape``
  (``C,H,W`` for an image, ``F`` for a vector, ``T,F`` for a sequence), seeded, so the same
  run gives the same figures;
* a callable returning ``(module, x)``: ``x`` a float tensor (or array) of sample inputs,
  batch first, which calibrates the activation scales and feeds the timed batches (real data
  gives real scales; random inputs give a model's cycles, which do not depend on the values).

The file runs as Python, as ``import`` would run it: it is the user's own code. Errors name
the file, the name and what was wrong, before any work.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

__all__ = ["USER_SAMPLES", "Unlabelled", "is_user_model", "load_user_model", "parse_shape",
           "user_split"]

#: A user's model without inputs of its own: this many random samples by default.
USER_SAMPLES = 64


def is_user_model(spec: str) -> bool:
    """Whether ``--model`` names a Python file (``FILE.py:NAME``) rather than a workload."""
    return ":" in spec and spec.rsplit(":", 1)[0].endswith(".py")


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """``--input-shape`` as a tuple of positive ints (``None`` when not given)."""
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1 or len(shape) > 3:
        raise ValueError(f"--input-shape must be one to three positive integers, comma-"
                         f"separated (C,H,W; F; or T,F), not {text!r}")
    return shape


def _module_of(spec: str):
    path_text, name = spec.rsplit(":", 1)
    path = Path(path_text)
    if not path.is_file():
        raise ValueError(f"--model {spec!r}: no file {path_text!r}")
    loader = importlib.util.spec_from_file_location(f"hwaccel_user_model_{path.stem}", path)
    mod = importlib.util.module_from_spec(loader)
    sys.modules[loader.name] = mod   # as import does: dataclasses and pickling look it up
    try:
        loader.loader.exec_module(mod)
    except Exception as exc:
        raise ValueError(f"--model {spec!r}: running {path_text} raised "
                         f"{type(exc).__name__}: {exc}") from exc
    if not name.isidentifier() or not hasattr(mod, name):
        raise ValueError(f"--model {spec!r}: {path_text} defines no {name!r}")
    return getattr(mod, name)


def load_user_model(spec: str, input_shape: tuple | None, count: int, seed: int = 0):
    """``(module in eval mode, x)`` for ``--model`` ``spec`` (see the module docstring):
    ``x`` float32 inputs, ``count`` of them drawn when the file gives none."""
    import torch
    from torch import nn

    obj = _module_of(spec)
    if callable(obj) and not isinstance(obj, nn.Module):
        try:
            obj = obj()
        except Exception as exc:
            raise ValueError(f"--model {spec!r}: calling it raised {type(exc).__name__}: "
                             f"{exc}") from exc
    x = None
    if isinstance(obj, tuple) and len(obj) == 2:
        obj, x = obj
    if not isinstance(obj, nn.Module):
        raise ValueError(f"--model {spec!r}: it must be an nn.Module, or return one or "
                         f"(module, inputs), not {type(obj).__name__}")
    if x is None:
        if input_shape is None:
            raise ValueError(f"--model {spec!r} gives no inputs: give --input-shape (C,H,W; "
                             f"F; or T,F), or return (module, inputs)")
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(count, *input_shape, generator=gen)
    x = torch.as_tensor(np.asarray(x, dtype=np.float32))
    if x.ndim < 2 or len(x) < 1:
        raise ValueError(f"--model {spec!r}: its inputs must be a batch (samples first) of at "
                         f"least one sample, not of shape {tuple(x.shape)}")
    return obj.eval(), x


def user_split(spec: str, input_shape: tuple | None, samples: int | None, calibration: int):
    """``(module, split)`` for ``hwaccel compare``: the inputs (``samples``, default
    :data:`USER_SAMPLES`, or ``calibration`` if more, when the file gives none) are both the
    calibration and the held-out set; ``y_test`` is ``None`` (no labels)."""
    from types import SimpleNamespace

    module, x = load_user_model(spec, input_shape, max(samples or USER_SAMPLES, calibration))
    return module, SimpleNamespace(x_train=x, x_test=x, y_test=None)


class Unlabelled:
    """A user's model as ``hwaccel compare``'s task: no labels, so no accuracy; top-1
    agreement with the float model where its outputs (of ``rank``) are rows of logits."""

    def __init__(self, rank: int):
        self.task = "classify" if rank == 2 else "other"

    def score(self, x, logits, y):
        return None
