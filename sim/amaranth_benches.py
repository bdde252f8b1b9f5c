"""The ``sim/tb_*.py`` benches on Amaranth's own simulator, straight from the Components.

:func:`run_amaranth` takes a config and the parameters a cocotb bench takes through
:func:`hwaccel.sim.runner.run_bench`, runs the same cases (``cases.py``) through the same
planners and drivers (``plan_gemm``, ``plan_layer``, the LSTM driver, ``load_writes``) with the
same seeded stimulus, checks them against the same golden models and returns a result dict of
the same shape -- so ``amaranth == verilator`` can be asserted field by field, cycle counts
included. Supported modes (the small-preset ones; Amaranth's simulator runs several hundred
times slower than Verilator):

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
import time

import numpy as np

from hwaccel.generators.accel import COUNTERS, AccelConfig, Region, run_program
from hwaccel.generators.accel.cases import random_program
from hwaccel.generators.accel.host import address, load_writes, start_word
from hwaccel.generators.accel.isa import status_fields
from hwaccel.generators.conv.cases import directed_cases as conv_directed
from hwaccel.generators.conv.cases import random_cases as conv_random
from hwaccel.generators.conv.layer import plan_layer
from hwaccel.generators.conv.model import conv_golden
from hwaccel.generators.lstm.cases import random_params, random_sequences, trained_range_params
from hwaccel.generators.lstm.driver import (
    expected_h_lasts,
    param_beats,
    unpack_h,
    weight_beats,
    x_beats,
)
from hwaccel.generators.lstm.model import golden_outputs, golden_sequence
from hwaccel.generators.systolic.cases import GemmCase
from hwaccel.generators.systolic.cases import directed_cases as gemm_directed
from hwaccel.generators.systolic.cases import random_cases as gemm_random
from hwaccel.generators.systolic.model import gemm_reference, golden_rows
from hwaccel.generators.systolic.tiling import plan_gemm
from hwaccel.hdl.pack import unpack

from .amaranth_streams import AmaranthHost, AmaranthStreamBench, simulate

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


# --- systolic array (sim/tb_systolic.py) --------------------------------------------------------

async def _gemm_case(ctx, ports, cfg, case: GemmCase, *, seed, idle, backpressure,
                     extra=0) -> dict:
    plan = plan_gemm(cfg, case.a, case.b)
    bench = AmaranthStreamBench(
        ctx, ports, {"activations": plan.activations, "weights": plan.weights},
        {"result": plan.result_count + extra}, seed=seed, idle=idle, backpressure=backpressure,
        stall_cycles=1000, max_cycles=50 * (len(plan.activations) + plan.result_count) + 1000)
    t0 = time.perf_counter()
    stats = await bench.run()
    seconds = time.perf_counter() - t0
    rows, lasts = plan.result_rows(stats.received["result"])
    expect = golden_rows(cfg, case.a, case.b)
    bad_rows = int(np.any(rows != expect, axis=1).sum())
    assert bad_rows == 0, (
        f"{case.name} {case.shape} (seed {seed}): {bad_rows} of {len(rows)} result rows differ "
        f"from the golden model; first: got {rows[np.any(rows != expect, axis=1)][0].tolist()}")
    assert lasts == plan.expected_lasts(), f"{case.name} (seed {seed}): wrong result.last flags"
    assert np.array_equal(plan.assemble_rows(rows), gemm_reference(case.a, case.b)), (
        f"{case.name} {case.shape} (seed {seed}): assembled product differs from torch")
    m, k, n = case.shape
    return {"name": case.name, "shape": [m, k, n], "rows": len(rows), "mismatches": bad_rows,
            "cycles": stats.span, "sim_cycles": stats.cycles, "sim_seconds": seconds,
            "stalls": bool(idle or backpressure)}


async def _systolic(ctx, ports, cfg, params) -> dict:
    mode = _mode(params, "systolic", ("random", "shapes"))
    seed = int(params.get("seed", 0))
    results = []
    if mode == "random":
        cases = gemm_directed(cfg) + gemm_random(cfg, int(params["count"]), seed)
        idle, bp = float(params.get("idle", 0.0)), float(params.get("backpressure", 0.0))
        extra = int(params.get("extra_results", 0))  # > 0 proves that a hang is caught
        for i, case in enumerate(cases):
            stall = i % 2 == 1  # as tb_systolic: every other case free-running
            results.append(await _gemm_case(ctx, ports, cfg, case, seed=seed * 1000 + i,
                                            idle=idle if stall else 0.0,
                                            backpressure=bp if stall else 0.0, extra=extra))
    else:
        rng = np.random.default_rng(seed)
        lo, hi = cfg.operand.min, cfg.operand.max
        for name, (m, k, n) in params["shapes"].items():
            a, b = rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, (k, n))
            results.append(await _gemm_case(ctx, ports, cfg, GemmCase(name, a, b), seed=seed,
                                            idle=0.0, backpressure=0.0))
    return {"slug": cfg.slug, "seed": seed, "cases": results}


# --- convolution engine (sim/tb_conv.py) --------------------------------------------------------

def _conv_check(case, plan, words, seed) -> dict:
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


async def _conv_batch(ctx, ports, cfg, cases, *, seed, idle, backpressure) -> list[dict]:
    plans = [plan_layer(cfg, c.layer, c.x, c.w, c.bias, *c.requant, junk_seed=seed + i)
             for i, c in enumerate(cases)]
    sources = {"layer": [p.layer_beat for p in plans],
               "weights": [w for p in plans for w in p.weights],
               "requant": [r for p in plans for r in p.requant],
               "activations": [a for p in plans for a in p.activations]}
    total = sum(p.result_count for p in plans)
    work = sum(len(v) for v in sources.values()) + total
    # tb_conv's bounds: the pool waits for two conv output rows, each pixel of which may take
    # up to K*K*Cin*Cout cycles on a small engine.
    quiet = max(2 * (c.layer.out_size[1] + 1) * c.layer.kernel ** 2 * c.layer.cin * c.layer.cout
                for c in cases)
    bench = AmaranthStreamBench(ctx, ports, sources, {"result": total}, seed=seed, idle=idle,
                                backpressure=backpressure, max_cycles=200 * work + 2 * quiet
                                + 10_000, stall_cycles=quiet + 10_000)
    stats = await bench.run()
    words, out, i = stats.received["result"], [], 0
    for case, plan in zip(cases, plans, strict=True):
        res = _conv_check(case, plan, words[i:i + plan.result_count], seed)
        out.append({**res, "batch_cycles": stats.cycles})
        i += plan.result_count
    return out


async def _conv(ctx, ports, cfg, params) -> dict:
    _mode(params, "conv", ("random",))
    seed = int(params.get("seed", 0))
    idle, bp = float(params.get("idle", 0.0)), float(params.get("backpressure", 0.0))
    cases = conv_directed(cfg) + conv_random(cfg, int(params["count"]), seed)
    batch = int(params.get("batch", 8))
    results = []
    for i in range(0, len(cases), batch):
        results += await _conv_batch(ctx, ports, cfg, cases[i:i + batch], seed=seed * 1000 + i,
                                     idle=idle, backpressure=bp)
    return {"slug": cfg.slug, "seed": seed, "cases": results}


# --- LSTM cell and stacks (sim/tb_lstm.py) ------------------------------------------------------

async def _lstm_load(ctx, ports, layers, loads, *, seed, idle) -> int:
    stack = len(layers) > 1
    sources = {}
    for k, (cfg, p) in enumerate(zip(layers, loads)):
        suffix = str(k) if stack else ""
        sources[f"weights{suffix}"] = weight_beats(cfg, p)
        sources[f"params{suffix}"] = param_beats(cfg, p)
    return (await AmaranthStreamBench(ctx, ports, sources, {}, seed=seed, idle=idle).run()).cycles


async def _lstm_sequences(ctx, ports, layers, loads, sequences, *, seed, idle, backpressure,
                          tag):
    top = layers[-1]
    seqs = [np.asarray(x) for x in sequences]
    for p in loads[:-1]:  # lower layers composed in software, as the streams compose them
        seqs = [golden_sequence(p, x)[0] for x in seqs]
    expect = golden_outputs(top, loads[-1], seqs)
    steps = sum(len(x) for x in sequences)
    per_step = sum(c.weight_depth + 40 for c in layers)
    bench = AmaranthStreamBench(ctx, ports, {"x": x_beats(sequences)}, {"h": len(expect)},
                                seed=seed, idle=idle, backpressure=backpressure,
                                max_cycles=20 * steps * per_step + 10_000,
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


async def _lstm(ctx, ports, cfg, params) -> dict:
    mode = _mode(params, "lstm", ("random", "timing"))
    layers = cfg.layers if cfg.kind == "lstm_stack" else (cfg,)
    seed = int(params.get("seed", 0))
    rng = np.random.default_rng(seed)
    result = {"slug": cfg.slug, "seed": seed, "cases": []}
    if mode == "random":
        idle, bp = float(params.get("idle", 0.0)), float(params.get("backpressure", 0.0))
        max_len = int(params.get("max_len", 100))
        for n, (style, count) in enumerate(params["loads"]):
            loads = [random_params(c, rng, style) for c in layers]
            await _lstm_load(ctx, ports, layers, loads, seed=seed * 100 + n, idle=idle)
            seqs = random_sequences(layers[0], rng, int(count), max_len=max_len)
            lengths = [len(x) for x in seqs]
            tag = f"{cfg.slug} load {n} ({style}), lengths {lengths}"
            stats, vectors = await _lstm_sequences(ctx, ports, layers, loads, seqs,
                                                   seed=seed * 100 + n, idle=idle,
                                                   backpressure=bp, tag=tag)
            result["cases"].append({"load": n, "style": style, "sequences": len(seqs),
                                    "lengths": lengths, "h_vectors": vectors,
                                    "mismatches": 0, "cycles": stats.cycles})
    else:
        loads = [trained_range_params(c, rng, 1 / 127)[0] for c in layers]
        result["load_cycles"] = await _lstm_load(ctx, ports, layers, loads, seed=seed, idle=0.0)
        for t in params["lengths"]:
            seqs = [rng.integers(-127, 128, (int(t), layers[0].input_size))]
            stats, _ = await _lstm_sequences(ctx, ports, layers, loads, seqs, seed=seed,
                                             idle=0.0, backpressure=0.0,
                                             tag=f"{cfg.slug} T={t}")
            result["cases"].append({"length": int(t), "cycles": stats.span})
    return result


# --- accelerator (sim/tb_accel.py, test ``programs``) -------------------------------------------

async def _accel_check(host: AmaranthHost, cfg: AccelConfig, prog, name: str, seed,
                       limit: int = 200_000) -> dict:
    gold = run_program(cfg, prog.act, prog.wgt, prog.commands)
    for addr, data in load_writes(cfg, prog):
        await host.write(addr, data)
    await host.write(address(cfg, Region.REG, 0), start_word(0))
    await host.wait_idle(limit, seed)
    st = status_fields(await host.read(address(cfg, Region.REG, 0)))
    cn = {n: await host.read(address(cfg, Region.REG, 1 + i)) for i, n in enumerate(COUNTERS)}
    rows = [unpack(await host.read(address(cfg, Region.ACT, i)), 8, cfg.lanes)
            for i in range(prog.act_top)]
    got = np.array(rows, dtype=np.int64).reshape(prog.act_top, cfg.lanes)
    bad = int((got != gold.act[: prog.act_top]).sum())
    where = np.argwhere(got != gold.act[: prog.act_top])
    assert bad == 0, (f"{name} (seed {seed}): {bad} scratchpad bytes differ from the golden "
                      f"interpreter; first at (word, lane) {where[0].tolist()}")
    assert (bool(st["done"]), bool(st["error"]), st["cause"], st["pc"]) == (
        gold.done, gold.error, gold.cause, gold.pc), (
        f"{name} (seed {seed}): status {st}, golden done={gold.done} cause={gold.cause!r} "
        f"pc={gold.pc}")
    for key, value in gold.counters.items():
        assert cn[key] == value, f"{name} (seed {seed}): counter {key} = {cn[key]}, golden {value}"
    return {"name": name, "seed": seed, "cause": int(st["cause"]), "pc": st["pc"],
            "counters": cn, "mismatches": bad, "commands": len(prog.commands)}


async def _accel(ctx, ports, cfg, params) -> dict:
    _mode(params, "accel", ("programs",))
    host = AmaranthHost(ctx, ports)
    cases = []
    for seed in params["seeds"]:
        prog = random_program(cfg, np.random.default_rng(seed), int(params.get("commands", 8)))
        cases.append(await _accel_check(host, cfg, prog, f"random-{seed}", seed))
    return {"programs": cases}
