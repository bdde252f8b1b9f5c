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

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwaccel.generators.lstm.cases import random_params, random_sequences, trained_range_params
from hwaccel.generators.lstm.config import LstmConfig, LstmStackConfig
from hwaccel.generators.lstm.driver import (
    expected_h_lasts,
    param_beats,
    unpack_h,
    weight_beats,
    x_beats,
)
from hwaccel.generators.lstm.model import golden_outputs, golden_sequence

from .bench_io import assert_ports_match_sidecar, bench_inputs, write_result
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


async def _load(dut, layers, loads, *, seed, idle) -> int:
    """Write every layer's weights and params; returns the cycles the load took."""
    stack = len(layers) > 1
    sources = {}
    for k, (cfg, p) in enumerate(zip(layers, loads)):
        suffix = str(k) if stack else ""
        sources[f"weights{suffix}"] = weight_beats(cfg, p)
        sources[f"params{suffix}"] = param_beats(cfg, p)
    bench = StreamBench(dut, sources, {}, seed=seed, idle=idle)
    return (await bench.run()).cycles


def _golden(layers, loads, sequences) -> list[np.ndarray]:
    """Top-layer h vectors: layers composed in software exactly as the streams compose them."""
    seqs = [np.asarray(x) for x in sequences]
    for p in loads[:-1]:
        seqs = [golden_sequence(p, x)[0] for x in seqs]
    return golden_outputs(layers[-1], loads[-1], seqs)


async def _sequences(dut, layers, loads, sequences, *, seed, idle, backpressure, tag):
    top = layers[-1]
    expect = _golden(layers, loads, sequences)
    steps = sum(len(x) for x in sequences)
    per_step = sum(c.weight_depth + 40 for c in layers)
    bench = StreamBench(dut, {"x": x_beats(sequences)}, {"h": len(expect)}, seed=seed, idle=idle,
                        backpressure=backpressure, max_cycles=20 * steps * per_step + 10_000,
                        stall_cycles=20 * per_step + 2_000)
    stats = await bench.run()
    got, lasts = unpack_h(top, stats.received["h"])
    want = np.array(expect, dtype=np.int64).reshape(-1, top.hidden_size)
    bad = np.flatnonzero(np.any(got != want, axis=1))
    assert bad.size == 0, (
        f"{tag} (seed {seed}): {bad.size} of {len(want)} h vectors differ from the golden model; "
        f"first at {bad[0]}: got {got[bad[0]].tolist()}, want {want[bad[0]].tolist()}")
    assert lasts == expected_h_lasts(top, [len(x) for x in sequences]), (
        f"{tag} (seed {seed}): wrong h.last flags")
    return stats, len(want)


@cocotb.test()
async def ports_match_sidecar(dut):
    meta, layers, params = _setup()
    assert_ports_match_sidecar(dut, meta)


@cocotb.test()
async def lstm(dut):
    meta, layers, params = _setup()
    Clock(dut.clk, 10, unit="ns").start(start_high=False)
    await reset(dut)
    seed = int(params.get("seed", 0))
    rng = np.random.default_rng(seed)
    result = {"slug": meta["slug"], "seed": seed, "cases": []}
    if params["mode"] == "random":
        idle, bp = float(params.get("idle", 0.0)), float(params.get("backpressure", 0.0))
        max_len = int(params.get("max_len", 100))
        dut._log.info(f"{meta['slug']}: seed {seed}, idle {idle}, backpressure {bp}")
        for n, (style, count) in enumerate(params["loads"]):
            loads = [random_params(cfg, rng, style) for cfg in layers]
            await _load(dut, layers, loads, seed=seed * 100 + n, idle=idle)
            seqs = random_sequences(layers[0], rng, int(count), max_len=max_len)
            tag = f"{meta['slug']} load {n} ({style}), lengths {[len(x) for x in seqs]}"
            stats, vectors = await _sequences(dut, layers, loads, seqs, seed=seed * 100 + n,
                                              idle=idle, backpressure=bp, tag=tag)
            result["cases"].append({"load": n, "style": style, "sequences": len(seqs),
                                    "lengths": [len(x) for x in seqs], "h_vectors": vectors,
                                    "mismatches": 0, "cycles": stats.cycles})
    else:
        loads = [trained_range_params(cfg, rng, 1 / 127)[0] for cfg in layers]
        load_cycles = await _load(dut, layers, loads, seed=seed, idle=0.0)
        result["load_cycles"] = load_cycles
        for t in params["lengths"]:
            seqs = [rng.integers(-127, 128, (int(t), layers[0].input_size))]
            stats, _ = await _sequences(dut, layers, loads, seqs, seed=seed, idle=0.0,
                                        backpressure=0.0, tag=f"{meta['slug']} T={t}")
            result["cases"].append({"length": int(t), "cycles": stats.span})
    write_result(result)
