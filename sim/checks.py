"""Each block's bench, written once for every simulator: plans, bounds, golden checks, results.

The cocotb benches (``sim/tb_*.py``) and their twins on Amaranth's own simulator
(``sim/amaranth_benches.py``) call these functions with a stream-bench factory ``make(sources,
sinks, **bounds)`` -- ``functools.partial(StreamBench, dut)`` or ``partial(AmaranthStreamBench,
ctx, ports)`` -- or, for the accelerator, a :class:`HostPort`. So both simulators build the same
stimulus from the same seeds, bound every run the same way, check it against the same golden
models with the same messages and return result dicts of one shape: ``amaranth == verilator``
can be asserted field by field. Nothing here imports cocotb or Amaranth's simulator.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from hwaccel.generators.accel import COUNTERS, AccelConfig, Region, run_program
from hwaccel.generators.accel.cases import random_program
from hwaccel.generators.accel.host import address, load_writes, start_word
from hwaccel.generators.accel.isa import status_fields
from hwaccel.generators.conv.cases import LayerCase
from hwaccel.generators.conv.cases import directed_cases as conv_directed
from hwaccel.generators.conv.cases import random_cases as conv_random
from hwaccel.generators.conv.model import conv_golden
from hwaccel.generators.conv.plan import plan_layer
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

__all__ = ["stalls", "gemm_case", "gemm_random_cases", "gemm_shape_cases", "conv_check",
           "conv_batch", "conv_random_cases", "lstm_cases", "HostPort", "accel_check",
           "accel_programs"]

Log = Callable[[str], None] | None


def stalls(params: dict) -> tuple[float | dict[str, float], float]:
    """``idle`` (one probability, or a stream name -> probability dict) and ``backpressure``."""
    idle = params.get("idle", 0.0)
    idle = ({k: float(v) for k, v in idle.items()} if isinstance(idle, dict) else float(idle))
    return idle, float(params.get("backpressure", 0.0))


# --- systolic array -----------------------------------------------------------------------------

async def gemm_case(make, cfg, case: GemmCase, *, seed, idle, backpressure, extra=0) -> dict:
    """One GEMM through the array; ``extra`` result beats more than it produces prove that a hang
    is caught."""
    plan = plan_gemm(cfg, case.a, case.b)
    bench = make({"activations": plan.activations, "weights": plan.weights},
                 {"result": plan.result_count + extra}, seed=seed, idle=idle,
                 backpressure=backpressure, stall_cycles=1000,
                 max_cycles=50 * (len(plan.activations) + plan.result_count) + 1000)
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


async def gemm_random_cases(make, cfg, params: dict, log: Log = None) -> list[dict]:
    """Mode ``random``: the directed GEMMs and ``count`` random ones, every other case with idle
    cycles and back-pressure."""
    seed = int(params.get("seed", 0))
    cases = gemm_directed(cfg) + gemm_random(cfg, int(params["count"]), seed)
    idle, bp = stalls(params)
    if log:
        log(f"{len(cases)} GEMMs, seed {seed}, idle {idle}, backpressure {bp}")
    extra = int(params.get("extra_results", 0))  # > 0 proves that a hang is caught
    results = []
    for i, case in enumerate(cases):
        stall = i % 2 == 1
        results.append(await gemm_case(make, cfg, case, seed=seed * 1000 + i,
                                       idle=idle if stall else 0.0,
                                       backpressure=bp if stall else 0.0, extra=extra))
    return results


async def gemm_shape_cases(make, cfg, params: dict) -> list[dict]:
    """Mode ``shapes``: random operands of each named ``[M, K, N]``, no stalls."""
    seed = int(params.get("seed", 0))
    rng = np.random.default_rng(seed)
    lo, hi = cfg.operand.min, cfg.operand.max
    results = []
    for name, (m, k, n) in params["shapes"].items():
        a, b = rng.integers(lo, hi + 1, (m, k)), rng.integers(lo, hi + 1, (k, n))
        results.append(await gemm_case(make, cfg, GemmCase(name, a, b), seed=seed, idle=0.0,
                                       backpressure=0.0))
    return results


# --- convolution engine -------------------------------------------------------------------------

def conv_check(case: LayerCase, plan, words, seed) -> dict:
    """One layer's result beats against the golden model."""
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


