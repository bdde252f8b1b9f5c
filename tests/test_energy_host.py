"""Host transfers of a lowered program, and the energy of a real program's counters."""

from __future__ import annotations

import numpy as np
import pytest

from hwaccel.compiler.builders import Program
from hwaccel.compiler.lowered import Lowered
from hwaccel.energy import estimate, host_transfer
from hwaccel.generators.accel.cases import random_requant
from hwaccel.generators.accel.config import PRESETS
from hwaccel.generators.accel.driver import ProgramBuilder
from hwaccel.generators.accel.isa import command_layout
from hwaccel.generators.accel.perf import program_perf

TINY = PRESETS["tiny"]


def _gemm(m=6, k=10, n=7):
    """One GEMM on tiny as a one-program Lowered: A is m rows of k int8, C m rows of n."""
    rng = np.random.default_rng(1)
    b = ProgramBuilder(TINY)
    a = b.put(rng.integers(-128, 128, (k, 1, m)))
    c = b.gemm(a, rng.integers(-128, 128, (k, n)), *random_requant(rng, n, k))
    b.done()
    prog = Program(list(b.commands), list(b.wgt), b.wgt_top, ("gemm",))
    return Lowered(b, (c,), "image", 1.0, (prog,)), b, c


def test_host_transfer_counts_every_word_the_host_moves():
    lowered, b, c = _gemm()
    h = host_transfer(TINY, lowered)
    # the host writes the activation image, the weight image and the commands, and reads C
    assert (h["act_words"], h["weight_words"], h["command_words"], h["output_words"]) == \
        (b.act_top, b.wgt_top, len(b.commands), c.words)
    assert h["words"] == b.act_top + b.wgt_top + len(b.commands) + c.words
    assert h["bits"] == ((b.act_top + c.words) * TINY.act_bits + b.wgt_top * TINY.wgt_bits
                         + len(b.commands) * command_layout(TINY).size)


def test_a_real_programs_counters_price_consistently():
    """The cycle model's counters of a GEMM: the energy range holds its MAC slots' energy at
    Horowitz's figures, 0.25 to 0.3 pJ a slot at 45 nm."""
    lowered, b, _ = _gemm()
    counters = program_perf(TINY, b.commands).counters
    h = host_transfer(TINY, lowered)
    e = estimate(TINY, counters, host_bits=h["bits"], clock_mhz=100.0)
    slots = counters["mac_slots"]
    assert slots > 0
    assert e.breakdown["mac"] == pytest.approx((slots * 0.25e-6, slots * 0.3e-6))
    assert e.breakdown["host"] == pytest.approx((h["bits"] / 64 * 1300e-6,
                                                 h["bits"] / 64 * 2600e-6))
    assert 0 < e.low_uj < e.high_uj


def test_bench_energy_rows_and_arguments():
    from hwaccel.bench.energy import _rows
    from hwaccel.cli import _parser

    args = _parser().parse_args(["bench", "energy", "--workload", "cnn", "--node", "7"])
    assert (args.workload, args.node, args.preset, args.batch) == ("cnn", 7, "default", 1)
    lowered, b, _ = _gemm()
    counters = program_perf(TINY, b.commands).counters
    h = host_transfer(TINY, lowered)
    e = estimate(TINY, counters, node=7, host_bits=h["bits"], clock_mhz=100.0)
    rows = _rows("gemm", TINY, {"counters": counters, "macs": 6 * 10 * 7, "host": h}, e, 2,
                 "asic 7 nm")
    whole, parts = rows[0], rows[1:]
    assert whole["component"] == "all" and whole["node"] == 7
    assert (whole["low_uj"], whole["high_uj"]) == (e.low_uj, e.high_uj)
    assert whole["chip_high_uj"] == pytest.approx(e.high_uj - e.breakdown["host"][1])
    assert whole["uj_per_inference"] == [e.low_uj / 2, e.high_uj / 2]
    assert {r["component"] for r in parts} == set(e.breakdown)
    assert sum(r["share_of_high"] for r in parts) == pytest.approx(1.0)


def test_bench_energy_prices_the_recorded_flip_flops(tmp_path, monkeypatch):
    """The clock term counts --flip-flops, else the preset's recorded gate-level synthesis (as
    advise does), else the model's estimate; the row's note says which."""
    from hwaccel.bench.energy import _flip_flops
    from hwaccel.generators.accel.config import PRESETS as ACCEL
    from hwaccel.impl import asic_recorded

    default = ACCEL["default"]
    recorded, where = asic_recorded.recorded_gates(default)
    assert recorded is not None, where        # committed in hwaccel/impl/data/asic_gates.json
    assert _flip_flops(default, None) == (recorded["flip_flops"],
                                          f"flip-flops: {recorded['flip_flops']:,} from the "
                                          f"{where}")
    assert _flip_flops(default, 1234) == (1234, "flip-flops: 1,234 (--flip-flops)")
    monkeypatch.setattr(asic_recorded, "COMMITTED", tmp_path / "none.json")
    (tmp_path / "none.json").write_text('{"gates": {}, "sources": {}}')
    monkeypatch.chdir(tmp_path)                 # no local build folder either
    ff, note = _flip_flops(default, None)
    assert ff is None and "estimate" in note
