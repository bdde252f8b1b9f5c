"""Accelerator programs, written once and used by the golden tests, the RTL benches and the
benchmark: random programs, fault programs and the reference CNN."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...numerics import INT8, add_params, avg_params, requant_params
from .avg_view import avg_fields
from .config import AccelConfig
from .driver import ActTensor, ProgramBuilder, encode
from .isa import Cause, Op

__all__ = ["random_program", "fault_programs", "cnn_program", "CnnProgram", "random_requant"]


def _int8(rng, shape) -> np.ndarray:
    return rng.integers(INT8.min, INT8.max + 1, size=shape, dtype=np.int64)


def random_requant(rng, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bias, multiplier, shift for ``n`` outputs of ``k``-term int8 sums (outputs spread)."""
    spread = math.sqrt(k) * 74.0 * 74.0
    params = [requant_params(40.0 / spread * float(rng.uniform(0.5, 2.0))) for _ in range(n)]
    bias = rng.integers(-int(spread) // 2, int(spread) // 2 + 1, n, dtype=np.int64)
    return (bias, np.array([p.multiplier for p in params], dtype=np.int64),
            np.array([p.shift for p in params], dtype=np.int64))


def random_program(cfg: AccelConfig, rng: np.random.Generator, commands: int = 6
                   ) -> ProgramBuilder:
    """Random CONV/GEMM/MAXPOOL/FENCE/ADD/AVGPOOL commands with random shapes and chained or
    fresh inputs, ended by DONE. Shapes stay within the config; GEMMs span several engine tiles
    in M, K and N (K up to three tiles, so partial sums are exercised)."""
    c = cfg.conv
    b = ProgramBuilder(cfg)

    def fresh(max_pixels_w=c.max_width):
        ch = int(rng.integers(1, c.max_cin + 1))
        h, w = int(rng.integers(1, c.max_height + 1)), int(rng.integers(1, max_pixels_w + 1))
        return b.put(_int8(rng, (ch, h, w)))

    cur = fresh()
    eseed = int(rng.integers(1 << 62))
    erng = np.random.default_rng(eseed)
    drng = np.random.default_rng([eseed, 1])   # depthwise CONVs, also on their own generator
    for _ in range(commands):
        kinds = ["conv", "conv", "gemm", "pool", "fence"] + (["lstm"] if cfg.lstm else [])
        kind = rng.choice(kinds)
        try:
            # An ADD or AVGPOOL on top of a fifth of the commands, drawn from their own
            # generator: the other commands keep their share and distribution (K and N tiling).
            if erng.random() < 0.2:
                cur = _random_eltwise(b, erng, cur, erng.choice(["add", "avgpool"]), fresh)
            if drng.random() < 0.25 and cur.height <= c.max_height and cur.width <= c.max_width:
                cur = _random_depthwise(b, drng, cur)
            if kind == "fence":
                b.fence()
                continue
            if kind == "lstm":
                from ..lstm.cases import random_params

                # Any size up to the cell's: I and H are the command's fields.
                lc = cfg.lstm.run(int(rng.integers(1, cfg.lstm.input_size + 1)),
                                  int(rng.integers(1, cfg.lstm.hidden_size + 1)))
                steps = int(rng.integers(1, 9))
                xs = b.put(_int8(rng, (lc.input_size, 1, steps)))
                cur = b.lstm(xs, random_params(lc, rng))
                continue
            if kind == "gemm":
                # K and N up to three engine tiles; M up to two whole M tiles and a bit.
                k_most, n_most = 3 * c.max_groups * c.lanes, 3 * c.max_blocks * c.block
                if rng.random() < 0.4 or cur.channels > k_most:
                    k = int(rng.integers(1, k_most + 1))
                    rows = 2 * c.max_width * c.max_height + c.max_width
                    rows = min(rows, 4 * c.max_width * c.max_groups // -(-k // c.lanes))
                    m = int(rng.integers(1, rows + 1))
                    cur = b.put(_int8(rng, (k, 1, m)))
                n = int(rng.integers(1, n_most + 1))
                w = _int8(rng, (cur.channels, n))
                cur = b.gemm(cur, w, *random_requant(rng, n, cur.channels),
                             relu=bool(rng.random() < 0.5))
                continue
            if cur.height > c.max_height or cur.width > c.max_width or cur.channels > c.max_cin:
                cur = fresh()
            if kind == "pool":
                if cur.height < 2 or cur.width < 2 or cur.channels > c.max_cout:
                    cur = fresh()
                    if cur.height < 2 or cur.width < 2:
                        continue
                if cur.channels <= c.max_cout:
                    cur = b.maxpool(cur)
                continue
            k = int(rng.integers(1, min(c.max_kernel, cur.height, cur.width) + 1))
            pad = int(rng.integers(0, (k - 1) // 2 + 1))
            stride = int(rng.choice([1, 2]))
            oh = (cur.height + 2 * pad - k) // stride + 1
            ow = (cur.width + 2 * pad - k) // stride + 1
            pool = bool(oh >= 2 and ow >= 2 and rng.random() < 0.4)
            n = int(rng.integers(1, c.max_cout + 1))
            w = _int8(rng, (n, cur.channels, k, k))
            cur = b.conv(cur, w, *random_requant(rng, n, k * k * cur.channels), stride=stride,
                         padding=pad, relu=bool(rng.random() < 0.6), pool=pool)
        except ValueError as exc:
            if "does not fit" not in str(exc):
                raise
            break  # scratchpad full: end the program here
    b.done()
    return b


def _random_depthwise(b: ProgramBuilder, rng: np.random.Generator, cur: ActTensor
                      ) -> ActTensor:
    """A depthwise CONV on ``cur``: kernel up to ``dw_kernel`` a side, stride 1 or 2 per axis,
    random padding on each side, pooled at times."""
    c = b.cfg.conv
    kh = int(rng.integers(1, min(c.dw_kernel, cur.height + 2 * c.max_pad) + 1))
    kw = int(rng.integers(1, min(c.dw_kernel, cur.width + 2 * c.max_pad) + 1))
    top = int(rng.integers(0, min(c.max_pad, kh - 1) + 1))
    left = int(rng.integers(0, min(c.max_pad, kw - 1) + 1))
    pads = (top, left, int(rng.integers(0, min(c.max_pad, kh - 1 - top) + 1)),
            int(rng.integers(0, min(c.max_pad, kw - 1 - left) + 1)))
    stride = (int(rng.choice([1, 2])), int(rng.choice([1, 2])))
    if cur.height + pads[0] + pads[2] < kh or cur.width + pads[1] + pads[3] < kw:
        return cur
    oh = (cur.height + pads[0] + pads[2] - kh) // stride[0] + 1
    ow = (cur.width + pads[1] + pads[3] - kw) // stride[1] + 1
    pool = bool(oh >= 2 and ow >= 2 and rng.random() < 0.3)
    w = _int8(rng, (cur.channels, 1, kh, kw))
    return b.dwconv(cur, w, *random_requant(rng, cur.channels, kh * kw), stride=stride,
                    padding=pads, relu=bool(rng.random() < 0.6), pool=pool)


def fault_programs(cfg: AccelConfig, rng: np.random.Generator) -> dict[str, tuple]:
    """``name -> (builder, expected cause, expected pc)``: a good command, then a bad one."""
    out = {}
    c = cfg.conv

    def start():
        b = ProgramBuilder(cfg)
        x = b.put(_int8(rng, (2, 4, 4)))
        w = _int8(rng, (3, 2, 3, 3))
        y = b.conv(x, w, *random_requant(rng, 3, 18))
        return b, x, y

    b, x, y = start()
    b.raw(encode(cfg, 15, src=x.addr))
    out["illegal_15"] = (b, Cause.ILLEGAL_OPCODE, 1)
    if cfg.attention is None:   # no attention units: their commands are illegal, by opcode
        from .attn_isa import ATTN_OPS

        for op in ATTN_OPS:
            b, x, y = start()
            b.raw(encode(cfg, op, src=x.addr, dst=y.addr, count=1))
            out[f"illegal_{op.name.lower()}"] = (b, Cause.ILLEGAL_OPCODE, 1)
    out.update(_eltwise_faults(cfg, start))
    if cfg.lstm is not None:
        b, x, y = start()
        b.raw(encode(cfg, Op.LSTM, src=x.addr, dst=y.addr, count=0))
        out["shape_lstm_empty"] = (b, Cause.SHAPE, 1)
        b, x, y = start()
        size = {"input_size": cfg.lstm.input_size, "hidden_size": cfg.lstm.hidden_size}
        b.raw(encode(cfg, Op.LSTM, src=x.addr, dst=y.addr, wgt=cfg.wgt_depth - 3, count=2,
                     lstm=size))
        out["address_lstm_wgt"] = (b, Cause.ADDRESS, 1)
        for field in size:   # a size one above the cell's
            b, x, y = start()
            b.raw(encode(cfg, Op.LSTM, src=x.addr, dst=y.addr, count=2,
                         lstm={**size, field: size[field] + 1}))
            out[f"shape_lstm_{field}"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, 0))
    out["illegal_zero"] = (b, Cause.ILLEGAL_OPCODE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.MAXPOOL, pool={"width": 4, "height": 4, "blocks": 1, "enable": 1},
                 src=cfg.act_depth - 3, dst=y.addr))
    out["address_src"] = (b, Cause.ADDRESS, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.MAXPOOL, pool={"width": 4, "height": 4, "blocks": 1, "enable": 1},
                 src=x.addr, dst=cfg.act_depth - 1))
    out["address_dst"] = (b, Cause.ADDRESS, 1)
    b, x, y = start()
    d = _conv_desc(cfg, x)
    b.raw(encode(cfg, Op.CONV, desc=d, src=x.addr, dst=y.addr, wgt=cfg.wgt_depth - 2))
    out["address_wgt"] = (b, Cause.ADDRESS, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.CONV, desc={**d, "out_width": d["out_width"] + 1}, src=x.addr,
                 dst=y.addr))
    out["shape_out_width"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.CONV, desc={**d, "kernel_h": 1}, src=x.addr, dst=y.addr))
    out["shape_inconsistent_kernel"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.CONV, desc={**d, "kernel_w": 1}, src=x.addr, dst=y.addr))
    out["shape_inconsistent_kernel_w"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.CONV, desc={**d, "stride2_w": 1}, src=x.addr, dst=y.addr))
    out["shape_inconsistent_stride_w"] = (b, Cause.SHAPE, 1)
    b, x, y = start()  # sizes consistent, but top + bottom padding not below the kernel height
    b.raw(encode(cfg, Op.CONV, desc={**d, "kernel_h": 2, "pad_top": 1, "pad_bottom": 1,
                                     "out_height": x.height + 1}, src=x.addr, dst=y.addr))
    out["shape_padding_sides"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.GEMM, desc=d, src=x.addr, dst=y.addr, count=4))  # a 3x3 template
    out["shape_gemm_kernel"] = (b, Cause.SHAPE, 1)
    g = _gemm_desc(cfg, c.max_groups * c.lanes, c.block)  # one full K tile, one block
    b, x, y = start()
    b.raw(encode(cfg, Op.GEMM, desc=g, src=x.addr, dst=y.addr, count=2, kw=1, nb=1))
    out["shape_gemm_groups"] = (b, Cause.SHAPE, 1)  # a K-tile template for a one-word row
    b, x, y = start()  # (kw + 1) x nb weight words from wgt run past the scratchpad
    nw = cfg.word_beats   # blocks of one word
    b.raw(encode(cfg, Op.GEMM, desc=_gemm_desc(cfg, c.max_groups * c.lanes, c.block * nw),
                 src=x.addr, dst=y.addr, count=2, kw=c.max_groups, nb=nw,
                 wgt=cfg.wgt_depth - c.max_groups))
    out["address_gemm_wgt"] = (b, Cause.ADDRESS, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.MAXPOOL, pool={"width": 1, "height": 4, "blocks": 1, "enable": 1},
                 src=x.addr, dst=y.addr))
    out["shape_pool_1wide"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.MAXPOOL, pool={"width": 4, "height": 4, "blocks": c.max_blocks + 1,
                                        "enable": 1}, src=x.addr, dst=y.addr))
    out["shape_pool_blocks"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.CONV, desc={**d, "width": c.max_width + 1,
                                     "out_width": c.max_width - 1}, src=x.addr, dst=y.addr))
    out["shape_conv_width"] = (b, Cause.SHAPE, 1)
    if cfg.word_beats > 1:   # a block below the lanes (.beats)
        out.update(_beat_faults(cfg, start))
    b, x, y = start()  # runs off the end of program memory: no DONE anywhere
    for _ in range(cfg.prog_depth - len(b.commands)):
        b.fence()
    out["pc_range"] = (b, Cause.PC_RANGE, cfg.prog_depth)
    assert c.max_kernel >= 3 and c.max_width >= 4 and c.max_groups >= 2 and c.max_height >= 5
    assert c.max_pad >= 1
    return out


