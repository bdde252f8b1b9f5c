"""ADD and AVGPOOL: the driver, the golden interpreter against numpy, and the RTL (tiny preset,
C++ harness) against the golden interpreter bit for bit and against the cycle model counter for
counter, one command per program so each figure is one command's."""

from __future__ import annotations

import numpy as np
import pytest
from rtl_checks import int8 as _int8
from test_accel_mul import random_mul

from hwaccel.generators.accel import PRESETS, ActTensor, Cause, Op, ProgramBuilder, run_program
from hwaccel.generators.accel.avg_view import avg_fields, avg_parts
from hwaccel.generators.accel.cases import fault_programs
from hwaccel.generators.accel.config import MODEL_PRESETS
from hwaccel.generators.accel.driver import encode, from_words
from hwaccel.generators.accel.perf import program_perf
from hwaccel.numerics import add_params, avg_params
from hwaccel.sim.host import HarnessHost

TINY = PRESETS["tiny"]


def _avg_reference(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """C x H x W -> the floor-pooled means rounded half up, by exact integer arithmetic."""
    c, h, w = x.shape
    oh, ow = h // kh, w // kw
    s = x[:, : oh * kh, : ow * kw].reshape(c, oh, kh, ow, kw).sum(axis=(2, 4))
    n = kh * kw
    return np.floor_divide(2 * s + n, 2 * n)


def _add_reference(a, b, p, relu):
    num = a * p.multiplier_a + b * p.multiplier_b
    y = np.floor_divide(2 * num + (1 << p.shift), 1 << (p.shift + 1))
    return np.clip(y, 0 if relu else -128, 127)


def _random_add(b: ProgramBuilder, rng):
    c, h, w = int(rng.integers(1, 13)), int(rng.integers(1, 6)), int(rng.integers(1, 6))
    x, y = _int8(rng, (c, h, w)), _int8(rng, (c, h, w))
    p = add_params(float(rng.uniform(0.05, 2.0)), float(rng.uniform(0.05, 2.0)))
    relu = bool(rng.random() < 0.5)
    out = b.add(b.put(x), b.put(y), p, relu=relu)
    return out, _add_reference(x, y, p, relu), (c, h, w)


def _random_wide_avg(b: ProgramBuilder, rng, cfg):
    """A pool over more blocks than the unit keeps: windows as wide as the map, whose
    ``height x width`` pixels the command reads as rows (:mod:`.avg_view`)."""
    c, most = cfg.conv, cfg.avg_max_blocks
    blocks = int(rng.integers(most + 1, min(c.max_width, 3 * most) + 1))
    ch = int(rng.integers((blocks - 1) * cfg.lanes + 1, blocks * cfg.lanes + 1))
    h = int(rng.integers(1, c.max_height + 1))
    w = int(rng.integers(1, min(c.max_width, c.max_height // h, cfg.avg_max_window) + 1))
    kh = int(rng.integers(1, min(h, cfg.avg_max_window // w) + 1))
    x = _int8(rng, (ch, h, w))
    return b.avgpool(b.put(x), kh, w), _avg_reference(x, kh, w), (ch, h, w, kh, w)


def _random_banded_avg(b: ProgramBuilder, rng, cfg):
    """A pool no one command describes (:func:`.avg_view.avg_fields` refuses it), which runs as
    a command per band of window rows (:func:`.avg_view.avg_parts`): a map taller than the
    unit's rows, a line or map wider than them under windows as wide as it, or more blocks
    than the unit keeps over more rows than it reads."""
    c, most, top = cfg.conv, cfg.avg_max_blocks, cfg.avg_max_window
    kind, few = int(rng.integers(3)), min(most, 2) * cfg.lanes   # a few blocks: small maps
    if kind == 0:                       # taller than max_height
        w = int(rng.integers(1, min(c.max_width, 16) + 1))
        kh = int(rng.integers(1, min(c.max_height, top // w) + 1))
        kw = int(rng.integers(1, min(w, top // kh) + 1))
        h = int(rng.integers(c.max_height + 1, 3 * c.max_height + 1))
        ch = int(rng.integers(1, few + 1))
    elif kind == 1:                     # wider than max_width, windows as wide as the map
        w2 = int(rng.integers(2, c.max_width + 1))
        q = int(rng.integers(c.max_width // w2 + 1, min(top // w2, c.max_height) + 1))
        w = kw = w2 * q
        kh = int(rng.integers(1, min(top // w, c.max_height // q) + 1))
        h = int(rng.integers(kh, 4 * kh + 1))
        ch = int(rng.integers(1, few + 1))
    else:                               # more blocks than the unit keeps, over more rows
        blocks = int(rng.integers(most + 1, min(c.max_width, 3 * most) + 1))
        ch = int(rng.integers((blocks - 1) * cfg.lanes + 1, blocks * cfg.lanes + 1))
        w = kw = int(rng.integers(1, min(c.max_width, c.max_height // 2, top) + 1))
        kh = int(rng.integers(1, min(c.max_height // w, top // w) + 1))
        h = int(rng.integers(c.max_height // w + 1, 3 * c.max_height // w + 2))
        h = max(h, kh)
    with pytest.raises(ValueError, match="avgpool"):
        avg_fields(cfg, h, w, -(-ch // cfg.lanes), kh, kw)
    x = _int8(rng, (ch, h, w))
    return b.avgpool(b.put(x), kh, kw), _avg_reference(x, kh, kw), (ch, h, w, kh, kw)


def _random_avg(b: ProgramBuilder, rng, cfg=TINY):
    if rng.random() < 0.2:
        return _random_banded_avg(b, rng, cfg)
    if rng.random() < 0.25:
        return _random_wide_avg(b, rng, cfg)
    c = int(rng.integers(1, cfg.avg_max_blocks * cfg.lanes + 1))
    # Any map the engine holds whose whole-map (global) window the unit may still average.
    h = int(rng.integers(1, cfg.conv.max_height + 1))
    w = int(rng.integers(1, min(cfg.conv.max_width, cfg.avg_max_window // h) + 1))
    if rng.random() < 0.3:
        kh, kw = h, w                    # global average pooling
    else:
        kh, kw = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
    x = _int8(rng, (c, h, w))
    return b.avgpool(b.put(x), kh, kw), _avg_reference(x, kh, kw), (c, h, w, kh, kw)


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_golden_add_and_avgpool_equal_exact_integer_references(preset, seed):
    cfg = PRESETS[preset]
    rng = np.random.default_rng(seed)
    for _ in range(20):
        b = ProgramBuilder(cfg)
        add = _random_add(b, rng)
        avg = _random_avg(b, rng, cfg)
        b.done()
        res = run_program(cfg, b.act, b.wgt, b.commands)
        assert res.done and not res.error, res.cause
        for out, want, shape in (add, avg):
            np.testing.assert_array_equal(from_words(res.act, out), want,
                                          err_msg=f"{preset} {shape} (seed {seed})")


def test_golden_window_sizes_of_the_reference_models():
    """8x8 (ResNet-8), 25x5 (DS-CNN), 3x3 (MobileNet) global pools: exact with extreme values
    (every window all -128, all 127, and sums on a rounding tie)."""
    cfg = PRESETS["default"]
    for h, w in ((8, 8), (5, 25), (3, 3)):
        n = h * w
        x = np.zeros((6, h, w), dtype=np.int64)
        x[0], x[1] = -128, 127
        x[2].flat[: n // 2] = 1          # sum n//2: a tie when n is even
        x[3].flat[:] = -1
        x[3].flat[0] = -1 + (n % 2)      # sum -n + (n % 2)
        x[4].flat[:3] = (-128, 127, -128)
        x[5] = np.arange(n).reshape(h, w) % 256 - 128
        b = ProgramBuilder(cfg)
        out = b.avgpool(b.put(x), h, w)
        b.done()
        res = run_program(cfg, b.act, b.wgt, b.commands)
        np.testing.assert_array_equal(from_words(res.act, out)[:, 0, 0],
                                      _avg_reference(x, h, w)[:, 0, 0], err_msg=f"{h}x{w}")


def _golden_pool(cfg, make, rng, why: str):
    """A random pool by ``make`` run on golden, equal to the exact integer reference; returns
    its builder and shape."""
    b = ProgramBuilder(cfg)
    out, want, shape = make(b, rng, cfg)
    b.done()
    res = run_program(cfg, b.act, b.wgt, b.commands)
    assert res.done and not res.error, (shape, res.cause)
    np.testing.assert_array_equal(from_words(res.act, out), want, err_msg=f"{why} {shape}")
    return b, shape


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_golden_pools_over_more_blocks_than_the_unit_keeps(preset, seed):
    """One AVGPOOL command over more blocks than ``avg_max_blocks`` (windows as wide as the
    map): equal to the exact integer reference, and its cycles are those of the plain
    command's reads (every input word once, :func:`.perf.eltwise_cycles`)."""
    cfg = PRESETS[preset]
    rng = np.random.default_rng(seed)
    for _ in range(20):
        b, shape = _golden_pool(cfg, _random_wide_avg, rng, f"{preset} (seed {seed})")
        ch, h, w, kh, kw = shape   # the same pool as a plain command, on a unit that holds it
        wide = cfg.with_(avg_max_blocks=-(-ch // cfg.lanes))
        p = ProgramBuilder(wide)
        p.avgpool(p.put(from_words(b.act, ActTensor(0, ch, h, w, cfg.lanes))), kh, kw)
        p.done()
        assert program_perf(cfg, b.commands).cycles == program_perf(wide, p.commands).cycles


@pytest.mark.parametrize("preset", ["tiny", "ecp5_128"])
def test_golden_pools_beyond_the_units_rows_run_in_bands(preset, seed):
    """Pools no one AVGPOOL command describes run as one per band of window rows, each window
    whole in one command: equal to the exact integer reference, in place too."""
    cfg = {**PRESETS, **MODEL_PRESETS}[preset]
    rng = np.random.default_rng(seed)
    for _ in range(20):
        _golden_pool(cfg, _random_banded_avg, rng, f"{preset} (seed {seed})")
    # a 1 x 100 line's global pool on ecp5_128 (rows of 48): 4 rows of 25 in one command; a
    # 100 x 8 map's 2 x 8 windows: bands of at most 24 window rows (48 rows)
    parts = avg_parts(MODEL_PRESETS["ecp5_128"], 1, 100, 1, 1, 100)
    assert [(s, d, v["width"], v["height"], v["kw"], v["kh"]) for s, d, v in parts] == [
        (0, 0, 25, 4, 25, 4)]
    parts = avg_parts(MODEL_PRESETS["ecp5_128"], 100, 8, 2, 2, 8)
    assert [(s, d, v["height"], v["out_height"]) for s, d, v in parts] == [
        (0, 0, 48, 24), (24 * 2 * 8 * 2, 24 * 2, 48, 24), (48 * 2 * 8 * 2, 48 * 2, 4, 2)]
    # in place (dst = src): each band writes below the rows the later bands read
    b = ProgramBuilder(TINY)
    x = _int8(rng, (8, 21, 4))
    t = b.put(x)
    m, sh = avg_params(4)
    parts = avg_parts(TINY, 21, 4, 2, 2, 2)
    assert len(parts) == 3
    for src, dst, v in parts:
        b.raw(encode(TINY, Op.AVGPOOL, src=t.addr + src, dst=t.addr + dst,
                     avg={**v, "mult": m, "shift": sh}))
    b.done()
    res = run_program(TINY, b.act, b.wgt, b.commands)
    assert res.done, res.cause
    pooled = from_words(res.act, ActTensor(t.addr, 8, 10, 2, TINY.lanes))
    np.testing.assert_array_equal(pooled, _avg_reference(x, 2, 2))


def test_in_place_add_and_avgpool(seed):
    """dst equal to a source, or below it, is legal and gives the out-of-place result."""
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(TINY)
    x, y = _int8(rng, (8, 3, 4)), _int8(rng, (8, 3, 4))
    tx, ty = b.put(x), b.put(y)
    p = add_params(0.9, 0.4)
    fields = {"src2": ty.addr, "mult_a": p.multiplier_a, "mult_b": p.multiplier_b,
              "shift": p.shift, "relu": 0}
    b.raw(encode(TINY, Op.ADD, src=tx.addr, dst=ty.addr, count=tx.words, add=fields))
    m, s = avg_params(4)
    z = _int8(rng, (8, 4, 4))
    b.alloc(4, 1, 3)   # 3 spare words, which the pooled map overlaps below its source
    tz = b.put(z)
    v = {"width": 4, "height": 4, "blocks": 2, "kw": 2, "kh": 2, "out_width": 2,
         "out_height": 2, "mult": m, "shift": s}
    b.raw(encode(TINY, Op.AVGPOOL, src=tz.addr, dst=tz.addr - 3, avg=v))   # below its source
    b.done()
    res = run_program(TINY, b.act, b.wgt, b.commands)
    assert res.done, res.cause
    np.testing.assert_array_equal(from_words(res.act, ty), _add_reference(x, y, p, False))
    pooled = from_words(res.act, ActTensor(tz.addr - 3, 8, 2, 2, TINY.lanes))
    np.testing.assert_array_equal(pooled, _avg_reference(z, 2, 2))


def test_driver_errors():
    b = ProgramBuilder(TINY)
    x, y = b.put(np.zeros((4, 2, 3))), b.put(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match=r"add needs two tensors of one shape, not 4x2x3 and "
                                         r"4x3x2 \(CxHxW\)"):
        b.add(x, y, add_params(1.0, 1.0))
    with pytest.raises(TypeError, match="p must be an AddRequant"):
        b.add(x, x, (1, 1, 1))
    with pytest.raises(ValueError, match="avgpool window 3x3 is larger than the 2x3 map"):
        b.avgpool(x, 3, 3)
    with pytest.raises(ValueError, match="avgpool kw must be a positive integer, not 0"):
        b.avgpool(x, 1, 0)
    with pytest.raises(ValueError, match=r"avgpool over 20 channels \(5 words a pixel\) on "
                       r"accel_tiny: its AVGPOOL unit keeps 4 words \(avg_max_blocks, 16 "
                       r"channels\), and pools more only with windows as wide as the map "
                       r"\(global pooling\), not 2x2 over 2x4"):
        b.avgpool(b.put(np.zeros((17, 2, 4))), 2, 2)
    with pytest.raises(ValueError, match=r"pooled as a map of one pixel a row, here 9 rows of "
                                         r"5 x 1 words, and accel_tiny's maps are at most 8 "
                                         r"rows of 8 pixels"):
        b.avgpool(b.put(np.zeros((17, 3, 3))), 3, 3)
    # taller than the unit's rows and too wide to band: windows neither fit nor span the map
    with pytest.raises(ValueError, match="avgpool height must be at most 8 on accel_tiny"):
        b.avgpool(b.put(np.zeros((4, 9, 10))), 9, 2)
    small = TINY.with_(avg_max_window=8)
    with pytest.raises(ValueError, match=r"averages 9 values; accel_tiny averages at most 8"):
        ProgramBuilder(small).avgpool(ActTensor(0, 4, 3, 3, small.lanes), 3, 3)


def test_window_limit_is_a_shape_fault():
    """A window over ``avg_max_window`` values faults SHAPE (a config whose maps allow one)."""
    cfg = TINY.with_(avg_max_window=16)
    b = ProgramBuilder(cfg)
    x = b.put(np.zeros((4, 5, 4)))
    m, s = avg_params(20)
    v = {"width": 4, "height": 5, "blocks": 1, "kw": 4, "kh": 5, "out_width": 1,
         "out_height": 1, "mult": m, "shift": s}
    b.raw(encode(cfg, Op.AVGPOOL, src=x.addr, dst=x.words, avg=v))
    b.done()
    res = run_program(cfg, b.act, b.wgt, b.commands)
    assert (res.cause, res.pc) == (Cause.SHAPE, 0)


def test_fault_programs_cover_the_new_commands():
    names = set(fault_programs(TINY, np.random.default_rng(0)))
    assert {"shape_add_empty", "shape_add_shift0", "address_add_src2",
            "address_add_dst_inside_src", "address_add_dst_inside_src2",
            "address_avg_dst_inside_src", "shape_avg_not_floor", "shape_avg_blocks"} <= names


# --- RTL ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny():
    with HarnessHost.of(TINY) as host:
        yield host


@pytest.mark.parametrize("kind, count", [("add", 60), ("avgpool", 120)])
def test_rtl_single_commands_equal_golden_and_cycle_model(tiny, kind, count, seed):
    rng = np.random.default_rng(seed)
    wrong = []
    for _ in range(count):
        b = ProgramBuilder(TINY)
        out, _, shape = (_random_add if kind == "add" else _random_avg)(b, rng)
        b.done()
        gold = run_program(TINY, b.act, b.wgt, b.commands)
        tiny.load(b)
        tiny.run(limit=100_000)
        np.testing.assert_array_equal(tiny.read_tensor(out), from_words(gold.act, out),
                                      err_msg=f"{kind} {shape} (seed {seed})")
        got, model = tiny.counters(), program_perf(TINY, b.commands).counters
        if got != model:
            wrong.append((shape, {k: (got[k], model[k]) for k in got if got[k] != model[k]}))
    assert not wrong, (f"{kind} (seed {seed}): {len(wrong)} of {count} differ, (shape, "
                       f"{{counter: (RTL, model)}}): {wrong[:5]}")


def test_rtl_in_place_and_overlap_fault(tiny, seed):
    """In-place ADD/AVGPOOL bit-exact on the RTL; a dst inside a source faults ADDRESS there."""
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(TINY)
    tx, ty = b.put(_int8(rng, (8, 3, 4))), b.put(_int8(rng, (8, 3, 4)))
    p = add_params(0.6, 1.3)
    add = {"src2": tx.addr, "mult_a": p.multiplier_a, "mult_b": p.multiplier_b,
           "shift": p.shift, "relu": 1}
    b.raw(encode(TINY, Op.ADD, src=ty.addr, dst=tx.addr, count=tx.words, add=add))
    m, s = avg_params(12)
    v = {"width": 4, "height": 3, "blocks": 2, "kw": 4, "kh": 3, "out_width": 1,
         "out_height": 1, "mult": m, "shift": s}
    b.raw(encode(TINY, Op.AVGPOOL, src=ty.addr, dst=ty.addr, avg=v))
    b.raw(encode(TINY, Op.AVGPOOL, src=ty.addr, dst=ty.addr + 1, avg=v))
    b.done()
    gold = run_program(TINY, b.act, b.wgt, b.commands)
    assert (gold.cause, gold.pc) == (Cause.ADDRESS, 2)
    tiny.load(b)
    tiny.run(limit=100_000)
    st = tiny.status()
    assert (st["error"], st["cause"], st["pc"]) == (1, Cause.ADDRESS, 2), st
    np.testing.assert_array_equal(tiny.read_act(0, b.act_top), gold.act[: b.act_top],
                                  err_msg=f"seed {seed}")


def test_rtl_watchdog_covers_the_unit(tiny, seed):
    """The watchdog sees the unit's reads and stores: an AVGPOOL moves no word in its two
    set-up cycles, nor from its last reads until its first result is stored (the word's two
    registers, the sum, the multipliers' operand and product, rounding, shift and result
    registers), so a WATCHDOG of 5 times it out at its pc (and resets the unit with the
    engines); at 6 it runs, and so does the same program after the timeout, bit-exact and with
    the model's counters."""
    from hwaccel.generators.accel import Region
    from hwaccel.generators.accel.host import address
    from hwaccel.generators.accel.isa import Reg

    rng = np.random.default_rng(seed)
    b = ProgramBuilder(TINY)
    out = b.avgpool(b.put(_int8(rng, (16, 8, 8))), 8, 8)
    b.done()
    gold = run_program(TINY, b.act, b.wgt, b.commands)
    watchdog = address(TINY, Region.REG, Reg.WATCHDOG)
    try:
        for limit, want in ((5, (0, 1, Cause.TIMEOUT, 0)), (6, (1, 0, Cause.NONE, 1)),
                            (5, (0, 1, Cause.TIMEOUT, 0)), (0, (1, 0, Cause.NONE, 1))):
            tiny.load(b)
            tiny.write(watchdog, limit)
            tiny.run(limit=100_000)
            st = tiny.status()
            assert (st["done"], st["error"], st["cause"], st["pc"]) == want, (limit, st)
        np.testing.assert_array_equal(tiny.read_tensor(out), from_words(gold.act, out))
        assert tiny.counters() == program_perf(TINY, b.commands).counters
    finally:
        tiny.write(watchdog, 0)


@pytest.mark.parametrize("stage", [False, True], ids=["one_stage", "add_product_stage"])
def test_rtl_shared_lane_products_under_lut_multipliers(seed, stage):
    """Under ``lut_multipliers`` AVGPOOL's lane multipliers take the ADD's (and MUL's) first
    word too (:mod:`hwaccel.generators.accel.elt_products`): programs that switch between ADD,
    MUL and AVGPOOL jobs back to back stay bit-exact, every counter equal to the model. With
    ``add_product_stage`` the second word's products are a cycle later and taken a cycle
    later: the same outputs and the same cycles."""
    cfg = TINY.with_(lut_multipliers=True, add_product_stage=stage)
    rng = np.random.default_rng(seed)
    with HarnessHost.of(cfg) as host:
        for trial in range(12):
            b = ProgramBuilder(cfg)
            makers = (_random_add, lambda b, r: _random_avg(b, r, cfg), random_mul)
            outs = [makers[(trial + i) % 3](b, rng) for i in range(4)]
            b.done()
            gold = run_program(cfg, b.act, b.wgt, b.commands)
            host.load(b)
            host.run(limit=100_000)
            for out, _, shape in outs:
                np.testing.assert_array_equal(host.read_tensor(out), from_words(gold.act, out),
                                              err_msg=f"{shape} (seed {seed}, trial {trial})")
            assert host.counters() == program_perf(cfg, b.commands).counters
