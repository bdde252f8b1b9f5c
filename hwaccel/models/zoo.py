"""Mobile ImageNet-class networks by their published layer tables, for ``hwaccel bench zoo``.

Untrained (the weights a fixed seed's, the batch norms' statistics drawn so that each has
statistics of its own): these measure what the compiler takes and what it costs in cycles and
integer error, not accuracy. Their classifiers end in ``classes`` outputs.

* ``mobilenetv2``: MobileNetV2 (Sandler et al., CVPR 2018, Table 2): ReLU6, 3 x 3 depthwise
  kernels.
* ``mobilenetv3_small``, ``mobilenetv3_large``: MobileNetV3 (Howard et al., "Searching for
  MobileNetV3", ICCV 2019, Tables 2 and 1): hardswish, squeeze-and-excitation with a hard
  sigmoid, 3 x 3 and 5 x 5 depthwise kernels.
* ``efficientnet_b0``: EfficientNet-B0 (Tan and Le, ICML 2019, Table 1): SiLU, squeeze-and-
  excitation with a sigmoid, 3 x 3 and 5 x 5 depthwise kernels.
* ``mnasnet_a1``: MnasNet-A1 (Tan et al., CVPR 2019, Figure 7): ReLU, squeeze-and-excitation in
  three stages, 3 x 3 and 5 x 5 depthwise kernels.

Channel counts are the tables' times ``width``, rounded to multiples of 8 as the papers' code
does (never below 90% of the exact product).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ZOO", "zoo_model"]


def _round(v: float, d: int = 8) -> int:
    n = max(d, int(v + d / 2) // d * d)
    return n + d if n < 0.9 * v else n


class SqueezeExcite(nn.Module):
    """A gate of the map's channels: global average, 1 x 1 conv, ``act``, 1 x 1 conv, ``gate``."""

    def __init__(self, c: int, squeeze: int, act, gate):
        super().__init__()
        self.f1, self.f2, self.act, self.gate = (nn.Conv2d(c, squeeze, 1),
                                                 nn.Conv2d(squeeze, c, 1), act(), gate)

    def forward(self, x):
        return x * self.gate(self.f2(self.act(self.f1(F.adaptive_avg_pool2d(x, 1)))))


