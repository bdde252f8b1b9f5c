"""The processor's checks of SOFTMAX, LAYERNORM and GELU (RTL), in :func:`.attn_isa.attn_check`'s
order: the fields (SHAPE), then the ranges (ADDRESS), then -- as the weight DMA streams them to
the unit -- SOFTMAX's table and LAYERNORM's parameters (SHAPE, :mod:`.attn_path`).

* fields: ``count`` (rows, or GELU's words) not 0; SOFTMAX and LAYERNORM: ``1 <= attn.n <=``
  the unit's ``max_len`` / ``max_channels``, and a causal SOFTMAX has at most ``n`` rows;
* ranges: ``count x W`` words at ``src`` and at ``dst`` (``W = ceil(n / lanes)``; 1 for GELU),
  the load at ``wgt`` (the packed table's words, or LayerNorm's setup word and its ``n``
  packed parameters': :func:`hwaccel.generators.attention.perf.load_words`), and ``dst`` not
  strictly inside the source (``src < dst < src + words``).

Processor timing (:func:`.checks.command_checks`): CALC registers ``W`` (a sum of constant
comparisons, no divider), the fields' checks and the job (:func:`attn_job_layout`, held until the
next command's CALC so the datapath reads it for the whole job); CHECK multiplies ``count x W``
and compares, as for every command.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from amaranth.hdl import Mux, Signal
from amaranth.lib import data

from ..attention.packing import LN_PARAM_BITS, per_beat
from ..attention.perf import load_words
from ..lstm.cell import ceil_div
from .config import AccelConfig
from .isa import Op

__all__ = ["ATTN_UNIT_OPS", "UNIT_SOFTMAX", "UNIT_LAYERNORM", "UNIT_GELU", "attn_job_layout",
           "attn_checks", "attn_words_most"]

#: The commands the attention units run (MATMUL runs on the conv engine).
ATTN_UNIT_OPS = (Op.SOFTMAX, Op.LAYERNORM, Op.GELU)
#: ``attn_job_layout``'s ``unit``.
UNIT_SOFTMAX, UNIT_LAYERNORM, UNIT_GELU = 0, 1, 2


def attn_words_most(cfg: AccelConfig) -> int:
    """Most words in a SOFTMAX or LAYERNORM row."""
    a = cfg.attention
    return math.ceil(max(a.max_len, a.max_channels) / cfg.lanes)


def attn_job_layout(cfg: AccelConfig) -> data.StructLayout:
    """What the datapath needs of a SOFTMAX/LAYERNORM/GELU job: the ``unit``, the row length
    ``n``, ``causal``, and ``words`` per row (``ceil(n / lanes)``; GELU's rows are its words)."""
    a = cfg.attention
    return data.StructLayout({"unit": 2, "n": range(max(a.max_len, a.max_channels) + 1),
                              "causal": 1, "words": range(attn_words_most(cfg) + 1)})


def attn_checks(m, cmd, cfg: AccelConfig, *, calc, le) -> SimpleNamespace:
    """The processor's checks of SOFTMAX/LAYERNORM/GELU command ``cmd`` (``le(field, limit)``:
    the processor's bounded compare). Returns ``mine`` (the command is one of them), ``calc``
    (the values registered in CALC: ``in_a x in_b`` words at ``src``, ``out_a x out_b`` at
    ``dst``, ``w_a`` weight words, ``ok``), ``range_bad(inside)`` for CHECK (``inside``:
    ``dst`` strictly inside the words read at ``src``) and ``job``."""
    a, op, f, rows = cfg.attention, cmd.op, cmd.attn, cmd.count
    is_sm, is_ln, is_ge = op == Op.SOFTMAX, op == Op.LAYERNORM, op == Op.GELU
    n = f.n
    most = attn_words_most(cfg)
    # ``n`` past the unit's limit is a SHAPE fault whatever W says (ceil_div saturates).
    words = ceil_div(n, cfg.lanes, most)
    pb = per_beat(LN_PARAM_BITS, a.load_bits)
    ln_load = 1 + ceil_div(n, pb, math.ceil(a.max_channels / pb))
    n_ok = (n != 0) & Mux(is_sm, le(n, a.max_len), le(n, a.max_channels))
    ok = (rows != 0) & (is_ge | (n_ok & ~(is_sm & f.causal & (rows > n))))
    job = Signal(attn_job_layout(cfg))
    with m.If(calc):
        m.d.sync += [job.unit.eq(Mux(is_sm, UNIT_SOFTMAX, Mux(is_ln, UNIT_LAYERNORM, UNIT_GELU))),
                     job.n.eq(n), job.causal.eq(f.causal), job.words.eq(Mux(is_ge, 1, words))]
    mine = is_sm | is_ln | is_ge
    calc_values = {"in_a": rows, "in_b": Mux(is_ge, 1, words), "out_a": rows,
                   "out_b": Mux(is_ge, 1, words),
                   "w_a": Mux(is_ln, ln_load, Mux(is_sm, load_words(a, "softmax"),
                                                  load_words(a, "gelu"))),
                   "ok": ok}

    def range_bad(inside):
        return mine & inside

    return SimpleNamespace(mine=mine, calc=calc_values, range_bad=range_bad, job=job)
