"""torch.cat: a concatenation split into its readers (:mod:`hwaccel.compiler.fold_cat`), the
float IR equal to torch, the int8 twin close to the float model, and the compiled model
bit-exact on the golden interpreter and the RTL; what reads a concatenation otherwise is
refused by name."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, model_close, rtl_equals_golden, traced_equal_to_torch
from torch import nn

import hwaccel
from hwaccel.compiler import UnsupportedOp, ir
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace


class Fire(nn.Module):
    """A squeeze 1 x 1 conv, then 1 x 1 and 3 x 3 expands joined along channels (the
    SqueezeNet module)."""

    def __init__(self, cin, squeeze, expand):
        super().__init__()
        self.squeeze = nn.Conv2d(cin, squeeze, 1)
        self.e1 = nn.Conv2d(squeeze, expand, 1)
        self.e3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x):
        s = F.relu(self.squeeze(x))
        return F.relu(torch.cat([self.e1(s), self.e3(s)], 1))


class Squeeze(nn.Module):
    """Fits ``tiny`` (8 x 8 maps): a concatenation read by a max pool, one read by a conv and
    by an average pool then a flatten, and one of two vectors read by a Linear."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.f1 = Fire(8, 4, 6)
        self.f2 = Fire(12, 4, 8)
        self.head = nn.Conv2d(16, 6, 1)
        self.fc = nn.Linear(16 * 2 * 2 + 6, 5)

    def forward(self, x):
        x = F.max_pool2d(self.f1(F.relu(self.stem(x))), 2)
        x = self.f2(x)
        h = torch.flatten(F.avg_pool2d(F.relu(self.head(x)), 4), 1)
        v = torch.flatten(F.avg_pool2d(x, 2), 1)
        return self.fc(torch.cat([v, h], dim=1))


def _model(cls=Squeeze, seed=0):
    torch.manual_seed(seed)
    return cls().eval()


def test_each_reader_reads_the_parts_and_the_float_ir_equals_torch():
    model = _model()
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    graph = trace(model, x[:2])
    names = {op.name: op for op in graph.ops}
    # f1's joined expands, pooled part by part, into f2's squeeze: a conv per part, then an add
    assert names["max_pool2d.0"].inputs == ("f1.e1",) and names["max_pool2d.1"].inputs == (
        "f1.e3",)
    assert [names[f"f2.squeeze.cat{i}"].weight.shape for i in (0, 1)] == [(4, 6, 1, 1)] * 2
    add = names["f2.squeeze"]
    assert isinstance(add, ir.Add) and add.relu and add.inputs == ("f2.squeeze.cat0",
                                                                    "f2.squeeze.cat1")
    assert not names["f2.squeeze.cat0"].relu and not names["f2.squeeze.cat1"].bias.any()
    assert names["f1.e1"].relu and names["f1.e3"].relu      # the ReLU of the concatenation
    # the Linear over [flatten(avg(f2's e1, e3)), h]: three parts, 32 + 32 + 6 features
    assert isinstance(names["fc"], ir.Add) and [
        names[f"fc.cat{i}"].weight.shape for i in range(3)] == [(5, 32), (5, 32), (5, 6)]
    assert not any(type(op).__name__ == "Cat" for op in graph.ops)
    with torch.no_grad():
        ref = model.double()(x.double())
    torch.testing.assert_close(float_forward(graph, x), ref, rtol=1e-9, atol=1e-12)


def test_golden_equals_the_twin_and_the_float_model_closely():
    model = _model()
    x = torch.randn(64, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    golden_twin_float(cm, model, x[:8], 0.1)


def test_the_rtl_runs_a_model_with_concatenations_bit_exact():
    model = _model(seed=3)
    x = torch.randn(32, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    rtl_equals_golden(cm, x[:3])


class Out(nn.Module):
    def __init__(self, how):
        super().__init__()
        self.a, self.b = nn.Conv2d(2, 4, 3, padding=1), nn.Conv2d(2, 4, 1)
        self.c, self.d = nn.Conv2d(2, 2, 1), nn.Conv2d(2, 6, 3, padding=1)
        self.how = how

    def forward(self, x):
        a, b = self.a(x), self.b(x)
        if self.how == "output":
            return torch.cat([a, b], 1).flatten(1)
        if self.how == "add":   # split at other channels: 4 + 4 and 2 + 6
            return (torch.cat([a, b], 1) + torch.cat([self.c(x), self.d(x)], 1)).flatten(1)
        if self.how == "aligned":
            return (torch.cat([a, b], 1) + torch.cat([b, a], 1)).flatten(1)
        return torch.cat([a, b], dim=2).flatten(1)


@pytest.mark.parametrize("how", ["output", "add", "aligned"])
def test_an_add_or_the_output_reads_the_concatenation_joined(how):
    """An identity 1 x 1 conv (a Linear on the flattened output) joins the parts for the
    output. An add of two concatenations split at the same channels is one add a part
    (:mod:`hwaccel.compiler.fold_cat_add`); of two split at other channels, the first is
    joined, and that identity conv, which only the add reads, splits by its rows at the
    second's channels: one add a part again, one join in place of two."""
    torch.manual_seed(4)
    model = Out(how).eval()
    graph = traced_equal_to_torch(model, torch.randn(4, 2, 5, 5))
    names = {op.name for op in graph.ops}
    assert "flatten.joined" in names
    assert ("cat.joined.part1" in names) == (how == "add")
    assert ("add.part1" in names) == (how != "output")
    model_close(model, 5, shape=(2, 5, 5))


def test_a_concatenation_along_height_is_named():
    with pytest.raises(UnsupportedOp, match=r"unsupported cat at .*dim=2 of per-sample shapes "
                                            r"\[\(4, 5, 5\), \(4, 5, 5\)\]"):
        trace(Out("height").eval(), torch.randn(2, 2, 5, 5))


class Tables(nn.Module):
    """A SiLU of a concatenation (a table on each part), halves of it swapped into a conv,
    and a sigmoid that a flatten reads."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(3, 4, 1)
        self.c, self.fc = nn.Conv2d(8, 8, 1), nn.Linear(8 * 8 * 8, 5)

    def forward(self, x):
        y, z = F.silu(torch.cat([self.a(x), self.b(x)], 1)).chunk(2, 1)
        return self.fc(torch.sigmoid(self.c(torch.cat([z, y], 1))).flatten(1))


def test_a_table_of_a_concatenation_runs_on_each_part():
    torch.manual_seed(6)
    model = Tables().eval()
    graph = traced_equal_to_torch(model, torch.randn(4, 3, 8, 8))
    names = {op.name: op for op in graph.ops}
    assert names["silu.0"].inputs == ("a",) and names["silu.1"].inputs == ("b",)
    assert names["c"].inputs == ("c.cat0", "c.cat1") and not any(
        ".joined" in n for n in names)
    model_close(model, 7, preset="tiny_attention")
