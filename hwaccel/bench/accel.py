"""The reference workloads as accelerator programs on the RTL, in the Verilator C++ harness.

Workloads: CNN batch 1, CNN batch 16 (layer-major: a layer's weights are stored once, loaded
into the engine once and reused by every image), one GEMM whose K and N span several engine
tiles (partial sums across K tiles), and one LSTM sequence of T steps on the LSTM cell. Each
program is loaded through the host port and run with the clock in C++ until STATUS.busy drops
(:class:`hwaccel.generators.accel.host.HarnessHost`), which is the path the runtime uses.
Outputs are checked bit-exactly against the golden interpreter. With ``--workload NAMES`` the
trained reference models run instead, compiled (:mod:`.workloads`).

Reported: ``cycles`` (the hardware's own cycle counter, start to DONE), MACs of the workload
(real ones, not padded lanes), ``mac_units`` of the fabric, ``utilization`` = MACs / (cycles x
mac_units), the counters, ``sim_cycles_per_second`` of the whole runtime path (host writes,
run, status and output reads: every clocked cycle over its wall time) and
``raw_verilator_cycles_per_second`` (the same harness only stepping the clock for as many
cycles). Per-layer rows run the same program one layer at a time (a DONE is patched in after
the layer's commands), so their cycles include one command's start and end overhead each.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from ..generators.accel import PRESETS, run_program
from ..generators.accel.cases import cnn_program
from ..generators.accel.config import MODEL_PRESETS
from ..generators.accel.driver import encode, from_words
from ..generators.accel.host import address
from ..generators.accel.isa import Op, Region
from ..sim.host import HarnessHost
from ..sim.runner import design_for

COLUMNS = ["workload", "batch", "layer", "cycles", "latency_us", "model_cycles", "host_cycles",
           "macs",
           "published_macs", "mac_units", "utilization", "share", "sim_cycles_per_second",
           "raw_verilator_cycles_per_second", "sim_vs_raw", "mismatches", "note"]

#: Real MACs of one image per layer (DESIGN.md).
CNN_MACS = {"conv1": 194_688, "conv2": 2_230_272, "conv3": 331_776, "fc1": 36_864,
            "fc2": 640}


def add_arguments(p) -> None:
    p.add_argument("--preset", default="default", choices=sorted(PRESETS | MODEL_PRESETS),
                   help="an accelerator preset; those with attention units (MODEL_PRESETS) run "
                        "the transformer workloads")
    p.add_argument("--batches", default="1,16", help="comma-separated CNN batch sizes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-layers", action="store_true", help="skip the per-layer runs")
    p.add_argument("--lstm-steps", type=int, default=50, help="T of the LSTM sequence (0: none)")
    p.add_argument("--gemm", default="256,256,256",
                   help="M,K,N of the tiled GEMM workload (empty: none)")
    p.add_argument("--workload", default="",
                   help="comma-separated reference models (resnet8, dscnn, mobilenet, "
                        "autoencoder, cnn, lstm, transformer, transformer_tokens): compiled and "
                        "run instead of the workloads above")
    p.add_argument("--model-only", action="store_true",
                   help="with --workload: the cycle model only, no RTL run (no Verilator build)")
    p.add_argument("--batch", type=int, default=1, help="batch of the --workload models")


def _timed(host: HarnessHost, cfg, b, outputs) -> tuple[dict, ...]:
    """Load, run and read back ``b`` the runtime's way; then raw clock speed for as long."""
    c0 = host.h.cycles
    t0 = time.perf_counter()
    host.load(b)
    host.run(limit=100_000_000)
    status, counters = host.status(), host.counters()
    got = host.read_tensor(outputs)
    wall = time.perf_counter() - t0
    clocked = host.h.cycles - c0
    gold = run_program(cfg, b.act, b.wgt, b.commands)
    expect = from_words(gold.act, outputs)
    t1 = time.perf_counter()
    host.h.step(clocked)
    raw = clocked / (time.perf_counter() - t1)
    sim = clocked / wall
    assert status["done"] and not status["error"], f"status {status}"
    return counters, {"sim_cycles_per_second": sim, "raw_verilator_cycles_per_second": raw,
                      "sim_vs_raw": sim / raw, "mismatches": int((got != expect).sum()),
                      "clocked_cycles": clocked, "counters": counters,
                      "load_writes": b.act_top + b.wgt_top + len(b.commands)}


def _lstm(host: HarnessHost, cfg, steps: int, seed: int) -> dict:
    from ..generators.accel.driver import ProgramBuilder
    from ..generators.lstm.cases import random_params

    rng = np.random.default_rng(seed)
    lc = cfg.lstm
    b = ProgramBuilder(cfg)
    x = b.put(rng.integers(-128, 128, (lc.input_size, 1, steps)))
    h = b.lstm(x, random_params(lc, rng))
    b.done()
    counters, speed = _timed(host, cfg, b, h)
    macs = b.lstm_macs
    return {"workload": "lstm", "batch": 1, "layer": f"T={steps}", "cycles": counters["cycles"],
            "macs": macs, "mac_units": lc.lanes,
            "utilization": macs / (counters["cycles"] * lc.lanes), **speed}


