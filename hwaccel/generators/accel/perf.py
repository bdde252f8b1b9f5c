"""Cycle model of accelerator programs: every performance counter, command by command.

The processor (:mod:`.processor`) runs one command at a time, so a program's cycles are the sum
of its commands', and each command's are processor overhead plus its jobs:

* every command: FETCH, DECODE, CALC, CHECK (4 cycles) -- all of FENCE and DONE; after a
  command that ran a job, whose last job read the next command's word, FETCH and DECODE are
  hidden (``DECODED_AHEAD``; the first command and the one after a FENCE pay all 4), and CALC
  too when the checks ran under that job (``CALC_AHEAD``, :func:`checked_ahead`: it ran
  :data:`.tiling.RIPE` cycles and neither command is a depthwise CONV), and CHECK too for a
  command with a job (``CHECK_AHEAD``: it issues the cycle after the retirement);
* every job: its ISSUE (1) and, after its last cycle, ``JOB_END`` (1): the RUN cycle in
  which the processor sees the job's end (the accelerator registers it: no path from a
  unit's handshakes to the next command's issue); both are ``overhead``;
* CONV, MAXPOOL, LSTM, ADD, AVGPOOL: ISSUE (1), then one job (a depthwise CONV: ISSUE and a
  job per ``dw_groups`` channel groups, :func:`.model.dw_jobs`);
* GEMM: TILE (1) before the first tile (none when checked ahead: its first tile was worked out
  under the job too), ISSUE (1) before every tile (a later tile loads in the cycle its
  predecessor ends), then the tile's job; :func:`gemm_jobs` walks the tiles as
  the processor does (N tiles, then M tiles, then K tiles). A fused GELU (:mod:`.fuse`): the
  first tile loads its weights (no reuse) after the table's ``T`` beats, ``T`` cycles later;
  a fused ADD stores every tile's results a cycle later.

A CONV/GEMM job whose weight reads (address, words, run, stride) equal the previous CONV/GEMM
job's reuses the weights the engine holds: no load beats, and the engine goes straight from its
descriptor to the run phase. A program start and a FENCE forget the held weights.

A job's cycles (``conv_busy`` / ``pool_busy`` / ``lstm_busy``) come from the engine models:

* CONV / GEMM tile: :func:`hwaccel.generators.conv.perf.job_cycles` (the load beats, the run
  phase of the engine's line buffer and sequencer, the pipeline's tail);
* MAXPOOL: one input word a cycle plus ``POOL_TAIL`` (one less when a row or column is dropped);
* LSTM: the cell's load beats (the first x, gathered meanwhile, enters once they are in),
  :func:`hwaccel.generators.lstm.perf.sequence_perf`, and the scatter of the last h into
  ``ceil(H / lanes)`` words, plus ``LSTM_TAIL``;
* ADD and MUL (``eltwise_busy``): one word a cycle (two words a read), ``count + ADD_TAIL``;
* AVGPOOL (``eltwise_busy``): one read per window word, ``AVG_SETUP + out_width x out_height x
  kh x kw x blocks + AVG_TAIL`` (:mod:`.eltwise`);
* SOFTMAX, LAYERNORM, GELU (``eltwise_busy``) and MATMUL (``conv_busy``; TILE and ISSUEs as a
  GEMM's): :func:`.attn_isa.attn_cycles`, the ISA's definition from the
  attention units' and the conv engine's models (MATMUL's, :func:`.attn_isa.matmul_cycles`,
  with its ``stall_input``: the RTL equals it). A MATMUL tile job gathers B two words a cycle
  (``ceil(lanes / 2)`` cycles a weight beat), a command's first from the cycle its word loads
  (``GATHER_LEAD`` cycles before its ISSUE after DECODE; from the cycle after the retirement
  of the command before it, whose last result is stored in that cycle, after a job: one fewer,
  or from its ISSUE when checked ahead;
  one word a cycle under the job before it when :func:`gathered_ahead` says so), the others
  from their ISSUE; its requantizer beats load beside the weights, and A's stream
  starts in the cycle of B's last read (at the ISSUE if that came first), so the engine's
  writer has A's first words as its run phase begins; then the run as for any GEMM tile
  (``default_attention``'s 16 x 16 x 16 product after a command with a job: 1 cycle of
  processor overhead and 32 busy, 33 in all; gathered under the job before it, 26 busy and 27
  in all).

The constants are the RTL's latencies (DMA read, FIFOs, the engine's pipeline, the store); the
tests hold the model equal to the C++ harness's counters on random programs.
Programs are assumed to run to DONE (the golden interpreter, :func:`.model.run_program`, says
whether one faults); a command the model cannot run raises ``ValueError`` naming its ``pc``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ..conv.perf import DMA_FIRST, POOL_STAGE, job_cycles
from .attn_isa import ATTN_OPS, attn_cycles, matmul_cycles, matmul_gemm, matmul_last
from .config import AccelConfig
from .eltwise import ADD_TAIL, AVG_SETUP, AVG_TAIL
from .fuse_model import fused_add, fused_gelu
from .isa import COUNTERS, Op
from .matmul_checks import GATHER_LEAD
from .model import decode, dw_jobs
from .perf_events import EVENTS, command_events
from .processor import RIPE
from .reader import READ_LATENCY

__all__ = ["CommandPerf", "ProgramPerf", "program_perf", "gemm_jobs", "eltwise_cycles"]

FETCH_TO_CHECK = 4   # FETCH, DECODE, CALC, CHECK
DECODED_AHEAD = 2    # FETCH and DECODE, hidden under the previous command's last job
CALC_AHEAD = 1       # CALC too, when the checks ran ahead under that job (``checked``)
CHECK_AHEAD = 1      # and CHECK (and the TILE of a GEMM or MATMUL) for a command with a job
ISSUE = 1            # the cycle a job starts (the processor's ISSUE state)
JOB_END = 1          # the RUN cycle after a job's last, in which the processor sees it end
PER_JOB = ISSUE + JOB_END   # a job's processor overhead
TILE = 1             # GEMM, MATMUL: the TILE state before the first tile's ISSUE
#: MAXPOOL: the activation DMA's latency, the pool's stages, the store.
POOL_TAIL = DMA_FIRST - 1 + POOL_STAGE + 1
LSTM_TAIL = 6        # LSTM: weight DMA latency (3), x hand-over (2), h out of the FIFO (1)
#: The activation DMA's latency beyond the weight DMA's (its reads are registered, .reader).
ACT_LATER = READ_LATENCY[True] - READ_LATENCY[False]


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
    stall_input: int = 0
    act_reads: int = 0      # the energy counters (:mod:`.perf_events`)
    act_writes: int = 0
    weight_reads: int = 0


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


def gemm_jobs(cfg: AccelConfig, c: dict) -> list[tuple[dict, tuple]]:
    """``(descriptor, weight reads)`` of the engine layers GEMM command ``c`` runs, in the
    processor's order: N tiles (``max_blocks`` blocks), then M tiles, then K tiles
    (``max_groups`` words). The weight reads ``(address, words, run, stride)`` are what the
    accelerator compares to decide on weight reuse."""
    conv = cfg.conv
    mg, mb, mw, mh = conv.max_groups, conv.max_blocks, conv.max_width, conv.max_height
    kw, nb, d = c["kw"], c["nb"], c["desc"]
    k_tiled = kw > mg
    jobs = []
    w_nt = c["wgt"]
    for n0 in range(0, nb, mb):
        b_t = min(mb, nb - n0)
        rows = c["count"]
        while rows:
            if k_tiled:   # one row of at most psum_width pixels: its sums fit the psum memory
                w, h = min(rows, cfg.psum_width), 1
            else:         # whole max_height x max_width tiles, then rows, then the rest
                w, h = min(rows, mw), (mh if rows >= mw * mh else 1)
            w_k = w_nt
            for k0 in range(0, kw, mg):
                g_t = min(mg, kw - k0)
                ww = g_t * b_t
                desc = d | {"width": w, "out_width": w, "height": h, "out_height": h,
                            "groups": g_t, "blocks": b_t, "weight_words": ww}
                jobs.append((desc, (w_k, ww + b_t, ww, w_nt + kw * b_t - w_k)))
                w_k += ww
            rows -= w * h
        w_nt += (kw + 1) * b_t
    return jobs


def _pool_drops(width: int, height: int) -> bool:
    """The 2x2 pool drops an odd last row or column: its last output precedes the last input."""
    return bool(width % 2 or height % 2)


def conv_job(cfg: AccelConfig, desc: dict, reuse: bool) -> tuple[int, int, int, int]:
    """``(busy, load beats, input stalls, mac_slots)`` of one conv-engine job."""
    busy, load, stalls = job_cycles(cfg.conv, desc, reuse=reuse)
    slots = desc["out_width"] * desc["out_height"] * desc["weight_words"] * cfg.macs
    return busy, load, stalls, slots


def _lstm_job(cfg: AccelConfig, c: dict) -> tuple[int, int]:
    """``(busy, load beats)`` of decoded LSTM command ``c``, at its own sizes."""
    from ..lstm.perf import sequence_perf
    from .lstm_checks import lstm_words

    i, h = c["lstm"]["input_size"], c["lstm"]["hidden_size"]
    gx, gh, load = lstm_words(cfg, i, h)
    run = cfg.lstm.run(i, h)
    # x_0 is gathered (gx words) while the weights load; the cell takes it after both.
    return max(load, gx + ACT_LATER) + sequence_perf(run, c["count"]).cycles + gh + LSTM_TAIL, load


def eltwise_cycles(c: dict) -> int:
    """Cycles of the element-wise unit's job for decoded ADD/MUL/AVGPOOL command ``c`` (a MUL
    runs the ADD's pipeline)."""
    if c["op"] in (Op.ADD, Op.MUL):
        return c["count"] + ADD_TAIL
    v = c["elt"]["avg"]
    reads = v["out_width"] * v["out_height"] * v["kh"] * v["kw"] * v["blocks"]
    return AVG_SETUP + reads + AVG_TAIL


