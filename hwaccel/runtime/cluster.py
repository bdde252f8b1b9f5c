"""The Dask cluster that independent tasks run on: sweep points, compare's sample shards, the
data-parallel instances of ``hwaccel parallel``.

:func:`connect` opens a client on a ``LocalCluster`` of this machine (the default: one thread a
worker, since a synthesis run or a simulation keeps a core busy on its own) or on a running
cluster given its scheduler address (``tcp://host:8786``), whose workers need hwaccel installed.
A local cluster listens on the loopback interface only, its dashboard included, so nothing on
the network can reach the workers.
"""

from __future__ import annotations

from contextlib import contextmanager

__all__ = ["connect", "client_for", "worker_count", "LOOPBACK"]

LOOPBACK = "127.0.0.1"


def connect(scheduler: str | None = None, workers: int | None = None, *,
            processes: bool = True):
    """``(client, cluster)``: a client of the cluster at ``scheduler``, or of a new
    ``LocalCluster`` with ``workers`` workers (default: one a core with ``processes``, else one)
    bound to loopback; ``cluster`` is ``None`` for a running scheduler. Close both when done
    (:func:`client_for` does)."""
    from dask.distributed import Client, LocalCluster

    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers!r}")
    if scheduler:
        return Client(scheduler), None
    n = workers if workers else (None if processes else 1)
    kwargs = {"host": LOOPBACK} if processes else {}  # threads talk in-process, not over TCP
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=processes,
                           dashboard_address=f"{LOOPBACK}:0", **kwargs)  # any free port
    return Client(cluster), cluster


@contextmanager
def client_for(scheduler: str | None = None, workers: int | None = None, *,
               processes: bool = True):
    """:func:`connect` as a context manager that closes the client and any cluster it made."""
    client, cluster = connect(scheduler, workers, processes=processes)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def worker_count(client) -> int:
    """The workers the client's scheduler has now."""
    return len(client.scheduler_info(n_workers=-1)["workers"])
