"""The attention units in the accelerator's datapath: SOFTMAX, LAYERNORM and GELU jobs.

A job (:func:`.attn_checks.attn_job_layout`, steady while it runs) connects one unit to the two
DMA streams and the store:

* weight beats (the weight DMA, ``job_wgt_count`` of them) go to the unit's load ports, each
  sliced to the port's width: SOFTMAX's packed exponent table to ``table``, LAYERNORM's setup
  word ``{E, S}`` (:func:`.attn_isa.ln_setup_layout`, with the command's ``C``) to ``setup``
  and its packed ``{G, B}`` entries to ``params``, GELU's packed table to ``table``
  (:mod:`hwaccel.generators.attention.packing`: as many entries a beat as fit; the unit takes
  the next beat once it has written the last one's rows). Each beat's entries (those of the
  load: not the bits past its last entry) are checked as the beat passes, as
  :func:`.attn_isa.attn_check` checks the load: a SOFTMAX entry above ``2**17`` or a first
  entry below ``2**16``, a LAYERNORM shift ``S`` outside ``1..40``, ``G = -2**16`` or ``B =
  -2**55`` raises ``fault`` (the processor faults SHAPE and resets the units and DMAs, as for
  a TIMEOUT);
* activation words (the activation DMA) go to the unit's ``sink`` from the cycle after the
  load's first beat has passed (SOFTMAX's table, LAYERNORM's setup word), GELU's once the whole
  load has: rows of ``words`` words, SOFTMAX's with ``length = n`` and, causal, ``valid = r +
  1`` on row ``r``. The softmax unit's exponent stage and LayerNorm's output stage start no
  row until the load is written, after its last beat has passed its check, so a bad parameter
  never lets a word reach the store;
* the unit's output words go to the store (never back-pressured: the write port takes one a
  cycle), ``count x words`` of them, in order.

Timing: the weight DMA's first beat reaches the unit ``ATTN_DMA`` cycles after the job starts,
the first row word enters ``ATTN_ROWS`` cycle after it (GELU's when the unit has written the
load, ``load_cycles`` of :mod:`hwaccel.generators.attention.perf` after the first beat), and
the job is done the cycle after the unit's last word is stored (:func:`.attn_isa.attn_cycles`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...numerics import MULT_BITS
from ...numerics.layernorm import LN_SHIFT_MAX
from ...numerics.softmax import EXP_ONE, EXP_TABLE_SIZE
from ..attention.gelu import GeluUnit
from ..attention.layernorm import LayerNormUnit
from ..attention.packing import LN_PARAM_BITS, per_beat
from ..attention.softmax import SoftmaxUnit
from .attn_checks import UNIT_GELU, UNIT_LAYERNORM, UNIT_SOFTMAX, attn_job_layout
from .attn_isa import LN_B_BITS, ln_param_layout, ln_setup_layout
from .config import AccelConfig

__all__ = ["AttnPath"]


class AttnPath(wiring.Component):
    """The softmax, LayerNorm and GELU units of an :class:`AccelConfig` with ``attention``.

    Members
    -------
    start : ``In(1)``                  a job starts (its fields are steady from now on)
    job : ``In(attn_job_layout)``      the job (:mod:`.attn_checks`)
    w_count : ``In``                   the job's weight beats
    a_valid, a_data : ``In``, a_ready : ``Out``   the activation DMA's stream
    w_valid, w_data : ``In``, w_ready : ``Out``   the weight DMA's stream
    result_valid, result : ``Out``     a word for the store
    fault : ``Out(1)``                 the beat passing now fails its check
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig) or config.attention is None:
            raise TypeError(f"config must be an AccelConfig with attention units, not "
                            f"{config!r}")
        self.config = cfg = config
        super().__init__({
            "start": In(1), "job": In(attn_job_layout(cfg)),
            "w_count": In(range(cfg.wgt_depth + 1)),
            "a_valid": In(1), "a_data": In(cfg.act_bits), "a_ready": Out(1),
            "w_valid": In(1), "w_data": In(cfg.wgt_bits), "w_ready": Out(1),
            "result_valid": Out(1), "result": Out(cfg.act_bits), "fault": Out(1),
        })

    def elaborate(self, platform):
        cfg = self.config
        a = cfg.attention
        m = Module()
        sm = m.submodules.softmax = SoftmaxUnit(a)
        ln = m.submodules.layernorm = LayerNormUnit(a)
        ge = m.submodules.gelu = GeluUnit(a)
        job = self.job
        is_sm, is_ln, is_ge = (job.unit == UNIT_SOFTMAX, job.unit == UNIT_LAYERNORM,
                               job.unit == UNIT_GELU)

        # --- loads: weight beats to the unit's load ports, each checked as it passes --------
        beats = Signal.like(self.w_count)            # beats taken in this job
        loaded = beats == self.w_count
        first = beats == 0
        w = self.w_data

        def sliced(port):
            return w[: len(Value.cast(port.payload))]

        setup = data.View(ln_setup_layout(), w[: ln_setup_layout().size])
        m.d.comb += [
            sm.table.payload.eq(sliced(sm.table)), ge.table.payload.eq(sliced(ge.table)),
            ln.setup.payload.channels.eq(job.n), ln.setup.payload.eps_term.eq(setup.eps),
            ln.setup.payload.shift.eq(setup.shift),
            ln.params.payload.eq(sliced(ln.params)),
            sm.table.valid.eq(self.w_valid & is_sm), ge.table.valid.eq(self.w_valid & is_ge),
            ln.setup.valid.eq(self.w_valid & is_ln & first),
            ln.params.valid.eq(self.w_valid & is_ln & ~first),
            self.w_ready.eq(Mux(is_sm, sm.table.ready,
                                Mux(is_ge, ge.table.ready,
                                    Mux(first, ln.setup.ready, ln.params.ready)))),
        ]
        take = self.w_valid & self.w_ready
        with m.If(take):
            m.d.sync += beats.eq(beats + 1)
        # Entries of the load not yet checked: those of this beat are the first
        # min(left, per beat); the bits past them are not entries.
        left = Signal(range(max(EXP_TABLE_SIZE, a.max_channels) + 1))
        eb, pb = a.exp_bits, per_beat(a.exp_bits, cfg.wgt_bits)
        sm_bad = first & (w[:eb] < EXP_ONE // 2)
        for j in range(pb):
            sm_bad = sm_bad | ((left > j) & (w[j * eb:(j + 1) * eb] > EXP_ONE))
        pb_ln = per_beat(LN_PARAM_BITS, cfg.wgt_bits)
        ln_bad = first & ((setup.shift == 0) | (setup.shift > LN_SHIFT_MAX))
        for j in range(pb_ln):
            par = data.View(ln_param_layout(), w[j * LN_PARAM_BITS:(j + 1) * LN_PARAM_BITS])
            ln_bad = ln_bad | (~first & (left > j) & ((par.g == 1 << MULT_BITS)
                                                       | (par.b == 1 << (LN_B_BITS - 1))))
        m.d.comb += self.fault.eq(take & Mux(is_sm, sm_bad, is_ln & ln_bad))
        with m.If(take & ~(is_ln & first)):
            m.d.sync += left.eq(left - Mux(is_sm, pb, pb_ln))   # wraps only past the last beat
        with m.If(self.start):
            m.d.sync += left.eq(Mux(job.unit == UNIT_LAYERNORM, job.n, EXP_TABLE_SIZE))

        # --- rows: activation words to the unit's sink once the load has passed --------------
        col = Signal.like(job.words)                 # word of the row
        row = Signal(range(max(a.max_len, 2)))       # row (a causal softmax has <= max_len)
        # SOFTMAX's and LAYERNORM's rows from the cycle after the first beat (the unit waits
        # to read the load until it is written); GELU's once the whole load has passed.
        go = self.a_valid & Mux(is_ge, loaded, ~first)
        m.d.comb += [
            sm.sink.payload.data.eq(self.a_data), sm.sink.payload.length.eq(job.n),
            sm.sink.payload.valid.eq(Mux(job.causal, row + 1, 0)),
            ln.sink.payload.eq(self.a_data), ge.sink.payload.data.eq(self.a_data),
            sm.sink.valid.eq(go & is_sm), ln.sink.valid.eq(go & is_ln),
            ge.sink.valid.eq(go & is_ge),
            self.a_ready.eq(Mux(is_ge, loaded, ~first) & Mux(is_sm, sm.sink.ready,
                                         Mux(is_ln, ln.sink.ready, ge.sink.ready))),
        ]
        with m.If(self.a_valid & self.a_ready):
            m.d.sync += col.eq(col + 1)
            with m.If(col + 1 == job.words):
                m.d.sync += [col.eq(0), row.eq(row + 1)]
        with m.If(self.start):
            m.d.sync += [beats.eq(0), col.eq(0), row.eq(0)]

        # --- results: whichever unit runs, to the store -------------------------------------
        m.d.comb += [sm.source.ready.eq(1), ln.source.ready.eq(1), ge.source.ready.eq(1),
                     self.result_valid.eq(sm.source.valid | ln.source.valid | ge.source.valid),
                     self.result.eq(Mux(is_sm, sm.source.payload.data.as_value(),
                                        Mux(is_ln, ln.source.payload.data.as_value(),
                                            ge.source.payload.data.as_value())))]
        return m
