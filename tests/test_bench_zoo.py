"""``hwaccel bench zoo``: the mobile networks by their published layer tables
(:mod:`hwaccel.models.zoo`) compile, golden equal to the integer twin, or are refused in one
line that names the layer. Their tables are checked against the papers' multiply-adds and
parameters at 224 x 224 and 1000 classes."""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

from hwaccel.bench import zoo
from hwaccel.models.zoo import ZOO, zoo_model

#: (multiply-adds, parameters) at 224 x 224, 1000 classes, as each paper publishes them:
#: MobileNetV2 300 M / 3.4 M (Sandler et al. 2018, Table 4), MobileNetV3-Small 1.0 56 M /
#: 2.5 M and -Large 219 M / 5.4 M (Howard et al. 2019, Table 3), EfficientNet-B0 0.39 B / 5.3 M
#: (Tan and Le 2019, Table 2), MnasNet-A1 312 M / 3.9 M (Tan et al. 2019, Table 1). The papers
#: round parameters to 0.1 M (MobileNetV2's table is 3.50 M here, as in torchvision's).
PUBLISHED = {"mobilenetv2": (300e6, 3.4e6), "mobilenetv3_small": (56e6, 2.5e6),
             "mobilenetv3_large": (219e6, 5.4e6), "efficientnet_b0": (390e6, 5.3e6),
             "mnasnet_a1": (312e6, 3.9e6)}


def _macs(model: nn.Module, side: int) -> int:
    total = 0

    def count(mod, _, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            total += out[0].numel() * k
        else:
            total += mod.in_features * mod.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, side, side))
    for h in hooks:
        h.remove()
    return total


@pytest.mark.parametrize("name", list(ZOO))
def test_the_tables_have_the_published_size(name):
    model = zoo_model(name, classes=1000)
    macs, params = PUBLISHED[name]
    assert abs(_macs(model, 224) / macs - 1) < 0.015, _macs(model, 224)
    assert abs(sum(p.numel() for p in model.parameters()) / params - 1) < 0.035


def test_a_model_compiles_golden_equal_to_the_twin():
    """MobileNetV3-Small at half width over 32 x 32: its 5 x 5 depthwise kernels on
    ``default``'s 7 x 7 window, hardswish as products where no tables run."""
    row = zoo.zoo_row("mobilenetv3_small", "default", 0.5, 32)
    assert row["note"] == "" and row["golden_twin"] and row["mismatches"] == 0, row
    assert row["rel_err"] < 0.1 and row["model_cycles"] > 0 and 0 < row["utilization"] < 1


def test_a_refusal_is_one_line_naming_the_layer():
    args = argparse.Namespace(model="mnasnet_a1", preset="default", width=0.5, side=32, seed=0)
    (row,) = zoo.run(args)
    assert row["note"].startswith("layer 'sigmoid' is sigmoid") and "\n" not in row["note"]
    assert "model_cycles" not in row
