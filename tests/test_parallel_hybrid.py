"""Hybrid parallelism: pipeline stages that are tensor-parallel groups of tiny instances.

The stages' groups are stepped on their rings (their shares on the Verilated tiny accelerator in
one case), the samples stream through the pipeline's controller, and the row's simulated cycles
equal the model's, its outputs (carried stage to stage from what each group assembled) the
golden interpreter's on one instance. Impossible splits are refused with the reason.
"""

from __future__ import annotations

import pytest
import torch

import hwaccel
from hwaccel.compiler.cases import make
from hwaccel.generators.link.config import LinkConfig
from hwaccel.parallel.hybrid import run_hybrid, stage_plans
from hwaccel.parallel.tp import TpError

LINK = LinkConfig(width=4, latency=3, buffer=12, watchdog=64, name="h")


def _compiled(name, n):
    net, inputs = make(name)
    x = inputs(n, torch.Generator().manual_seed(14))
    return hwaccel.compile(net, x, preset="tiny"), x


@pytest.mark.parametrize("name,backend,counts", [("sequential", "rtl", [4]),
                                                 ("batchnorm", "golden", [2, 4])])
def test_hybrid_is_bit_exact_and_equals_its_model(name, backend, counts):
    cm, x = _compiled(name, 4)
    rows = run_hybrid(cm, x, counts, group=2, link=LINK, backend=backend,
                      clock=(100.0, "given"))
    for r in rows:
        assert r.mismatches == 0
        assert r.model_cycles == r.cycles
        assert r.single_model_cycles == r.single_cycles
        assert len(r.stages) == r.instances // 2
        assert sum(len(s) for s in r.stages) == 3          # every layer in one stage
    assert 0 < rows[-1].bubble_fraction < 1 and rows[-1].period <= rows[-1].fill
    if len(rows) == 2:
        assert rows[0].bubble_fraction == 0.0                # one stage: nothing to wait for


def test_hybrid_of_one_instance_groups_is_a_pipeline():
    cm, x = _compiled("sequential", 3)
    (r,) = run_hybrid(cm, x, [3], group=1, link=LINK, clock=(100.0, "given"))
    assert r.mismatches == 0 and r.model_cycles == r.cycles
    assert [[la for la, *_ in s] for s in r.stages] == [["0"], ["4"], ["6"]]
    assert all(split == "whole" and gathered for s in r.stages for _, split, gathered in s)


def test_hybrid_refuses_impossible_groups():
    cm, x = _compiled("sequential", 2)
    xi = cm.quantize_input(x)
    with pytest.raises(TpError, match="--instances 3 is not a multiple of --tp-size 2"):
        stage_plans(cm, xi, 3, 2, "auto", LINK)
    with pytest.raises(TpError, match="8 instances in groups of 2 make 4 stages, and the "
                                      "model has 3 layers"):
        stage_plans(cm, xi, 8, 2, "auto", LINK)
    with pytest.raises(TpError, match="K-split applies to Linear layers only"):
        stage_plans(cm, xi, 4, 2, "k", LINK)
