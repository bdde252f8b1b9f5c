"""The shape and range checks of ADD, MUL and AVGPOOL, the processor's (RTL) and the golden
model's, and the golden model's arithmetic of all three (:func:`elt_golden`).

Both sides sit in this file so they cannot drift. As for the other commands, a shape the unit
cannot run is a SHAPE fault and a range past the scratchpad an ADDRESS fault, checked before
anything moves; one more ADDRESS rule is particular to these commands: ``dst`` must not lie
strictly inside a source's range (``src < dst < src + words``), where later reads would see
results (``dst`` equal to a source, or below it, is safe: every write lands on a word the unit
has already read).

Processor timing (:func:`.checks.command_checks`): CALC registers at most one product of
command fields per value (``width x height``, ``out_width x kw``, ``kh x kw`` ...), CHECK
compares; the AVGPOOL overlap test adds the map's word count (CHECK's product) to ``src``.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from amaranth.hdl import Const, Mux, Signal

from ...numerics import AVG_SHIFT_MAX, AddRequant, add_requantize, average_with, mul_requantize
from .config import AccelConfig
from .isa import Op

__all__ = ["elt_checks", "elt_golden_check", "elt_golden", "mul_b_words"]


def elt_checks(m, cmd, cfg: AccelConfig, *, calc, le) -> SimpleNamespace:
    """The processor's checks of ADD/MUL/AVGPOOL command ``cmd`` (``le(field, limit)``: the
    processor's bounded compare). Returns ``mine`` (the command is ADD/AVGPOOL), ``calc``
    (the values the processor registers in CALC for its own range checks: ``in_a x in_b`` words
    read at ``src``, ``out_a x out_b`` written at ``dst``, ``w_a`` weight words, ``ok``), and,
    for CHECK, ``shape_ok`` and ``range_bad(inside)`` (``inside``: ``dst`` strictly inside the
    words read at ``src``; both neutral for other commands)."""
    c, ad = cfg.conv, cfg.act_depth
    op, a, v = cmd.op, cmd.elt.add, cmd.elt.avg
    is_add, is_avg = op == Op.ADD, op == Op.AVGPOOL
    # MUL (with ``elt_mul``) is checked as ADD is; its ``b`` is ``count`` words, or a gate
    # pixel's ``n + 1`` (``mult_b = n``: :mod:`.isa`), registered in CALC.
    pairs, b_count, b_words = is_add, cmd.count, cmd.count
    if cfg.elt_mul:
        is_mul = op == Op.MUL
        pairs, b_count = is_add | is_mul, Mux(is_mul & (a.mult_b != 0), a.mult_b + 1, cmd.count)
        b_words = Signal(range(ad + 2), name="mul_b_words")
        with m.If(calc):
            m.d.sync += b_words.eq(b_count)
    # ADD: registered in CALC, one add or subtract and compare each (its range checks are
    # read after CHECK: ``src2``'s words past the scratchpad; ``dst`` strictly inside them,
    # ``src2 < dst`` and ``dst - src2 < count``; inside ``src``'s is ``inside``). As one
    # register of sums and compares ORed, from ``count`` it was a placed path at ef1bf89
    # (13.4 ns).
    over, above2, gap2 = Signal(), Signal(), Signal(len(cmd.dst))
    # AVGPOOL: the products CHECK compares.
    # (as wide as the fields' bits, which can encode more than the limits: a wrapped product
    # must not pass)
    ow_kw = Signal(len(v.out_width) + len(v.kw))
    oh_kh = Signal(len(v.out_height) + len(v.kh))
    window = Signal(len(v.kh) + len(v.kw))
    with m.If(calc):
        m.d.sync += [
            over.eq(a.src2 + b_count > ad),
            above2.eq(cmd.dst > a.src2),
            gap2.eq(cmd.dst - a.src2),
            ow_kw.eq(v.out_width * v.kw), oh_kh.eq(v.out_height * v.kh), window.eq(v.kh * v.kw),
        ]
    add_ok = (cmd.count != 0) & (a.shift != 0)
    avg_ok = ((v.width != 0) & le(v.width, c.max_width) & (v.height != 0)
              & le(v.height, c.max_height) & (v.blocks != 0) & le(v.blocks, cfg.avg_max_blocks)
              & (v.kw != 0) & (v.kh != 0) & (v.out_width != 0) & (v.out_height != 0)
              & (v.shift != 0) & le(v.shift, AVG_SHIFT_MAX))
    calc_values = {
        "in_a": Mux(is_avg, v.width * v.height, cmd.count), "in_b": Mux(is_avg, v.blocks, 1),
        "out_a": Mux(is_avg, v.out_width * v.out_height, cmd.count),
        "out_b": Mux(is_avg, v.blocks, 1), "w_a": Const(0),
        "ok": Mux(is_avg, avg_ok, add_ok),
    }
    # floor division, checked: out * k <= size < out * k + k, on both axes
    avg_shape = ((ow_kw <= v.width) & (v.width < ow_kw + v.kw) & (oh_kh <= v.height)
                 & (v.height < oh_kh + v.kh) & (window <= cfg.avg_max_window))

    def range_bad(inside):   # (an ADD reads ``count`` words at ``src``)
        add_bad = over | inside | (above2 & (gap2 < b_words))
        return (pairs & add_bad) | (is_avg & inside)

    return SimpleNamespace(mine=pairs | is_avg, calc=calc_values,
                           shape_ok=~is_avg | avg_shape, range_bad=range_bad)


def elt_golden_check(cfg: AccelConfig, c: dict) -> tuple[bool, int, int, bool]:
    """``(shape ok, words read at src, words written at dst, address bad)`` of a decoded ADD,
    MUL or AVGPOOL command, exactly as the processor decides them."""
    ad = cfg.act_depth
    src, dst = c["src"], c["dst"]
    if c["op"] in (Op.ADD, Op.MUL):
        a, n = c["elt"]["add"], c["count"]
        ok = n != 0 and a["shift"] != 0
        nb = a["mult_b"] + 1 if c["op"] == Op.MUL and a["mult_b"] else n   # b's words
        bad = (a["src2"] + nb > ad or src < dst < src + n or a["src2"] < dst < a["src2"] + nb)
        return ok, n, n, bad
    v, cc = c["elt"]["avg"], cfg.conv
    w, h, kw, kh, ow, oh = (v[k] for k in ("width", "height", "kw", "kh", "out_width",
                                           "out_height"))
    ok = (1 <= w <= cc.max_width and 1 <= h <= cc.max_height
          and 1 <= v["blocks"] <= cfg.avg_max_blocks and kw and kh and ow and oh
          and 1 <= v["shift"] <= AVG_SHIFT_MAX and ow * kw <= w < ow * kw + kw
          and oh * kh <= h < oh * kh + kh and kh * kw <= cfg.avg_max_window)
    n_in = w * h * v["blocks"]
    return bool(ok), n_in, ow * oh * v["blocks"], src < dst < src + n_in


def elt_golden(cfg: AccelConfig, act: np.ndarray, c: dict) -> None:
    """The golden model of an ADD, MUL or AVGPOOL command ``c`` (decoded, checked) on ``act``,
    lane by lane, with :mod:`hwaccel.numerics`' definitions."""
    src, dst = c["src"], c["dst"]
    if c["op"] == Op.MUL:
        a, n = c["elt"]["add"], c["count"]
        act[dst:dst + n] = mul_requantize(act[src:src + n], act[a["src2"] + mul_b_words(
            n, a["mult_b"])], a["shift"], relu=bool(a["relu"]))
        return
    if c["op"] == Op.ADD:
        a, n = c["elt"]["add"], c["count"]
        p = AddRequant(a["mult_a"], a["mult_b"], a["shift"])
        y = add_requantize(act[src:src + n], act[a["src2"]:a["src2"] + n], p,
                           relu=bool(a["relu"]))
        act[dst:dst + n] = y
        return
    v = c["elt"]["avg"]
    kh, kw, oh, ow, nb = v["kh"], v["kw"], v["out_height"], v["out_width"], v["blocks"]
    x = act[src:src + v["width"] * v["height"] * nb].reshape(v["height"], v["width"], nb,
                                                              cfg.lanes)
    total = x[: oh * kh, : ow * kw].reshape(oh, kh, ow, kw, nb, cfg.lanes).sum(axis=(1, 3))
    act[dst:dst + oh * ow * nb] = average_with(total, kh * kw, v["mult"], v["shift"]).reshape(
        -1, cfg.lanes)


def mul_b_words(count: int, n: int) -> np.ndarray:
    """The word of ``b`` (from ``src2``) a MUL of ``count`` words reads for each word of ``a``:
    word ``i`` itself, or with a gate pixel of ``n > 0`` words, as the unit reads it in pairs --
    a pair from word ``2j`` takes ``g = 2j mod n`` and ``g + 1``, which is ``n`` (the stored
    copy of the pixel's first word) at the pixel's end."""
    i = np.arange(count)
    if not n:
        return i
    return (i - i % 2) % n + i % 2
