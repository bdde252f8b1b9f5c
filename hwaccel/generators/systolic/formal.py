"""Formal harnesses of the systolic array (run by ``hwaccel verify``, :mod:`hwaccel.formal`).

Properties, on small arrays with narrow operands (the control does not depend on the data
width, and the proofs stay in seconds):

``result_stream``  ``result`` keeps ``valid`` until the transfer and its payload stable, for
                   any inputs that obey the same rules and any back-pressure. On the
                   weight-stationary array pdr did not finish in 5 minutes; it is proved by
                   4-induction with helper invariants (:meth:`SystolicHarness._ws_invariants`:
                   the credit count and the FIFO's pointers), in seconds.
``result_fifo``    the result FIFO is never written while full or read while empty (a shadow
                   level from its handshakes): the credits always leave room for a result.
                   Weight-stationary: by 4-induction with the same helper invariants (pdr
                   takes about 2 minutes).
``beats``          every accepted tile (OS: one ``last`` step, R result rows; WS: one row per
                   activation beat) gives exactly its rows, in order with ``last`` on the
                   tile's final row (OS): none invented or duplicated, never more owed than the
                   FIFO holds, and none lost: after ``drain_cycles`` cycles with no input
                   accepted and ``result.ready`` high, nothing is owed.

Mutants (``mutant=True``) show each proof can fail: ``result_stream`` watches a source that
drops ``valid`` (a free glitch input), ``result_fifo`` builds the array with a result FIFO
smaller than its credits assume, ``beats`` with one that also drops a write when full.
"""

from __future__ import annotations

from amaranth.hdl import Assert, Assume, Elaboratable, Module, Mux, Signal

from ...formal.props import (
    Harness,
    Owed,
    driven,
    fifo_bounds,
    ones,
    quiet_for,
    replaced,
    stream_rules,
)
from . import array as array_module
from .array import ResultFIFO, SystolicArray
from .config import SystolicConfig

__all__ = ["SystolicHarness", "PROPERTIES", "formal_configs"]

PROPERTIES = ("result_stream", "result_fifo", "beats")


def formal_configs() -> dict[str, SystolicConfig]:
    """The small arrays the proofs run on: 2-bit operands, accumulators just wide enough."""
    out = {}
    for df, r, c in (("os", 2, 2), ("ws", 2, 2), ("os", 3, 5)):
        cfg = SystolicConfig(rows=r, cols=c, dataflow=df, in_bits=2, acc_bits=64,
                             name=f"{df}_{r}x{c}")
        out[cfg.slug] = cfg.with_(acc_bits=cfg.min_acc_bits)
    return out


class _ShortFIFO(ResultFIFO):
    """The mutant: half the rows the credits were counted for (a power of two, so the
    model has no out-of-range memory reads whose free values a counterexample could not
    name)."""

    def __init__(self, width: int, depth: int):
        super().__init__(width, max(2, 1 << ((depth - 1).bit_length() - 1)))


class _DropWhenFull(Elaboratable):
    """The ``beats`` mutant: a FIFO of half the depth that drops a write when full (a full
    check that discards instead of holding the writer back), behind the same interface."""

    def __init__(self, width: int, depth: int):
        self.inner = _ShortFIFO(width, depth)
        self.width, self.depth = width, depth
        self.w_data, self.w_en = Signal(width), Signal()
        self.r_data, self.r_en, self.r_rdy = Signal(width), Signal(), Signal()

    def elaborate(self, platform):
        m = Module()
        inner = m.submodules.inner = self.inner
        level = Signal(range(inner.depth + 1))
        write = self.w_en & (level != inner.depth)
        read = inner.r_en & inner.r_rdy
        m.d.sync += level.eq(level + write - read)
        m.d.comb += [inner.w_data.eq(self.w_data), inner.w_en.eq(write),
                     inner.r_en.eq(self.r_en), self.r_rdy.eq(inner.r_rdy),
                     self.r_data.eq(inner.r_data)]
        return m


