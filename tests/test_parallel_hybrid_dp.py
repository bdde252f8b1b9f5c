"""Hybrid parallelism: pipeline stages that are data-parallel groups of tiny instances.

Every lane's shard streams through the Verilated pipeline top (the pp tests' ``tiny3``); the
row's simulated cycles equal the model's (every lane's, and each lane's equals pp's model of its
shard through the same cut), its outputs the golden interpreter's on one instance, with the
lanes on one shared host port too; auto weighs
the kind beside the others and runs it equal to its model; what cannot run is refused naming it.
"""

from __future__ import annotations

import argparse

import pytest
import torch

import hwaccel
from hwaccel.compiler.cases import make, split_bands
from hwaccel.generators.accel.config import PRESETS
from hwaccel.generators.link.config import PRESETS as LINKS
from hwaccel.generators.multi import PipelineConfig
from hwaccel.parallel import command
from hwaccel.parallel.auto import candidates, run_auto
from hwaccel.parallel.hybrid_dp import hybrid_dp_model, hybrid_dp_rows, run_hybrid_dp
from hwaccel.parallel.pp import PartitionError, balanced
from hwaccel.parallel.pp_model import model

#: The pp tests' top (three tiny instances, the tiny link): its Verilator build is shared.
TOP = PipelineConfig(PRESETS["tiny"], 3, LINKS["tiny"], name="tiny3")


@pytest.fixture(scope="module")
def branches():
    net, inputs = make("branches")
    x = inputs(5, torch.Generator().manual_seed(14))
    return hwaccel.compile(net, x, preset="tiny"), x


def test_lanes_are_bit_exact_and_equal_their_pipeline_model(branches):
    cm, x = branches
    xi = cm.quantize_input(x)
    rows = run_hybrid_dp(cm, x, [2, 4, 6], group=2, top=TOP, clock=(100.0, "given"))
    assert [len(r.stages) for r in rows] == [1, 2, 3]
    for r in rows:
        assert r.mode == "hybrid" and r.group_kind == "dp" and r.dp_size == 2
        assert r.mismatches == 0
        assert r.single_cycles == r.single_model_cycles
        assert r.shard_sizes == [3, 2]                    # five samples over two lanes
        assert r.lane_cycles == r.model_lane_cycles
        assert r.cycles == r.model_cycles == max(r.lane_cycles)
        part = balanced(cm, xi, len(r.stages), link=TOP.link)
        assert r.stages == [list(s.layers) for s in part.stages]
        assert r.lane_cycles == [model(part, k, TOP.link).cycles for k in r.shard_sizes]
        assert (r.model_cycles, r.stages) == hybrid_dp_model(cm, xi, r.instances, 2, TOP.link)
        assert r.speedup == r.single_cycles / r.cycles and r.efficiency == r.speedup / r.instances
        assert 0 < r.bubble_fraction < 1                  # the lane of two samples idles
    assert rows[0].link_utilization == 0.0 < rows[1].link_utilization
    assert rows[1].cycles < rows[0].cycles < rows[0].single_cycles


@pytest.mark.parametrize("group,stages", [(2, 3), (3, 2), (5, 1)])
def test_lanes_on_one_shared_host_port_equal_their_model(branches, group, stages):
    """The lanes' tops clocked together, one round-robin port granting their words: every
    sample's cycles at every stage equal the lanes' model composed by the port's recurrence,
    the outputs golden's, and the port's contention shows (each lane slower than on its own)."""
    from hwaccel.parallel.hybrid_dp import run_lanes
    from hwaccel.parallel.hybrid_dp_port import model_lanes
    from hwaccel.parallel.pp_sim import golden
    from hwaccel.sim.runner import design_for

    cm, x = branches
    xi = cm.quantize_input(x)
    part = balanced(cm, xi, stages, link=TOP.link)
    design = design_for(TOP)
    got, measured, predicted = run_lanes(cm, xi, part, group, design, TOP, True)
    assert [t.rows() for t in measured] == [t.rows() for t in predicted]
    assert (got == golden(cm, xi).reshape(len(xi), -1)).all()
    _, own, _ = run_lanes(cm, xi, part, group, design, TOP, False)
    sizes = [t.samples for t in measured]
    assert sizes == [t.samples for t in own] and sum(sizes) == len(xi)
    assert all(s.cycles > o.cycles for s, o in zip(measured, own))
    assert [t.cycles for t in model_lanes(part, sizes, TOP.link)] == \
        [t.cycles for t in predicted]
    if group == 5:   # one sample a lane, one stage: the port is the bottleneck
        ends = [t.cycles for t in measured]
        assert ends == sorted(ends) and ends[-1] - ends[0] == group - 1


