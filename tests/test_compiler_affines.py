"""Affine maps a channel or a feature (:mod:`hwaccel.compiler.fold_affine`): a vector's input
normalization, layer scale and batch norm of its own, and an image's batch norm or scale before
an unpadded conv or a flatten into a Linear, each folded into the dense op next to it (a
diagonal Linear where none takes it); the float IR equal to torch, the int8 twin close to the
float model, golden equal to the twin and the RTL equal to golden."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from compile_checks import model_close, model_rtl_exact, traced_equal_to_torch
from torch import nn

from hwaccel.compiler import ir


class Vector(nn.Module):
    """``(x - mean) / std`` into a Linear, a Linear's batch norm, a layer scale after a Linear,
    and a batch norm of its own between two ReLUs."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.randn(16))
        self.register_buffer("std", torch.rand(16) + 0.5)
        self.fc1, self.bn = nn.Linear(16, 12), nn.BatchNorm1d(12)
        self.fc2 = nn.Linear(12, 8)
        self.gamma = nn.Parameter(torch.rand(8) + 0.5)
        self.bn2, self.fc3 = nn.BatchNorm1d(8), nn.Linear(8, 4)

    def forward(self, x):
        x = F.relu(self.bn(self.fc1((x - self.mean) / self.std)))
        x = F.relu(self.fc2(x) * self.gamma)
        return self.fc3(F.relu(self.bn2(x)))


class Image(nn.Module):
    """A batch norm of its own before a 1 x 1 conv, and a per-channel scale of a max pool's
    output flattened into a Linear."""

    def __init__(self):
        super().__init__()
        self.conv0, self.bn, self.conv1 = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), \
            nn.Conv2d(8, 8, 1)
        self.register_buffer("scale", torch.rand(8, 1, 1) + 0.5)
        self.fc = nn.Linear(8 * 4 * 4, 5)

    def forward(self, x):
        x = F.relu(self.conv1(self.bn(F.relu(self.conv0(x)))))
        return self.fc(torch.flatten(F.max_pool2d(x, 2) * self.scale, 1))


def _model(cls, seed=0):
    torch.manual_seed(seed)
    m = cls()
    for bn in (b for b in m.modules() if isinstance(b, (nn.BatchNorm1d, nn.BatchNorm2d))):
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 1.5)
        bn.weight.data.uniform_(0.5, 1.5)
    return m.eval()


def test_a_vectors_maps_fold_into_its_linears():
    model = _model(Vector)
    graph = traced_equal_to_torch(model, torch.randn(8, 16))
    kinds = [(type(op).__name__, op.name) for op in graph.ops]
    assert kinds == [("Linear", "fc1"), ("Linear", "mul"), ("Linear", "bn2"), ("Linear", "fc3")]
    names = {op.name: op for op in graph.ops}
    w = model.fc1.weight.detach().numpy()
    scale = (model.bn.weight / torch.sqrt(model.bn.running_var + 1e-5)).detach().numpy()
    np.testing.assert_allclose(names["fc1"].weight, scale[:, None] * w / model.std.numpy(),
                               rtol=1e-6)
    assert names["mul"].relu and names["bn2"].relu   # the scaled fc2, the norm of its own
    assert not np.count_nonzero(names["bn2"].weight - np.diag(np.diag(names["bn2"].weight)))


def test_an_images_maps_fold_into_an_unpadded_conv_and_a_linear():
    graph = traced_equal_to_torch(_model(Image), torch.randn(4, 3, 8, 8))
    assert [type(op).__name__ for op in graph.ops] == ["Conv2d", "Conv2d", "MaxPool2d",
                                                       "Flatten", "Linear"]
    assert [op.inputs for op in graph.ops][1:4] == [("conv0",), ("conv1",), ("max_pool2d",)]
    assert not any(isinstance(op, ir.Conv2d) and op.groups > 1 for op in graph.ops)


def test_the_int8_twins_are_close_and_golden_equals_them():
    model_close(_model(Vector), 1, shape=(16,))
    model_close(_model(Image), 2)


def test_the_rtl_equals_golden():
    model_rtl_exact(_model(Vector), 3, shape=(16,))
