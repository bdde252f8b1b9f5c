"""A vector viewed as an image (``x.view(-1, C, f, f)``, ``nn.Unflatten(1, (C, f, f))``): a
decoder's or a generator's Linear into its first feature map. The Linear becomes a 1 x 1 conv
over its input seen as one pixel, into a depth-to-space by ``f`` (no data moved, no extra MAC);
batch norms and ReLUs on either side fold into it; after an image's flatten an identity 1 x 1
conv writes the depth-to-space. The float IR equals torch, golden equals the integer twin and
the RTL equals golden; a view that is not square is refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp
from hwaccel.compiler.trace import trace


class Decoder(nn.Module):
    """A latent of 8 into a ``(4, 4, 4)`` map, a transposed conv to 8 x 8 and a conv.
    ``spell``: ``"unflatten"`` (ReLU before the view), ``"view_bn"`` (a BatchNorm2d and ReLU
    after it: DCGAN's generator), ``"bn1d"`` (Linear, BatchNorm1d, ReLU, then the view)."""

    def __init__(self, spell: str = "unflatten"):
        super().__init__()
        self.spell = spell
        self.fc = nn.Linear(8, 4 * 4 * 4)
        self.bn1 = nn.BatchNorm1d(64)
        self.bn2 = nn.BatchNorm2d(4)
        self.up = nn.ConvTranspose2d(4, 4, 2, 2)
        self.out = nn.Conv2d(4, 2, 3, padding=1)
        self.unflatten = nn.Unflatten(1, (4, 4, 4))
        for bn in (self.bn1, self.bn2):   # statistics that are not the identity
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)

    def forward(self, z):
        if self.spell == "unflatten":
            x = self.unflatten(F.relu(self.fc(z)))
        elif self.spell == "view_bn":
            x = F.relu(self.bn2(self.fc(z).view(-1, 4, 4, 4)))
        else:
            x = F.relu(self.bn1(self.fc(z))).view(z.size(0), 4, 4, 4)
        return self.out(F.relu(self.up(x)))


class Bottleneck(nn.Module):
    """A conv, its map flattened into a Linear, viewed back as a map: the Linear reads an
    image's flatten, so an identity 1 x 1 conv writes the depth-to-space."""

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 4 * 2 * 2)
        self.up = nn.ConvTranspose2d(4, 2, 2, 2)

    def forward(self, x):
        y = F.relu(self.fc(F.relu(self.c(x)).flatten(1)))
        return self.up(y.view(-1, 4, 2, 2))


def _decoder(spell, seed=0):
    torch.manual_seed(seed)
    return Decoder(spell).eval()


@pytest.mark.parametrize("spell", ["unflatten", "view_bn", "bn1d"])
def test_the_linear_is_a_one_by_one_conv_into_a_depth_to_space(spell):
    model = _decoder(spell)
    graph = traced_equal_to_torch(model, torch.randn(6, 8))
    kinds = [type(op).__name__ for op in graph.ops]
    assert kinds[:3] == ["Unflatten", "Conv2d", "DepthToSpace"], kinds
    conv = graph.ops[1]
    assert conv.name == "fc" and conv.weight.shape == (64, 8, 1, 1) and conv.relu
    assert "Add" not in kinds   # every batch norm and ReLU folded into the conv
    model_close(model, seed=1, shape=(8,))


@pytest.mark.parametrize("spell", ["unflatten", "view_bn"])
def test_the_rtl_runs_a_decoder_bit_exact(spell):
    model_rtl_exact(_decoder(spell, 2), seed=3, shape=(8,))


def test_a_view_of_an_images_flatten_gets_an_identity_writer():
    torch.manual_seed(4)
    model = Bottleneck().eval()
    traced_equal_to_torch(model, torch.randn(6, 3, 8, 8))
    cm = hwaccel.compile(model, torch.randn(2, 3, 8, 8), preset="tiny",
                         calibration=torch.randn(32, 3, 8, 8))
    names = [op.name for op in cm.qgraph.ops]
    assert "fc" in names and any(n.endswith(".copy") for n in names), names
    model_rtl_exact(model, seed=5)


def test_a_one_pixel_view_is_a_view_alone():
    """``x.view(-1, C, 1, 1)`` into a transposed conv over one pixel (a generator's first
    layer): no conv added."""
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Unflatten(1, (16, 1, 1)),
                          nn.ConvTranspose2d(16, 4, 4)).eval()
    graph = traced_equal_to_torch(model, torch.randn(4, 8))
    assert [type(op).__name__ for op in graph.ops][:2] == ["Linear", "Unflatten"]
    model_close(model, seed=6, shape=(8,))


def test_a_view_that_is_not_square_is_refused_by_name():
    model = nn.Sequential(nn.Linear(8, 32), nn.Unflatten(1, (4, 2, 4)), nn.Conv2d(4, 2, 1))
    with pytest.raises(UnsupportedOp, match=r"a vector to the image \(4, 2, 4\): only a square"):
        trace(model.eval(), torch.randn(2, 8))
