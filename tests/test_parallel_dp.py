"""Data parallelism (``hwaccel parallel --mode dp``) and Dask-sharded ``hwaccel compare``.

The shared host port's recurrence equals the arbiter's cycle model on random phase traces; a
small model on N tiny instances equals golden with the cycle model equal to the simulated
cycles, own port or shared; and neither dp's rows nor compare's report depend on the number of
Dask workers (one process vs. a two-worker loopback cluster).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch
from torch import nn

from hwaccel.cli import main
from hwaccel.parallel.dp import DpRow, model_phases, run_dp, shards
from hwaccel.parallel.dp_port import Phase, own_ports, shared_port, simulate_shared
from hwaccel.runtime.shards import shard_slices
from hwaccel.toolchain import MissingToolError, verilator_root

#: Figures that are wall-clock times or say where the work ran; everything else must match.
WALL = {"wall_seconds", "sim_samples_per_second", "workers"}


def _trace(*pairs) -> list[Phase]:
    return [Phase(kind, n) for kind, n in pairs]


def test_shared_port_worked_example_and_own_ports():
    """Two instances each load 2 words and run 3 cycles: the port carries A B A B in cycles
    0-3, so A runs in 3-5 and B in 4-6; alone, each takes 5."""
    t = [_trace(("host", 2), ("run", 3))] * 2
    assert shared_port(t) == simulate_shared(t) == [6, 7]
    assert own_ports(t) == [5, 5]
    # a read-back after the run contends again: A's 1 word at 6, B's at 7
    t = [_trace(("host", 2), ("run", 3), ("host", 1))] * 2
    assert shared_port(t) == simulate_shared(t) == [7, 8]


def test_shared_port_recurrence_equals_the_arbiter_model_on_random_traces():
    seed = 14
    rng = random.Random(seed)
    for case in range(300):
        traces = []
        for _ in range(rng.randint(1, 6)):
            tr = []
            for _ in range(rng.randint(1, 3)):
                tr += _trace(("host", rng.choice([0, 1, 2, rng.randint(0, 30)])),
                             ("run", rng.choice([0, 1, rng.randint(0, 50)])))
            traces.append(tr + _trace(("host", rng.randint(0, 4))))
        got = shared_port(traces)
        assert got == simulate_shared(traces), f"seed {seed} case {case}: {traces}"
        words = sum(p.cycles for tr in traces for p in tr if p.kind == "host")
        assert max(got, default=0) >= words           # one word a cycle at most
        assert all(s >= o for s, o in zip(got, own_ports(traces)))
        if len(traces) == 1:
            assert got == own_ports(traces)


def test_bad_phases_and_splits_are_refused():
    with pytest.raises(ValueError, match="phase kind must be one of host, run, not 'idle'"):
        Phase("idle", 1)
    with pytest.raises(ValueError, match="phase cycles must be an int >= 0, not -1"):
        Phase("run", -1)
    with pytest.raises(ValueError, match="a batch of 3 cannot be split over 4 instances"):
        shards(3, 4)
    assert [(s.start, s.stop) for s in shards(7, 3)] == [(0, 3), (3, 5), (5, 7)]
    # compare's shards are whole batches: 7 samples (4 batches of 2) over 3 shards
    assert [(s.start, s.stop) for s in shard_slices(7, 2, 3)] == [(0, 2), (2, 6), (6, 7)]
    assert [(s.start, s.stop) for s in shard_slices(3, 2, 8)] == [(0, 2), (2, 3)]


# --- on the RTL -----------------------------------------------------------------------------
def _has_verilator() -> bool:
    try:
        verilator_root()
    except MissingToolError:
        return False
    return True


needs_verilator = pytest.mark.skipif(not _has_verilator(), reason="needs Verilator")


class Small(nn.Module):
    """Two convs, a pool and a Linear: fits the tiny preset a few samples at a time."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.c2 = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(self.c2(self.c1(x).relu()).relu(), 2)
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def compiled():
    from hwaccel.runtime import compile as compile_model

    torch.manual_seed(0)
    cal = torch.randn(64, 1, 8, 8)
    return compile_model(Small().eval(), cal[:8], preset="tiny", calibration=cal)


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="module")
def x():
    return torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(5))


