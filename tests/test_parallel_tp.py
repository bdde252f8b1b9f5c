"""Tensor parallelism (``tp``): layers over a ring of tiny instances.

Every share of every layer runs on the Verilated tiny accelerator (:class:`~hwaccel.parallel.
tp_rtl.RtlRunner`), its ``cycles`` counter equal to the cycle model's; the ring's links are
stepped beat by beat (:func:`hwaccel.parallel.tp_sim.simulate`) and equal the closed form
(:func:`hwaccel.parallel.tp_sim.model`); the instances' outputs, assembled from what moved over
the ring (K-split: int32 partial sums reduced, then requantized), equal the golden interpreter
on one instance. Partitions that cannot run are refused naming the layer or instance.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import hwaccel
from hwaccel.compiler.cases import make
from hwaccel.generators.link.config import LinkConfig
from hwaccel.parallel.pp_sim import golden
from hwaccel.parallel.tp import TpError, plan, word_parts
from hwaccel.parallel.tp_points import compiled, random_points
from hwaccel.parallel.tp_sim import default_ring_link, model, ring_steps, simulate


def _compiled(name, n):
    cm, x = compiled(name, 6)                # one compile of each model (random_points' too)
    xi = cm.quantize_input(x[:n])
    return cm, xi, golden(cm, xi).reshape(n, -1)


@pytest.fixture(scope="module")
def rtl():
    from hwaccel.generators.accel.config import PRESETS
    from hwaccel.parallel.tp_rtl import RtlRunner

    with RtlRunner(PRESETS["tiny"]) as runner:
        yield runner


def _check(cm, xi, ref, n, split, link, **kw):
    p, _ = plan(cm, xi, n, split, link=link, **kw)
    out, measured = simulate(p, link)
    assert (out.reshape(len(xi), -1) == ref).all()           # bit-exact against golden
    assert model(p, link).cycles == measured.cycles           # the closed form equals the ring
    for la in p.layers:
        assert [s.cycles for s in la.shares] == [s.model_cycles for s in la.shares], la.name
    for la, nxt in zip(p.layers, p.layers[1:]):   # parts stay put only for a matching reader
        assert la.gather == (n == 1 or (la.split, nxt.split) not in (("n", "k"), ("b", "b")))
    assert p.layers[-1].gather
    return p, measured


@pytest.mark.parametrize("name,split", [("sequential", "n"), ("mlp", "k"), ("mlp", "auto"),
                                        ("tiny_lstm", "auto")])
def test_tp_on_the_rtl_is_bit_exact_and_the_model_equals_the_ring(rtl, name, split):
    cm, xi, ref = _compiled(name, 5)
    link = LinkConfig(width=4, latency=3, buffer=8, watchdog=64, name="t")   # 2 credits of 7
    for n in (1, 2, 3):
        p, t = _check(cm, xi, ref, n, split, link, run=rtl)
        if n > 1:
            assert t.comm_cycles > 0 and sum(t.link_bytes) > 0
            assert {la.split for la in p.layers} <= {"n", "k", "b", "replicated"}
    if split == "k":
        assert [la.split for la in p.layers] == ["k", "k"]
        # every chunk crosses N - 1 links as int32 sums (4 bytes a lane), then as int8
        lanes = cm.config.lanes
        assert sum(t.link_bytes) == sum(2 * sum(la.chunks) * lanes * (4 + 1) for la in p.layers)
        # reduce-scatter of int32 chunks, requantize, all-gather: 2 (N - 1) link steps
        assert [s[0][0] for s in ring_steps(p.layers[0], 3)] == ["sum", "sum", "requant",
                                                                 "gather", "gather"]


def test_a_column_then_row_parallel_pair_skips_the_gather():
    cm, xi, ref = _compiled("mlp", 5)
    link = default_ring_link(cm.config, 2)                   # a beat a cycle
    p, t = _check(cm, xi, ref, 3, "auto", link)
    assert [(la.split, la.gather) for la in p.layers] == [("n", False), ("k", True)]
    assert ring_steps(p.layers[0], 3) == []
    _, every_n = _check(cm, xi, ref, 3, "n", link)
    assert t.cycles < every_n.cycles


def test_lstm_layers_split_the_batch_or_replicate():
    cm, xi, ref = _compiled("tiny_lstm", 5)
    link = default_ring_link(cm.config, 4)
    p, t = _check(cm, xi, ref, 4, "n", link)
    assert [la.split for la in p.layers] == ["b", "b", "n"]
    assert [s.hi - s.lo for s in p.layers[0].shares] == [2, 1, 1, 1]
    assert not p.layers[0].gather and p.layers[1].gather     # b then b keeps its rows
    assert ring_steps(p.layers[0], 4) == []
    one, _ = plan(cm, xi, 1)
    assert t.cycles < simulate(one, link)[1].cycles
    q, _ = _check(cm, xi, ref, 4, "n", link, lstm="replicate")
    assert [la.split for la in q.layers] == ["replicated", "replicated", "n"]
    assert "zero state" in q.layers[0].reason


def test_random_points_equal_their_model():
    rows = random_points(5, seed=5)
    assert {r["mode"] for r in rows} == {"tp", "hybrid"}
    assert all(r["cycles_match"] and r["mismatches"] == 0 for r in rows), rows


def test_word_parts():
    assert word_parts(10, 4, 4) == [(0, 4), (4, 8), (8, 10), (10, 10)]
    assert word_parts(100, 4, 3) == [(0, 36), (36, 68), (68, 100)]
    assert word_parts(5, 1, 2) == [(0, 3), (3, 5)]


def test_partitions_that_cannot_run_are_refused():
    cm, xi, _ = _compiled("sequential", 2)
    with pytest.raises(TpError, match="layer '0' is a Conv: K-split applies to Linear layers"):
        plan(cm, xi, 2, "k")
    net, inputs = make("branches")
    x = inputs(1, torch.Generator().manual_seed(1))
    br = hwaccel.compile(net, x, preset="tiny")
    with pytest.raises(TpError, match="runs chain models .* reads"):
        plan(br, br.quantize_input(x), 2)
    with pytest.raises(TpError, match="split must be one of auto, n, k"):
        plan(cm, xi, 2, "m")
    # every layer's share stays resident: too many weights for one tiny instance, not for four
    big = nn.Sequential(nn.Linear(40, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 8))
    xb = torch.randn(2, 40, generator=torch.Generator().manual_seed(2))
    cb = hwaccel.compile(big, xb, preset="tiny")
    with pytest.raises(TpError, match=r"instance 0: its shares of every layer need \d+ weight "
                                      r"words resident .* holds 512"):
        plan(cb, cb.quantize_input(xb), 1)
    p, _ = plan(cb, cb.quantize_input(xb), 4, "n")
    assert max(sum(la.shares[j].wgt_words for la in p.layers) for j in range(4)) <= 512


def test_the_command_refuses_several_latencies_outside_tp(capsys):
    from hwaccel.cli import main

    assert main(["parallel", "--model", "cnn", "--mode", "pp", "--link-latency", "0,16"]) == 2
    assert "--mode pp takes one --link-latency (several only with --mode tp)" in \
        capsys.readouterr().err
    assert main(["parallel", "--model", "cnn", "--mode", "tp", "--link-latency", "-1"]) == 2
    assert "--link-latency must name latencies >= 0" in capsys.readouterr().err

