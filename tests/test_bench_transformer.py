"""``hwaccel bench accel --workload`` on a transformer (``tiny_attention``, a small encoder): the
RTL's cycles equal the cycle model's and its outputs golden's; the per-op summary
(:mod:`hwaccel.bench.ops`) puts every layer in one class, its cycles add up to the total and the
issue's figures follow from them; ``--model-only`` gives the same cycle-model figures without the
RTL; a preset without attention units refuses in one line naming the workload and the preset.
"""

from __future__ import annotations

import argparse

import pytest
import torch

from hwaccel.bench import accel
from hwaccel.bench.ops import CLASSES, NONLINEAR
from hwaccel.bench.workloads import model_rows
from hwaccel.generators.accel import PRESETS
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.models.transformer import TOKENS, DigitTransformer

CFG = MODEL_PRESETS["tiny_attention"]
WIDTH = 16

pytestmark = pytest.mark.usefixtures("one_thread")


def _model():
    torch.manual_seed(0)
    return DigitTransformer(width=WIDTH, heads=2, ffn=16, layers=1, pool="first").eval()


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(34, TOKENS, 4, generator=g) * 16


def _rows(preset, **kw):
    x = _data()
    return model_rows("tiny-encoder", _model(), x[:32], x[32:33], preset, **kw)


def _expected_class(name: str) -> str:
    """The class by the tracer's layer names (the summary decides by op type)."""
    last = name.rsplit(".", 1)[-1]
    for prefix, c in (("scores", "scores"), ("probs", "softmax"), ("pv", "P.V"),
                      ("norm", "LayerNorm"), ("gelu", "GELU"), ("add", "adds")):
        if last.startswith(prefix):
            return c
    if last in ("q", "k", "v", "out"):
        return "projections"
    return "FFN" if last in ("linear1", "linear2") else "other"


@pytest.fixture(scope="module")
def rtl_rows():
    return _rows(CFG)


def test_rtl_cycles_equal_the_model_and_outputs_golden(rtl_rows):
    whole = rtl_rows[0]
    assert whole["layer"] == "all" and whole["mismatches"] == 0
    assert whole["cycles"] == whole["model_cycles"] > 0 and whole["cycles_match"]
    assert whole["utilization"] == whole["macs"] / (whole["cycles"] * CFG.macs)


def test_the_op_summary_accounts_for_every_layer(rtl_rows):
    whole = rtl_rows[0]
    summary = [r for r in rtl_rows if r["layer"].startswith("ops: ")]
    layers = [r for r in rtl_rows[1:] if not r["layer"].startswith("ops: ")]
    # This encoder has every class but GELU and adds: it runs in linear1's GEMM (a fused
    # GEMM's cycles are its Linear's, as the residual adds' are the out-projection's and
    # linear2's, and the positional embedding's the patch embedding's).
    assert {r["op_class"] for r in summary} == set(CLASSES) - {"GELU", "adds"}
    assert sum(r["model_cycles"] for r in summary) == whole["model_cycles"]
    assert sum(r["share"] for r in summary) == pytest.approx(1.0)
    assert sum(r["macs"] for r in summary) == whole["macs"]
    counted = {name: r["op_class"] for r in summary for name in r["layers"]}
    assert sorted(counted) == sorted(r["layer"] for r in layers)   # each layer once
    for name, c in counted.items():
        assert c == _expected_class(name), name


def test_the_headline_figures(rtl_rows):
    whole = rtl_rows[0]
    by = {r["op_class"]: r for r in rtl_rows if r["layer"].startswith("ops: ")}
    ideal = TOKENS * TOKENS * WIDTH   # per head T x T x d, over the heads: T x T x width
    assert by["scores"]["macs"] == by["P.V"]["macs"] == ideal
    assert whole["scores_of_ideal"] == ideal / (by["scores"]["model_cycles"] * CFG.macs)
    assert whole["pv_of_ideal"] == ideal / (by["P.V"]["model_cycles"] * CFG.macs)
    assert whole["nonlinear_share"] == pytest.approx(
        sum(by[c]["model_cycles"] for c in NONLINEAR if c in by) / whole["cycles"])
    assert whole["ops"]["softmax"]["model_cycles"] == by["softmax"]["model_cycles"]


def test_model_only_gives_the_same_figures_without_the_rtl(rtl_rows):
    rows = _rows(CFG, rtl=False)
    whole = rows[0]
    assert "cycles" not in whole and "not run on the RTL" in whole["note"]
    assert whole["model_cycles"] == rtl_rows[0]["cycles"]
    for key in ("utilization", "scores_of_ideal", "pv_of_ideal", "nonlinear_share", "ops"):
        assert whole[key] == rtl_rows[0][key], key


def test_a_preset_without_attention_units_refuses_in_one_line():
    (row,) = _rows(PRESETS["tiny"])
    note = row["note"]
    assert "\n" not in note and "cycles" not in row
    assert "workload tiny-encoder needs attention units" in note
    assert "preset tiny has none" in note and "tiny_attention" in note


def test_the_command_takes_the_attention_presets():
    p = argparse.ArgumentParser()
    accel.add_arguments(p)
    args = p.parse_args(["--preset", "ecp5_attention", "--workload", "transformer",
                         "--model-only"])
    assert args.preset == "ecp5_attention" and args.model_only
    with pytest.raises(SystemExit):
        p.parse_args(["--preset", "nonesuch"])
