"""MUL, the element-wise product (``AccelConfig.elt_mul``): the driver, the golden interpreter
against an exact integer reference, and the RTL (tiny preset, C++ harness) against the golden
interpreter bit for bit and the cycle model counter for counter -- a product of two tensors of
one shape and a gate of one pixel (its word count even, odd and one) times every pixel."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_checks import int8 as _int8

from hwaccel.generators.accel import PRESETS, Op, ProgramBuilder, run_program
from hwaccel.generators.accel.cases import fault_programs
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.driver import encode, from_words
from hwaccel.generators.accel.perf import program_perf
from hwaccel.numerics import mul_requantize, mul_shift
from hwaccel.sim.host import HarnessHost

TINY = PRESETS["tiny"]


def mul_reference(a, b, shift: int, relu: bool) -> np.ndarray:
    """``a * b / 2**shift`` rounded half up and clamped, by exact integer arithmetic."""
    y = np.floor_divide(2 * a * b + (1 << shift), 1 << (shift + 1))
    return np.clip(y, 0 if relu else -128, 127)


def random_mul(b: ProgramBuilder, rng, cfg=TINY):
    """A random MUL on ``b``: two tensors of one shape, or a map and a gate pixel (half the
    time); returns ``(output, its exact reference, a description)``."""
    c = int(rng.integers(1, 4 * cfg.lanes + 2))   # gates of 1 to 5 words: odd, even and one
    h, w = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    gate = bool(rng.random() < 0.5)
    x = _int8(rng, (c, h, w))
    g = _int8(rng, (c, 1, 1) if gate else (c, h, w))
    shift, relu = int(rng.choice([1, 5, 7, 7, 8, 12, 15])), bool(rng.random() < 0.3)
    tg = b.gate(b.put(g)) if gate else b.put(g)
    out = b.mul(b.put(x), tg, shift, relu=relu, gate=gate)
    return out, mul_reference(x, g, shift, relu), (c, h, w, "gate" if gate else "same", shift)


def test_numerics_mul_requantize_and_shift():
    a, b = np.arange(-128, 128), np.arange(127, -129, -1)
    for shift in (1, 7, 15, 31):
        for relu in (False, True):
            np.testing.assert_array_equal(mul_requantize(a, b, shift, relu=relu),
                                          mul_reference(a, b, shift, relu))
    assert mul_requantize(-128, -128, 7) == 127 and mul_requantize(-128, 127, 7) == -127
    assert mul_requantize(3, 5, 1) == 8 and mul_requantize(-3, 5, 1) == -7   # ties round up
    # the least shift whose power of two covers the ratio, from 1 to 15
    assert [mul_shift(r) for r in (0.01, 1.0, 1.5, 2.0, 127.0, 128.0, 129.0, 1e9)] == [
        1, 1, 1, 1, 7, 7, 8, 15]
    with pytest.raises(ValueError, match="shift must be an integer in"):
        mul_requantize(1, 1, 0)
    with pytest.raises(ValueError, match="ratio must be a positive finite number"):
        mul_shift(float("nan"))


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_golden_mul_equals_the_exact_reference(preset, seed):
    cfg = PRESETS[preset]
    rng = np.random.default_rng(seed)
    for _ in range(30):
        b = ProgramBuilder(cfg)
        out, want, what = random_mul(b, rng, cfg)
        b.done()
        res = run_program(cfg, b.act, b.wgt, b.commands)
        assert res.done and not res.error, (what, res.cause)
        np.testing.assert_array_equal(from_words(res.act, out), want, err_msg=f"{what}")


def test_gate_reads_the_word_after_the_pixel():
    """A gate of an odd number of words read in pairs takes the word after the pixel where a
    pair starts at its last word: the stored copy of its first, so a gate stored without it
    gives other results (the ISA's contract, not a tolerance)."""
    cfg = TINY
    b = ProgramBuilder(cfg)
    x = b.put(np.ones((12, 1, 2), dtype=np.int64))   # 3 words a pixel: pairs (0,1) (2,3->0)
    g = b.put(np.arange(1, 13).reshape(12, 1, 1))
    stale = b.put(np.full((4, 1, 1), 100))   # the word after g, not a copy of its first
    out = b.mul(x, g, 1, gate=True)
    b.done()
    res = run_program(cfg, b.act, b.wgt, b.commands)
    got = from_words(res.act, out)[:, 0, :]
    assert got[:, 0].tolist() == [(v + 1) // 2 for v in range(1, 13)]
    assert got[:4, 1].tolist() == [50] * 4   # pixel 1's first word: from the word after g
    assert stale.addr == g.addr + g.words


def test_driver_errors():
    b = ProgramBuilder(TINY)
    x, y = b.put(np.zeros((4, 2, 3))), b.put(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match=r"mul needs a tensor of a's shape \(4x2x3\), not "
                                         r"4x3x2 \(CxHxW\)"):
        b.mul(x, y, 7)
    with pytest.raises(ValueError, match=r"mul needs a gate of one pixel of a's 4 channels, "
                                         r"not 5x1x1"):
        b.mul(x, b.put(np.zeros((5, 1, 1))), 7, gate=True)
    with pytest.raises(ValueError, match=r"shift must be an integer in \[1, 31\], not 0"):
        b.mul(x, x, 0)
    with pytest.raises(ValueError, match="a gate is one pixel, not 2 x 3"):
        b.gate(x)
    ecp5 = ProgramBuilder(MODEL_PRESETS["ecp5_128"])
    t = ecp5.put(np.zeros((4, 1, 1)))
    with pytest.raises(ValueError, match=r"accel_ecp5_128 has no element-wise product "
                                         r"\(elt_mul\)"):
        ecp5.mul(t, t, 7)


def test_mul_faults_in_golden():
    """An unshifted MUL faults SHAPE, a gate past the scratchpad or around ``dst`` ADDRESS;
    without ``elt_mul`` MUL is an illegal opcode."""
    for cfg, names in ((TINY, ("shape_mul_shift0", "address_mul_gate",
                               "address_mul_dst_inside_gate")),
                       (PRESETS["ecp5"], ("illegal_mul",))):
        faults = fault_programs(cfg, np.random.default_rng(0))
        for name in names:
            prog, cause, pc = faults[name]
            res = run_program(cfg, prog.act, prog.wgt, prog.commands)
            assert (res.cause, res.pc) == (cause, pc), name


# --- RTL ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    with HarnessHost.of(TINY) as host:
        yield host


def test_rtl_mul_equals_golden_and_cycle_model(tiny, seed):
    rng = np.random.default_rng(seed)
    wrong = []
    for _ in range(40):
        b = ProgramBuilder(TINY)
        out, want, what = random_mul(b, rng)
        b.done()
        gold = run_program(TINY, b.act, b.wgt, b.commands)
        np.testing.assert_array_equal(from_words(gold.act, out), want, err_msg=f"{what}")
        tiny.load(b)
        tiny.run(limit=100_000)
        np.testing.assert_array_equal(tiny.read_tensor(out), want,
                                      err_msg=f"{what} (seed {seed})")
        got, model = tiny.counters(), program_perf(TINY, b.commands).counters
        if got != model:
            wrong.append((what, {k: (got[k], model[k]) for k in got if got[k] != model[k]}))
    assert not wrong, f"seed {seed}: (shape, {{counter: (RTL, model)}}): {wrong[:5]}"


def test_rtl_mul_in_place_and_faults(tiny, seed):
    """A MUL in place (dst = src) is the out-of-place result; each MUL fault program stops at
    its command with golden's cause."""
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(TINY)
    x, y = _int8(rng, (8, 3, 4)), _int8(rng, (8, 3, 4))
    tx, ty = b.put(x), b.put(y)
    b.raw(encode(TINY, Op.MUL, src=tx.addr, dst=tx.addr, count=tx.words,
                 add={"src2": ty.addr, "mult_a": 0, "mult_b": 0, "shift": 7, "relu": 0}))
    b.done()
    tiny.load(b)
    tiny.run(limit=100_000)
    np.testing.assert_array_equal(tiny.read_tensor(tx), mul_reference(x, y, 7, False))
    faults = fault_programs(TINY, rng)
    for name in ("shape_mul_shift0", "address_mul_gate", "address_mul_dst_inside_gate"):
        prog, cause, pc = faults[name]
        tiny.load(prog)
        tiny.run(limit=100_000)
        st = tiny.status()
        assert (st["error"], st["cause"], st["pc"]) == (1, cause, pc), (name, st)
