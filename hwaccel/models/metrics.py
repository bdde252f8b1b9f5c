"""Counting and scoring the reference models: MACs, folded parameters, top-1 and ROC AUC.

MACs are counted from the torch modules themselves, by forward hooks on every ``Conv2d``,
``Linear`` and ``MultiheadAttention`` during one forward pass, as the published MLPerf Tiny
figures count them:

* a convolution costs ``output elements x in_channels / groups x kh x kw`` -- every tap of every
  output, including the taps that fall on 'same' padding (zeros that a multiplier still sees), so a
  3x3 depthwise layer costs 9 MACs per output element, border or not;
* a dense layer costs ``outputs x in_features``;
* self-attention (``nn.MultiheadAttention``, which uses its projections' weights directly, so
  no Linear hook sees them) costs its four projections as dense layers, ``4 T E^2`` for T tokens
  of width E, plus the two products of activations, ``T x T x E`` each (Q.K^T and P.V over all
  heads: a product (T, K) x (K, N) costs T K N, as the compiler's IR counts it);
* biases, BatchNorm (folded into the layer before it), ReLU, residual adds and average pooling
  cost none.

That rule reproduces all four published figures to their stated rounding exactly (see
``tests/test_mlperf_models.py``), and the brief's CNN's 2,794,240.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["macs", "folded_params", "top1", "reconstruction_error", "roc_auc"]


@torch.no_grad()
def macs(model: nn.Module, input_shape: tuple[int, ...], *, per_layer: bool = False,
         dtype: torch.dtype = torch.float32):
    """Multiply-accumulates of one inference of ``model`` on one sample of ``input_shape``
    (without the batch dimension) of ``dtype`` (``torch.int64`` for token ids: an embedding's
    gather costs none); with ``per_layer``, a dict of module name -> MACs instead."""
    counts: dict[str, int] = {}

    def hook(name):
        def count(mod, inputs, out):
            if isinstance(mod, nn.Conv2d):
                kh, kw = mod.kernel_size
                counts[name] = counts.get(name, 0) + (
                    out.numel() * (mod.in_channels // mod.groups) * kh * kw)
            elif isinstance(mod, nn.MultiheadAttention):
                counts[name] = counts.get(name, 0) + _attention_macs(mod, *inputs[:2])
            else:
                counts[name] = counts.get(name, 0) + out.numel() * mod.in_features
        return count

    attention = {name for name, m in model.named_modules()
                 if isinstance(m, nn.MultiheadAttention)}
    hooks = [m.register_forward_hook(hook(name)) for name, m in model.named_modules()
             if isinstance(m, (nn.Conv2d, nn.Linear, nn.MultiheadAttention))
             and name.rpartition(".")[0] not in attention]  # out_proj: counted by its owner
    was_training = model.training
    try:
        model.eval()(torch.zeros(1, *input_shape, dtype=dtype))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return counts if per_layer else sum(counts.values())


def _attention_macs(mod: nn.MultiheadAttention, query, key) -> int:
    """One call's MACs per sample of the batch (batch 1 here): projections and both products."""
    if not mod.batch_first:
        query, key = query.transpose(0, 1), key.transpose(0, 1)
    tq, tk, e = query.shape[-2], key.shape[-2], mod.embed_dim
    samples = query.numel() // (tq * e)
    return samples * (2 * tq * e * e + 2 * tk * e * e + 2 * tq * tk * e)


def folded_params(model: nn.Module) -> int:
    """Parameters once every BatchNorm is folded into the layer before it: the weights and biases
    of every ``Conv2d`` and ``Linear`` (a layer without a bias gains one from its BatchNorm), and
    every other module's own parameters as they are (attention's input projections, LayerNorm's
    gamma and beta, learned positional embeddings, an LSTM's weights)."""
    total = 0
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            out = m.out_channels if isinstance(m, nn.Conv2d) else m.out_features
            total += m.weight.numel() + out
        elif not isinstance(m, nn.modules.batchnorm._BatchNorm):
            total += sum(p.numel() for p in m.parameters(recurse=False))
    return total


def top1(outputs: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> float:
    """Fraction of samples whose largest logit is at their label."""
    outputs, labels = np.asarray(outputs), np.asarray(labels)
    return float(np.mean(outputs.argmax(axis=1) == labels))


def reconstruction_error(inputs: torch.Tensor | np.ndarray,
                         outputs: torch.Tensor | np.ndarray) -> np.ndarray:
    """Anomaly score per sample: the mean squared error of the reconstruction (float64)."""
    x = np.asarray(inputs, dtype=np.float64).reshape(len(inputs), -1)
    y = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if x.shape != y.shape:
        raise ValueError(f"outputs must have the inputs' shape {x.shape}, not {y.shape}")
    return np.mean((x - y) ** 2, axis=1)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (1 = anomalous, 0 = normal): the
    probability that an anomalous sample scores above a normal one, ties counting one half
    (the Mann-Whitney U statistic, from average ranks)."""
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have one entry per sample, not "
                         f"{scores.shape} and {labels.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"labels must be 0 (normal) or 1 (anomalous), not {np.unique(labels)}")
    pos, neg = int(labels.sum()), int(len(labels) - labels.sum())
    if pos == 0 or neg == 0:
        raise ValueError(f"roc_auc needs both classes, not {pos} anomalous and {neg} normal")
    # average 1-based rank over each run of equal scores
    _, which, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[which]
    u = ranks[labels == 1].sum() - pos * (pos + 1) / 2
    return float(u / (pos * neg))
