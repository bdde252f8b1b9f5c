"""Small models built from the supported ops in the ways people write them, written once for the
compiler's tests (tracing, lowering, golden against the integer twin) and usable by any level.

Each is paired with an input maker in :data:`MODELS`; random weights (seeded), so they check the
arithmetic and the lowering paths, not accuracy. Models drawn at random (seeded) from the
supported operators are in :mod:`.random_cases`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["ViewNet", "PoolTwice", "StackedLstm", "SeqHead", "sequential", "batchnorm", "mlp",
           "pixel", "ResNetTiny", "DsCnnTiny", "Branches", "InvertedResidualTiny", "MODELS",
           "GRAPHS", "make", "split_bands"]


class ViewNet(nn.Module):
    """Functional ReLU after a pool, ``view(x.size(0), -1)``, stride 2, 'same' padding, a
    bias-less conv, dropout and a softmax head; fc covers its 3x3 map (runs as a CONV)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding="same", bias=False)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8 * 3 * 3, 5)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.c1(x), 2))
        x = self.drop(self.c2(x).relu())
        return torch.softmax(self.fc(x.view(x.size(0), -1)), dim=-1)


class PoolTwice(nn.Module):
    """A pool fused into its conv, then a stand-alone MAXPOOL, then a Linear over a 1x3 map
    (not square: a GEMM over the flattened channels-last map)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 1 * 3, 5)

    def forward(self, x):
        x = self.pool(self.pool(torch.relu(self.conv(x))))
        return self.fc(torch.flatten(x, 1))


class StackedLstm(nn.Module):
    """``nn.LSTM(num_layers=2)`` read through ``h_n[-1]``."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 64)
        self.rnn = nn.LSTM(64, 64, num_layers=2, batch_first=True)
        self.out = nn.Linear(64, 7)

    def forward(self, t):
        _, (h, _) = self.rnn(self.emb(t))
        return self.out(h[-1])


