"""Pipeline parallelism of an LSTM model: its LSTM layers over the stages of a Verilated top of
three tiny instances.

Each LSTM layer is one LSTM command over every time step, and its output (every step's ``h``) is
the tensor the next layer reads, so a cut between layers hands that sequence over the link. The
samples' outputs equal the golden interpreter's on one instance, every sample's cycles at every
stage equal the cycle model's, and ``hwaccel parallel``'s pp rows say so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import hwaccel
from hwaccel.generators.accel.config import PRESETS
from hwaccel.generators.link.config import PRESETS as LINKS
from hwaccel.generators.multi import PipelineConfig
from hwaccel.parallel.pp import partition, sample_inputs
from hwaccel.parallel.pp_model import model
from hwaccel.parallel.pp_run import run_pp

#: The pp tests' top (three tiny instances, the tiny link): its Verilator build is shared.
TOP = PipelineConfig(PRESETS["tiny"], 3, LINKS["tiny"], name="tiny3")


class StackedTokens(nn.Module):
    """Tokens embedded on the host, a two-layer LSTM(6, 5), an LSTM(5, 5), a Linear on the last
    step: the reference LSTM's shape at tiny's cell sizes (input up to 6, hidden up to 5)."""

    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(12, 6)
        self.rnn = nn.LSTM(6, 5, num_layers=2, batch_first=True)
        self.top = nn.LSTM(5, 5, batch_first=True)
        self.out = nn.Linear(5, 3)

    def forward(self, t):
        y, _ = self.rnn(self.emb(t))
        y, _ = self.top(y)
        return self.out(y[:, -1])


@pytest.fixture(scope="module")
def lstm():
    torch.manual_seed(0)
    net = StackedTokens().eval()
    gen = torch.Generator().manual_seed(1)
    x = torch.randint(0, 12, (6, 7), generator=gen)
    cm = hwaccel.compile(net, x, preset="tiny",
                         calibration=torch.randint(0, 12, (64, 7), generator=gen))
    return cm, x


@pytest.fixture(scope="module")
def design():
    from hwaccel.sim.runner import design_for

    return design_for(TOP)


@pytest.mark.parametrize("stages", [2, 3])
def test_lstm_layers_over_stages_bit_exact_with_every_cycle_modelled(design, lstm, stages):
    from hwaccel.parallel.pp_sim import golden, outputs_of, simulate

    cm, x = lstm
    xi = cm.quantize_input(x)
    part = partition(cm, xi, stages, link=TOP.link)
    layers = [n for s in part.stages for n in s.layers]
    assert layers == ["rnn.0", "rnn.1", "top", "out"]
    steps, hidden, lanes = x.shape[1], 5, cm.config.lanes
    for a, b in zip(part.stages, part.stages[1:]):
        # the boundary is the stage's last LSTM layer's h at every step, nothing else
        assert a.output == b.input and a.output.words == steps * -(-hidden // lanes), a.output
        assert a.output.tensors == (f"{a.layers[-1]} output",)
    words, measured = simulate(design, TOP, part, sample_inputs(part, cm, xi))
    got, ref = outputs_of(part, words), golden(cm, xi)
    np.testing.assert_array_equal(got.reshape(len(xi), -1), ref.reshape(len(xi), -1))
    np.testing.assert_array_equal(ref.reshape(len(xi), -1),
                                  np.asarray(cm.int8_forward(xi)).reshape(len(xi), -1))
    predicted = model(part, len(xi), TOP.link)
    assert measured.rows() == predicted.rows()
    assert measured.cycles == predicted.cycles > 0


def test_lstm_pp_rows_equal_their_model(lstm):
    cm, x = lstm
    rows = run_pp(cm, x, [1, 3], top=TOP, clock=(50.0, "given"))
    for r in rows:
        assert r.mismatches == 0 and r.cycles == r.model_cycles and r.samples_equal, r
        assert r.single_cycles == r.single_model_cycles
    one, three = rows
    assert one.stages == [["rnn.0", "rnn.1", "top", "out"]]
    assert len(three.stages) == 3 and three.speedup > 1
