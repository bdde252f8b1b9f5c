"""MATMUL's gatherer on its own (Amaranth simulator): for every tile job of a random MATMUL, the
beats it builds from B in an activation image equal the beats the weight DMA would stream for
the GEMM ``A @ B`` whose weights the driver packs (``ProgramBuilder.gemm`` with bias 0 and the
command's requantizer, read as ``perf.gemm_jobs`` reads them), B transposed or not, with junk
in B's lanes past K or N and between its rows; with both streams always ready the beats come
at the documented cycles (two words read a cycle, the first read with ``start``), A's stream
may start in the cycle of the last read, and the first port is never used after it; a command's
first tile (``fresh``) reads the same beats from a job presented only from ``start``, and so
does a ``solo`` one (gathered under the job before it), one word a cycle on the second port
alone, never the first."""

from __future__ import annotations

import math

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwaccel.generators.accel import ProgramBuilder
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.matmul_gather import MatmulGather
from hwaccel.generators.accel.model import decode
from hwaccel.generators.accel.perf import gemm_jobs
from hwaccel.hdl.pack import pack

CFG = MODEL_PRESETS["tiny_attention"]


def _reads(base: int, count: int, run: int, stride: int) -> list[int]:
    """The addresses a :class:`.reader.Reader` reads for ``(base, count, run, stride)``."""
    out, first = [], base
    while len(out) < count:
        out += list(range(first, first + min(run, count - len(out))))
        first += stride
    return out


def _reference(b_mat: np.ndarray, mult: int, shift: int) -> list[tuple[int, int, int, int, list]]:
    """``(k0, n0, groups, blocks, beats)`` of each tile job of a one-row GEMM with weights
    ``b_mat`` (K x N), from the driver's packing."""
    k, n = b_mat.shape
    pb = ProgramBuilder(CFG)
    a = pb.put(np.zeros((k, 1, 1), dtype=np.int64))
    pb.gemm(a, b_mat, 0, mult, shift, relu=False)
    c = decode(CFG, pb.commands[-1])
    conv = CFG.conv
    tiles = [(k0, n0) for n0 in range(0, c["nb"], conv.max_blocks)
             for k0 in range(0, c["kw"], conv.max_groups)]
    jobs = gemm_jobs(CFG, c)
    assert len(jobs) == len(tiles)    # one row: one M tile
    return [(k0, n0, d["groups"], d["blocks"], [pb.wgt[i] for i in _reads(*reads)])
            for (k0, n0), (d, reads) in zip(tiles, jobs)]


def _image(rng, b_mat: np.ndarray, transpose: bool, src2: int, sb: int) -> np.ndarray:
    """An activation image (``act_depth x lanes``) of junk with B's rows at ``src2``, stride
    ``sb`` (B^T's rows when ``transpose``); lanes past the row's end stay junk."""
    lanes = CFG.lanes
    act = rng.integers(-128, 128, size=(CFG.act_depth, lanes), dtype=np.int64)
    rows = b_mat.T if transpose else b_mat
    w = math.ceil(rows.shape[1] / lanes)
    for r, row in enumerate(rows):
        words = act[src2 + r * sb:src2 + r * sb + w].reshape(-1)
        words[:len(row)] = row
        act[src2 + r * sb:src2 + r * sb + w] = words.reshape(w, lanes)
    return act


