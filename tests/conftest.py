"""Shared pytest set-up: seeds that are printed and can be overridden; one torch thread."""

from __future__ import annotations

import os
import zlib

import pytest

# The suite's Verilated models build at -O0: its runs are short, so the C++ compiler is most of
# a model's cost, and -O0 builds it two to three times faster than -O2 (the harness's default,
# kept for benchmarks). The Verilog under test is the same. Set HWACCEL_SIM_OPT to override.
os.environ.setdefault("HWACCEL_SIM_OPT", "-O0")


@pytest.fixture
def seed(request) -> int:
    """A per-test seed: ``$HWACCEL_SEED`` if set, else a fixed one derived from the test id.

    It is printed, so a failure report always carries the seed that reproduces it.
    """
    value = int(os.environ.get("HWACCEL_SEED", zlib.crc32(request.node.nodeid.encode()) % 100_000))
    print(f"seed={value} (rerun with HWACCEL_SEED={value})")
    return value


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    on a shared 2-core machine OpenMP's spinning second thread makes small products tens of
    times slower (see :mod:`hwaccel.models.train`)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def host(request):
    """The Verilated accelerator of the test module's ``HOST_CONFIG`` behind its C++ harness,
    built (or taken from the cache) once and shared by the module's tests."""
    from hwaccel.sim.host import HarnessHost

    config = getattr(request.module, "HOST_CONFIG", None)
    if config is None:
        raise pytest.UsageError(f"{request.module.__name__} uses the `host` fixture but sets no "
                                "HOST_CONFIG (the AccelConfig to build)")
    with HarnessHost.of(config) as harness:
        yield harness
