"""The golden model: a Python interpreter of accelerator programs, bit-exact with the RTL.

It runs over the same memory images as the hardware (activation words, weight words, command
words), decodes commands with the same layout (:func:`.isa.command_layout`), applies the same
checks in the same order (so it predicts each fault's cause and pc), and computes every layer
with the conv engine's golden model (:func:`hwaccel.generators.conv.model.conv_golden`) on the
tensors it reads back out of the engine's native weight and requantizer beats. A GEMM walks
its tiles as the processor does (for the load counts); its sums are exact integers, which is what
the hardware's partial sums give (the processor bounds K so they never overflow).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.lib import data

from ...hdl.pack import unpack
from ...numerics import requantize
from ..conv.layer import ConvLayer
from ..conv.layouts import PADS, requant_layout
from ..conv.model import conv_golden
from .attn_isa import ATTN_OPS, attn_check, attn_cycles, attn_golden
from .config import AccelConfig
from .eltwise_checks import elt_golden, elt_golden_check
from .fuse_model import fused_gelu, run_fused
from .isa import Cause, Op, command_layout, elt_ops

__all__ = ["GoldenResult", "run_program", "decode"]


@dataclass
class GoldenResult:
    act: np.ndarray               # act_depth x lanes, the activation scratchpad afterwards
    done: bool
    error: bool
    cause: Cause
    pc: int
    counters: dict = field(default_factory=dict)   # the counters the model predicts exactly


def _fields(layout, word: int) -> dict:
    out = {}
    for name, f in layout:
        v = (word >> f.offset) & ((1 << f.width) - 1)
        nested = isinstance(f.shape, (data.StructLayout, data.UnionLayout))
        out[name] = _fields(f.shape, v) if nested else v
    return out


def decode(cfg: AccelConfig, word: int) -> dict:
    """A command word's fields (``desc`` and ``pool`` as dicts)."""
    return _fields(command_layout(cfg), word)