def _run(act, job: dict, groups: int, blocks: int, rng=None, fresh: bool = False,
         solo: bool = False) -> dict:
    """Run one tile job (``job`` steady from the cycle before ``start``; with ``fresh``, a
    command's first tile, only from ``start``: another job before it); ``rng``: random
    ``ready`` on both streams. Returns the weight beats and requantizer beats and the cycles
    (from ``start`` = 0) they transferred in, the cycle of ``a_go`` and the cycles the first
    port was held (``held2``: the second's)."""
    dut = MatmulGather(CFG)
    words = [pack(row.tolist(), 8) for row in act]
    got = {"beats": [], "at": [], "rq": [], "rq_at": [], "go": [], "held": [], "held2": []}

    async def bench(ctx):
        other = {"src2": job["src2"] + 7, "sb": job["sb"] + 1, "k0": 1, "n0": 1,
                 "k": job["n"], "n": job["k"]}
        for name, v in job.items():
            ctx.set(getattr(dut.job, name), other.get(name, v) if fresh else v)
        ctx.set(dut.groups, groups)
        ctx.set(dut.blocks, blocks)
        await ctx.tick()
        for name, v in job.items():
            ctx.set(getattr(dut.job, name), v)
        ctx.set(dut.start, 1)
        ctx.set(dut.fresh, int(fresh))
        ctx.set(dut.solo, int(solo))
        addr = addr2 = 0
        for cycle in range(4000):
            ready, rq_ready = (1, 1) if rng is None else (int(rng.random() < 0.6),
                                                          int(rng.random() < 0.6))
            ctx.set(dut.source.ready, ready)
            ctx.set(dut.rq.ready, rq_ready)
            ctx.set(dut.rdata, words[addr])
            ctx.set(dut.rdata2, words[addr2])
            if ctx.get(dut.reading):
                got["held"].append(cycle)
            if ctx.get(dut.reading2):
                got["held2"].append(cycle)
            if ctx.get(dut.a_go):
                got["go"].append(cycle)
            if ctx.get(dut.source.valid) and ready:
                got["beats"].append(ctx.get(dut.source.payload))
                got["at"].append(cycle)
            if ctx.get(dut.rq.valid) and rq_ready:
                got["rq"].append(ctx.get(dut.rq.payload.as_value()))
                got["rq_at"].append(cycle)
            addr, addr2 = ctx.get(dut.addr), ctx.get(dut.addr2)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.fresh, 0)
            ctx.set(dut.solo, 0)
            if not ctx.get(dut.busy):
                return
        raise AssertionError("the gatherer never finished")

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return got


@pytest.mark.parametrize("transpose", [False, True])
def test_gather_equals_driver_packing(seed, transpose):
    rng = np.random.default_rng(seed + transpose)
    conv, lanes = CFG.conv, CFG.lanes
    for trial in range(3):
        # K spans several K tiles, N several N tiles, neither a multiple of lanes (first trial).
        k = int(rng.integers(conv.max_groups * lanes + 1, 3 * conv.max_groups * lanes))
        n = int(rng.integers(conv.max_blocks * lanes + 1, 3 * conv.max_blocks * lanes))
        if trial:
            k, n = int(rng.integers(1, 3 * lanes)), int(rng.integers(1, 3 * lanes))
        b_mat = rng.integers(-128, 128, size=(k, n), dtype=np.int64)
        mult, shift = int(rng.integers(0, 1 << 16)), int(rng.integers(1, 64))
        row_words = math.ceil((k if transpose else n) / lanes)
        sb = row_words + int(rng.integers(0, 3))
        src2 = int(rng.integers(0, 40))
        act = _image(rng, b_mat, transpose, src2, sb)
        h = -(-lanes // 2)
        for k0, n0, g, b, want in _reference(b_mat, mult, shift):
            job = {"on": 1, "src2": src2, "sb": sb, "transpose": int(transpose), "k": k,
                   "n": n, "mult": mult, "shift": shift, "k0": k0, "n0": n0}
            got = _run(act, job, g, b)
            assert got["beats"] + got["rq"] == want, (trial, k0, n0)
            reads = g * b * h
            assert got["at"] == [(i + 1) * h + 1 for i in range(g * b)]
            assert got["rq_at"] == [1 + j for j in range(b)]
            assert got["go"] == [reads - 1] and got["held"] == list(range(reads))
            # Under back-pressure: the same beats, and A's stream still after the last read.
            got = _run(act, job, g, b, rng=rng)
            assert got["beats"] + got["rq"] == want, (trial, k0, n0, "stalled")
            assert got["go"] == [got["held"][-1]], (trial, k0, n0, "stalled")
            if k0 == n0 == 0:   # a command's first tile: its job from start on only
                got = _run(act, job, g, b, rng=rng, fresh=True)
                assert got["beats"] + got["rq"] == want, (trial, "fresh")
                assert got["go"] == [got["held"][-1]], (trial, "fresh")
                got = _run(act, job, g, b, fresh=True, solo=True)   # one port, two cycles a pair
                assert got["beats"] + got["rq"] == want, (trial, "solo")
                assert got["at"] == [(i + 1) * 2 * h + 1 for i in range(g * b)], (trial, "solo")
                assert got["held"] == [] and got["held2"] == list(range(2 * reads))
                assert got["go"] == [2 * reads - 1], (trial, "solo")
                got = _run(act, job, g, b, rng=rng, fresh=True, solo=True)
                assert got["beats"] + got["rq"] == want, (trial, "solo, stalled")
                assert got["held"] == [] and got["go"] == [got["held2"][-1]], (trial, "solo")
