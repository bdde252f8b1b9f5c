"""cocotb bench for the convolution engine (run through :func:`hwaccel.sim.runner.run_bench`).

Parameters arrive as JSON in ``$HWACCEL_PARAMS``:

``{"mode": "random", "count": N, "seed": S, "idle": p, "backpressure": q, "batch": b}``
    the directed cases plus N random layers, ``b`` layers per stream run (their descriptors,
    weights and images queue back to back); every result beat must equal the golden model.
``{"mode": "cnn", "seed": S, "idle": p, "backpressure": q}``
    the reference CNN's three conv layers with their pools, each fed the previous one's output.
``{"mode": "bench", "layers": [names], "seed": S}``
    CNN layers without stalls, pooling off, in two phases per layer: loading (descriptor,
    weights, requantizers) and running (first ``activations`` transfer to last ``result``).

The result JSON lists each layer with its shape, beats compared, mismatches and cycles.
"""

from __future__ import annotations

from dataclasses import replace

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
from hwaccel.generators.conv.layer import plan_layer
from hwaccel.generators.conv.model import conv_golden

from .bench_io import assert_ports_match_sidecar, bench_inputs, write_result
from .streams import StreamBench, reset


def _setup():
    meta, params = bench_inputs()
    return meta, ConvConfig(**meta["config"]), params


def _check(cfg, case: LayerCase, plan, words, seed) -> dict:
    got, lasts = plan.assemble(words)
    expect = conv_golden(case.layer, case.x, case.w, case.bias, *case.requant)
    bad = int((got != expect).sum())
    where = np.argwhere(got != expect)
    assert bad == 0, (
        f"{case.name} {case.layer} (seed {seed}): {bad} of {expect.size} outputs differ from "
        f"the golden model; first at (c, y, x) = {where[0].tolist()}: got "
        f"{got[tuple(where[0])]}, expected {expect[tuple(where[0])]}")
    assert lasts == plan.expected_lasts(), f"{case.name} (seed {seed}): wrong result.last flags"
    return {"name": case.name, "layer": repr(case.layer), "outputs": int(expect.size),
            "mismatches": bad}


async def _run_batch(dut, cfg, cases, *, seed, idle, backpressure) -> list[dict]:
    plans = [plan_layer(cfg, c.layer, c.x, c.w, c.bias, *c.requant, junk_seed=seed + i)
             for i, c in enumerate(cases)]
    sources = {"layer": [p.layer_beat for p in plans],
               "weights": [w for p in plans for w in p.weights],
               "requant": [r for p in plans for r in p.requant],
               "activations": [a for p in plans for a in p.activations]}
    total = sum(p.result_count for p in plans)
    work = sum(len(v) for v in sources.values()) + total
    # The longest legitimate silence on every stream: the pool waits for two conv output rows,
    # each pixel of which may take up to K*K*Cin*Cout cycles on a small engine.
    quiet = max(2 * (c.layer.out_size[1] + 1) * c.layer.kernel ** 2 * c.layer.cin * c.layer.cout
                for c in cases)
    bench = StreamBench(dut, sources, {"result": total}, seed=seed, idle=idle,
                        backpressure=backpressure, max_cycles=200 * work + 2 * quiet + 10_000,
                        stall_cycles=quiet + 10_000)
    stats = await bench.run()
    words, out, i = stats.received["result"], [], 0
    for case, plan in zip(cases, plans, strict=True):
        # Every case carries its batch's stream cycles, so that simulators can be held equal.
        out.append({**_check(cfg, case, plan, words[i:i + plan.result_count], seed),
                    "batch_cycles": stats.cycles})
        i += plan.result_count
    return out


async def _measure(dut, cfg, case: LayerCase, seed) -> dict:
    plan = plan_layer(cfg, case.layer, case.x, case.w, case.bias, *case.requant)
    loading = StreamBench(dut, {"layer": [plan.layer_beat], "weights": plan.weights,
                                "requant": plan.requant}, {}, seed=seed)
    load = await loading.run()
    running = StreamBench(dut, {"activations": plan.activations}, {"result": plan.result_count},
                          seed=seed, max_cycles=100 * len(plan.activations) + 100_000)
    stats = await running.run()
    reads = running.sources[0].index  # activation beats the engine actually accepted
    res = _check(cfg, case, plan, stats.received["result"], seed)
    res.update(cycles=stats.span, load_cycles=load.cycles, activation_beats=reads,
               weight_words=len(plan.weights))
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
    idle, bp = float(params.get("idle", 0.0)), float(params.get("backpressure", 0.0))
    results = []
    if params["mode"] == "random":
        cases = directed_cases(cfg) + random_cases(cfg, int(params["count"]), seed)
        batch = int(params.get("batch", 8))
        dut._log.info(f"{len(cases)} layers, seed {seed}, idle {idle}, backpressure {bp}")
        for i in range(0, len(cases), batch):
            results += await _run_batch(dut, cfg, cases[i:i + batch], seed=seed * 1000 + i,
                                        idle=idle, backpressure=bp)
    elif params["mode"] == "cnn":
        x = None
        for i, case in enumerate(cnn_cases(seed)):
            if x is not None:  # the previous layer's (pooled) output is this layer's input
                case = replace(case, x=x)
            results += await _run_batch(dut, cfg, [case], seed=seed * 1000 + i, idle=idle,
                                        backpressure=bp)
            x = conv_golden(case.layer, case.x, case.w, case.bias, *case.requant)
    else:
        rng = np.random.default_rng(seed)
        for name in params["layers"]:
            layer = replace(CNN_LAYERS[name], pool=False)
            results.append(await _measure(dut, cfg, make_case(name, layer, rng), seed))
    write_result({"slug": meta["slug"], "seed": seed, "cases": results})