def _beat_faults(cfg: AccelConfig, start) -> dict[str, tuple]:
    """CONV and GEMM commands whose result beats make no whole word, and a depthwise CONV
    with a group's weight words of one beat (``dw_chunks``, not ``dw_words``), where a word is
    more than one beat (:mod:`.beats`)."""
    from ..conv.layer import ConvLayer, descriptor

    c, out = cfg.conv, {}
    b, x, y = start()
    d = descriptor(c, ConvLayer(x.height, x.width, x.channels, c.block, 3))
    b.raw(encode(cfg, Op.CONV, desc=d, src=x.addr, dst=y.addr))
    out["shape_conv_part_word"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.GEMM, desc=_gemm_desc(cfg, c.lanes, c.block), src=x.addr, dst=y.addr,
                 count=2, kw=1, nb=1))
    out["shape_gemm_part_word"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    d = descriptor(c, ConvLayer(x.height, x.width, 1, 1, 3, depthwise=True))
    b.raw(encode(cfg, Op.CONV, desc=d | {"weight_words": c.dw_chunks}, src=x.addr,
                 dst=y.addr, nb=x.groups))
    out["shape_depthwise_one_beat"] = (b, Cause.SHAPE, 1)
    return out


def _conv_desc(cfg: AccelConfig, x: ActTensor) -> dict:
    from ..conv.layer import ConvLayer, descriptor

    return descriptor(cfg.conv, ConvLayer(x.height, x.width, x.channels, 3, 3))


def _gemm_desc(cfg: AccelConfig, k: int, n: int) -> dict:
    from ..conv.layer import ConvLayer, descriptor

    return descriptor(cfg.conv, ConvLayer(1, 1, k, n, 1))


@dataclass
class CnnProgram:
    builder: ProgramBuilder
    images: list[np.ndarray]     # 1 x 28 x 28 int8 each
    outputs: ActTensor           # batch x 10 logits (GEMM rows)
    layers: list[tuple]          # (name, w, bias, multiplier, shift) for the reference check


def cnn_program(cfg: AccelConfig, batch: int, seed: int) -> CnnProgram:
    """The reference CNN (conv 32, pool, conv 64, pool, conv 64, fc 64, fc 10) on ``batch``
    random images, layer-major: each layer's weights are stored once and reused by every image.

    fc1 runs as a CONV whose 3x3 kernel covers the whole 3x3x64 map (the same sum as Linear
    over the CHW flatten, weights reshaped 64 x 64 x 3 x 3), fc2 as one GEMM with M = batch.
    """
    rng = np.random.default_rng(seed)
    b = ProgramBuilder(cfg)
    shapes = [("conv1", (32, 1, 3, 3), True), ("conv2", (64, 32, 3, 3), True),
              ("conv3", (64, 64, 3, 3), False), ("fc1", (64, 64, 3, 3), False)]
    layers = []
    for name, shape, _ in shapes:
        k = shape[1] * shape[2] * shape[3]
        layers.append((name, _int8(rng, shape), *random_requant(rng, shape[0], k)))
    fc2 = ("fc2", _int8(rng, (64, 10)), *random_requant(rng, 10, 64))
    images = [_int8(rng, (1, 28, 28)) for _ in range(batch)]
    cur = [b.put(x) for x in images]
    for (_name, w, bias, mult, shift), (_, _, pool) in zip(layers, shapes):
        cur = [b.conv(t, w, bias, mult, shift, pool=pool) for t in cur]
    rows = b.view(cur[0], 64, 1, batch)
    out = b.gemm(rows, fc2[1], *fc2[2:], relu=False)
    b.done()
    return CnnProgram(b, images, out, [*layers, fc2])


def _random_eltwise(b: ProgramBuilder, rng, cur: ActTensor, kind: str, fresh) -> ActTensor:
    """An ADD of ``cur`` and a fresh tensor of its shape (or of ``cur`` itself), or an AVGPOOL of
    ``cur`` (or of a fresh map where ``cur`` is outside the unit's limits) with a random window,
    a third of them global."""
    cfg = b.cfg
    if kind == "add":
        other = cur if rng.random() < 0.5 else b.put(_int8(rng, (cur.channels, cur.height,
                                                                  cur.width)))
        p = add_params(float(rng.uniform(0.05, 1.5)), float(rng.uniform(0.05, 1.5)))
        return b.add(cur, other, p, relu=bool(rng.random() < 0.5))
    c = cfg.conv
    # More blocks than the unit keeps pool in one command when the window spans the map's
    # width and the command can describe it (:func:`.avg_view.avg_fields` says).
    wide = cur.groups > cfg.avg_max_blocks and cur.width <= cfg.avg_max_window
    if wide:
        try:
            avg_fields(cfg, cur.height, cur.width, cur.groups, 1, cur.width)
        except ValueError:
            wide = False
    if not wide and (cur.height > c.max_height or cur.width > c.max_width
                     or cur.groups > cfg.avg_max_blocks):
        cur = fresh()
    if wide:
        kh, kw = int(rng.integers(1, min(cur.height, cfg.avg_max_window // cur.width) + 1)), \
            cur.width
    elif rng.random() < 0.35:
        kh, kw = cur.height, cur.width
    else:
        kh, kw = int(rng.integers(1, cur.height + 1)), int(rng.integers(1, cur.width + 1))
    while kh * kw > cfg.avg_max_window:   # halve the longer side until the window fits
        kh, kw = (max(1, kh // 2), kw) if kh >= kw else (kh, max(1, kw // 2))
    return b.avgpool(cur, kh, kw)


def _eltwise_faults(cfg: AccelConfig, start) -> dict[str, tuple]:
    """ADD and AVGPOOL faults: empty or unshifted ADD, a second source past the scratchpad,
    a destination inside a source (either of an ADD's), an AVGPOOL whose output size is not
    the floor, a window or block count past the unit's limits; an unshifted MUL, a MUL gate
    past the scratchpad or around its destination (or, without ``elt_mul``, any MUL)."""
    out = {}
    p = {"src2": 0, "mult_a": 3, "mult_b": 5, "shift": 4, "relu": 0}
    b, x, y = start()
    b.raw(encode(cfg, Op.ADD, src=x.addr, dst=y.addr, count=0, add=p))
    out["shape_add_empty"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.ADD, src=x.addr, dst=y.addr, count=x.words, add={**p, "shift": 0}))
    out["shape_add_shift0"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.ADD, src=x.addr, dst=y.addr, count=4,
                 add={**p, "src2": cfg.act_depth - 3}))
    out["address_add_src2"] = (b, Cause.ADDRESS, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.ADD, src=x.addr, dst=x.addr + 1, count=x.words,
                 add={**p, "src2": y.addr}))
    out["address_add_dst_inside_src"] = (b, Cause.ADDRESS, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.ADD, src=x.addr, dst=y.addr + 1, count=y.words,
                 add={**p, "src2": y.addr}))
    out["address_add_dst_inside_src2"] = (b, Cause.ADDRESS, 1)
    b, x, y = start()   # x is 2 channels (one word a pixel) x 4 x 4
    m, s = avg_params(4)
    v = {"width": 4, "height": 4, "blocks": 1, "kw": 2, "kh": 2, "out_width": 2,
         "out_height": 2, "mult": m, "shift": s}
    b.raw(encode(cfg, Op.AVGPOOL, src=x.addr, dst=x.addr + 3, avg=v))
    out["address_avg_dst_inside_src"] = (b, Cause.ADDRESS, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.AVGPOOL, src=x.addr, dst=y.addr, avg={**v, "out_width": 1}))
    out["shape_avg_not_floor"] = (b, Cause.SHAPE, 1)
    b, x, y = start()
    b.raw(encode(cfg, Op.AVGPOOL, src=x.addr, dst=y.addr,
                 avg={**v, "blocks": cfg.avg_max_blocks + 1}))
    out["shape_avg_blocks"] = (b, Cause.SHAPE, 1)
    big = cfg.avg_max_window + 1
    side = min(cfg.conv.max_width, cfg.conv.max_height)
    if side * side >= big:    # a window over the unit's limit that the map allows
        k = -(-big // side)
        b, x, y = start()
        b.raw(encode(cfg, Op.AVGPOOL, src=x.addr, dst=y.addr,
                     avg={**v, "width": side, "height": k, "kw": side, "kh": k,
                          "out_width": 1, "out_height": 1}))
        out["shape_avg_window"] = (b, Cause.SHAPE, 1)
    # MUL's gate of n = 2 words reads 3 at src2 (faults a 1-word same-shape read would not)
    mul = {**p, "mult_a": 0, "mult_b": 2}
    cases = ((("shape_mul_shift0", Cause.SHAPE, {"shift": 0}, 0),
              ("address_mul_gate", Cause.ADDRESS, {"src2": cfg.act_depth - 2}, 0),
              ("address_mul_dst_inside_gate", Cause.ADDRESS, {}, 2)) if cfg.elt_mul
             else (("illegal_mul", Cause.ILLEGAL_OPCODE, {}, 0),))
    for name, cause, fields, dst in cases:
        b, x, y = start()
        b.raw(encode(cfg, Op.MUL, src=x.addr, dst=x.addr + dst if dst else y.addr, count=1,
                     add={**mul, "src2": x.addr, **fields}))
        out[name] = (b, cause, 1)
    return out