async def conv_batch(make, cfg, cases, *, seed, idle, backpressure) -> list[dict]:
    """``cases`` in one stream run: descriptors, weights and images queue back to back."""
    plans = [plan_layer(cfg, c.layer, c.x, c.w, c.bias, *c.requant, junk_seed=seed + i)
             for i, c in enumerate(cases)]
    sources = {"layer": [p.layer_beat for p in plans],
               "weights": [w for p in plans for w in p.weights],
               "requant": [r for p in plans for r in p.requant],
               "activations": [a for p in plans for a in p.activations]}
    total = sum(p.result_count for p in plans)
    work = sum(len(v) for v in sources.values()) + total
    # The longest legitimate silence on every stream: the pool waits for two conv output rows,
    # each pixel of which may take up to KH*KW*Cin*Cout cycles on a small engine.
    quiet = max(2 * (c.layer.out_size[1] + 1) * c.layer.taps * c.layer.cin * c.layer.cout
                for c in cases)
    bench = make(sources, {"result": total}, seed=seed, idle=idle, backpressure=backpressure,
                 max_cycles=200 * work + 2 * quiet + 10_000, stall_cycles=quiet + 10_000)
    stats = await bench.run()
    words, out, i = stats.received["result"], [], 0
    for case, plan in zip(cases, plans, strict=True):
        # Every case carries its batch's stream cycles, so that simulators can be held equal.
        out.append({**conv_check(case, plan, words[i:i + plan.result_count], seed),
                    "batch_cycles": stats.cycles})
        i += plan.result_count
    return out


async def conv_random_cases(make, cfg, params: dict, log: Log = None) -> list[dict]:
    """Mode ``random``: the directed layers and ``count`` random ones, ``batch`` per run."""
    seed = int(params.get("seed", 0))
    idle, bp = stalls(params)
    cases = conv_directed(cfg) + conv_random(cfg, int(params["count"]), seed)
    batch = int(params.get("batch", 8))
    if log:
        log(f"{len(cases)} layers, seed {seed}, idle {idle}, backpressure {bp}")
    results = []
    for i in range(0, len(cases), batch):
        results += await conv_batch(make, cfg, cases[i:i + batch], seed=seed * 1000 + i,
                                    idle=idle, backpressure=bp)
    return results


# --- LSTM cell and stacks -----------------------------------------------------------------------

async def _lstm_load(make, layers, loads, *, seed, idle) -> int:
    """Write every layer's weights and params; returns the cycles the load took."""
    stack = len(layers) > 1
    sources = {}
    for k, (cfg, p) in enumerate(zip(layers, loads)):
        suffix = str(k) if stack else ""
        sources[f"weights{suffix}"] = weight_beats(cfg, p)
        sources[f"params{suffix}"] = param_beats(cfg, p)
    return (await make(sources, {}, seed=seed, idle=idle).run()).cycles


def _lstm_golden(layers, loads, sequences) -> list[np.ndarray]:
    """Top-layer h vectors: layers composed in software exactly as the streams compose them."""
    seqs = [np.asarray(x) for x in sequences]
    for p in loads[:-1]:
        seqs = [golden_sequence(p, x)[0] for x in seqs]
    return golden_outputs(layers[-1], loads[-1], seqs)