def checked_ahead(cfg: AccelConfig, prev: dict, prev_perf: CommandPerf, c: dict) -> bool:
    """Whether command ``c`` was checked under the last job of ``prev`` (decoded, figures
    ``prev_perf``): :data:`.processor.RIPE` cycles of it at least (a GEMM's or MATMUL's
    last tile always runs them) and neither a depthwise CONV (its jobs read the check
    registers)."""
    def dw(x):
        return x["op"] == Op.CONV and bool(x["desc"]["depthwise"])

    if prev_perf.jobs == 0 or dw(prev) or dw(c):
        return False
    tiled = prev["op"] in (Op.GEMM, Op.MATMUL)
    return tiled or prev_perf.busy + JOB_END >= RIPE + 1   # its one job's RUN cycles


def _write_span(cfg: AccelConfig, c: dict) -> tuple[int, int]:
    """``[first, end)``: the words decoded command ``c`` writes, as the processor's checks
    count them (a MATMUL's rows with their stride)."""
    from .eltwise_checks import elt_golden_check

    op, d, p, lanes = c["op"], c["desc"], c["pool"], cfg.lanes
    if op == Op.MATMUL:
        f = c["attn"]
        return c["dst"], c["dst"] + (c["count"] - 1) * f["sc"] + -(-f["n"] // lanes)
    if op == Op.GEMM:
        n = c["count"] * c["nb"] // cfg.word_beats
    elif op == Op.CONV:
        div = 2 if d["pool"] else 1
        n = (d["out_width"] // div) * (d["out_height"] // div) * d["blocks"] // cfg.word_beats
    elif op == Op.MAXPOOL:
        n = (p["width"] // 2) * (p["height"] // 2) * p["blocks"]
    elif op == Op.LSTM:
        from .lstm_checks import lstm_golden_check

        n = lstm_golden_check(cfg, c)[2]
    elif op in (Op.ADD, Op.MUL, Op.AVGPOOL):
        n = elt_golden_check(cfg, c)[2]
    elif op == Op.GELU:
        n = c["count"]
    else:   # SOFTMAX, LAYERNORM
        n = c["count"] * -(-c["attn"]["n"] // lanes)
    return c["dst"], c["dst"] + n


def gathered_ahead(cfg: AccelConfig, prev: dict, last: tuple[int, int], c: dict) -> int | None:
    """The lead (cycles before its ISSUE) of MATMUL ``c``'s gather when it starts under the
    last job of ``prev``, which checked it (:func:`checked_ahead`), else None: from that job's
    :data:`.processor.RIPE` + 1-th cycle or the first after it that finds the gatherer idle
    (``last``: the job's busy cycles and that cycle, :func:`.attn_isa.matmul_last`), when its
    first tile is one weight beat, B lies outside what ``prev`` writes, ``prev`` is no GEMM
    with a fused ADD (whose residual reads hold the port) and that cycle is not the job's
    last (the retirement, when the gather starts anyway)."""
    if c["op"] != Op.MATMUL or fused_add(cfg, prev):
        return None
    if gemm_jobs(cfg, matmul_gemm(cfg, c))[0][0]["weight_words"] != 1:
        return None
    f, lanes = c["attn"], cfg.lanes
    kw, nw = -(-f["k"] // lanes), -(-f["n"] // lanes)
    rows, words = (f["n"], kw) if f["transpose"] else (f["k"], nw)
    b_lo, b_hi = f["src2"], f["src2"] + (rows - 1) * f["sb"] + words
    lo, hi = _write_span(cfg, prev)
    if not (b_hi <= lo or hi <= b_lo):
        return None
    busy, idle = last
    start, retire = max(RIPE + 1, idle), busy + JOB_END   # the job's RUN cycles, from 1
    return retire + 1 - start if start <= retire - 1 else None


def _command(cfg: AccelConfig, pc: int, c: dict, held: list, ahead: bool,
             checked: bool = False, solo: int | None = None) -> tuple[CommandPerf, tuple]:
    """One command's figures and ``(busy, idle)`` of its last job (:func:`gathered_ahead`);
    ``held`` is ``[weight reads]`` the conv engine holds (or empty),
    updated in place as the hardware updates it; ``ahead``: the previous command ran a job, so
    this one's word was fetched and decoded under it; ``checked``: and checked
    (:func:`checked_ahead`); ``solo``: a MATMUL's gather lead under that job
    (:func:`gathered_ahead`)."""
    op, d, p = c["op"], c["desc"], c["pool"]
    jobs = busy = load = slots = stalls = 0
    overhead = FETCH_TO_CHECK - (DECODED_AHEAD if ahead else 0)
    skip = checked and op not in (Op.DONE, Op.FENCE)   # a job's command: straight to ISSUE
    overhead -= (CALC_AHEAD if checked else 0) + (CHECK_AHEAD if skip else 0)
    tile = 0 if skip else TILE
    # A MATMUL's gather: from DECODE, or from the cycle after the retirement before it.
    lead = (0 if skip else GATHER_LEAD - 1) if ahead else GATHER_LEAD
    lead = lead if solo is None else solo
    last_b = idle = 0
    if op in (Op.CONV, Op.GEMM):
        if op == Op.CONV and d["depthwise"]:   # a job per dw_groups groups, RUN -> ISSUE
            todo = dw_jobs(cfg, c)
        elif op == Op.CONV:
            todo = [(d, (c["wgt"], d["weight_words"] + d["blocks"], 1, 1))]
        else:
            todo = gemm_jobs(cfg, c)
            overhead += tile
        gelu_t = fused_gelu(cfg, c)   # the table's beats ahead of the first tile's (:mod:`.fuse`)
        for j, (desc, reads) in enumerate(todo):
            reuse = held == [reads] and not (j == 0 and gelu_t)
            b, ld, st, s = conv_job(cfg, desc, reuse)
            if j == 0 and gelu_t:
                b, ld = b + gelu_t, ld + gelu_t
            b += fused_add(cfg, c)   # the residual's read: the store a cycle later
            held[:] = [reads]
            jobs, busy, load, stalls, slots = jobs + 1, busy + b, load + ld, stalls + st, slots + s
            last_b = b
            overhead += PER_JOB
    elif op == Op.MAXPOOL:
        jobs, overhead = 1, overhead + PER_JOB
        drop = _pool_drops(p["width"], p["height"])
        busy = p["width"] * p["height"] * p["blocks"] + POOL_TAIL - drop
    elif op == Op.LSTM:
        if cfg.lstm is None:
            raise ValueError(f"pc {pc}: LSTM on {cfg.slug}, which has no LSTM cell")
        jobs, overhead = 1, overhead + PER_JOB
        busy, load = _lstm_job(cfg, c)
    elif op in (Op.ADD, Op.MUL, Op.AVGPOOL):
        if op == Op.MUL and not cfg.elt_mul:
            raise ValueError(f"pc {pc}: MUL on {cfg.slug}, which has no element-wise product "
                             f"(elt_mul; the program would fault)")
        jobs, overhead = 1, overhead + PER_JOB
        busy = eltwise_cycles(c)
    elif op in ATTN_OPS:   # the ISA's definition: :mod:`.attn_isa`
        if cfg.attention is None:
            raise ValueError(f"pc {pc}: {Op(op).name} on {cfg.slug}, which has no attention "
                             f"units (the program would fault)")
        alone = solo is not None
        busy, load, slots, jobs = attn_cycles(cfg, c, lead=lead, solo=alone)
        overhead += PER_JOB * jobs + (tile if op == Op.MATMUL else 0)
        if op == Op.MATMUL:
            held.clear()   # B's beats replaced the engine's weights
            stalls = matmul_cycles(cfg, c, lead=lead, solo=alone)[2]   # the engine waits for A
            last_b, idle = matmul_last(cfg, c, lead=lead, solo=alone)
    elif op == Op.FENCE:
        held.clear()   # the next CONV/GEMM reloads its weights
    elif op != Op.DONE:
        raise ValueError(f"pc {pc}: opcode {op} is not a command (the program would fault)")
    perf = CommandPerf(pc, Op(op).name, jobs, busy, overhead, overhead + busy, load, slots,
                       stalls, **dict(zip(EVENTS, command_events(cfg, c, load))))
    single = op in (Op.MAXPOOL, Op.LSTM, Op.ADD, Op.MUL, Op.AVGPOOL) or op in ATTN_OPS[:3]
    return perf, ((busy if single else last_b), idle)


def program_perf(cfg: AccelConfig, program: list[int], *, start_pc: int = 0) -> ProgramPerf:
    """The counters ``program`` (command words) leaves on ``cfg``, started at ``start_pc``."""
    if not isinstance(cfg, AccelConfig):
        raise TypeError(f"cfg must be an AccelConfig, not {cfg!r}")
    out, pc, held = [], start_pc, []   # a program starts with no weights held
    prev = last = None
    while True:
        if pc >= len(program):
            raise ValueError(f"pc {pc}: the program ends without DONE (it would fault)")
        c = decode(cfg, program[pc])
        ahead = bool(out) and out[-1].jobs > 0
        checked = ahead and checked_ahead(cfg, prev, out[-1], c)
        solo = gathered_ahead(cfg, prev, last, c) if checked else None
        perf, last = _command(cfg, pc, c, held, ahead, checked, solo)
        out.append(perf)
        if c["op"] == Op.DONE:
            break
        prev = c
        pc += 1
    busy = {"conv_busy": 0, "pool_busy": 0, "lstm_busy": 0, "eltwise_busy": 0}
    key = {"CONV": "conv_busy", "GEMM": "conv_busy", "MAXPOOL": "pool_busy", "LSTM": "lstm_busy",
           "ADD": "eltwise_busy", "MUL": "eltwise_busy", "AVGPOOL": "eltwise_busy",
           "MATMUL": "conv_busy", "SOFTMAX": "eltwise_busy", "LAYERNORM": "eltwise_busy",
           "GELU": "eltwise_busy"}
    for cmd in out:
        if cmd.op in key:
            busy[key[cmd.op]] += cmd.busy
    counters = {"cycles": sum(c.cycles for c in out), **busy,
                "mac_slots": sum(c.mac_slots for c in out),
                "load_cycles": sum(c.load_cycles for c in out),
                "stall_input": sum(c.stall_input for c in out),
                "overhead": sum(c.overhead for c in out), "commands": len(out),
                **{k: sum(getattr(c, k) for c in out) for k in EVENTS}}
    assert set(counters) == set(COUNTERS)
    return ProgramPerf(tuple(out), counters)

