"""Cycle model of accelerator programs: every performance counter, command by command.

The processor (:mod:`.processor`) runs one command at a time, so a program's cycles are the sum
of its commands', and each command's are processor overhead plus its jobs:

* every command: FETCH, DECODE, CALC, CHECK (4 cycles) -- all of FENCE and DONE;
* CONV, MAXPOOL, LSTM: ISSUE (1), then one job;
* GEMM: per M tile TILE and ISSUE (2), then the tile's job. M is tiled as the processor does it:
  whole ``max_height x max_width`` tiles, then rows of ``max_width``, then the rest.

A job's cycles (``conv_busy`` / ``pool_busy`` / ``lstm_busy``) come from the engine models:

* CONV / GEMM tile: :func:`hwaccel.generators.conv.perf.job_cycles` (the load beats, the run
  phase of the engine's line buffer and sequencer, the pipeline's tail);
* MAXPOOL: one input word a cycle plus ``POOL_TAIL`` (one less when a row or column is dropped);
* LSTM: the cell's load beats, :func:`hwaccel.generators.lstm.perf.sequence_perf`, and the
  scatter of the last h into ``ceil(H / lanes)`` words, plus ``LSTM_TAIL``.

The constants are the RTL's latencies (DMA read, FIFOs, the engine's pipeline, the store); the
tests hold the model equal to the C++ harness's counters on random programs.
Programs are assumed to run to DONE (the golden interpreter, :func:`.model.run_program`, says
whether one faults); a command the model cannot run raises ``ValueError`` naming its ``pc``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..conv.perf import job_cycles
from .config import AccelConfig
from .isa import COUNTERS, Op
from .model import decode

__all__ = ["CommandPerf", "ProgramPerf", "program_perf", "gemm_tiles"]

FETCH_TO_CHECK = 4   # FETCH, DECODE, CALC, CHECK
ISSUE = 1            # the cycle a job starts (the processor's ISSUE state)
TILE = 1             # GEMM: the TILE state before each tile's ISSUE
POOL_TAIL = 4        # MAXPOOL: the DMA's latency, the pool's output register, the store
LSTM_TAIL = 6        # LSTM: DMA latency, x hand-over, FIFO and the scatter's first word


@dataclass(frozen=True)
class CommandPerf:
    """One command's share of the counters (``cycles`` = ``overhead`` + ``busy``)."""

    pc: int
    op: str
    jobs: int
    busy: int
    overhead: int
    cycles: int
    load_cycles: int
    mac_slots: int


@dataclass(frozen=True)
class ProgramPerf:
    """Every command's figures and the counters the accelerator reports after the program."""

    commands: tuple[CommandPerf, ...]
    counters: dict = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return self.counters["cycles"]

    def to_json(self) -> dict:
        return {"counters": self.counters, "commands": [asdict(c) for c in self.commands]}


def gemm_tiles(cfg: AccelConfig, rows: int) -> list[tuple[int, int]]:
    """``(width, height)`` of the engine layers a GEMM of ``rows`` rows runs as."""
    mw, mh = cfg.conv.max_width, cfg.conv.max_height
    tiles = []
    while rows:
        w = min(rows, mw)
        h = mh if rows >= mw * mh else 1
        tiles.append((w, h))
        rows -= w * h
    return tiles


def _pool_drops(width: int, height: int) -> bool:
    """The 2x2 pool drops an odd last row or column: its last output precedes the last input."""
    return bool(width % 2 or height % 2)


def conv_job(cfg: AccelConfig, desc: dict) -> tuple[int, int, int]:
    """``(busy, load beats, mac_slots)`` of one conv-engine job with descriptor ``desc``."""
    busy, load = job_cycles(cfg.conv, desc)
    slots = desc["out_width"] * desc["out_height"] * desc["weight_words"] * cfg.macs
    return busy, load, slots


def _lstm_job(cfg: AccelConfig, steps: int) -> tuple[int, int]:
    from ..lstm.perf import sequence_perf
    from .processor import lstm_words

    _, gh, load = lstm_words(cfg)
    return load + sequence_perf(cfg.lstm, steps).cycles + gh + LSTM_TAIL, load


def _command(cfg: AccelConfig, pc: int, c: dict) -> CommandPerf:
    op, d, p = c["op"], c["desc"], c["pool"]
    jobs = busy = load = slots = 0
    overhead = FETCH_TO_CHECK
    if op == Op.CONV:
        jobs, overhead = 1, overhead + ISSUE
        busy, load, slots = conv_job(cfg, d)
    elif op == Op.GEMM:
        for w, h in gemm_tiles(cfg, c["count"]):
            tile = d | {"width": w, "out_width": w, "height": h, "out_height": h}
            b, ld, s = conv_job(cfg, tile)
            jobs, busy, load, slots = jobs + 1, busy + b, load + ld, slots + s
            overhead += TILE + ISSUE
    elif op == Op.MAXPOOL:
        jobs, overhead = 1, overhead + ISSUE
        drop = _pool_drops(p["width"], p["height"])
        busy = p["width"] * p["height"] * p["blocks"] + POOL_TAIL - drop
    elif op == Op.LSTM:
        if cfg.lstm is None:
            raise ValueError(f"pc {pc}: LSTM on {cfg.slug}, which has no LSTM cell")
        jobs, overhead = 1, overhead + ISSUE
        busy, load = _lstm_job(cfg, c["count"])
    elif op not in (Op.FENCE, Op.DONE):
        raise ValueError(f"pc {pc}: opcode {op} is not a command (the program would fault)")
    return CommandPerf(pc, Op(op).name, jobs, busy, overhead, overhead + busy, load, slots)


def program_perf(cfg: AccelConfig, program: list[int], *, start_pc: int = 0) -> ProgramPerf:
    """The counters ``program`` (command words) leaves on ``cfg``, started at ``start_pc``."""
    if not isinstance(cfg, AccelConfig):
        raise TypeError(f"cfg must be an AccelConfig, not {cfg!r}")
    out, pc = [], start_pc
    while True:
        if pc >= len(program):
            raise ValueError(f"pc {pc}: the program ends without DONE (it would fault)")
        c = decode(cfg, program[pc])
        out.append(_command(cfg, pc, c))
        if c["op"] == Op.DONE:
            break
        pc += 1
    busy = {"conv_busy": 0, "pool_busy": 0, "lstm_busy": 0}
    key = {"CONV": "conv_busy", "GEMM": "conv_busy", "MAXPOOL": "pool_busy", "LSTM": "lstm_busy"}
    for cmd in out:
        if cmd.op in key:
            busy[key[cmd.op]] += cmd.busy
    counters = {"cycles": sum(c.cycles for c in out), **busy,
                "mac_slots": sum(c.mac_slots for c in out),
                "load_cycles": sum(c.load_cycles for c in out), "stall_input": 0,
                "overhead": sum(c.overhead for c in out), "commands": len(out)}
    assert set(counters) == set(COUNTERS)
    return ProgramPerf(tuple(out), counters)


def utilization(cfg: AccelConfig, perf: ProgramPerf, macs: int) -> float:
    """MACs ÷ (cycles × the conv fabric's MAC units)."""
    return macs / (perf.cycles * cfg.macs) if perf.cycles else math.nan
