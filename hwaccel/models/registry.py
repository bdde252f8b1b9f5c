"""Every reference workload by name: its network, its data, its input and how it is scored.

``WORKLOADS[name]`` is a :class:`Workload` for ``cnn``, ``lstm`` (the brief's) and ``resnet8``,
``dscnn``, ``mobilenet``, ``autoencoder`` (MLPerf Tiny's), ``transformer`` (digits) and
``transformer_tokens`` (the LSTM's token task). The compiler and ``hwaccel compare``
use it so that a new model needs no special case there::

    from hwaccel.models import WORKLOADS, load

    w = WORKLOADS["autoencoder"]
    module, split = load(w.name)                 # trained float model, cached (train.load)
    outputs = module(split.x_test)               # logits, or the reconstruction for "anomaly"
    w.score(split.x_test, outputs, split.y_test) # top-1 accuracy, or ROC AUC for "anomaly"

* ``net()`` builds an untrained module; ``data()`` the fixed train/test :class:`Split`.
* ``input_shape`` is one sample's shape (no batch dimension), ``input_dtype`` its dtype (token
  ids for the LSTM and ``transformer_tokens``).
* ``task`` is ``"classify"`` (outputs are logits; the score is top-1 accuracy) or ``"anomaly"``
  (outputs reconstruct the input; the score is the ROC AUC of the per-sample reconstruction
  MSE against ``y_test``, 1 = anomalous). Training for ``"anomaly"`` sees normal samples only.
* ``metric`` names the score (``"top-1"`` or ``"roc-auc"``); ``published_macs`` is the figure the
  model is known by, as published (``None`` for the brief's two, whose exact counts are in
  DESIGN.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .data import SEQ_LEN, Split, digits, tokens
from .metrics import reconstruction_error, roc_auc, top1
from .mlperf import DSCNN, AutoEncoder, MobileNetV1, ResNet8
from .mlperf_data import digits_rgb, keywords, machine_sounds, wake_words
from .nets import CNN, LSTMClassifier
from .transformer import DigitTransformer, TokenTransformer, digit_patches

__all__ = ["Workload", "WORKLOADS", "workload"]

TASKS = {"classify": "top-1", "anomaly": "roc-auc"}


@dataclass(frozen=True)
class Workload:
    """One reference model: see the module docstring."""

    name: str
    net: Callable[[], nn.Module]
    data: Callable[[], Split]
    input_shape: tuple[int, ...]
    task: str = "classify"
    input_dtype: torch.dtype = torch.float32
    published_macs: str | None = None

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, not {self.task!r}")

    @property
    def metric(self) -> str:
        return TASKS[self.task]

    def score(self, x: torch.Tensor | np.ndarray, outputs: torch.Tensor | np.ndarray,
              y: torch.Tensor | np.ndarray) -> float:
        """Top-1 accuracy of the logits ``outputs`` against ``y``, or for an anomaly detector the
        ROC AUC of the reconstruction error of ``outputs`` against ``x`` for labels ``y``."""
        if self.task == "anomaly":
            return roc_auc(reconstruction_error(x, outputs), y)
        return top1(outputs, y)


WORKLOADS: dict[str, Workload] = {w.name: w for w in (
    Workload("cnn", CNN, digits, (1, 28, 28)),
    Workload("lstm", LSTMClassifier, tokens, (SEQ_LEN,), input_dtype=torch.int64),
    Workload("resnet8", ResNet8, digits_rgb, ResNet8.INPUT, published_macs="12.50 M"),
    Workload("dscnn", DSCNN, keywords, DSCNN.INPUT, published_macs="2.66 M"),
    Workload("mobilenet", MobileNetV1, wake_words, MobileNetV1.INPUT, published_macs="7.49 M"),
    Workload("autoencoder", AutoEncoder, machine_sounds, AutoEncoder.INPUT, task="anomaly",
             published_macs="0.264 M"),
    Workload("transformer", DigitTransformer, digit_patches, DigitTransformer.INPUT),
    Workload("transformer_tokens", TokenTransformer, tokens, TokenTransformer.INPUT,
             input_dtype=torch.int64),
)}


def workload(name: str) -> Workload:
    """``WORKLOADS[name]``, or a ValueError that lists the names."""
    try:
        return WORKLOADS[name]
    except KeyError:
        raise ValueError(f"model must be one of {', '.join(WORKLOADS)}, not {name!r}") from None