class SeqHead(nn.Module):
    """A Linear on every step of an LSTM's output (one GEMM over every step of every sample)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(30, 64)
        self.rnn = nn.LSTM(64, 64, batch_first=True)
        self.fc = nn.Linear(64, 6)

    def forward(self, t):
        x, _ = self.rnn(self.emb(t))
        return self.fc(x)


def sequential() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(4 * 3 * 3, 6), nn.ReLU(), nn.Linear(6, 3))


def batchnorm() -> nn.Module:
    """Batch norms folded into the Conv2d and the Linear before them (random statistics)."""
    model = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                          nn.MaxPool2d(2), nn.Flatten(), nn.Linear(6 * 3 * 3, 8),
                          nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    for bn in (model[1], model[6]):
        _randomize(bn, mean=0.5)
    return model


def mlp() -> nn.Module:
    """Vectors in: every layer a GEMM over the whole batch, N then K beyond one engine tile."""
    return nn.Sequential(nn.Linear(20, 100), nn.ReLU(), nn.Linear(100, 4))


def pixel() -> nn.Module:
    """A conv down to a 1x1 map, then a Linear over its channels (a GEMM, K = the channels)."""
    return nn.Sequential(nn.Conv2d(2, 10, 3), nn.ReLU(), nn.Flatten(), nn.Linear(10, 3))


def _randomize(bn, mean: float = 0.3):
    """Random running statistics and affine terms, so folding a batch norm is not a no-op."""
    with torch.no_grad():
        bn.running_mean.uniform_(-mean, mean)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.3, 0.3)
    return bn


def _bn(c: int) -> nn.BatchNorm2d:
    return _randomize(nn.BatchNorm2d(c))


class ResNetTiny(nn.Module):
    """ResNet-8's shapes in small: conv-BN-ReLU; an identity residual block; a stride-2 block
    with a 1x1 stride-2 shortcut conv; ReLU after each add; a global average pool; a Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), _bn(8), nn.ReLU())
        self.a1 = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), _bn(8), nn.ReLU(),
                                nn.Conv2d(8, 8, 3, padding=1), _bn(8))
        self.b1 = nn.Sequential(nn.Conv2d(8, 16, 3, stride=2, padding=1), _bn(16), nn.ReLU(),
                                nn.Conv2d(16, 16, 3, padding=1), _bn(16))
        self.short = nn.Conv2d(8, 16, 1, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.stem(x)
        x = F.relu(x + self.a1(x))
        x = torch.relu(torch.add(self.b1(x), self.short(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


class DsCnnTiny(nn.Module):
    """DS-CNN's shapes in small: TensorFlow's "same" padding at stride 2 as an F.pad before a
    10x4 stride-2 conv; a depthwise 3x3 + pointwise 1x1 block; an average pool over the whole
    map; a Linear."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, (10, 4), stride=2)
        self.bn1 = _bn(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.bn2 = _bn(8)
        self.pw = nn.Conv2d(8, 12, 1)
        self.pool = nn.AvgPool2d((10, 5))
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        x = F.relu(self.bn1(self.c1(F.pad(x, (1, 1, 4, 5)))))  # 20x10 -> 10x5
        x = F.relu(self.pw(F.relu(self.bn2(self.dw(x)))))
        return self.fc(self.pool(x).flatten(1))


class Branches(nn.Module):
    """One value read by two branches (a ZeroPad2d + stride-2 conv, and a 2x2 average pool
    then a 1x1 conv), summed with ``operator.add``; a k x k average pool; a ``.add`` of a
    value to itself."""

    def __init__(self):
        super().__init__()
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.down = nn.Conv2d(4, 6, 3, stride=2)
        self.side = nn.Conv2d(4, 6, 1)
        self.fc = nn.Linear(6 * 2 * 2, 3)

    def forward(self, x):
        y = self.down(self.pad(x)) + self.side(F.avg_pool2d(x, 2))  # 8x8 -> 4x4
        y = F.avg_pool2d(y.add(y), 2)
        return self.fc(y.flatten(1))


class InvertedResidualTiny(nn.Module):
    """MobileNetV2's shapes in small: a stride-2 conv-BN-ReLU6 stem; an inverted residual block
    (1x1 expand, ReLU6; depthwise 3x3, a Hardtanh(0, 4); 1x1 project, no activation) added to
    its input; a stride-2 one without the add, its clamps written as F.relu6 and torch.clamp;
    a 1x1 conv to 24 channels, ``.clamp(min=0)`` then F.relu6 (the tighter cap holds), a global
    average pool over them (more channels than tiny's AVGPOOL words) and a Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), _bn(8), nn.ReLU6())
        self.b1 = nn.Sequential(nn.Conv2d(8, 16, 1), _bn(16), nn.ReLU6(),
                                nn.Conv2d(16, 16, 3, padding=1, groups=16), _bn(16),
                                nn.Hardtanh(0.0, 4.0), nn.Conv2d(16, 8, 1), _bn(8))
        self.expand = nn.Conv2d(8, 16, 1)
        self.dw = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16)
        self.project = nn.Conv2d(16, 12, 1)
        self.head = nn.Conv2d(12, 24, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(24, 5)

    def forward(self, x):
        x = self.stem(x)                                   # 8x8 -> 4x4
        x = x + self.b1(x)
        y = torch.clamp(self.dw(F.relu6(self.expand(x))), 0, 6)   # 4x4 -> 2x2
        y = self.head(self.project(y)).clamp(min=0)
        return self.fc(self.pool(F.relu6(y)).flatten(1))


def split_bands() -> tuple[nn.Module, callable]:
    """On ``tiny``, a layer whose weights overflow the weight scratchpad partway: six 3x3 convs
    on a 14 x 8 map, taller than the 8-row line buffer, so each runs as bands of rows and each
    band shape stores its weights anew; the sixth layer's first band fits the first program,
    its later bands open the second. Seeded weights (eval mode) and its input maker."""
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Conv2d(8 if i else 1, 8, 3, padding=1) for i in range(6)])
    return model.eval(), lambda n, g: torch.randn(n, 1, 14, 8, generator=g)


#: name -> (model class or factory, input maker taking a batch size and a torch.Generator)
MODELS = {
    "sequential": (sequential, lambda n, g: torch.randn(n, 1, 8, 8, generator=g)),
    "batchnorm": (batchnorm, lambda n, g: torch.randn(n, 1, 6, 6, generator=g)),
    "mlp": (mlp, lambda n, g: torch.randn(n, 20, generator=g)),
    "pixel": (pixel, lambda n, g: torch.randn(n, 2, 3, 3, generator=g)),
    "viewnet": (ViewNet, lambda n, g: torch.randn(n, 3, 12, 12, generator=g)),
    "pooltwice": (PoolTwice, lambda n, g: torch.randn(n, 1, 4, 12, generator=g)),
    "stackedlstm": (StackedLstm, lambda n, g: torch.randint(0, 40, (n, 9), generator=g)),
    "seqhead": (SeqHead, lambda n, g: torch.randint(0, 30, (n, 5), generator=g)),
}

#: Models that are DAGs or use the newer operators (residual adds, average pools, per-side
#: padding, non-square and depthwise convolutions), as :data:`MODELS`.
GRAPHS = {
    "resnet_tiny": (ResNetTiny, lambda n, g: torch.randn(n, 3, 12, 12, generator=g)),
    "dscnn_tiny": (DsCnnTiny, lambda n, g: torch.randn(n, 1, 20, 10, generator=g)),
    "branches": (Branches, lambda n, g: torch.randn(n, 4, 8, 8, generator=g)),
    "inverted_residual": (InvertedResidualTiny,
                          lambda n, g: torch.randn(n, 3, 8, 8, generator=g)),
}


def make(name: str, seed: int = 0) -> tuple[nn.Module, callable]:
    """The model ``name`` with seeded random weights (eval mode), and its input maker."""
    table = MODELS | GRAPHS
    if name not in table:
        raise ValueError(f"name must be one of {', '.join(table)}, not {name!r}")
    factory, inputs = table[name]
    torch.manual_seed(seed)
    return factory().eval(), inputs
