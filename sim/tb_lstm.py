"""cocotb bench for the LSTM cell engine and stacks of it (run through ``run_bench``).

Parameters arrive as JSON in ``$HWACCEL_PARAMS``:

``{"mode": "random", "seed": S, "loads": [[style, count], ...], "max_len": T, "idle": p,
"backpressure": q}``
    for each load: random integer parameters of that style (see ``cases.random_params``), written
    through the load streams, then ``count`` random sequences back to back through x -> h; every
    h vector (and its ``last``) must equal the golden model. A stack loads every layer and checks
    the top layer's h against the golden layers composed in software.
``{"mode": "timing", "seed": S, "lengths": [T, ...]}``
    one load of trained-range weights, then each length as its own run without stalls;
    reports the cycles from the first x beat accepted to the last h beat out.
"""

from __future__ import annotations

from functools import partial

import cocotb
from cocotb.clock import Clock

from hwaccel.generators.lstm.config import LstmConfig, LstmStackConfig

from .bench_io import assert_ports_match_sidecar, bench_inputs, write_result
from .checks import lstm_cases
from .streams import StreamBench, reset


def _setup():
    meta, params = bench_inputs()
    if meta["kind"] == "lstm_stack":
        cfg = LstmStackConfig(**meta["config"])
        layers = cfg.layers
    else:
        cfg = LstmConfig(**meta["config"])
        layers = (cfg,)
    return meta, layers, params


@cocotb.test()
async def ports_match_sidecar(dut):
    meta, layers, params = _setup()
    assert_ports_match_sidecar(dut, meta)


@cocotb.test()
async def lstm(dut):
    meta, layers, params = _setup()
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    await reset(dut)
    write_result(await lstm_cases(partial(StreamBench, dut), layers, meta["slug"], params,
                                  log=dut._log.info))
