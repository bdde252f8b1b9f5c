"""No read the convolution engine uses meets a write to its word in the same cycle.

An FPGA block RAM read across its ports in the cycle of a write to the same word returns no
defined word, so Yosys adds logic that delays the write and multiplexes it in (on ECP5 a compare
of the two addresses into a register, and a multiplexer on every output bit), unless the memory
is marked ``no_rw_check``, as the engine's line-buffer rows and weight memory are. That is sound
only if such a word is never used: this bench runs the engine with ``rw.RW_POISON``, where such
a read returns its word inverted, over random layers (every kernel shape, stride, padding,
grouped and depthwise layers, random stalls on every stream and back-pressure on the result) and
requires the results to stay bit-exact against the golden model. (The bench fails when every
read of a memory written in its cycle is inverted, whatever the word: such reads are used.)

The engine's data registers have no reset (the units' reset clears the valid bits that mark
them): with ``rw.STALE_POISON`` they start as all ones, and the same bench must stay exact.
"""

from __future__ import annotations

import re

import pytest

from hwaccel.emit import emit
from hwaccel.formal.props import replaced
from hwaccel.generators.conv import rw
from hwaccel.generators.conv.config import PRESETS
from hwaccel.sim.runner import Design, run_bench


@pytest.mark.parametrize("slug, count", [("k5n3", 30), ("k1n1", 12)])
def test_reads_that_meet_a_write_are_never_used(slug, count, seed, tmp_path):
    cfg = PRESETS[slug]
    with replaced(rw, "RW_POISON", True):   # elaborated afresh: not the cached design
        res = emit(cfg, tmp_path, cache=False)
    design = Design(res.verilog, res.sidecar, cfg.slug)
    assert "rw_hit" in design.verilog.read_text(), "the poisoned reads are not in the design"
    res = run_bench(design, "sim.tb_conv", {"mode": "random", "count": count, "idle": 0.2,
                                            "backpressure": 0.3, "batch": 8, "seed": seed},
                    seed=seed)
    cases = res["cases"]
    assert len(cases) >= count + 7, f"{slug}: the bench compared {len(cases)} layers"
    assert sum("depthwise=True" in c["layer"] for c in cases) >= 2
    bad = [(c["name"], c["layer"]) for c in cases if c["mismatches"]]
    assert not bad, f"{slug} (seed {seed}): a read used a word written in its cycle: {bad[:3]}"


def test_data_registers_without_reset_are_written_before_use(seed, tmp_path):
    cfg = PRESETS["k5n3"]
    with replaced(rw, "STALE_POISON", True):
        res = emit(cfg, tmp_path, cache=False)
    design = Design(res.verilog, res.sidecar, cfg.slug)
    text = design.verilog.read_text()
    assert re.search(r"reg \[\d+:0\] s2_a = \d+'hf+;", text), \
        "the data registers do not start poisoned"
    res = run_bench(design, "sim.tb_conv", {"mode": "random", "count": 12, "idle": 0.2,
                                            "backpressure": 0.3, "batch": 8, "seed": seed},
                    seed=seed)
    bad = [(c["name"], c["layer"]) for c in res["cases"] if c["mismatches"]]
    assert res["cases"] and not bad, f"(seed {seed}) a data register was used unwritten: {bad[:3]}"
