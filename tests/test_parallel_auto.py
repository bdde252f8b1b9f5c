"""``hwaccel parallel --mode auto``: the partition with the fewest modelled cycles that fits.

The choice equals the minimum over the candidates, each candidate's cycles recomputed here from
the dp and pp models; a batch one instance does not hold runs on a split that holds it, its
simulated cycles equal to the model's and its outputs to golden's; with nothing that fits the
refusal names the tensor, the stage and the layer.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hwaccel
from hwaccel.compiler.cases import make, split_bands
from hwaccel.generators.accel.config import PRESETS
from hwaccel.generators.link.config import PRESETS as LINKS
from hwaccel.generators.multi import PipelineConfig
from hwaccel.parallel.auto import NoPartitionFits, candidates, choose, run_auto
from hwaccel.parallel.dp import model_phases, shards
from hwaccel.parallel.dp_port import finish
from hwaccel.parallel.pp import balanced
from hwaccel.parallel.pp_model import model
from hwaccel.parallel.tp import plan
from hwaccel.parallel.tp_points import compiled
from hwaccel.parallel.tp_run import link_for
from hwaccel.parallel.tp_sim import model as tp_model

#: The pp tests' top (three tiny instances, the tiny link): its Verilator build is shared.
TOP = PipelineConfig(PRESETS["tiny"], 3, LINKS["tiny"], name="tiny3")


@pytest.fixture(scope="module")
def branches():
    net, inputs = make("branches")
    x = inputs(12, torch.Generator().manual_seed(14))
    cm = hwaccel.compile(net, x[:8], preset="tiny")
    return cm, x


def _recomputed(cm, xi, c) -> int | None:
    """A candidate's modelled cycles straight from the dp or pp model."""
    if c.mode == "dp":
        traces = [model_phases(cm, xi[s]) for s in shards(len(xi), c.instances)]
        return max(finish(traces, c.shared_host_port))
    return model(balanced(cm, xi, c.instances, link=TOP.link), len(xi), TOP.link).cycles


@pytest.mark.parametrize("batch", [1, 4, 12])
def test_choice_is_the_minimum_of_the_candidates_models(branches, batch):
    cm, x = branches
    xi = cm.quantize_input(x[:batch])
    cands = candidates(cm, xi, 3, shared_host_port=True, link=TOP.link)
    labels = [c.label for c in cands]
    # dp own 1-3, shared 2-3, pp 1-3, tp 2-3 (hybrid needs 4: two stages of two)
    assert len(set(labels)) == len(labels) == 3 + 2 + 3 + 2
    for c in cands:   # a graph with a branch is no chain of layers to split
        if c.mode == "tp":
            assert not c.fits and "chain" in c.reason, c.reason
    fit = [c for c in cands if c.fits]
    for c in fit:
        assert c.model_cycles == _recomputed(cm, xi, c), c.label
    low = min(c.model_cycles for c in fit)
    best = choose(cands)
    assert best.model_cycles == low
    assert best.instances == min(c.instances for c in fit if c.model_cycles == low)
    for c in cands:
        if c.mode == "dp" and c.instances > batch:
            assert not c.fits and "cannot give each" in c.reason


def test_a_tie_goes_to_fewer_instances(branches):
    """Four samples: two instances take two each, three take two, one and one, so the slowest
    instance (two samples) is the same and the choice is two instances."""
    cm, x = branches
    cands = candidates(cm, cm.quantize_input(x[:4]), 3, link=TOP.link)
    dp = {c.instances: c for c in cands if c.mode == "dp"}
    assert dp[2].model_cycles == dp[3].model_cycles
    best = choose(cands)
    if best.mode == "dp":
        assert best.instances == 2


def test_a_batch_one_instance_does_not_hold_runs_split(branches):
    """Twelve samples do not fit one tiny instance (nine do): dp on one instance is dropped
    naming what does not fit, and the chosen split runs with cycles equal to its model's."""
    cm, x = branches
    assert cm.max_batch < 12
    (row,) = run_auto(cm, x[:12], [3], top=TOP, clock=(50.0, "given"))
    dropped = {c.label: c.reason for c in row.candidates if not c.fits}
    assert "dp 1 instance, own ports" in dropped
    assert "does not fit" in dropped["dp 1 instance, own ports"]
    fit = [c for c in row.candidates if c.fits]
    assert row.partition == min(fit, key=lambda c: (c.model_cycles, c.instances))
    assert row.cycles == row.model_cycles == row.partition.model_cycles
    assert row.mismatches == 0 and row.batch == 12
    assert row.single_cycles == row.single_model_cycles
    js = row.to_json()
    assert js["mode"] == "auto" and js["partition"]["label"] == row.partition.label
    assert [c["model_cycles"] for c in js["candidates"]] == [c.model_cycles for c in
                                                             row.candidates]