class InvertedResidual(nn.Module):
    """1 x 1 expansion (when ``e != cin``), ``k x k`` depthwise at ``stride``, the gate, 1 x 1
    projection; the input added where the shapes match."""

    def __init__(self, cin: int, e: int, cout: int, k: int, stride: int, act, se=None):
        super().__init__()
        layers = []
        if e != cin:
            layers += [nn.Conv2d(cin, e, 1, bias=False), nn.BatchNorm2d(e), act()]
        layers += [nn.Conv2d(e, e, k, stride, k // 2, groups=e, bias=False), nn.BatchNorm2d(e),
                   act()]
        if se is not None:
            layers.append(se(e))
        layers += [nn.Conv2d(e, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.block, self.residual = nn.Sequential(*layers), stride == 1 and cin == cout

    def forward(self, x):
        y = self.block(x)
        return y + x if self.residual else y


class MobileNet(nn.Module):
    """A stem conv at stride 2, inverted residual blocks, a 1 x 1 head, global average and the
    classifier (``hidden`` features first where given)."""

    def __init__(self, stem: int, blocks: list, head: int, act, classes: int,
                 hidden: int | None = None):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                                  act())
        self.blocks = nn.Sequential(*blocks)
        cin = blocks[-1].block[-1].num_features
        self.head = nn.Sequential(nn.Conv2d(cin, head, 1, bias=False), nn.BatchNorm2d(head),
                                  act())
        fc = [nn.Linear(head, hidden), act(), nn.Linear(hidden, classes)] if hidden else [
            nn.Linear(head, classes)]
        self.fc = nn.Sequential(*fc)

    def forward(self, x):
        return self.fc(self.head(self.blocks(self.stem(x))).mean((2, 3)))


#: ``(cin, kernel, expansion, cout, SE, hardswish, stride)`` rows: MobileNetV3-Small's Table 2
#: and MobileNetV3-Large's Table 1.
MOBILENETV3_SMALL = [(16, 3, 16, 16, True, False, 2), (16, 3, 72, 24, False, False, 2),
                     (24, 3, 88, 24, False, False, 1), (24, 5, 96, 40, True, True, 2),
                     (40, 5, 240, 40, True, True, 1), (40, 5, 240, 40, True, True, 1),
                     (40, 5, 120, 48, True, True, 1), (48, 5, 144, 48, True, True, 1),
                     (48, 5, 288, 96, True, True, 2), (96, 5, 576, 96, True, True, 1),
                     (96, 5, 576, 96, True, True, 1)]
MOBILENETV3_LARGE = [(16, 3, 16, 16, False, False, 1), (16, 3, 64, 24, False, False, 2),
                     (24, 3, 72, 24, False, False, 1), (24, 5, 72, 40, True, False, 2),
                     (40, 5, 120, 40, True, False, 1), (40, 5, 120, 40, True, False, 1),
                     (40, 3, 240, 80, False, True, 2), (80, 3, 200, 80, False, True, 1),
                     (80, 3, 184, 80, False, True, 1), (80, 3, 184, 80, False, True, 1),
                     (80, 3, 480, 112, True, True, 1), (112, 3, 672, 112, True, True, 1),
                     (112, 5, 672, 160, True, True, 2), (160, 5, 960, 160, True, True, 1),
                     (160, 5, 960, 160, True, True, 1)]


def _v3(table: list, hidden: int, width: float, classes: int) -> nn.Module:
    """A MobileNetV3: a stem of 16 channels, the table's blocks (a gate squeezes to a quarter
    of its block's expansion, then a hard sigmoid), a head of six times the last block's
    channels, a ``hidden``-feature hardswish layer before the classifier."""
    c = lambda v: _round(v * width)   # noqa: E731
    blocks = [InvertedResidual(
        c(a), c(e), c(o), k, s, nn.Hardswish if hs else nn.ReLU,
        (lambda ch: SqueezeExcite(ch, _round(ch // 4), nn.ReLU, F.hardsigmoid)) if se else None)
        for a, k, e, o, se, hs, s in table]
    return MobileNet(c(16), blocks, c(table[-1][3]) * 6, nn.Hardswish, classes, hidden=hidden)


def mobilenetv3_small(width: float = 1.0, classes: int = 10) -> nn.Module:
    return _v3(MOBILENETV3_SMALL, 1024, width, classes)


def mobilenetv3_large(width: float = 1.0, classes: int = 10) -> nn.Module:
    return _v3(MOBILENETV3_LARGE, 1280, width, classes)


#: ``(expansion, cout, repeats, kernel, stride, SE)`` rows: EfficientNet-B0's Table 1,
#: MobileNetV2's Table 2 and MnasNet-A1's Figure 7.
EFFICIENTNET_B0 = [(1, 16, 1, 3, 1, True), (6, 24, 2, 3, 2, True), (6, 40, 2, 5, 2, True),
                   (6, 80, 3, 3, 2, True), (6, 112, 3, 5, 1, True), (6, 192, 4, 5, 2, True),
                   (6, 320, 1, 3, 1, True)]
MOBILENETV2 = [(1, 16, 1, 3, 1, False), (6, 24, 2, 3, 2, False), (6, 32, 3, 3, 2, False),
               (6, 64, 4, 3, 2, False), (6, 96, 3, 3, 1, False), (6, 160, 3, 3, 2, False),
               (6, 320, 1, 3, 1, False)]
MNASNET_A1 = [(1, 16, 1, 3, 1, False), (6, 24, 2, 3, 2, False), (3, 40, 3, 5, 2, True),
              (6, 80, 4, 3, 2, False), (6, 112, 2, 3, 1, True), (6, 160, 3, 5, 2, True),
              (6, 320, 1, 3, 1, False)]


def _searched(table: list, width: float, act, classes: int) -> nn.Module:
    """A stem of 32 channels, the table's blocks (a row's first at its stride; a gate squeezes
    to a quarter of its block's input channels, then a sigmoid), a head of 1280."""
    blocks, cin = [], _round(32 * width)
    for e, cout, n, k, s, se in table:
        for i in range(n):
            gate = (lambda ch, ci=cin: SqueezeExcite(ch, max(1, ci // 4), act,
                                                     torch.sigmoid)) if se else None
            blocks.append(InvertedResidual(cin, cin * e, _round(cout * width), k,
                                           s if i == 0 else 1, act, gate))
            cin = _round(cout * width)
    return MobileNet(_round(32 * width), blocks, 1280, act, classes)


def efficientnet_b0(width: float = 1.0, classes: int = 10) -> nn.Module:
    return _searched(EFFICIENTNET_B0, width, nn.SiLU, classes)


def mobilenetv2(width: float = 1.0, classes: int = 10) -> nn.Module:
    return _searched(MOBILENETV2, width, nn.ReLU6, classes)


def mnasnet_a1(width: float = 1.0, classes: int = 10) -> nn.Module:
    return _searched(MNASNET_A1, width, nn.ReLU, classes)


ZOO = {"mobilenetv2": mobilenetv2, "mobilenetv3_small": mobilenetv3_small,
       "mobilenetv3_large": mobilenetv3_large, "efficientnet_b0": efficientnet_b0,
       "mnasnet_a1": mnasnet_a1}


def zoo_model(name: str, width: float = 1.0, classes: int = 10, seed: int = 0) -> nn.Module:
    """``ZOO[name]`` at ``width``, in eval mode: weights from ``seed``, each batch norm's
    running mean in [-0.2, 0.2] and variance in [0.5, 1.5]."""
    if name not in ZOO:
        raise ValueError(f"unknown model {name!r}: one of {', '.join(ZOO)}")
    torch.manual_seed(seed)
    model = ZOO[name](width, classes)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()