def test_the_shared_port_row_and_command(branches):
    from hwaccel.parallel.hybrid import hybrid_rows

    cm, x = branches
    xi = cm.quantize_input(x)
    (row,) = run_hybrid_dp(cm, x, [4], group=2, top=TOP, clock=(100.0, "given"),
                           shared_host_port=True)
    (own,) = run_hybrid_dp(cm, x, [4], group=2, top=TOP, clock=(100.0, "given"))
    assert row.shared_host_port and not own.shared_host_port
    assert row.mismatches == 0 and row.cycles == row.model_cycles
    assert row.lane_cycles == row.model_lane_cycles
    assert (row.model_cycles, row.stages) == hybrid_dp_model(cm, xi, 4, 2, TOP.link, True)
    assert row.cycles > own.cycles and row.single_cycles == own.single_cycles
    with pytest.raises(ValueError, match="--shared-host-port is an option of dp and of "
                                         "hybrid's dp groups"):
        hybrid_rows(_args(dp_size=None, shared_host_port=True), cm, x, [4], None)


def test_auto_weighs_and_runs_stages_of_dp_groups(branches):
    cm, x = branches
    xi = cm.quantize_input(x[:4])
    cands = candidates(cm, xi, 6, link=TOP.link)
    by = {c.label: c for c in cands if c.mode == "hybrid-dp"}
    assert set(by) == {"hybrid 2 stages x 2-way dp", "hybrid 3 stages x 2-way dp",
                       "hybrid 2 stages x 3-way dp"}
    for c in by.values():
        cycles, stages = hybrid_dp_model(cm, xi, c.instances, c.dp_size, TOP.link)
        assert c.model_cycles == cycles and [list(s) for s in c.stages] == stages
    (row,) = run_auto(cm, x[:4], [4], top=TOP, modes=("hybrid-dp",), clock=(50.0, "given"))
    assert row.partition.label == "hybrid 2 stages x 2-way dp"
    assert row.cycles == row.model_cycles == row.partition.model_cycles
    assert row.mismatches == 0 and row.to_json()["partition"]["dp_size"] == 2
    shared = {c.label: c for c in candidates(cm, xi, 4, link=TOP.link, modes=("hybrid-dp",),
                                             shared_host_port=True)}
    assert set(shared) == {"hybrid 2 stages x 2-way dp", "hybrid 2 stages x 2-way dp, shared port"}
    c = shared["hybrid 2 stages x 2-way dp, shared port"]
    assert c.shared_host_port and (c.model_cycles, [list(s) for s in c.stages]) == \
        hybrid_dp_model(cm, xi, 4, 2, TOP.link, True)
    assert c.model_cycles > shared["hybrid 2 stages x 2-way dp"].model_cycles
    one = candidates(cm, xi[:1], 4, link=TOP.link, modes=("hybrid-dp",))
    assert not one[0].fits and "a batch of 1 cannot be split over 2 instances" in one[0].reason


def _args(**kw):
    p = argparse.ArgumentParser()
    command.add_arguments(p)
    args = p.parse_args(["--model", "cnn", "--mode", "hybrid", "--dp-size", "2"])
    for k, v in kw.items():
        setattr(args, k, v)
    return args


def test_what_cannot_run_is_refused_naming_it(branches):
    cm, x = branches
    xi = cm.quantize_input(x)
    with pytest.raises(ValueError, match="--instances 3 is not a multiple of --dp-size 2"):
        run_hybrid_dp(cm, x, [3], group=2, top=TOP)
    with pytest.raises(ValueError, match="a batch of 1 cannot be split over 2 instances"):
        run_hybrid_dp(cm, x[:1], [4], group=2, top=TOP)
    with pytest.raises(ValueError, match="top pipeline_tiny3 has 3 instances of accel_tiny: "
                                         "4 stages of accel_tiny do not fit it"):
        run_hybrid_dp(cm, x, [8], group=2, top=TOP)
    with pytest.raises(PartitionError, match="cannot split 7 layers .* into 8 stages"):
        hybrid_dp_model(cm, xi, 16, 2, TOP.link)
    net, inputs = split_bands()      # its last layer straddles two weight groups
    xb = inputs(2, torch.Generator().manual_seed(1))
    cb = hwaccel.compile(net, xb, preset="tiny")
    with pytest.raises(PartitionError, match="layer '5' was itself lowered into weight groups"):
        hybrid_dp_model(cb, cb.quantize_input(xb), 4, 2, TOP.link)
    with pytest.raises(ValueError, match="--tp-split k: tp group options, and --dp-size 2"):
        hybrid_dp_rows(_args(tp_split="k"), cm, x, [4], None)
    with pytest.raises(ValueError, match="--tp-size and --dp-size size --mode hybrid's groups, "
                                         "not --mode pp's"):
        command.run(_args(mode="pp"))
