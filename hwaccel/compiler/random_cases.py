"""Small models drawn at random from the supported operators within a preset's limits, for the
compiler's property tests (golden against the integer twin, a fixed sample on the RTL):
:func:`random_dag` (branches, residual adds, depthwise, pools, padding), :func:`random_lstm`
(LSTM models); :func:`features` says which operators and lowering paths a compiled model
exercises, so that a fixed sample of seeds can be shown to cover them.

Each drawer takes a seed (numpy's generator draws the structure; torch's, seeded with it, the
weights) and returns the model in eval mode and its input maker ``(n, generator) -> tensor``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["RandomDag", "random_dag", "features", "RandomLstm", "random_lstm"]


class RandomDag(nn.Module):
    """A model from a spec, a list of blocks:

    * ``("conv", cout, (kh, kw), (sh, sw), (t, l, b, r), relu)``: ``F.pad`` per side, then a conv;
    * ``("dw", (sh, sw), (t, l, b, r), relu)``: ``F.pad``, then a 3x3 depthwise conv;
    * ``("res", relu)``: ``x + conv1x1(relu(conv3x3(x)))`` (a residual add of two scales);
    * ``("fork",)``: ``conv1x1(x) + conv3x3(x)`` (one value read by two branches);
    * ``("avg", k)``: a k x k average pool; ``("max",)``: a 2x2 max pool (fused into a conv
      right before it, a MAXPOOL command otherwise);
    * ``("gconv", cout, groups, relu)``: a 3x3 conv of ``groups`` groups, padding 1;
    * ``("dil", cout, d, relu)``: a 2x2 conv at dilation ``d`` (a ``d + 1`` square kernel);
    * ``("bn", relu)``: a batch norm of its own (random statistics), folded into a conv right
      before it or a depthwise 1 x 1 conv;

    then ``head``: ``"gap"`` (a global average pool) or ``"flat"`` (a flatten), and a Linear.
    """

    def __init__(self, cin: int, spec: list, head: str, classes: int = 3):
        super().__init__()
        self.spec, self.head = spec, head
        self.layers = nn.ModuleList()
        c = cin
        for block in spec:
            kind = block[0]
            if kind == "conv":
                self.layers.append(nn.Conv2d(c, block[1], block[2], stride=block[3]))
                c = block[1]
            elif kind == "dw":
                self.layers.append(nn.Conv2d(c, c, 3, stride=block[1], groups=c))
            elif kind == "res":
                self.layers.append(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                                                 nn.Conv2d(c, c, 1)))
            elif kind == "fork":
                self.layers.append(nn.ModuleList([nn.Conv2d(c, c, 1),
                                                  nn.Conv2d(c, c, 3, padding=1)]))
            elif kind == "gconv":
                self.layers.append(nn.Conv2d(c, block[1], 3, padding=1, groups=block[2]))
                c = block[1]
            elif kind == "dil":
                self.layers.append(nn.Conv2d(c, block[1], 2, dilation=block[2]))
                c = block[1]
            elif kind == "bn":
                bn = nn.BatchNorm2d(c)
                with torch.no_grad():   # statistics away from 0 and 1
                    bn.running_mean.uniform_(-0.5, 0.5)
                    bn.running_var.uniform_(0.5, 2.0)
                    bn.weight.uniform_(0.5, 1.5)
                    bn.bias.uniform_(-0.3, 0.3)
                self.layers.append(bn)
            else:
                self.layers.append(nn.Identity())
        self.fc = nn.LazyLinear(classes)

    def forward(self, x):
        for block, layer in zip(self.spec, self.layers):
            kind = block[0]
            if kind in ("conv", "dw"):
                t, left, b, r = block[-2]
                y = layer(F.pad(x, (left, r, t, b)))
                x = F.relu(y) if block[-1] else y
            elif kind == "res":
                y = x + layer(x)
                x = torch.relu(y) if block[1] else y
            elif kind == "fork":
                x = torch.add(layer[0](x), layer[1](x))
            elif kind in ("gconv", "dil", "bn"):
                y = layer(x)
                x = F.relu(y) if block[-1] else y
            elif kind == "avg":
                x = F.avg_pool2d(x, block[1])
            else:
                x = F.max_pool2d(x, 2)
        if self.head == "gap":
            x = F.adaptive_avg_pool2d(x, 1)
        return self.fc(x.flatten(1))


def _pads(rng, k: int, limit: int) -> tuple[int, int]:
    """Padding before and after along one axis: at most ``limit`` a side, ``k - 1`` in all."""
    lo = int(rng.integers(0, min(k - 1, limit) + 1))
    return lo, int(rng.integers(0, min(k - 1 - lo, limit) + 1))


def random_dag(seed: int, config=None) -> tuple[RandomDag, callable]:
    """A :class:`RandomDag` drawn from ``seed`` (numpy's generator; torch's seeded with it for the
    weights) within ``config``'s engine limits (maps, channels, kernel and padding per side;
    an :class:`~hwaccel.generators.accel.config.AccelConfig`, ``tiny`` when None), in eval mode
    with its lazy Linear sized, and its input maker ``(n, generator) -> tensor``."""
    from ..generators.accel.config import PRESETS

    conv = (config or PRESETS["tiny"]).conv
    rng = np.random.default_rng(seed)
    most_c, max_k, max_pad = min(conv.max_cout, conv.max_cin, 8), conv.max_kernel, conv.max_pad
    cin = int(rng.integers(1, 5))
    h0 = h = int(rng.integers(4, min(conv.max_height, 10) + 1))
    w0 = w = int(rng.integers(4, min(conv.max_width, 10) + 1))
    spec = []
    for _ in range(int(rng.integers(2, 6))):
        kind = rng.choice(["conv", "conv", "dw", "res", "fork", "avg", "max"])
        if kind == "conv":
            kh, kw = (int(rng.integers(1, min(max_k, n) + 1)) for n in (h, w))
            sh, sw = (int(rng.integers(1, 3)) for _ in range(2))
            (t, b), (left, r) = _pads(rng, kh, max_pad), _pads(rng, kw, max_pad)
            spec.append(("conv", int(rng.integers(1, most_c + 1)), (kh, kw), (sh, sw),
                         (t, left, b, r), bool(rng.integers(2))))
            h, w = (h + t + b - kh) // sh + 1, (w + left + r - kw) // sw + 1
        elif kind == "dw" and min(h, w) >= 3 and conv.dw_kernel >= 3:
            s = int(rng.integers(1, 3))
            (t, b), (left, r) = _pads(rng, 3, max_pad), _pads(rng, 3, max_pad)
            spec.append(("dw", (s, s), (t, left, b, r), bool(rng.integers(2))))
            h, w = (h + t + b - 3) // s + 1, (w + left + r - 3) // s + 1
        elif kind == "avg" and min(h, w) >= 2:
            k = int(rng.integers(2, min(3, h, w) + 1))
            spec.append(("avg", k))
            h, w = h // k, w // k
        elif kind == "max" and min(h, w) >= 2:
            spec.append(("max",))
            h, w = h // 2, w // 2
        elif kind in ("res", "fork"):
            spec.append((str(kind), bool(rng.integers(2))) if kind == "res" else ("fork",))
    head = "gap" if rng.integers(2) else "flat"
    torch.manual_seed(seed)
    model = RandomDag(cin, spec, head).eval()
    with torch.no_grad():
        model(torch.zeros(1, cin, h0, w0))  # the lazy Linear takes its size
    return model, lambda n, g: torch.randn(n, cin, h0, w0, generator=g)


def features(cm) -> set[str]:
    """The operators and lowering paths compiled model ``cm`` exercises on its preset: names of
    the integer IR's ops and of how the lowering runs them (``add scales differ``: the two
    inputs of an ADD at different scales; ``branch``: a value read by two convolutions;
    ``weight groups``: more than one program)."""
    from . import ir
    from .lower import linear_as_conv, weight_groups

    qg, shapes, out = cm.qgraph, cm.qgraph.shapes(), set()
    readers: dict[str, list] = {}
    for op in qg.ops:
        for v in op.inputs:
            readers.setdefault(v, []).append(op)
        if isinstance(op, ir.QConv):
            (kh, kw), (sh, sw), (t, left, b, r) = op.kernel, op.strides, op.pads
            kind = "depthwise" if op.depthwise else "conv"
            out.add(f"{kind} stride {sh}" if sh == sw else f"{kind} strides {sh}x{sw}")
            out |= {"non-square kernel"} if kh != kw else set()
            out |= {"per-side padding"} if (t, left) != (b, r) else set()
            out |= {"max pool (fused)"} if op.pool else set()
        elif isinstance(op, ir.QMaxPool):
            out.add("max pool (MAXPOOL)")
        elif isinstance(op, ir.QAvgPool):
            h, w = shapes[op.inputs[0]][1:]
            out.add("global average pool" if op.kernel == (h, w) else "average pool")
        elif isinstance(op, ir.QAdd):
            out.add("add" + (" scales differ" if op.s_a != op.s_b else "") +
                    (" + relu" if op.relu else ""))
        elif isinstance(op, ir.QLinear):
            prev = qg.op(op.inputs[0])
            flat = isinstance(prev, ir.QFlatten) and linear_as_conv(
                cm.config, shapes[prev.inputs[0]], op.w.shape[0])
            out.add("linear as CONV" if flat else "linear as GEMM")
    if any(sum(isinstance(o, ir.QConv) for o in r) > 1 for r in readers.values()):
        out.add("branch")
    if cm.refusal is None and len(weight_groups(qg, cm.config)) > 1:
        out.add("weight groups")
    return out


class RandomLstm(nn.Module):
    """Token ids through an Embedding (``dim`` wide), or float sequences ``dim`` wide; then
    LSTMs of the ``hidden`` sizes in turn (one ``nn.LSTM`` each); then a Linear on the last
    step (``last``) or on every step."""

    def __init__(self, vocab: int | None, dim: int, hidden: list[int], last: bool,
                 classes: int):
        super().__init__()
        self.emb = nn.Embedding(vocab, dim) if vocab else nn.Identity()
        sizes = [dim, *hidden]
        self.rnns = nn.ModuleList(nn.LSTM(i, h, batch_first=True)
                                  for i, h in zip(sizes, sizes[1:]))
        self.last = last
        self.fc = nn.Linear(hidden[-1], classes)

    def forward(self, x):
        x = self.emb(x)
        for rnn in self.rnns:
            x, _ = rnn(x)
        return self.fc(x[:, -1] if self.last else x)


def random_lstm(seed: int, config=None, *, any_size: bool = False
                ) -> tuple[RandomLstm, callable]:
    """A :class:`RandomLstm` drawn from ``seed`` for ``config``'s LSTM cell (``tiny`` when None):
    tokens or float inputs, 1 to 8 steps, a last-step or per-step head. Its LSTMs run the cell's
    own input and hidden sizes (one layer, unless the cell's sizes are equal); with
    ``any_size``, 1 or 2 layers of random sizes up to the cell's (what LSTM sizes as command
    fields allow). Returns the model (eval mode) and its input maker ``(n, generator)``."""
    from ..generators.accel.config import PRESETS

    cell = (config or PRESETS["tiny"]).lstm
    rng = np.random.default_rng(seed)
    if any_size:
        dim = int(rng.integers(1, cell.input_size + 1))
        hidden = [int(rng.integers(1, min(cell.input_size, cell.hidden_size) + 1))
                  for _ in range(int(rng.integers(1, 3)) - 1)]
        hidden.append(int(rng.integers(1, cell.hidden_size + 1)))
    else:
        dim = cell.input_size
        stack = 2 if cell.input_size == cell.hidden_size else 1
        hidden = [cell.hidden_size] * int(rng.integers(1, stack + 1))
    vocab = int(rng.integers(5, 40)) if rng.integers(2) else None
    steps, last = int(rng.integers(1, 9)), bool(rng.integers(2))
    torch.manual_seed(seed)
    model = RandomLstm(vocab, dim, hidden, last, int(rng.integers(2, 6))).eval()
    if vocab:
        return model, lambda n, g: torch.randint(0, vocab, (n, steps), generator=g)
    return model, lambda n, g: torch.randn(n, steps, dim, generator=g)
