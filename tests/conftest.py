"""Shared pytest set-up: seeds that are printed and can be overridden."""

from __future__ import annotations

import os
import zlib

import pytest


@pytest.fixture
def seed(request) -> int:
    """A per-test seed: ``$HWACCEL_SEED`` if set, else a fixed one derived from the test id.

    It is printed, so a failure report always carries the seed that reproduces it.
    """
    value = int(os.environ.get("HWACCEL_SEED", zlib.crc32(request.node.nodeid.encode()) % 100_000))
    print(f"seed={value} (rerun with HWACCEL_SEED={value})")
    return value
