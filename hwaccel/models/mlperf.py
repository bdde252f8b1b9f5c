"""The four MLPerf Tiny reference architectures, layer for layer as mlcommons/tiny defines them.

Sources (Keras, ``benchmark/training/`` of github.com/mlcommons/tiny, tags v0.5 to v1.1):
``image_classification/keras_model.py`` (ResNet-8), ``keyword_spotting/keras_model.py``
(DS-CNN), ``visual_wake_words/vww_model.py`` (MobileNetV1 0.25) and
``anomaly_detection/keras_model.py`` (FC autoencoder). What differs from a literal reading:

* Keras's ``padding='same'`` is asymmetric at stride 2 (TensorFlow pads ``total // 2`` before and
  the rest after), so every strided layer is an explicit ``F.pad`` before a ``padding=0`` conv;
  at stride 1 with an odd kernel it is symmetric and stays ``Conv2d(padding=k // 2)``. The 1x1
  stride-2 shortcuts need no padding at all.
* Every conv and dense layer keeps its bias (Keras's default, ``use_bias=True``), also before a
  BatchNorm; folded, the BatchNorm becomes that bias. BatchNorm uses Keras's ``eps=1e-3``.
* DS-CNN pools 25x5, the whole map, as the published trained model (``kws_ref_model``, whose
  AvgPool has ``ksize [1, 25, 5, 1]``) does; the training script at those tags computes
  ``int(49 / 2) = 24`` and would pool 24x5, dropping the last time step.
* ResNet-8 has 16 first-stage filters as at tags v0.5-v1.1; the script's newer default is 26.
* Keras's final softmax is left out: the models return logits (argmax is unchanged).

Each of the three conv nets ends in an ``AvgPool2d`` whose window is its whole final map (8x8,
25x5, 3x3): a global average pool written as the reference writes it.

ReLU follows each residual add, as in the reference. All four trace with ``torch.fx``: residuals
are ``x + y``, padding is ``F.pad`` with constant sides, depthwise is ``Conv2d(groups=C)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ResNet8", "DSCNN", "MobileNetV1", "AutoEncoder", "same_pad", "BN_EPS"]

BN_EPS = 1e-3  # Keras's BatchNormalization default


def same_pad(size: tuple[int, int], kernel: tuple[int, int],
             stride: tuple[int, int]) -> tuple[int, int, int, int]:
    """TensorFlow's ``padding='same'`` for an input ``size`` (H, W), as ``F.pad``'s
    ``(left, right, top, bottom)``: the output is ``ceil(size / stride)`` and the padding
    total is split with the smaller half before."""
    sides = []
    for n, k, s in zip(size, kernel, stride):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        sides.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = sides
    return left, right, top, bottom


def _bn2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class _Separable(nn.Module):
    """Depthwise 3x3 (stride 1 or 2) + BN + ReLU, then pointwise 1x1 + BN + ReLU; ``size`` is the
    input's (height, width), which sets the 'same' padding at stride 2."""

    def __init__(self, cin: int, cout: int, stride: int, size: tuple[int, int]):
        super().__init__()
        self.pad = same_pad(size, (3, 3), (2, 2)) if stride == 2 else None
        self.dw = nn.Conv2d(cin, cin, 3, stride, padding=0 if stride == 2 else 1, groups=cin)
        self.bn_dw = _bn2d(cin)
        self.pw = nn.Conv2d(cin, cout, 1)
        self.bn_pw = _bn2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad)
        x = torch.relu(self.bn_dw(self.dw(x)))
        return torch.relu(self.bn_pw(self.pw(x)))


class _Stage(nn.Module):
    """ResNet v1 stack: [conv3x3 (stride s) + BN + ReLU, conv3x3 + BN] + shortcut, then ReLU.
    The shortcut is the identity at stride 1, else a 1x1 stride-2 conv without BN."""

    def __init__(self, cin: int, cout: int, stride: int, size: int):
        super().__init__()
        self.pad = same_pad((size, size), (3, 3), (2, 2)) if stride == 2 else None
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=0 if stride == 2 else 1)
        self.bn1 = _bn2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = _bn2d(cout)
        self.shortcut = nn.Conv2d(cin, cout, 1, stride) if stride != 1 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.pad(x, self.pad) if self.pad is not None else x
        y = torch.relu(self.bn1(self.conv1(y)))
        y = self.bn2(self.conv2(y))
        s = self.shortcut(x) if self.shortcut is not None else x
        return torch.relu(s + y)