class SystolicHarness(Harness):
    """One property of one :class:`SystolicArray`."""

    def __init__(self, config: SystolicConfig, prop: str, *, mutant: bool = False):
        if prop not in PROPERTIES:
            raise ValueError(f"prop must be one of {', '.join(PROPERTIES)}, not {prop!r}")
        super().__init__(prop, mutant=mutant)
        self.config = config
        self.dut = SystolicArray(config)
        self.take_streams(self.dut.activations, self.dut.weights)
        self.take_streams(self.dut.result, sink=True)
        self.glitch = Signal()
        if mutant and prop == "result_stream":
            self.take(self.glitch)
        if prop != "beats" and config.dataflow == "ws" and not mutant:
            self.induction = 4

    def drain_cycles(self) -> int:
        """A bound on the cycles from the last input to the last result with a ready sink:
        skew, multiply, accumulate, the drain of R rows and the FIFO."""
        cfg = self.config
        return 2 * cfg.rows + cfg.mult_latency + cfg.result_depth + 4

    def build(self, m: Module, platform) -> None:
        dut = self.dut
        if self.mutant and self.prop != "result_stream":
            with replaced(array_module, "ResultFIFO",
                          _ShortFIFO if self.prop == "result_fifo" else _DropWhenFull):
                body = self.open_up(dut, platform)
        else:
            body = self.open_up(dut, platform)
        m.submodules.dut = body
        stream_rules(m, dut.activations, check=Assume, name="activations")
        stream_rules(m, dut.weights, check=Assume, name="weights")
        res = dut.result
        if self.prop == "result_stream":
            valid = res.valid & ~self.glitch if self.mutant else None
            stream_rules(m, res, valid=valid, name="result")
            if self.config.dataflow == "ws" and not self.mutant:
                self._ws_invariants(m, body, platform)
        elif self.prop == "result_fifo":
            fifo = body.submodules.fifo
            shadow = fifo_bounds(m, depth=fifo.depth, w_en=fifo.w_en, r_en=fifo.r_en,
                                 r_rdy=fifo.r_rdy, name="result_fifo")
            if self.config.dataflow == "ws" and not self.mutant:
                self._ws_invariants(m, body, platform, shadow)
        else:
            self._beats(m)

    def _ws_invariants(self, m: Module, body: Module, platform, shadow=None) -> None:
        """What makes ``result_stream`` inductive on the weight-stationary array (asserted, so
        proved with it): every result row is a credit, a taken activation on its way through
        the ``out_valid`` delay line, a row in the FIFO or a credit on its way back, so the
        four add up to the FIFO depth; and the FIFO's pointers, flags and level agree. Then a
        write never lands on the row ``result`` is holding (that needs a full FIFO)."""
        cfg = self.config
        r_rdy = body.submodules.fifo.r_rdy
        fifo = self.open_sub(body, "fifo", platform)
        depth = cfg.result_depth
        chain = [driven(body, f"out_valid_d{i}") for i in range(cfg.rows + cfg.mult_latency + 1)]
        level, single = driven(fifo, "level"), driven(fifo, "single")
        produce, consume = driven(fifo, "produce"), driven(fifo, "consume")
        rows = driven(body, "credits") + ones(*chain) + level + driven(body, "returned")
        wrapped = consume + level
        m.d.comb += [
            Assert(rows == depth, "credits, rows in flight and FIFO rows do not add up"),
            Assert(r_rdy == (level != 0), "FIFO r_rdy disagrees with its level"),
            Assert(single == (level == 1), "FIFO single disagrees with its level"),
            Assert(level == (level if shadow is None else shadow),
                   "the FIFO level disagrees with its handshakes"),
            Assert((consume < depth) & (produce < depth), "a FIFO pointer out of range"),
            Assert(produce == Mux(wrapped >= depth, wrapped - depth, wrapped),
                   "FIFO pointers disagree with its level"),
        ]

    def _beats(self, m: Module) -> None:
        cfg, dut = self.config, self.dut
        acts, res = dut.activations, dut.result
        took = acts.valid & acts.ready
        out = res.valid & res.ready
        owed = Owed(m, limit=cfg.result_depth, name="rows_owed")
        if cfg.dataflow == "os":
            owed.update(((took & acts.payload.last) * cfg.rows), out)
            row = Signal(range(cfg.rows), name="row_in_tile")
            with m.If(out):
                m.d.sync += row.eq(Mux(row == cfg.rows - 1, 0, row + 1))
            with m.If(res.valid):
                m.d.comb += Assert(res.payload.last == (row == cfg.rows - 1),
                                    "result.last not on a tile's last row")
        else:
            owed.update(took, out)
        idle = quiet_for(m, ~took & res.ready, cycles=self.drain_cycles(), name="drained")
        with m.If(idle):
            m.d.comb += Assert(owed.count == 0, "a result row was lost")

