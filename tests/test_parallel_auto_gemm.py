"""The capacity case of ``hwaccel parallel --mode auto`` on a GEMM (``--model gemm<K>``).

A ``160 x 32 x 32`` GEMM on tiny instances: its rows and outputs (160 x 8 words each) overflow
one instance's 2,048-word scratchpad, so one instance running the batch as one program is
dropped with the tensor named; the choice is the candidate with the fewest modelled cycles among
those that fit, and it runs on the RTL with its cycles equal to the model's and its outputs to
golden's. A GEMM whose weights exceed an instance's weight scratchpad runs in parts of its
outputs (dp splits its samples); one whose single output block's do not fit is refused naming
the layer's weights.
"""

from __future__ import annotations

import pytest

import hwaccel
from hwaccel.generators.accel.config import PRESETS
from hwaccel.generators.link.config import PRESETS as LINKS
from hwaccel.generators.multi import PipelineConfig
from hwaccel.parallel.auto import NoPartitionFits, candidates, choose, run_auto
from hwaccel.parallel.gemm import gemm, load

TOP = PipelineConfig(PRESETS["tiny"], 3, LINKS["tiny"], name="tiny3")


def _compiled(k: int):
    module, split = gemm(k)
    cm = hwaccel.compile(module, split.x_train[:8], preset="tiny",
                         calibration=split.x_train[:256], strict=False)
    return cm, split


def test_a_gemm_one_instance_does_not_hold_runs_split():
    cm, split = _compiled(32)
    x = split.x_test[:160]
    xi = cm.quantize_input(x)
    cands = candidates(cm, xi, 2, link=TOP.link)
    why = {c.label: c.reason for c in cands if not c.fits}
    assert "tensor '0 output' (1280 words)" in why["dp 1 instance, own ports"]
    assert "does not fit the activation scratchpad of accel_tiny" in \
        why["dp 1 instance, own ports"]
    assert "cannot split 1 layers" in why["pp 2 stages"]   # one Linear: one layer
    fit = {c.label: c.model_cycles for c in cands if c.fits}
    assert set(fit) == {"dp 2 instances, own ports", "pp 1 stage"}
    # batched rows beat streaming them one at a time through one instance
    assert fit["dp 2 instances, own ports"] < fit["pp 1 stage"]
    (row,) = run_auto(cm, x, [2], top=TOP, clock=(50.0, "given"))
    assert row.partition == choose(cands) and row.partition.label == "dp 2 instances, own ports"
    assert row.cycles == row.model_cycles == fit["dp 2 instances, own ports"]
    assert row.mismatches == 0 and row.batch == 160
    assert row.single_cycles == row.single_model_cycles   # as consecutive programs
    assert row.shard_sizes == [80, 80]


def test_a_gemm_beyond_the_weight_scratchpad_runs_in_parts_and_splits_by_samples():
    """128 x 128 weights are 1,056 words on tiny (32 output blocks of 32 K words and a
    requantizer word), 512 fit: the GEMM runs in parts of its outputs (3 programs), which pp
    and tp cannot cut, naming why; dp splits the samples and runs on the RTL exactly."""
    cm, split = _compiled(128)
    assert cm.refusal is None
    x = split.x_test[:4]
    cands = candidates(cm, cm.quantize_input(x), 3, link=TOP.link)
    why = {c.label: c.reason for c in cands if not c.fits}
    assert "layer '0' was itself lowered into weight groups" in why["pp 1 stage"]
    assert "its weights need 2 weight groups" in why["tp 2 instances"]
    (row,) = run_auto(cm, x, [3], top=TOP, clock=(50.0, "given"))
    assert row.partition == choose(cands) and row.partition.label.startswith("dp ")
    assert row.cycles == row.model_cycles and row.mismatches == 0


def test_a_gemm_no_instance_holds_is_refused_naming_its_weights():
    cm, split = _compiled(2048)   # one output block: 512 K words and a requantizer word
    assert cm.refusal is not None
    with pytest.raises(NoPartitionFits, match=r"no partition fits accel_tiny: .*even at batch "
                                              r"1 \(the weights of layer '0' do not fit the "
                                              r"weight scratchpad of accel_tiny \(512 words\) "
                                              r"even one output block at a time"):
        candidates(cm, cm.quantize_input(split.x_test[:4]), 4)


def test_gemm_workloads_by_name():
    module, split = load("gemm24")
    (lin,) = module
    assert (lin.in_features, lin.out_features, lin.bias) == (24, 24, None)
    assert split.x_test.shape == (1024, 24) and len(split.y_test) == 1024
    again, _ = load("gemm24")
    assert (again[0].weight == lin.weight).all()   # seeded
    with pytest.raises(ValueError, match=r"width must be an integer in \[1, 4096\], not 0"):
        load("gemm0")
    with pytest.raises(ValueError, match="model must be one of"):
        load("gemm")
