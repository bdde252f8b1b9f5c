"""The host heads: a sigmoid as a model's last op (binary and multi-label classifiers) runs on
the host after the accelerator's int8 logits, as softmax does; inside a model it has no
hardware and is refused by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp
from hwaccel.compiler.quantize import apply_head


class Tail(nn.Module):
    def __init__(self, head):
        super().__init__()
        self.fc1, self.fc2, self.head = nn.Linear(16, 8), nn.Linear(8, 3), head

    def forward(self, x):
        return self.head(self.fc2(F.relu(self.fc1(x))))


@pytest.mark.parametrize("head", [nn.Sigmoid(), torch.sigmoid, F.sigmoid,
                                  lambda z: z.sigmoid()],
                         ids=["module", "torch", "functional", "method"])
def test_a_sigmoid_head_runs_on_the_host(head):
    torch.manual_seed(0)
    model = Tail(head).eval()
    x = torch.randn(64, 16, generator=torch.Generator().manual_seed(1))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    assert cm.graph.head == "sigmoid"
    gold = cm.execute("golden", x[:8])
    twin = cm.int8_forward(cm.quantize_input(x[:8]))
    np.testing.assert_array_equal(gold.int_logits, twin)
    probs = np.asarray(cm.run("golden", x[:8]))
    np.testing.assert_allclose(probs, 1 / (1 + np.exp(-twin * cm.qgraph.output_scale)))
    with torch.no_grad():
        np.testing.assert_allclose(probs, model(x[:8]).numpy(), atol=0.02)


def test_the_sigmoid_head_does_not_overflow():
    z = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    with np.errstate(over="raise"):
        p = apply_head("sigmoid", z)
    np.testing.assert_allclose(p, [0.0, 1 / (1 + np.exp(30)), 0.5, 1 / (1 + np.exp(-30)), 1.0])


def test_a_sigmoid_inside_a_model_is_a_table_where_the_units_are():
    """A sigmoid that another op reads is no host head: the GELU unit's table runs it
    (``test_compiler_pointwise.py``), and a preset without that unit names it."""
    model = nn.Sequential(nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 3)).eval()
    with pytest.raises(UnsupportedOp, match=r"is sigmoid \(a table on the attention units' "
                                            r"GELU unit\): no accelerator command for it on "
                                            r"accel_tiny"):
        hwaccel.compile(model, torch.randn(2, 16), preset="tiny")
    cm = hwaccel.compile(model, torch.randn(2, 16), preset="tiny_attention")
    assert cm.qgraph.head == "logits"
