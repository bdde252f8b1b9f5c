"""The LSTM command's sizes, word counts and checks: the processor's (RTL) and the golden model's.

Both sides sit in this file so they cannot drift. An LSTM command runs one sequence of
``count`` = T steps at the sizes in its ``lstm`` field, ``input_size`` I and ``hidden_size``
H, on the cell generated with the config's ``lstm`` (whose sizes are the largest it runs):

* x_t are ``gx = ceil(I / lanes)`` activation words, h_t ``gh = ceil(H / lanes)`` words;
* the load is ``slots x (I + H)`` weight beats (``slots = ceil(4H / P)`` of the cell's P lanes)
  then 4H parameter beats, in the cell's order for that size (:mod:`..lstm.driver`).

A command with ``count = 0``, I or H of 0, or I or H above the cell's is a SHAPE fault; its
ranges (``T x gx`` words at ``src``, ``T x gh`` at ``dst``, the load at ``wgt``) an ADDRESS fault
past their scratchpads.

Processor timing (:func:`.checks.command_checks`): CALC registers ``gx``, ``gh`` and ``slots``'s
product ``slots x (I + H)`` (``ceil`` as a sum of constant comparisons, no divider; one multiply)
and the load's words; CHECK multiplies by T and compares. The job's sizes and counts
(:func:`lstm_job_layout`) are registered in CALC and hold until the next command's CALC, so the
datapath reads them for the whole job.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

from amaranth.hdl import Signal
from amaranth.lib import data

from ..lstm.cell import ceil_div, size_layout
from .config import AccelConfig

__all__ = ["lstm_words", "lstm_job_layout", "lstm_checks", "lstm_golden_check"]


def lstm_words(cfg: AccelConfig, input_size: int | None = None,
               hidden_size: int | None = None) -> tuple[int, int, int]:
    """Words per x step, words per h step, weight-scratchpad words of one LSTM load at
    ``input_size`` x ``hidden_size`` (by default the cell's largest)."""
    lc = cfg.lstm
    run = lc.run(input_size or lc.input_size, hidden_size or lc.hidden_size)
    return (math.ceil(run.input_size / cfg.lanes), math.ceil(run.hidden_size / cfg.lanes),
            run.weight_depth + run.rows)


def lstm_job_layout(cfg: AccelConfig) -> data.StructLayout:
    """What the datapath needs of an LSTM job: the cell's ``size``, the load's weight ``beats``
    (the parameter beats follow), words per x step ``gx`` and per h step ``gh``."""
    lc = cfg.lstm
    gx, gh, _ = lstm_words(cfg)
    return data.StructLayout({"size": size_layout(lc), "beats": range(lc.weight_depth + 1),
                              "gx": range(gx + 1), "gh": range(gh + 1)})


def lstm_checks(m, cmd, cfg: AccelConfig, *, calc, le) -> SimpleNamespace:
    """The processor's checks of LSTM command ``cmd`` (``le(field, limit)``: the processor's
    bounded compare). Returns ``calc`` (the values registered in CALC for the range checks:
    ``in_a x in_b`` words at ``src``, ``out_a x out_b`` at ``dst``, ``w_a`` weight words, ``ok``)
    and ``job`` (the job's fields, registered in CALC)."""
    lc = cfg.lstm
    i, h = cmd.lstm.input_size, cmd.lstm.hidden_size
    gx_most, gh_most, _ = lstm_words(cfg)
    gx, gh = ceil_div(i, cfg.lanes, gx_most), ceil_div(h, cfg.lanes, gh_most)
    beats = ceil_div(4 * h, lc.lanes, lc.slots) * (i + h)
    ok = ((cmd.count != 0) & (i != 0) & le(i, lc.input_size) & (h != 0)
          & le(h, lc.hidden_size))
    job = Signal(lstm_job_layout(cfg))
    with m.If(calc):
        m.d.sync += [job.size.input_size.eq(i), job.size.hidden_size.eq(h), job.beats.eq(beats),
                     job.gx.eq(gx), job.gh.eq(gh)]
    return SimpleNamespace(job=job, calc={"in_a": cmd.count, "in_b": gx, "out_a": cmd.count,
                                          "out_b": gh, "w_a": beats + 4 * h, "ok": ok})


def lstm_golden_check(cfg: AccelConfig, c: dict) -> tuple[bool, int, int, int]:
    """``(shape ok, words read at src, words written at dst, weight words)`` of decoded LSTM
    command ``c``, as the processor computes them."""
    lc = cfg.lstm
    i, h = c["lstm"]["input_size"], c["lstm"]["hidden_size"]
    if not (c["count"] != 0 and 1 <= i <= lc.input_size and 1 <= h <= lc.hidden_size):
        return False, 0, 0, 0
    gx, gh, load = lstm_words(cfg, i, h)
    return True, c["count"] * gx, c["count"] * gh, load
