"""cocotb bench for the convolution engine (run through :func:`hwaccel.sim.runner.run_bench`).

Parameters arrive as JSON in ``$HWACCEL_PARAMS``:

``{"mode": "random", "count": N, "seed": S, "idle": p, "backpressure": q, "batch": b}``
    the directed cases plus N random layers, ``b`` layers per stream run (their descriptors,
    weights and images queue back to back); every result beat must equal the golden model.
``{"mode": "cnn", "seed": S, "idle": p, "backpressure": q}``
    the reference CNN's three conv layers with their pools, each fed the previous one's output.
``{"mode": "timing", "count": N, "seed": S}``
    the directed cases plus N random layers, pooling off, each alone with every stream always
    valid and ready: ``cycles`` from the descriptor's transfer to the last result's, beside
    ``model_cycles`` (:func:`hwaccel.generators.conv.perf.stream_cycles`).
``{"mode": "bench", "layers": [names], "seed": S}``
    CNN layers without stalls, pooling off, in two phases per layer: loading (descriptor,
    weights, requantizers) and running (first ``activations`` transfer to last ``result``).

The result JSON lists each layer with its shape, beats compared, mismatches and cycles.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwaccel.generators.conv.cases import (
    CNN_LAYERS,
    LayerCase,
    cnn_cases,
    directed_cases,
    make_case,
    random_cases,
)
from hwaccel.generators.conv.config import ConvConfig
from hwaccel.generators.conv.layer import descriptor
from hwaccel.generators.conv.model import conv_golden
from hwaccel.generators.conv.perf import stream_cycles
from hwaccel.generators.conv.plan import plan_layer

from .bench_io import assert_ports_match_sidecar, bench_inputs, write_result
from .checks import conv_batch, conv_check, conv_random_cases, stalls
from .streams import StreamBench, reset


def _setup():
    meta, params = bench_inputs()
    return meta, ConvConfig(**meta["config"]), params


async def _measure(dut, cfg, case: LayerCase, seed) -> dict:
    plan = plan_layer(cfg, case.layer, case.x, case.w, case.bias, *case.requant)
    loading = StreamBench(dut, {"layer": [plan.layer_beat], "weights": plan.weights,
                                "requant": plan.requant}, {}, seed=seed)
    load = await loading.run()
    running = StreamBench(dut, {"activations": plan.activations}, {"result": plan.result_count},
                          seed=seed, max_cycles=100 * len(plan.activations) + 100_000)
    stats = await running.run()
    reads = running.sources[0].index  # activation beats the engine actually accepted
    res = conv_check(case, plan, stats.received["result"], seed)
    res.update(cycles=stats.span, load_cycles=load.cycles, activation_beats=reads,
               weight_words=len(plan.weights))
    return res


async def _timing(dut, cfg, case: LayerCase, seed) -> dict:
    plan = plan_layer(cfg, case.layer, case.x, case.w, case.bias, *case.requant)
    bench = StreamBench(dut, {"layer": [plan.layer_beat], "weights": plan.weights,
                              "requant": plan.requant, "activations": plan.activations},
                        {"result": plan.result_count}, seed=seed,
                        max_cycles=100 * (len(plan.activations) + len(plan.weights)) + 100_000)
    stats = await bench.run()
    res = conv_check(case, plan, stats.received["result"], seed)
    res.update(cycles=stats.span, model_cycles=stream_cycles(cfg, descriptor(cfg, case.layer)))
    return res


@cocotb.test()
async def ports_match_sidecar(dut):
    meta, cfg, params = _setup()
    assert_ports_match_sidecar(dut, meta)


@cocotb.test()
async def conv(dut):
    meta, cfg, params = _setup()
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    await reset(dut)
    seed = int(params.get("seed", 0))
    idle, bp = stalls(params)
    make = partial(StreamBench, dut)
    results = []
    if params["mode"] == "random":
        results = await conv_random_cases(make, cfg, params, log=dut._log.info)
    elif params["mode"] == "timing":
        for case in directed_cases(cfg) + random_cases(cfg, int(params["count"]), seed):
            case = replace(case, layer=replace(case.layer, pool=False))
            results.append(await _timing(dut, cfg, case, seed))
    elif params["mode"] == "cnn":
        x = None
        for i, case in enumerate(cnn_cases(seed)):
            if x is not None:  # the previous layer's (pooled) output is this layer's input
                case = replace(case, x=x)
            results += await conv_batch(make, cfg, [case], seed=seed * 1000 + i, idle=idle,
                                        backpressure=bp)
            x = conv_golden(case.layer, case.x, case.w, case.bias, *case.requant)
    else:
        rng = np.random.default_rng(seed)
        for name in params["layers"]:
            layer = replace(CNN_LAYERS[name], pool=False)
            results.append(await _measure(dut, cfg, make_case(name, layer, rng), seed))
    write_result({"slug": meta["slug"], "seed": seed, "cases": results})
