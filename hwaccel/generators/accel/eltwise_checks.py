"""The shape and range checks of ADD and AVGPOOL, the processor's (RTL) and the golden model's,
and the golden model's arithmetic of both (:func:`elt_golden`).

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

from ...numerics import AVG_SHIFT_MAX, AddRequant, add_requantize, average_with
from .config import AccelConfig
from .isa import Op

__all__ = ["elt_checks", "elt_golden_check", "elt_golden"]


def elt_checks(m, cmd, cfg: AccelConfig, *, calc, le) -> SimpleNamespace:
    """The processor's checks of ADD/AVGPOOL command ``cmd`` (``le(field, limit)``: the
    processor's bounded compare). Returns ``mine`` (the command is ADD/AVGPOOL), ``calc``
    (the values the processor registers in CALC for its own range checks: ``in_a x in_b`` words
    read at ``src``, ``out_a x out_b`` written at ``dst``, ``w_a`` weight words, ``ok``), and,
    for CHECK, ``shape_ok`` and ``range_bad(inside)`` (``inside``: ``dst`` strictly inside the
    words read at ``src``; both neutral for other commands)."""
    c, ad = cfg.conv, cfg.act_depth
    op, a, v = cmd.op, cmd.elt.add, cmd.elt.avg
    is_add, is_avg = op == Op.ADD, op == Op.AVGPOOL
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
            over.eq(a.src2 + cmd.count > ad), above2.eq(cmd.dst > a.src2),
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
        add_bad = over | inside | (above2 & (gap2 < cmd.count))
        return (is_add & add_bad) | (is_avg & inside)

    return SimpleNamespace(mine=is_add | is_avg, calc=calc_values,
                           shape_ok=~is_avg | avg_shape, range_bad=range_bad)


def elt_golden_check(cfg: AccelConfig, c: dict) -> tuple[bool, int, int, bool]:
    """``(shape ok, words read at src, words written at dst, address bad)`` of a decoded ADD or
    AVGPOOL command, exactly as the processor decides them."""
    ad = cfg.act_depth
    src, dst = c["src"], c["dst"]
    if c["op"] == Op.ADD:
        a, n = c["elt"]["add"], c["count"]
        ok = n != 0 and a["shift"] != 0
        bad = (a["src2"] + n > ad or src < dst < src + n or a["src2"] < dst < a["src2"] + n)
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
    """The golden model of an ADD or AVGPOOL command ``c`` (decoded, checked) on ``act``, lane by
    lane, with :mod:`hwaccel.numerics`' definitions."""
    src, dst = c["src"], c["dst"]
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
