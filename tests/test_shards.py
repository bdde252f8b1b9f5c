"""compare's sharding: shards of whole batches give one run's outputs whatever their number,
by default a few shards a worker, and the cluster started beside the compile is closed however the
block ends. golden on the tiny preset, in-thread clusters: a few seconds."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from hwaccel.runtime import cluster as cluster_mod
from hwaccel.runtime.backends import get
from hwaccel.runtime.compare import _executor
from hwaccel.runtime.shards import run_shard, run_sharded, shard_slices


class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(nn.functional.max_pool2d(self.c1(x).relu(), 2).flatten(1))


@pytest.fixture(scope="module")
def compiled():
    from hwaccel.runtime import compile as compile_model

    torch.manual_seed(0)
    cal = torch.randn(32, 1, 8, 8)
    return compile_model(Small().eval(), cal[:8], preset="tiny", calibration=cal)


@pytest.fixture(scope="module")
def x():
    return torch.randn(7, 1, 8, 8, generator=torch.Generator().manual_seed(3))


def test_any_number_of_shards_joins_to_one_run(compiled, x):
    """7 samples in batches of 2, cut into 1..5 shards and run shard by shard (backwards, as
    a cluster may finish them): every cut joins to the one run's integers, floats and cycles."""
    whole = get("golden").run(compiled, x, batch=2)
    x_int = compiled.quantize_input(x)
    for shards in range(1, 6):
        parts = shard_slices(len(x_int), 2, shards)
        assert [s.start % 2 for s in parts] == [0] * len(parts)  # whole batches
        assert parts[0].start == 0 and parts[-1].stop == 7
        assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
        done = {i: run_shard("golden", compiled, x_int[s], 2, s.start // 2)
                for i, s in reversed(list(enumerate(parts)))}
        ints, floats, cycles = zip(*(done[i] for i in range(len(parts))))
        np.testing.assert_array_equal(np.concatenate(ints), whole.int_logits)
        np.testing.assert_array_equal(np.concatenate(floats), whole.logits)
        assert sum(cycles) == 0   # golden counts no cycles, in pieces or whole


def test_a_few_shards_a_worker_by_default(compiled, x):
    from dask.distributed import get_task_stream

    from hwaccel.runtime.shards import PER_WORKER

    whole = get("golden").run(compiled, x, batch=1)
    with cluster_mod.client_for(workers=1, processes=False) as client:
        with get_task_stream(client) as stream:   # 7 batches of 1 on one worker
            run = run_sharded(client, get("golden"), compiled, x, batch=1)
        assert len([t for t in stream.data if "run_shard" in str(t["key"])]) == PER_WORKER < 7
        three = run_sharded(client, get("golden"), compiled, x, batch=1, shards=3)
    for r in (run, three):
        np.testing.assert_array_equal(r.int_logits, whole.int_logits)
        np.testing.assert_array_equal(r.logits, whole.logits)
        assert r.notes == whole.notes


def test_executor_overlaps_the_start_and_runs_like_one_process(compiled, x):
    whole = get("golden").run(compiled, x)
    with _executor(1, None, False) as start:
        runner = start(compiled)
        run = runner.submit(get("golden"), x)()
    assert runner.workers == 1
    np.testing.assert_array_equal(run.int_logits, whole.int_logits)


def test_a_background_run_goes_behind_the_next_run(compiled, x):
    """compare's reference: a background run is submitted behind the next run, so one worker
    runs every shard of that run before any of its own; both equal one process's run."""
    from distributed import get_task_stream

    whole = get("golden").run(compiled, x)
    with _executor(1, None, False) as start:
        runner = start(compiled)
        with get_task_stream(runner.client) as stream:
            behind = runner.submit(get("golden"), x, background=True)
            assert not runner.client.processing()[next(iter(runner.client.nthreads()))]
            now = runner.submit(get("golden"), x.flip(0))
            runs = now(), behind()
    first, later = ({str(f.key) for f in r.pending().futures} for r in (now, behind))
    began = {str(t["key"]): min(s["start"] for s in t["startstops"]) for t in stream.data}
    assert first and later and first.isdisjoint(later) and set(began) >= first | later
    assert max(began[k] for k in first) < min(began[k] for k in later)
    np.testing.assert_array_equal(runs[0].int_logits, whole.int_logits[::-1])
    np.testing.assert_array_equal(runs[1].int_logits, whole.int_logits)


def test_a_cluster_that_fails_to_start_raises_its_error(compiled):
    with pytest.raises(ValueError, match="workers must be at least 1, not 0"):
        with _executor(0, None, False) as start:
            start(compiled)


class _Fake:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True

    def run(self, fn):
        pass


def test_the_cluster_closes_when_the_block_fails_while_it_starts(monkeypatch):
    """The block's own error (a compile refusing the model) comes out, and the cluster still
    starting then is waited for and closed."""
    client, cluster, began = _Fake(), _Fake(), threading.Event()

    def slow_connect(scheduler, workers):
        began.set()
        time.sleep(0.3)
        return client, cluster

    monkeypatch.setattr(cluster_mod, "connect", slow_connect)
    with pytest.raises(RuntimeError, match="the compile failed"):
        with _executor(2, None, False):
            began.wait(5)
            raise RuntimeError("the compile failed")
    assert client.closed and cluster.closed


def test_local_workers_are_forks_of_a_server_holding_what_tasks_import(tmp_path):
    """A LocalCluster's worker processes start with :data:`PRELOAD` imported (forks of one
    server that imported it), and only that: checked in a fresh interpreter, whose first
    cluster starts the fork server. The server's exit skips the interpreter's teardown
    (:mod:`hwaccel.runtime.forkserver_exit`) there alone."""
    import subprocess
    import sys

    script = tmp_path / "forks.py"
    script.write_text(
        "from hwaccel.runtime.cluster import PRELOAD, client_for\n"
        "if __name__ == '__main__':\n"
        "    with client_for(workers=1) as client:\n"
        "        has = lambda name: client.run(eval, f'{name!r} in __import__(\"sys\").modules')\n"
        "        print(all(v for name in PRELOAD for v in has(name).values()),\n"
        "              any(has('hwaccel.impl.asic').values()),\n"
        "              set(client.run(eval, '__import__(\"multiprocessing\").get_start_method()')"
        ".values()))\n"
        "        armed = 'sys.modules[\"hwaccel.runtime.forkserver_exit\"].ARMED'\n"
        "        print(set(client.run(eval, armed, {'sys': __import__('sys')}).values()))\n"
        "    import atexit\n"
        "    n = atexit._ncallbacks()\n"
        "    import hwaccel.runtime.forkserver_exit as fx\n"
        "    print(fx.ARMED, atexit._ncallbacks() - n)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split("\n")[0] == "True False {'forkserver'}"
    # The server's quick exit is armed in the server (its forks inherit the flag), and only
    # there: imported in the command's own process it registers nothing.
    assert out.stdout.split("\n")[1:3] == ["{True}", "False 0"], out.stdout
