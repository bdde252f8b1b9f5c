"""Formal harnesses of the LSTM cell (run by ``hwaccel verify``).

Properties, on the ``tiny_p1`` preset (I = 3, H = 2, one lane, h after each sequence), built
with ``runtime_size`` and its ``size`` input free (any value in any cycle, sizes above the
cell's and 0 included), so they hold for every size the cell can be asked to run:

``h_stream``  ``h`` keeps ``valid`` until the transfer and its payload stable, for any loads
              and x beats that obey the stream rules and any back-pressure.
``h_fifo``    the 2-deep output FIFO is never written while full nor read while empty: the
              credit reserved at the snapshot always leaves room for h.

Mutants: ``h_stream`` a source that drops ``valid``; ``h_fifo`` the cell built with a one-row
output FIFO behind its two credits.
"""

from __future__ import annotations

from amaranth.hdl import Assume, Module, Signal
from amaranth.lib.fifo import SyncFIFO

from ...formal.props import Harness, fifo_bounds, replaced, stream_rules
from . import cell as cell_module
from .cell import LstmCell
from .config import PRESETS, LstmConfig

__all__ = ["LstmHarness", "PROPERTIES", "formal_configs"]

PROPERTIES = ("h_stream", "h_fifo")


def formal_configs() -> dict[str, LstmConfig]:
    cfg = PRESETS["tiny_p1"]
    return {cfg.slug: cfg}


class _OneRowFIFO(SyncFIFO):
    def __init__(self, *, width: int, depth: int):
        super().__init__(width=width, depth=depth - 1)


class LstmHarness(Harness):
    """One property of one :class:`LstmCell`."""

    # Arithmetic only: the x and h buffers, MAC products and accumulators, the snapshot chains
    # and the gate unit's datapath stages (its control flags ``g<n>_*`` stay exact).
    abstract = tuple(f"w:{n}" for n in (
        "*x_buf*", "*h_buf*", "*.v1", "*.prod[0-9]*", "*acc_x*", "*acc_h*", "*snap_x*",
        "*snap_h*", "*ax1_*", "*ah1_*", "*px2_*", "*ph2_*", "*sx2_*", "*sh2_*", "*b2_*", "*z3_*",
        "*neg4_*", "*a5_*", "*.c5", "*.fc6", "*.ig6", "*.o6", "*.c7", "*.o7", "*.neg8", "*.o8",
        "*.t9", "*.o9",
    ))

    def __init__(self, config: LstmConfig, prop: str, *, mutant: bool = False):
        if prop not in PROPERTIES:
            raise ValueError(f"prop must be one of {', '.join(PROPERTIES)}, not {prop!r}")
        super().__init__(prop, mutant=mutant)
        self.config = config
        dut = self.dut = LstmCell(config, runtime_size=True)
        self.take(dut.size)
        self.take_streams(dut.weights, dut.params, dut.x)
        self.take_streams(dut.h, sink=True)
        self.glitch = Signal()
        if mutant and prop == "h_stream":
            self.take(self.glitch)

    def build(self, m: Module, platform) -> None:
        dut = self.dut
        if self.mutant and self.prop == "h_fifo":
            with replaced(cell_module, "SyncFIFO", _OneRowFIFO):
                body = self.open_up(dut, platform)
        else:
            body = self.open_up(dut, platform)
        m.submodules.dut = body
        for name in ("weights", "params", "x"):
            stream_rules(m, getattr(dut, name), check=Assume, name=name)
        if self.prop == "h_stream":
            valid = dut.h.valid & ~self.glitch if self.mutant else None
            stream_rules(m, dut.h, valid=valid, name="h")
        else:
            fifo = body.submodules.out_fifo
            fifo_bounds(m, depth=fifo.depth, w_en=fifo.w_en, w_rdy=fifo.w_rdy, r_en=fifo.r_en,
                        r_rdy=fifo.r_rdy, name="h_fifo")
