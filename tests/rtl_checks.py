"""One program on the RTL harness against the golden interpreter, for the RTL tests of the
accelerator's commands: the program ends in DONE, golden runs it without a fault, the harness
finishes it without a fault, every performance counter equals the cycle model's, and every
output tensor equals golden's bit for bit."""

from __future__ import annotations

import numpy as np

from hwaccel.generators.accel import Op, run_program
from hwaccel.generators.accel.driver import encode, from_words
from hwaccel.generators.accel.perf import program_perf


def int8(rng, shape) -> np.ndarray:
    """Uniform int8 values of ``shape`` (as int64) from ``rng``."""
    return rng.integers(-128, 128, size=shape, dtype=np.int64)

def run_and_check(host, config, b, outs, what="", *, limit: int = 500_000):
    """Run builder ``b`` on ``host`` and golden; assert as the module says. Returns golden's
    result (its ``act`` image is the scratchpad after the program)."""
    if not b.commands or b.commands[-1] != encode(config, Op.DONE):
        b.done()
    gold = run_program(config, b.act, b.wgt, b.commands)
    assert gold.done and not gold.error, (what, gold.cause)
    host.load(b)
    host.run(limit=limit)
    st = host.status()
    assert st["done"] and not st["error"], (what, st)
    assert host.counters() == program_perf(config, b.commands).counters, what
    for t in outs:
        np.testing.assert_array_equal(host.read_tensor(t), from_words(gold.act, t),
                                      err_msg=str(what))
    return gold


def programs_on_the_rtl(host, config, lowered, why: str = "", *,
                        limit: int = 1_000_000) -> np.ndarray:
    """Every program of ``lowered`` on ``host``, the runtime's rtl way (a soft reset, the
    program's weights and commands, run), each finished without a fault and its counters equal
    to the cycle model's; returns the activation scratchpad's image of the lowered span."""
    for k, load in enumerate(lowered.loads()):
        host.soft_reset()
        host.load(load)
        host.run(limit=limit)
        status = host.status()
        assert status["done"] and not status["error"], \
            f"{why}: program {k + 1} faulted: {status['cause'].name} at pc {status['pc']}"
        assert host.counters() == program_perf(config, load.commands).counters, \
            f"{why}: program {k + 1}'s counters differ from the cycle model's"
    first, words = lowered.span
    image = np.zeros((config.act_depth, config.lanes), dtype=np.int64)
    image[first:first + words] = host.read_act(first, words)
    return image


def compiled_on_the_rtl(host, config, cm, x, why: str = ""):
    """Compiled model ``cm`` on the batch ``x``: golden equal to the integer twin, then every
    program of its lowering on ``host`` (:func:`programs_on_the_rtl`: no fault, the cycle
    model's counters) and the outputs equal to golden's bit for bit. Returns the lowering."""
    x_int = cm.quantize_input(x)
    gold = cm.execute("golden", x).int_logits
    np.testing.assert_array_equal(gold, cm.int8_forward(x_int))
    low = cm.lower(x_int)
    image = programs_on_the_rtl(host, config, low, why)
    np.testing.assert_array_equal(low.ints(image), gold)
    return low