def _weights(cfg: AccelConfig, d: dict, words: list[int], cin: int) -> np.ndarray:
    """Invert :func:`hwaccel.generators.conv.plan.plan_layer`'s weight order."""
    lanes, blk, kh, kw = cfg.conv.lanes, cfg.conv.block, d["kernel_h"], d["kernel_w"]
    w = np.zeros((d["blocks"] * blk, cin, kh, kw), dtype=np.int64)
    step, rl = d["rows_per_chunk"], d["row_lanes"]
    kxs = [kw - 1] if d["packed"] else range(kw)
    it = iter(words)
    for b in range(d["blocks"]):
        for ky in range(0, kh, step):
            for kx in kxs:
                for g in range(d["groups"]):
                    word = np.array(unpack(next(it), 8, lanes * blk)).reshape(lanes, blk)
                    for lane in range(lanes):
                        if d["packed"]:
                            r, i = divmod(lane, rl)
                            if r < step and ky + r < kh and i // cin < kw:
                                w[b * blk:(b + 1) * blk, i % cin, ky + r, i // cin] = word[lane]
                        elif g * lanes + lane < cin:
                            w[b * blk:(b + 1) * blk, g * lanes + lane, ky, kx] = word[lane]
    return w


def _requant(cfg: AccelConfig, words: list[int]) -> tuple[np.ndarray, ...]:
    layout = requant_layout(cfg.conv)
    elem = layout.elem_shape
    vals = {"bias": [], "multiplier": [], "shift": []}
    for word in words:
        for n in range(cfg.conv.block):
            f = _fields(elem, (word >> (n * elem.size)) & ((1 << elem.size) - 1))
            b = f["bias"]
            vals["bias"].append(b - (1 << 32) if b >= 1 << 31 else b)
            vals["multiplier"].append(f["multiplier"])
            vals["shift"].append(f["shift"])
    return tuple(np.array(vals[k], dtype=np.int64) for k in ("bias", "multiplier", "shift"))


def _run_layer(cfg, act, wgt, d, src, dst, wgt_base, height, width) -> int:
    lanes = cfg.lanes
    cin = d["shift_lanes"] if d["packed"] else d["groups"] * lanes
    g = d["groups"]
    x = act[src:src + height * width * g].reshape(height, width, g * lanes)
    x = x.transpose(2, 0, 1)[:cin]
    ww = wgt[wgt_base:wgt_base + d["weight_words"]]
    rq = wgt[wgt_base + d["weight_words"]:wgt_base + d["weight_words"] + d["blocks"]]
    w = _weights(cfg, d, ww, cin)
    bias, mult, shift = _requant(cfg, rq)
    layer = ConvLayer(height, width, cin, d["blocks"] * cfg.conv.block,
                      (d["kernel_h"], d["kernel_w"]), (1 + d["stride2_h"], 1 + d["stride2_w"]),
                      tuple(d[f] for f in PADS), bool(d["relu"]), bool(d["pool"]))
    y = conv_golden(layer, x, w, bias, mult, shift)  # Cout x OH x OW
    words = y.transpose(1, 2, 0).reshape(-1, lanes)
    act[dst:dst + len(words)] = words
    oh, ow = layer.out_size
    return oh * ow * d["weight_words"]


def _dw_weights(cfg: AccelConfig, d: dict, words: list[int]) -> np.ndarray:
    """Invert :func:`hwaccel.generators.conv.plan.plan_layer`'s depthwise words: ``lanes x 1 x
    KH x KW`` (lane ``k`` of chunk ``c`` is tap slot ``c*lanes + k``, ``dw_slot_taps``; word
    ``h x dw_chunks + c`` is chunk ``c`` of beat ``h``, channels ``h x block`` on)."""
    lanes, blk = cfg.lanes, cfg.conv.block
    kh, kw = d["kernel_h"], d["kernel_w"]
    taps = cfg.conv.dw_slot_taps(kh, kw)
    w = np.zeros((lanes, 1, kh, kw), dtype=np.int64)
    for i, word in enumerate(words):
        (h, c), lw = divmod(i, cfg.conv.dw_chunks), unpack(word, 8, lanes * blk)
        lw = np.array(lw).reshape(lanes, blk)
        for k, tap in enumerate(taps[c * lanes:(c + 1) * lanes]):
            if tap is not None:
                w[h * blk:(h + 1) * blk, 0, tap[0], tap[1]] = lw[k]
    return w


def _run_depthwise(cfg, act, wgt, d, c) -> int:
    """A depthwise CONV: channel group ``g`` on word ``g`` of every pixel, with the ``g``-th
    ``weight_words + dw_beats`` weight words (the processor's jobs walk the groups in this
    order, up to ``dw_groups`` a job: :func:`dw_jobs`); returns the fabric's issue cycles."""
    lanes, nb, ww, db = cfg.lanes, c["nb"], d["weight_words"], cfg.conv.dw_beats
    h, w_ = d["height"], d["width"]
    layer = ConvLayer(h, w_, lanes, lanes, (d["kernel_h"], d["kernel_w"]),
                      (1 + d["stride2_h"], 1 + d["stride2_w"]), tuple(d[f] for f in PADS),
                      bool(d["relu"]), bool(d["pool"]), True)
    for g in range(nb):
        base = c["wgt"] + g * (ww + db)
        x = act[c["src"] + g:c["src"] + h * w_ * nb:nb].reshape(h, w_, lanes).transpose(2, 0, 1)
        bias, mult, shift = _requant(cfg, wgt[base + ww:base + ww + db])
        y = conv_golden(layer, x, _dw_weights(cfg, d, wgt[base:base + ww]), bias, mult, shift)
        words = y.transpose(1, 2, 0).reshape(-1, lanes)
        act[c["dst"] + g:c["dst"] + len(words) * nb:nb] = words
    oh, ow = layer.out_size
    return nb * oh * ow * ww


def dw_jobs(cfg: AccelConfig, c: dict) -> list[tuple[dict, tuple]]:
    """``(descriptor, weight reads)`` of the engine jobs of depthwise CONV ``c``, as the
    processor walks them: ``dw_groups`` channel groups a job (one when the layer pools), the
    job's ``blocks`` its groups and ``weight_words`` theirs; the reads are ``(address, count,
    run, stride)``, the key the datapath compares for weight reuse."""
    d, nb, ww = c["desc"], c["nb"], c["desc"]["weight_words"]
    k, per = 1 if d["pool"] else cfg.conv.dw_groups, ww + cfg.conv.dw_beats
    return [(d | {"blocks": min(k, nb - g0), "weight_words": min(k, nb - g0) * ww},
             (c["wgt"] + g0 * per, min(k, nb - g0) * per, 1, 1)) for g0 in range(0, nb, k)]


def _gemm_jobs(cfg: AccelConfig, c: dict):
    """The processor's GEMM walk: ``(n0, b_t, k0, g_t, tile rows, weight reads)`` per job; the
    reads are ``(address, count, run, stride)``, the key the datapath compares for reuse."""
    mg, mb, kw, nb = cfg.conv.max_groups, cfg.conv.max_blocks, c["kw"], c["nb"]
    mw, mh = cfg.conv.max_width, cfg.conv.max_height
    w_nt = c["wgt"]
    for n0 in range(0, nb, mb):
        bt = min(mb, nb - n0)
        rem = c["count"]
        while rem:
            if kw > mg:
                tile = min(rem, cfg.psum_width)
            else:
                tile = mw * mh if rem >= mw * mh else min(rem, mw)
            for k0 in range(0, kw, mg):
                gt = min(mg, kw - k0)
                w_k = w_nt + k0 * bt
                yield n0, bt, k0, gt, tile, (w_k, gt * bt + bt, gt * bt, w_nt + kw * bt - w_k)
            rem -= tile
        w_nt += (kw + 1) * bt


def _run_gemm(cfg: AccelConfig, act, wgt, c: dict) -> None:
    d, kw, nb, rows = c["desc"], c["kw"], c["nb"], c["count"]
    lanes, blk, mg, mb = cfg.lanes, cfg.conv.block, cfg.conv.max_groups, cfg.conv.max_blocks
    x = act[c["src"]:c["src"] + rows * kw].reshape(rows, kw * lanes)
    y = np.zeros((rows, nb * blk), dtype=np.int64)
    base = c["wgt"]
    for n0 in range(0, nb, mb):
        bt = min(mb, nb - n0)
        bias, mult, shift = _requant(cfg, wgt[base + kw * bt:base + (kw + 1) * bt])
        acc = np.broadcast_to(bias, (rows, bt * blk)).copy()
        for k0 in range(0, kw, mg):
            gt = min(mg, kw - k0)
            td = {**d, "groups": gt, "blocks": bt, "weight_words": gt * bt}
            cin = td["shift_lanes"] if td["packed"] else gt * lanes
            w = _weights(cfg, td, wgt[base + k0 * bt:base + (k0 + gt) * bt], cin)
            acc += x[:, k0 * lanes:k0 * lanes + cin] @ w[:, :, 0, 0].T
        y[:, n0 * blk:(n0 + bt) * blk] = requantize(acc, mult, shift, relu=bool(d["relu"]))
        base += (kw + 1) * bt
    words = y.reshape(-1, lanes)   # rows of nb blocks: nb / word_beats words each
    act[c["dst"]:c["dst"] + len(words)] = words


def _run_lstm(cfg, act, wgt, c) -> None:
    """Invert :mod:`hwaccel.generators.lstm.driver`'s load order at the command's sizes, then
    run its golden model."""
    from ..lstm.cell import param_layout
    from ..lstm.driver import lane_rows, weight_positions
    from ..lstm.model import LstmParams, golden_sequence
    from .lstm_checks import lstm_words

    src, dst, base, steps = c["src"], c["dst"], c["wgt"], c["count"]
    lc = cfg.lstm.run(c["lstm"]["input_size"], c["lstm"]["hidden_size"])
    gx, gh, _ = lstm_words(cfg, lc.input_size, lc.hidden_size)
    P, I, H = lc.lanes, lc.input_size, lc.hidden_size
    beats = np.array([unpack(wgt[base + a], 8, P) for a in range(lc.weight_depth)])
    rows, cols = weight_positions(lc)
    w = np.zeros((P * lc.slots, I + H), dtype=np.int64)
    w[rows, cols] = beats
    w_torch = np.zeros((lc.rows, I + H), dtype=np.int64)
    w_torch[lane_rows(H)] = w[: lc.rows]
    layout = param_layout(lc)
    par = [_fields(layout, wgt[base + lc.weight_depth + q]) for q in range(lc.rows)]
    bias_bits = layout["bias"].shape.width
    bias = [f["bias"] - (1 << bias_bits) if f["bias"] >> (bias_bits - 1) else f["bias"]
            for f in par]
    p = LstmParams(w_ih=w_torch[:, :I], w_hh=w_torch[:, I:],
                   **{k: np.array([f[k] for f in par], dtype=np.int64)
                      for k in ("mult_x", "shift_x", "mult_h", "shift_h")},
                   bias=np.array(bias, dtype=np.int64))
    x = act[src:src + steps * gx].reshape(steps, gx * cfg.lanes)[:, :I]
    h, _ = golden_sequence(p, x)
    out = np.zeros((steps, gh * cfg.lanes), dtype=np.int64)
    out[:, :H] = h
    act[dst:dst + steps * gh] = out.reshape(-1, cfg.lanes)


def run_program(cfg: AccelConfig, act, wgt: list[int], prog: list[int], *, start_pc: int = 0,
                max_commands: int = 100_000) -> GoldenResult:
    """Run the program at ``start_pc`` on copies of the memory images; never raises for a
    program fault (it returns the fault, as the hardware does)."""
    act = np.array(act, dtype=np.int64).reshape(cfg.act_depth, cfg.lanes).copy()
    wgt = list(wgt) + [0] * (cfg.wgt_depth - len(wgt))
    prog = list(prog) + [0] * (cfg.prog_depth - len(prog))
    ad, wd = cfg.act_depth, cfg.wgt_depth
    pc, retired, fabric, loads = start_pc, 0, 0, 0
    held = None  # the conv engine's weight reads, while it still holds those weights

    def result(done, cause):
        return GoldenResult(act, done, cause != Cause.NONE, cause, pc,
                            {"commands": retired, "mac_slots": fabric * cfg.macs,
                             "load_cycles": loads})

    def conv_job(key) -> None:
        nonlocal held, loads
        if key != held:
            loads += key[1]
        held = key

    for _ in range(max_commands):
        if pc >= cfg.prog_depth:
            return result(False, Cause.PC_RANGE)
        c = decode(cfg, prog[pc])
        op, d, p = c["op"], c["desc"], c["pool"]
        if op == Op.DONE:
            retired += 1
            return result(True, Cause.NONE)
        if op == Op.FENCE:
            retired += 1
            pc += 1
            held = None
            continue
        if op in ATTN_OPS:   # SOFTMAX, LAYERNORM, GELU, MATMUL (:mod:`.attn_isa`)
            if cfg.attention is None:
                return result(False, Cause.ILLEGAL_OPCODE)
            bad = attn_check(cfg, c, wgt)
            if bad is not None:
                return result(False, Cause[bad])
            attn_golden(cfg, act, wgt, c)
            _, ld, slots, _ = attn_cycles(cfg, c)
            loads, fabric = loads + ld, fabric + slots // cfg.macs
            if op == Op.MATMUL:
                held = None   # B's beats replaced the weights the engine held
            retired += 1
            pc += 1
            continue
        legal = (Op.CONV, Op.GEMM, Op.MAXPOOL) + ((Op.LSTM,) if cfg.lstm is not None else ())
        if op in elt_ops(cfg):   # ADD, AVGPOOL (and MUL): the element-wise unit
            ok, n_in, n_out, overlap = elt_golden_check(cfg, c)
            if not ok:
                return result(False, Cause.SHAPE)
            if c["src"] + n_in > ad or c["dst"] + n_out > ad or overlap:
                return result(False, Cause.ADDRESS)
            elt_golden(cfg, act, c)
            retired += 1
            pc += 1
            continue
        if op not in legal:
            return result(False, Cause.ILLEGAL_OPCODE)
        cc, k = cfg.conv, cfg.word_beats   # k: result beats a word (.beats)
        limits = {"kernel_h": cc.max_kernel, "kernel_w": cc.max_kernel,
                  "groups": cc.max_groups, "blocks": cc.max_blocks,
                  "weight_words": cc.weight_depth, "row_lanes": cc.lanes,
                  "shift_lanes": cc.lanes, "rows_per_chunk": cc.lanes}
        derived_ok = (all(1 <= d[f] <= most for f, most in limits.items())
                      and all(d[f] <= cc.max_pad for f in PADS))
        if op == Op.CONV:
            kh, kw = d["kernel_h"], d["kernel_w"]
            ok_pad = d["pad_top"] + d["pad_bottom"] < kh and d["pad_left"] + d["pad_right"] < kw
            sw = d["width"] + d["pad_left"] + d["pad_right"]
            sh = d["height"] + d["pad_top"] + d["pad_bottom"]
            ok = (derived_ok and ok_pad and 1 <= d["width"] <= cc.max_width
                  and 1 <= d["height"] <= cc.max_height and sw >= kw and sh >= kh
                  and d["out_width"] == (sw - kw) // (1 + d["stride2_w"]) + 1
                  and d["out_height"] == (sh - kh) // (1 + d["stride2_h"]) + 1
                  and (not d["pool"] or (d["out_width"] >= 2 and d["out_height"] >= 2)))
            dw_ok = (c["nb"] != 0 and d["groups"] == d["blocks"] == 1 and not d["packed"]
                     and max(kh, kw) <= cc.dw_kernel and d["weight_words"] == cc.dw_issue(kh, kw)
                     and d["row_lanes"] == d["shift_lanes"] == cc.lanes
                     and d["rows_per_chunk"] == 1)
            # (a depthwise group is a word; other blocks fill whole words: :mod:`.beats`)
            ok = ok and (dw_ok if d["depthwise"] else d["blocks"] % k == 0)
            div = 2 if d["pool"] else 1
            per_in, per_out = ((c["nb"], c["nb"]) if d["depthwise"]
                               else (d["groups"], d["blocks"] // k))
            n_in = d["width"] * d["height"] * per_in
            n_out = (d["out_width"] // div) * (d["out_height"] // div) * per_out
        elif op == Op.LSTM:
            from .lstm_checks import lstm_golden_check

            ok, n_in, n_out, lw = lstm_golden_check(cfg, c)
        elif op == Op.GEMM:
            kw, nb = c["kw"], c["nb"]
            ok = (derived_ok and d["kernel_h"] == d["kernel_w"] == 1
                  and not any(d[f] for f in PADS) and not d["stride2_h"] and not d["stride2_w"]
                  and not d["pool"] and not d["depthwise"] and c["count"] != 0 and kw != 0
                  and nb != 0
                  and kw <= cfg.gemm_max_words and d["groups"] == min(kw, cc.max_groups)
                  and d["blocks"] == min(nb, cc.max_blocks)
                  and d["weight_words"] == d["groups"] * d["blocks"] and nb % k == 0)
            n_in, n_out = c["count"] * kw, c["count"] * nb // k
        else:
            ok = (2 <= p["width"] <= cc.max_width and 2 <= p["height"] <= cc.max_height
                  and 1 <= p["blocks"] <= cfg.maxpool_config.max_blocks)
            n_in = p["width"] * p["height"] * p["blocks"]
            n_out = (p["width"] // 2) * (p["height"] // 2) * p["blocks"]
        if not ok:
            return result(False, Cause.SHAPE)
        w_words = lw if op == Op.LSTM else d["weight_words"] + d["blocks"]
        if op == Op.GEMM:
            w_words = (c["kw"] + 1) * c["nb"]
        if op == Op.CONV and d["depthwise"]:
            w_words = (d["weight_words"] + cc.dw_beats) * c["nb"]
        w_bad = op != Op.MAXPOOL and c["wgt"] + w_words > wd
        if c["src"] + n_in > ad or c["dst"] + n_out > ad or w_bad:
            return result(False, Cause.ADDRESS)
        gelu_t = fused_gelu(cfg, c)   # GELU in the result path (:mod:`.fuse`): its table's words
        if gelu_t and c["wgt"] < gelu_t:
            return result(False, Cause.SHAPE)
        if op == Op.CONV and d["depthwise"]:
            fabric += _run_depthwise(cfg, act, wgt, d, c)
            for _desc, key in dw_jobs(cfg, c):
                conv_job(key)
        elif op == Op.CONV:
            fabric += _run_layer(cfg, act, wgt, d, c["src"], c["dst"], c["wgt"], d["height"],
                                 d["width"])
            conv_job((c["wgt"], w_words, 1, 1))
        elif op == Op.GEMM:
            for j, (_n0, bt, _k0, gt, tile, key) in enumerate(_gemm_jobs(cfg, c)):
                fabric += tile * gt * bt
                if j == 0 and gelu_t:   # the table, then the tile's weights: no reuse
                    held, loads = None, loads + gelu_t
                conv_job(key)
            run_fused(cfg, act, wgt, c, _run_gemm)   # with its fused GELU and ADD (:mod:`.fuse`)
        elif op == Op.LSTM:
            _run_lstm(cfg, act, wgt, c)
            loads += lw
        else:
            src = act[c["src"]:c["src"] + n_in].reshape(p["height"], p["width"], -1)
            h2, w2 = p["height"] // 2, p["width"] // 2
            v = src[: 2 * h2, : 2 * w2].reshape(h2, 2, w2, 2, -1).max(axis=(1, 3))
            act[c["dst"]:c["dst"] + n_out] = v.reshape(-1, cfg.lanes)
        retired += 1
        pc += 1
    raise RuntimeError(f"program did not finish within {max_commands} commands")