def test_a_pipeline_choice_runs_on_the_pipeline_top(branches):
    """One sample over at most two instances: dp cannot split it, so the choice is one
    instance or a two-stage pipeline, run and equal to its model."""
    cm, x = branches
    (row,) = run_auto(cm, x[:1], [2], top=TOP, clock=(50.0, "given"))
    assert [c.label for c in row.candidates if not c.fits] == ["dp 2 instances, own ports",
                                                              "tp 2 instances"]
    assert row.cycles == row.model_cycles == row.partition.model_cycles
    assert row.mismatches == 0
    if row.partition.mode == "pp":
        assert [tuple(s) for s in row.stages] == list(row.partition.stages)


def test_tp_and_hybrid_are_weighed_and_run_equal_to_their_models():
    """A chain (Linear, ReLU, Linear) at batch 1 over at most four instances: dp cannot split
    one sample, and every tp and hybrid candidate's cycles equal its plan's closed form; the
    choice is the minimum and runs (shares on the golden model and cycle model, the ring
    stepped beat by beat) with its cycles equal to the model's and its outputs to golden's."""
    from hwaccel.parallel.hybrid import stage_plans

    cm, x = compiled("mlp", 6)
    xi = cm.quantize_input(x[:1])
    ring = link_for(cm.config, 2, None)
    cands = candidates(cm, xi, 4, link=TOP.link, ring=ring)
    by = {c.label: c for c in cands}
    assert {"tp 2 instances", "tp 3 instances", "tp 4 instances",
            "hybrid 2 stages x 2-way tp"} <= set(by)
    for n in (2, 3, 4):
        c = by[f"tp {n} instances"]
        assert c.model_cycles == tp_model(plan(cm, xi, n, "auto", link=ring)[0], ring).cycles
    hy = by["hybrid 2 stages x 2-way tp"]
    assert hy.fits and hy.tp_size == 2
    assert list(hy.stages) == stage_plans(cm, xi, 4, 2, "auto", ring)[1]
    best = choose(cands)
    assert best.model_cycles == min(c.model_cycles for c in cands if c.fits)
    (row,) = run_auto(cm, x[:1], [4], top=TOP, ring=ring, clock=(50.0, "given"))
    assert row.partition == best
    assert row.cycles == row.model_cycles == best.model_cycles
    assert row.mismatches == 0
    only = candidates(cm, xi, 4, link=TOP.link, ring=ring, modes=("tp",))
    assert [c.mode for c in only] == ["tp"] * 3
    with pytest.raises(ValueError, match="modes must be some of"):
        candidates(cm, xi, 2, modes=("dp", "zz"))


def test_nothing_fits_is_refused_naming_the_tensor_stage_and_layer():
    # a 16-channel 32 x 32 map is 4,096 words of the tiny scratchpad's 2,048
    big = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU()).eval()
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    cm = hwaccel.compile(big, x, preset="tiny", strict=False)
    with pytest.raises(NoPartitionFits, match=r"even at batch 1 \(.*does not fit"):
        candidates(cm, cm.quantize_input(x), 2)
    # split_bands' last layer straddles two weight groups: no pp stage holds it, and a
    # batch larger than two programs hold fits no dp split over two instances
    net, inputs = split_bands()
    x = inputs(2, torch.Generator().manual_seed(1))
    cm = hwaccel.compile(net, x, preset="tiny")
    xi = cm.quantize_input(inputs(2 * cm.max_batch + 1, torch.Generator().manual_seed(1)))
    with pytest.raises(NoPartitionFits) as info:
        choose(candidates(cm, xi, 2, link=TOP.link))
    msg = str(info.value)
    assert "dp 2 instances, own ports: a shard of" in msg and "does not fit" in msg
    assert "pp 1 stage: " in msg and "layer '5' was itself lowered into weight groups" in msg


def test_bench_random_points_equal_their_models():
    """``hwaccel bench parallel --random``, a few points on the tests' top: every point's
    cycles equal its model's and its outputs equal golden's."""
    import argparse

    from hwaccel.bench import parallel as bench

    p = argparse.ArgumentParser()
    bench.add_arguments(p)
    rows = bench.run(p.parse_args(["--random", "6", "--seed", "266", "--links", "2:16"]))
    assert len(rows) == 6 and {r["mode"] for r in rows} <= {"dp", "pp"}
    for r in rows:
        assert r["cycles_match"] and r["cycles"] == r["model_cycles"], r
        assert r["mismatches"] == 0, r