class ResNet8(nn.Module):
    """Image classification, 32x32x3 -> 10: conv3x3 16 + BN + ReLU -> stages of 16 (identity),
    32 (stride 2) and 64 (stride 2) filters -> avgpool 8x8 -> dense 10. 12,501,632 MACs."""

    INPUT = (3, 32, 32)

    def __init__(self, classes: int = 10, filters: int = 16):
        super().__init__()
        self.conv = nn.Conv2d(3, filters, 3, padding=1)
        self.bn = _bn2d(filters)
        self.stage1 = _Stage(filters, filters, 1, 32)
        self.stage2 = _Stage(filters, 2 * filters, 2, 32)
        self.stage3 = _Stage(2 * filters, 4 * filters, 2, 16)
        self.pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(4 * filters, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(x)))
        x = self.stage3(self.stage2(self.stage1(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class DSCNN(nn.Module):
    """Keyword spotting, 49x10x1 (time x MFCC) -> 12: conv 10x4 stride 2, 64 + BN + ReLU ->
    4 x [depthwise 3x3 + BN + ReLU, pointwise 64 + BN + ReLU] on 25x5 -> avgpool 25x5 ->
    dense 12. 2,656,768 MACs. The dropouts (0.2, 0.4) are the reference's; identity in eval."""

    INPUT = (1, 49, 10)

    def __init__(self, classes: int = 12, filters: int = 64):
        super().__init__()
        self.pad = same_pad((49, 10), (10, 4), (2, 2))  # (1, 1, 4, 5)
        self.conv = nn.Conv2d(1, filters, (10, 4), stride=2)
        self.bn = _bn2d(filters)
        self.drop1 = nn.Dropout(0.2)
        self.blocks = nn.ModuleList(_Separable(filters, filters, 1, (25, 5)) for _ in range(4))
        self.drop2 = nn.Dropout(0.4)
        self.pool = nn.AvgPool2d((25, 5))
        self.fc = nn.Linear(filters, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(torch.relu(self.bn(self.conv(F.pad(x, self.pad)))))
        for block in self.blocks:
            x = block(x)
        return self.fc(torch.flatten(self.pool(self.drop2(x)), 1))


# (stride, output channels) of MobileNetV1's 13 depthwise-separable blocks at width 0.25
MOBILENET_BLOCKS = ((1, 16), (2, 32), (1, 32), (2, 64), (1, 64), (2, 128),
                    (1, 128), (1, 128), (1, 128), (1, 128), (1, 128), (2, 256), (1, 256))


class MobileNetV1(nn.Module):
    """Visual wake words, 96x96x3 -> 2: conv3x3 8 stride 2 + BN + ReLU -> 13 depthwise-separable
    blocks (``MOBILENET_BLOCKS``) down to 3x3x256 -> avgpool 3x3 -> dense 2. 7,489,664 MACs."""

    INPUT = (3, 96, 96)

    def __init__(self, classes: int = 2, filters: int = 8):
        super().__init__()
        self.pad = same_pad((96, 96), (3, 3), (2, 2))
        self.conv = nn.Conv2d(3, filters, 3, stride=2)
        self.bn = _bn2d(filters)
        blocks, cin, size = [], filters, 48
        for stride, cout in MOBILENET_BLOCKS:
            blocks.append(_Separable(cin, cout, stride, (size, size)))
            cin, size = cout, size // stride
        self.blocks = nn.ModuleList(blocks)
        self.pool = nn.AvgPool2d(size)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv(F.pad(x, self.pad))))
        for block in self.blocks:
            x = block(x)
        return self.fc(torch.flatten(self.pool(x), 1))


class AutoEncoder(nn.Module):
    """Anomaly detection, 640 (5 frames x 128 mel bins) -> 640: dense 128 x4 -> 8 -> 128 x4
    (each + BN + ReLU) -> dense 640, linear. 264,192 MACs. The anomaly score is the
    reconstruction error (:func:`hwaccel.models.metrics.reconstruction_error`)."""

    INPUT = (640,)
    WIDTHS = (128, 128, 128, 128, 8, 128, 128, 128, 128)

    def __init__(self, dim: int = 640):
        super().__init__()
        self.dense = nn.ModuleList()
        self.bns = nn.ModuleList()
        cin = dim
        for width in self.WIDTHS:
            self.dense.append(nn.Linear(cin, width))
            self.bns.append(nn.BatchNorm1d(width, eps=BN_EPS))
            cin = width
        self.out = nn.Linear(cin, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for dense, bn in zip(self.dense, self.bns):
            x = torch.relu(bn(dense(x)))
        return self.out(x)