def _strip(rows: list[DpRow]) -> list[dict]:
    return [{k: v for k, v in r.to_json().items() if k not in WALL} for r in rows]


@needs_verilator
@pytest.mark.parametrize("shared", [False, True])
def test_dp_on_the_rtl_equals_golden_and_the_model_whatever_the_workers(compiled, cluster, x,
                                                                        shared):
    from dask.distributed import Client

    assert compiled.max_batch >= len(x)
    alone = run_dp(compiled, x, [1, 2, 3], shared_host_port=shared)   # in this process
    with Client(cluster) as client:
        dask = run_dp(compiled, x, [1, 2, 3], shared_host_port=shared, client=client)
    assert _strip(alone) == _strip(dask)
    assert [r.workers for r in dask] == [2, 2, 2] and alone[0].workers is None
    for r in dask:
        assert r.mismatches == 0
        assert r.model_cycles == r.cycles and r.model_instance_cycles == r.instance_cycles
        assert r.single_model_cycles == r.single_cycles
        assert r.shard_sizes == [s.stop - s.start for s in shards(5, r.instances)]
        assert r.speedup == r.single_cycles / r.cycles and r.efficiency == r.speedup / r.instances
        assert (r.link_utilization, r.bubble_fraction, r.mode) == (0.0, None, "dp")
    one, two, three = dask
    assert one.cycles == one.single_cycles and one.speedup == 1.0
    assert three.cycles < two.cycles < one.cycles   # more instances, fewer cycles
    # the port is where the instances meet: shared, every word still crosses it once
    x_int = compiled.quantize_input(x)
    words = sum(p.cycles for s in shards(5, 3) for p in model_phases(compiled, x_int[s])
                if p.kind == "host")
    assert three.host_words == words
    if shared:
        assert three.cycles >= words


def test_compare_sharded_over_workers_is_identical(cluster, capsys):
    """golden's batches (ecp5 holds 2 CNN samples a batch: 3 samples, 2 batches) as Dask tasks
    on a running scheduler: the same report but for wall times and ``workers``."""
    args = ["compare", "--no-progress", "--model", "cnn", "--preset", "ecp5", "--samples", "3",
            "--calibration", "16", "--backends", "golden", "--json"]
    assert main(args) == 0
    one = json.loads(capsys.readouterr().out)
    assert main([*args, "--scheduler", cluster.scheduler_address]) == 0
    two = json.loads(capsys.readouterr().out)
    assert (one["workers"], two["workers"]) == (None, 2)
    for r in one["rows"] + two["rows"]:
        assert r["error"] is None and r["skipped"] is None
        for k in ("seconds", "latency_s", "throughput"):
            r.pop(k)
    one.pop("workers"), two.pop("workers")
    assert one == two


@needs_verilator
def test_rtl_shards_equal_one_run(compiled, cluster, x):
    """rtl's batches of 2 on the workers: the same integers, floats and cycles as one run."""
    from dask.distributed import Client

    from hwaccel.runtime.backends import get
    from hwaccel.runtime.shards import run_sharded

    whole = get("rtl").run(compiled, x, batch=2)
    with Client(cluster) as client:
        parts = run_sharded(client, get("rtl"), compiled, x, batch=2)
    np.testing.assert_array_equal(parts.int_logits, whole.int_logits)
    np.testing.assert_array_equal(parts.logits, whole.logits)
    assert parts.cycles_per_sample == whole.cycles_per_sample
    assert parts.notes == whole.notes == ("batches of 2",)


def test_parallel_cli_refuses_bad_requests(capsys):
    assert main(["parallel", "--model", "cnn", "--instances", "0"]) == 2
    assert "--instances must name instance counts >= 1, not '0'" in capsys.readouterr().err
    assert main(["parallel", "--model", "cnn", "--instances", "two"]) == 2
    assert "--instances must be comma-separated integers, not 'two'" in capsys.readouterr().err
