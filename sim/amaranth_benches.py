"""The ``sim/tb_*.py`` benches on Amaranth's own simulator, straight from the Components.

:func:`run_amaranth` takes a config and the parameters a cocotb bench takes through
:func:`hwaccel.sim.runner.run_bench` and runs the cocotb benches' own code (``sim/checks.py``:
the same cases, planners, seeded stimulus, bounds and golden checks) through
:class:`~sim.amaranth_streams.AmaranthStreamBench` and
:class:`~sim.amaranth_streams.AmaranthHost`, so it returns a result dict of the same shape --
and ``amaranth == verilator`` can be asserted field by field, cycle counts included. Supported
modes (the small-preset ones; Amaranth's simulator runs several hundred times slower than
Verilator):

========== ================================================================
systolic   ``random`` (``extra_results`` too) and ``shapes``
conv       ``random`` (each case also carries ``batch_cycles``, see below)
lstm       ``random`` and ``timing``, single cells and stacks
accel      ``programs`` (``{"seeds": [...], "commands": N}``)
========== ================================================================

In ``random`` mode every conv case carries ``batch_cycles``, the cycles of the stream run its
batch was part of (as the cocotb bench's do).
"""

from __future__ import annotations

import json
from functools import partial

from .amaranth_streams import AmaranthHost, AmaranthStreamBench, simulate
from .checks import (
    accel_programs,
    conv_random_cases,
    gemm_random_cases,
    gemm_shape_cases,
    lstm_cases,
)

__all__ = ["run_amaranth", "UnsupportedMode"]


class UnsupportedMode(ValueError):
    """The parameters ask for a mode this simulator's benches do not implement."""


def run_amaranth(config, params: dict, *, vcd: str | None = None) -> dict:
    """Run the bench for ``config.kind`` with ``params`` on Amaranth's simulator.

    Returns the result dict the cocotb bench writes for the same parameters; raises
    ``AssertionError`` (a mismatch, naming the case and seed) or
    :class:`sim.streams.StreamTimeout` as the cocotb bench would fail.
    """
    benches = {"systolic": _systolic, "conv": _conv, "lstm": _lstm, "lstm_stack": _lstm,
               "accel": _accel}
    if config.kind not in benches:
        raise UnsupportedMode(f"no Amaranth bench for kind {config.kind!r}; "
                              f"known: {', '.join(benches)}")
    result: dict = {}

    async def testbench(ctx, ports):
        result.update(await benches[config.kind](ctx, ports, config, params))

    simulate(config.build(), testbench, vcd=vcd)
    return json.loads(json.dumps(result))  # tuples as lists, as the cocotb bench's JSON has them


def _mode(params: dict, kind: str, known: tuple[str, ...]) -> str:
    mode = params.get("mode", "programs" if kind == "accel" else None)
    if mode not in known:
        raise UnsupportedMode(f"{kind} bench: mode must be one of {known}, not {mode!r}")
    return mode


async def _systolic(ctx, ports, cfg, params) -> dict:
    mode = _mode(params, "systolic", ("random", "shapes"))
    make = partial(AmaranthStreamBench, ctx, ports)
    cases = await (gemm_random_cases(make, cfg, params) if mode == "random"
                   else gemm_shape_cases(make, cfg, params))
    return {"slug": cfg.slug, "seed": int(params.get("seed", 0)), "cases": cases}


async def _conv(ctx, ports, cfg, params) -> dict:
    _mode(params, "conv", ("random",))
    cases = await conv_random_cases(partial(AmaranthStreamBench, ctx, ports), cfg, params)
    return {"slug": cfg.slug, "seed": int(params.get("seed", 0)), "cases": cases}


async def _lstm(ctx, ports, cfg, params) -> dict:
    _mode(params, "lstm", ("random", "timing"))
    layers = cfg.layers if cfg.kind == "lstm_stack" else (cfg,)
    return await lstm_cases(partial(AmaranthStreamBench, ctx, ports), layers, cfg.slug, params)


async def _accel(ctx, ports, cfg, params) -> dict:
    _mode(params, "accel", ("programs",))
    return {"programs": await accel_programs(AmaranthHost(ctx, ports, cfg), params)}