def _gemm(host: HarnessHost, cfg, shape: str, seed: int) -> dict:
    from ..generators.accel.cases import random_requant
    from ..generators.accel.driver import ProgramBuilder

    m, k, n = (int(v) for v in shape.split(","))
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(cfg)
    c = b.gemm(b.put(rng.integers(-128, 128, (k, 1, m))), rng.integers(-128, 128, (k, n)),
               *random_requant(rng, n, k))
    b.done()
    counters, speed = _timed(host, cfg, b, c)
    return {"workload": "gemm", "batch": 1, "layer": f"{m}x{k}x{n}",
            "cycles": counters["cycles"], "macs": m * k * n, "mac_units": cfg.macs,
            "utilization": m * k * n / (counters["cycles"] * cfg.macs), **speed}


def _whole(host: HarnessHost, cfg, cnn, batch: int) -> dict:
    counters, speed = _timed(host, cfg, cnn.builder, cnn.outputs)
    macs = sum(CNN_MACS.values()) * batch
    return {"workload": "cnn", "batch": batch, "layer": "all", "cycles": counters["cycles"],
            "macs": macs, "mac_units": cfg.macs,
            "utilization": macs / (counters["cycles"] * cfg.macs), **speed}


def _layers(host: HarnessHost, cfg, cnn, batch: int) -> list[dict]:
    b = cnn.builder
    host.load(b)
    rows, done = [], encode(cfg, Op.DONE)
    names = list(CNN_MACS)
    starts = [i * batch for i in range(4)] + [4 * batch]
    ends = starts[1:] + [4 * batch + 1]
    for name, lo, hi in zip(names, starts, ends):
        host.write(address(cfg, Region.PROG, hi), done)
        host.run(lo)
        counters = host.counters()
        host.write(address(cfg, Region.PROG, hi), b.commands[hi])
        macs = CNN_MACS[name] * batch
        rows.append({"workload": "cnn", "batch": batch, "layer": name,
                     "cycles": counters["cycles"], "macs": macs, "mac_units": cfg.macs,
                     "utilization": macs / (counters["cycles"] * cfg.macs),
                     "counters": counters})
    return rows


def _fits(name: str, build):
    """``build()``, or None with a note on stderr when the workload does not fit the preset's
    scratchpads (the ecp5 preset holds a CNN batch of 2, not 16)."""
    try:
        return build()
    except ValueError as exc:
        if "does not fit" not in str(exc):
            raise
        print(f"hwaccel bench accel: skipped {name}: {exc}", file=sys.stderr)
        return None


def _with_latency(cfg, rows: list[dict]) -> list[dict]:
    """``latency_us`` beside every row's ``cycles`` (``model_cycles`` with ``--model-only``): at
    the preset's placed Fmax (:func:`hwaccel.impl.placed.placed_report`: its own report, else a
    committed placement, nextpnr seed 1's), or None (and a note on stderr naming the command)
    when it has none; ``latency_us_median`` at the median of three or more seeds' clocks
    (``fmax_median_mhz``), None with fewer."""
    from ..impl.placed import placed_report

    report, where = placed_report(cfg)
    fmax = report["fmax_mhz"] if report else None
    median = report["fmax_median_mhz"] if report else None
    if fmax is None:
        print(f"hwaccel bench accel: no latency_us for {cfg.slug}: {where}", file=sys.stderr)
    for row in rows:
        cycles = row.get("cycles", row.get("model_cycles"))
        for key, clock in (("latency_us", fmax), ("latency_us_median", median)):
            row[key] = round(cycles / clock, 3) if clock and cycles is not None else None
        row["fmax_mhz"], row["fmax_median_mhz"] = fmax, median
    return rows


def run(args) -> list[dict]:
    cfg = (PRESETS | MODEL_PRESETS)[args.preset]
    return _with_latency(cfg, _run(args))


def _run(args) -> list[dict]:
    if getattr(args, "workload", ""):
        from .workloads import run_workloads

        return run_workloads(args)
    if getattr(args, "model_only", False):
        raise SystemExit("hwaccel bench accel: --model-only needs --workload")
    cfg = (PRESETS | MODEL_PRESETS)[args.preset]
    host = HarnessHost(design_for(cfg), cfg)
    rows = []
    try:
        for batch in [int(s) for s in args.batches.split(",") if s.strip()]:
            cnn = _fits(f"CNN batch {batch}", lambda b=batch: cnn_program(cfg, b, args.seed))
            if cnn is None:
                continue
            rows.append(_whole(host, cfg, cnn, batch))
            if not args.no_layers:
                rows += _layers(host, cfg, cnn, batch)
        if args.gemm.strip():
            row = _fits(f"GEMM {args.gemm}", lambda: _gemm(host, cfg, args.gemm, args.seed))
            rows += [row] if row else []
        if args.lstm_steps and cfg.lstm is not None:
            rows.append(_lstm(host, cfg, args.lstm_steps, args.seed))
    finally:
        host.close()
    return rows
