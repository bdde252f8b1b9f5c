"""Imported by a LocalCluster's fork server alone (:func:`.cluster._forkserver` preloads it
last): the server's exit skips the interpreter's teardown.

The fork server exits when the process that started it is gone (its pipe reaches its end).
Tearing down what it imported (torch, distributed, the harness) took about a second, in which
it still held the command's stdout and stderr: a reader of the command's pipe saw its end 1.2 s
after the command had exited (a two-worker cluster, the machine busy), and 0.02-0.05 s with
this. Nothing of the server's needs that teardown: it runs no task (its forks do) and owns no
files. Imported anywhere else, this module does nothing.
"""

from __future__ import annotations

import atexit
import os
import sys

__all__ = ["ARMED"]


def _in_fork_server() -> bool:
    """Whether this import runs inside :func:`multiprocessing.forkserver.main` (its preload)."""
    from multiprocessing import forkserver

    frame = sys._getframe()
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:
            return True
        frame = frame.f_back
    return False


_SERVER = os.getpid()


def _exit_now() -> None:
    """First of the server's exit handlers (registered last): flush and leave at once. Its
    forks inherit the handler but end with ``os._exit`` as every forked process does; the pid
    check keeps it the server's alone even so."""
    if os.getpid() == _SERVER:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os._exit(0)


#: Whether this process is the fork server (its forks, the workers, inherit the value).
ARMED = _in_fork_server()
if ARMED:
    atexit.register(_exit_now)
