"""The compiler's fusions (:mod:`hwaccel.compiler.fuse`): a transformer's ``linear1`` and GELU
lower to one GEMM with ``fuse.gelu``, the out-projection and ``linear2`` with their residual
ADDs and the patch embedding with its positional embedding's to GEMMs with ``fuse.add`` (no
GELU and no ADD command is left), the golden
interpreter's outputs equal the integer twin's exactly, and the fused programs take fewer
cycles than the unfused ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hwaccel
import hwaccel.compiler.lower as lower_mod
from hwaccel.compiler import fuse, ir
from hwaccel.generators.accel import Op, run_program
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.fuse_model import gelu_beats
from hwaccel.generators.accel.model import decode
from hwaccel.generators.accel.perf import program_perf
from hwaccel.models.transformer import TOKENS, DigitTransformer

CFG = MODEL_PRESETS["tiny_attention"]

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(seed, n):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, TOKENS, 4, generator=g) * 16


def _run(low):
    act, cycles, ops = low.builder.act, 0, []
    for p in low.programs:
        res = run_program(CFG, act, p.wgt, p.commands)
        assert res.done and not res.error, res.cause
        act = res.act
        perf = program_perf(CFG, p.commands)
        assert perf.counters["load_cycles"] == res.counters["load_cycles"]
        cycles += perf.cycles
        ops += [decode(CFG, w) for w in p.commands]
    return act, cycles, ops


def test_linear_gelu_is_one_gemm_and_golden_equals_twin(monkeypatch):
    torch.manual_seed(5)
    model = DigitTransformer(width=16, heads=1, ffn=16, layers=2, pool="first").eval()
    cm = hwaccel.compile(model, _data(5, 2), preset=CFG, calibration=_data(6, 32))
    x_int = cm.quantize_input(_data(7, 2))
    low = cm.lower(x_int)
    act, fused_cycles, cmds = _run(low)
    np.testing.assert_array_equal(np.asarray(low.ints(act)).reshape(2, -1),
                                  cm.int8_forward(x_int))
    gemms = [c for c in cmds if c["op"] == Op.GEMM]
    assert sum(c["fuse"]["gelu"] for c in gemms) == 2 and not any(c["op"] == Op.GELU
                                                                  for c in cmds)
    # add1 and add2 of both layers, and the positional embedding's in the patch embedding's
    assert sum(c["fuse"]["add"] for c in gemms) == 5 and gemms[0]["fuse"]["add"]
    assert not any(c["op"] == Op.ADD for c in cmds)

    monkeypatch.setattr(lower_mod, "fuse_gelu", lambda qg, cfg: qg)   # the unfused lowering
    monkeypatch.setattr(lower_mod, "fuse_add", lambda qg, cfg: qg)
    plain = cm.lower(x_int)
    act_p, plain_cycles, cmds_p = _run(plain)
    np.testing.assert_array_equal(np.asarray(plain.ints(act_p)).reshape(2, -1),
                                  cm.int8_forward(x_int))
    gelus = [c for c in cmds_p if c["op"] == Op.GELU]
    # the positional embedding's ADD per sample, and the residual ADDs of both layers
    assert len(gelus) == 2 and sum(c["op"] == Op.ADD for c in cmds_p) == 2 + 4 * 2
    assert len(cmds_p) == len(cmds) + 2 + 2 + 4 * 2
    assert fused_cycles < plain_cycles


def test_no_fusion_without_attention_units_and_the_gelu_is_gone():
    torch.manual_seed(5)
    model = DigitTransformer(width=16, heads=1, ffn=16, layers=1, pool="first").eval()
    cm = hwaccel.compile(model, _data(5, 2), preset=CFG, calibration=_data(6, 32))
    qg = cm.qgraph
    assert fuse.fuse_gelu(qg, MODEL_PRESETS["tiny_attention"].with_(attention=None)) is qg
    fused = fuse.fuse_gelu(qg, CFG)
    lin = [op for op in fused.ops if isinstance(op, fuse.QLinearGelu)]
    assert len(lin) == 1 and lin[0].gelu_name not in {op.name for op in fused.ops}
    assert all(lin[0].gelu_name not in op.inputs for op in fused.ops)
    both = fuse.fuse_add(fused, CFG)
    fa = [op for op in both.ops if isinstance(op, fuse.QLinearAdd)]
    assert len(fa) == 2 and not any(isinstance(op, ir.QAdd) for op in both.ops)
    pe = [op for op in both.ops if isinstance(op, fuse.QLinearAddConstant)]
    assert len(pe) == 1 and pe[0] is both.ops[0] and fuse.fused_constants(both) == pe
    assert not any(isinstance(op, ir.QAddConstant) for op in both.ops)
    assert all(pe[0].add_name not in op.inputs for op in both.ops)
    assert fuse.fuse_add(qg, CFG.with_(attention=None)) is qg
    assert gelu_beats(CFG) == 10 and gelu_beats(MODEL_PRESETS["default_attention"]) == 1
