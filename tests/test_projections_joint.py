"""An attention block's Q, K and V projections run as one GEMM (:func:`hwaccel.compiler.
lower_attention.projection_groups`): its first layer emits one GEMM of all their output
channels, the others none, and the golden interpreter still equals the integer twin exactly
(each projection's requantizers per channel as they were); projections whose outputs do not
start on a word each keep a GEMM of their own."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import hwaccel
from hwaccel.compiler.lower_attention import projection_groups
from hwaccel.generators.accel import Op, run_program
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.model import decode
from hwaccel.models.transformer import TOKENS, DigitTransformer

CFG = MODEL_PRESETS["default_attention"]

pytestmark = pytest.mark.usefixtures("one_thread")


def _data(seed, n):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, TOKENS, 4, generator=g) * 16


def _lowered(seed, batch, **kw):
    torch.manual_seed(seed)
    model = DigitTransformer(**kw).eval()
    cm = hwaccel.compile(model, _data(seed, 2), preset=CFG, calibration=_data(seed + 10, 64))
    x_int = cm.quantize_input(_data(seed + 20, batch))
    low = cm.lower(x_int)
    act = low.builder.act
    for p in low.programs:
        res = run_program(CFG, act, p.wgt, p.commands)
        assert res.done and not res.error, res.cause
        act = res.act
    got = np.asarray(low.ints(act)).reshape(batch, -1)
    np.testing.assert_array_equal(got, cm.int8_forward(x_int), err_msg=f"seed {seed}")
    gemms = {}   # layer -> the nb (N words) of each GEMM it emitted
    for p, names in zip(low.programs, low.layer_pcs):
        for word, name in zip(p.commands, names):
            c = decode(CFG, word)
            if c["op"] == Op.GEMM:
                gemms.setdefault(name, []).append(c["nb"])
    return cm, gemms


def test_q_k_v_run_as_one_gemm_and_stay_exact():
    cm, gemms = _lowered(5, 3, width=32, heads=2, ffn=32, layers=2)
    for layer in range(2):
        attn = f"encoder.layers.{layer}.self_attn"
        assert gemms[f"{attn}.q"] == [6], gemms   # 3 x 32 channels = 6 words of 16
        assert f"{attn}.k" not in gemms and f"{attn}.v" not in gemms, gemms
        assert gemms[f"{attn}.out"] == [2], gemms
        group = projection_groups(cm.qgraph, CFG.lanes)[f"{attn}.k"]
        assert [op.name for op in group] == [f"{attn}.{p}" for p in "qkv"]
    text = cm.describe()
    assert "GEMM of q, k, v side by side" in text
    assert "(its columns of encoder.layers.1.self_attn.q's GEMM)" in text


def test_projections_off_a_word_boundary_keep_their_own_gemms():
    """24 channels on 16 lanes: K would start mid-word, so nothing is joined."""
    cm, gemms = _lowered(6, 2, width=24, heads=1, ffn=32, layers=1)
    assert not projection_groups(cm.qgraph, CFG.lanes)
    attn = "encoder.layers.0.self_attn"
    assert all(gemms[f"{attn}.{p}"] == [2] for p in "qkv"), gemms
