"""An accelerator whose conv engine registers each MAC product once more in the fabric
(``ConvConfig.product_register``, a pipeline stage more; with ``lut_multipliers`` and one
requantizer on DSP blocks, ``requant_dsp_blocks``; and the two stages that change no cycle,
``add_product_stage`` and ``end_stage``): ``tiny_4x2`` with it runs random programs (convs,
pools, GEMMs over several tiles, depthwise groups in two beats, ADDs, AVGPOOLs, LSTMs) with
the scratchpad equal to the golden interpreter's word for word and every counter equal to the
cycle model's, which counts each conv-engine job a cycle longer."""

from __future__ import annotations

import numpy as np
import pytest

from hwaccel.generators.accel import run_program
from hwaccel.generators.accel.cases import random_program
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.driver import ProgramBuilder
from hwaccel.generators.accel.perf import program_perf
from hwaccel.sim.host import HarnessHost

BASE = MODEL_PRESETS["tiny_4x2"]
# as ecp5_128 has them: LUT multipliers but for one requantizer's on DSP blocks
REG = BASE.with_(conv=BASE.conv.with_(product_register=True, requant_dsp_blocks=1),
                 lut_multipliers=True, add_product_stage=True, end_stage=True,
                 name="tiny_4x2_preg")


@pytest.fixture(scope="module")
def host():
    with HarnessHost.of(REG) as h:
        yield h


def _depthwise(cfg, rng):
    b = ProgramBuilder(cfg)
    x = b.put(rng.integers(-128, 128, (9, 7, 6)))
    y = b.dwconv(x, rng.integers(-128, 128, (9, 1, 3, 3)), rng.integers(-3000, 3000, 9),
                 1 << 14, 20, stride=(1, 2), padding=1, pool=False)
    b.dwconv(y, rng.integers(-128, 128, (9, 1, 3, 3)), rng.integers(-3000, 3000, 9),
             1 << 14, 20, stride=1, padding=1, pool=True)
    b.done()
    return b


def test_each_engine_job_takes_one_cycle_more_in_the_model(seed):
    """The model's only change: each CONV or GEMM job on the engine ends a cycle later."""
    for s in range(seed, seed + 8):
        prog = random_program(BASE, np.random.default_rng(s), 8)
        base, reg = (program_perf(c, prog.commands) for c in (BASE, REG))
        jobs = sum(c.jobs for c in base.commands if c.op in ("CONV", "GEMM"))
        diff = {k: reg.counters[k] - v for k, v in base.counters.items()
                if reg.counters[k] != v}
        assert diff == ({"cycles": jobs, "conv_busy": jobs} if jobs else {}), s


def test_rtl_equals_golden_and_the_cycle_model(host, seed):
    rng = np.random.default_rng(seed)
    progs = [_depthwise(REG, rng)]
    progs += [random_program(REG, np.random.default_rng(s), 8) for s in range(seed, seed + 12)]
    for i, prog in enumerate(progs):
        gold = run_program(REG, prog.act, prog.wgt, prog.commands)
        host.load(prog)
        host.run(limit=1_000_000)
        np.testing.assert_array_equal(host.read_act(0, prog.act_top), gold.act[: prog.act_top],
                                      err_msg=f"program {i}")
        if gold.done:
            assert host.counters() == program_perf(REG, prog.commands).counters, i
