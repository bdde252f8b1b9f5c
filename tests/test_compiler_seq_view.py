"""A line and a sequence are the same words channels-last (a pixel's channels, a step's
features), so a Conv1d front end's ``x.transpose(1, 2)`` into an LSTM (a CRNN, the keyword and
speech models' shape) and an embedding's ``x.permute(0, 2, 1)`` into a Conv1d (TextCNN) are a
:class:`~hwaccel.compiler.ir.SeqView`: no data moves. Traced equal to torch, golden equal to the
integer twin and the RTL equal to golden. (A transpose of tokens that no Conv1d reads stays the
attention layout's: ``tests/test_transformer*.py``.)"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from compile_checks import golden_twin_float, rtl_equals_golden
from torch import nn

import hwaccel
from hwaccel.compiler import ir
from hwaccel.compiler.reference import forward as float_forward
from hwaccel.compiler.trace import trace


class CRNN(nn.Module):
    """A Conv1d over MFCC-like frames, its line read as steps by an LSTM, the last step's h
    into a Linear (sized for tiny's LSTM cell: 6 inputs, 5 hidden)."""

    def __init__(self, spell: str = "transpose"):
        super().__init__()
        self.spell = spell
        self.c = nn.Conv1d(4, 6, 3, padding=1)
        self.lstm = nn.LSTM(6, 5, batch_first=True)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        y = F.relu(self.c(x))
        y = y.transpose(1, 2) if self.spell == "transpose" else y.permute(0, 2, 1)
        out, _ = self.lstm(y)
        return self.fc(out[:, -1])


class TextCNN(nn.Module):
    """Token embeddings read as a line by a Conv1d, its max over time into a Linear."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(40, 8)
        self.c = nn.Conv1d(8, 8, 3, padding=1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(F.relu(self.c(self.emb(x).permute(0, 2, 1))).amax(-1))


def _same(model, x):
    graph = trace(model, x[:2])
    xd = x.double() if x.is_floating_point() else x
    torch.testing.assert_close(float_forward(graph, xd), model.double()(xd), rtol=1e-9,
                               atol=1e-12)
    model.float()
    return graph


def test_a_crnns_transposed_line_is_the_lstms_sequence():
    x = torch.randn(32, 4, 8, generator=torch.Generator().manual_seed(1))
    for spell in ("transpose", "permute"):
        torch.manual_seed(0)
        model = CRNN(spell).eval()
        graph = _same(model, x)
        view = next(op for op in graph.ops if isinstance(op, ir.SeqView))
        assert not view.to_line and graph.shapes()[view.name] == (8, 6)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    assert "(a view, no command)" in cm.describe()
    golden_twin_float(cm, model, x[:8], 0.15)
    rtl_equals_golden(cm, x[:3])


def test_textcnns_permuted_embeddings_are_the_conv1ds_line():
    torch.manual_seed(2)
    model = TextCNN().eval()
    x = torch.randint(0, 40, (32, 12), generator=torch.Generator().manual_seed(3))
    graph = _same(model, x)
    view = next(op for op in graph.ops if isinstance(op, ir.SeqView))
    assert view.to_line and graph.shapes()[view.name] == (8, 1, 12)
    cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
    xi = cm.quantize_input(x[:3])
    np.testing.assert_array_equal(cm.execute("golden", x[:3]).int_logits, cm.int8_forward(xi))
    np.testing.assert_array_equal(cm.execute("rtl", x[:3]).int_logits,
                                  cm.execute("golden", x[:3]).int_logits)


def test_the_float_ir_in_jax_equals_torch():
    """The XLA backend's view of a line as steps and back (float32; summation orders differ)."""
    torch.manual_seed(4)
    for model, x in ((CRNN().eval(), torch.randn(6, 4, 8)),
                     (TextCNN().eval(), torch.randint(0, 40, (6, 12)))):
        cm = hwaccel.compile(model, x[:2], preset="tiny", calibration=x)
        np.testing.assert_allclose(cm.execute("xla", x).logits, cm.execute("torch-cpu", x).logits,
                                   rtol=0, atol=1e-4)


def test_tensor_parallelism_keeps_the_view_with_the_lstm_that_reads_it():
    """Split over two accelerators (the model's ring, bit-exact against golden): the conv by
    its outputs, the LSTM by the batch's sequences with the view joined to it (a view has no
    command), the Linear by its outputs."""
    from hwaccel.parallel.pp_sim import golden
    from hwaccel.parallel.tp import plan
    from hwaccel.parallel.tp_sim import default_ring_link, model, simulate

    torch.manual_seed(5)
    crnn, x = CRNN().eval(), torch.randn(8, 4, 8, generator=torch.Generator().manual_seed(6))
    cm = hwaccel.compile(crnn, x[:2], preset="tiny", calibration=x)
    xi, link = cm.quantize_input(x[:4]), default_ring_link(cm.config, 2)
    p, _ = plan(cm, xi, 2, link=link)
    assert [la.split for la in p.layers] == ["n", "b", "n"]
    out, measured = simulate(p, link)
    np.testing.assert_array_equal(out.reshape(4, -1), golden(cm, xi).reshape(4, -1))
    assert model(p, link).cycles == measured.cycles