async def _lstm_sequences(make, layers, loads, sequences, *, seed, idle, backpressure, tag):
    top = layers[-1]
    expect = _lstm_golden(layers, loads, sequences)
    steps = sum(len(x) for x in sequences)
    per_step = sum(c.weight_depth + 40 for c in layers)
    bench = make({"x": x_beats(sequences)}, {"h": len(expect)}, seed=seed, idle=idle,
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


async def lstm_cases(make, layers, slug: str, params: dict, log: Log = None) -> dict:
    """Modes ``random`` (each load, then its sequences back to back) and ``timing`` (one load,
    then each length as its own run); ``layers`` is ``(cell,)`` or a stack's layers."""
    seed = int(params.get("seed", 0))
    rng = np.random.default_rng(seed)
    result = {"slug": slug, "seed": seed, "cases": []}
    if params["mode"] == "random":
        idle, bp = stalls(params)
        max_len = int(params.get("max_len", 100))
        if log:
            log(f"{slug}: seed {seed}, idle {idle}, backpressure {bp}")
        for n, (style, count) in enumerate(params["loads"]):
            loads = [random_params(cfg, rng, style) for cfg in layers]
            await _lstm_load(make, layers, loads, seed=seed * 100 + n, idle=idle)
            seqs = random_sequences(layers[0], rng, int(count), max_len=max_len)
            lengths = [len(x) for x in seqs]
            tag = f"{slug} load {n} ({style}), lengths {lengths}"
            stats, vectors = await _lstm_sequences(make, layers, loads, seqs, seed=seed * 100 + n,
                                                   idle=idle, backpressure=bp, tag=tag)
            result["cases"].append({"load": n, "style": style, "sequences": len(seqs),
                                    "lengths": lengths, "h_vectors": vectors,
                                    "mismatches": 0, "cycles": stats.cycles})
    else:
        loads = [trained_range_params(cfg, rng, 1 / 127)[0] for cfg in layers]
        result["load_cycles"] = await _lstm_load(make, layers, loads, seed=seed, idle=0.0)
        for t in params["lengths"]:
            seqs = [rng.integers(-127, 128, (int(t), layers[0].input_size))]
            stats, _ = await _lstm_sequences(make, layers, loads, seqs, seed=seed, idle=0.0,
                                             backpressure=0.0, tag=f"{slug} T={t}")
            result["cases"].append({"length": int(t), "cycles": stats.span})
    return result


# --- accelerator --------------------------------------------------------------------------------

class HostPort:
    """The accelerator's host port as a host program uses it. A simulator's host supplies
    ``write``, ``read`` (one access per clock edge) and ``idle_within``; the rest is here."""

    def __init__(self, cfg: AccelConfig):
        self.cfg = cfg

    async def write(self, addr: int, data: int) -> None:
        raise NotImplementedError

    async def read(self, addr: int) -> int:
        raise NotImplementedError

    async def idle_within(self, limit: int) -> bool:
        """Whether ``busy`` drops within ``limit`` samples, one a cycle, the first in the cycle
        of the last write."""
        raise NotImplementedError

    async def run(self, prog, limit: int, seed) -> None:
        """Load ``prog``, start it and wait (bounded) until it is no longer busy."""
        for addr, data in load_writes(self.cfg, prog):
            await self.write(addr, data)
        await self.write(address(self.cfg, Region.REG, 0), start_word(0))
        if not await self.idle_within(limit):
            raise AssertionError(f"program still busy after {limit} cycles (seed {seed})")

    async def status(self) -> dict:
        return status_fields(await self.read(address(self.cfg, Region.REG, 0)))

    async def counters(self) -> dict:
        return {n: await self.read(address(self.cfg, Region.REG, 1 + i))
                for i, n in enumerate(COUNTERS)}

    async def act(self, count: int) -> np.ndarray:
        rows = [unpack(await self.read(address(self.cfg, Region.ACT, i)), 8, self.cfg.lanes)
                for i in range(count)]
        return np.array(rows, dtype=np.int64).reshape(count, self.cfg.lanes)


async def accel_check(host: HostPort, prog, name: str, seed, limit: int = 200_000) -> dict:
    """Run ``prog`` and compare the scratchpad, STATUS and every counter with the golden
    interpreter."""
    cfg = host.cfg
    gold = run_program(cfg, prog.act, prog.wgt, prog.commands)
    await host.run(prog, limit, seed)
    st, cn = await host.status(), await host.counters()
    got = await host.act(prog.act_top)
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


async def accel_programs(host: HostPort, params: dict) -> list[dict]:
    """Test ``programs``: one random program of ``commands`` commands per seed."""
    cases = []
    for seed in params["seeds"]:
        prog = random_program(host.cfg, np.random.default_rng(seed),
                              int(params.get("commands", 8)))
        cases.append(await accel_check(host, prog, f"random-{seed}", seed))
    return cases
