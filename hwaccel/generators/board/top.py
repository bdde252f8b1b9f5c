"""A board's top level: oscillator -> PLL -> the accelerator's clock, reset, UART pins, LEDs.

The design inside is :class:`.uart_accel.UartAccel` at the PLL's achieved frequency (its UART
divisor is computed from it). The ``sync`` domain is held in reset until the PLL locks and
while the board's reset input is active (synchronized to the new clock). LEDs 0-3 show busy,
done, error and PLL lock.
"""

from __future__ import annotations

from amaranth.hdl import ClockDomain, Elaboratable, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from .boards import BOARDS
from .config import BoardConfig
from .pll import Pll, PllParams
from .uart_accel import UartAccel

__all__ = ["BoardTop"]


class BoardTop(Elaboratable):
    """The top of ``config``'s bitstream; ``pll`` from :func:`.pll.pll_params` (the board's
    oscillator to ``config.freq_mhz``). A platform top has pins, not ports, so it is an
    Elaboratable rather than a Component.
    """

    def __init__(self, config: BoardConfig, pll: PllParams):
        if not isinstance(config, BoardConfig):
            raise TypeError(f"config must be a BoardConfig, not {config!r}")
        self.config = config
        self.pll = pll
        self.bridge = config.bridge(pll.fout_mhz)

    def elaborate(self, platform):
        board = BOARDS[self.config.board]
        m = Module()

        def pin(direction: str, port, name: str):
            m.submodules[name] = buf = io.Buffer(direction, port)
            return buf

        clk = pin("i", platform.request(board.clock, 0, dir="-"), "clk_buf")
        m.submodules.pll = pll = Pll(self.pll)
        m.d.comb += pll.clk_in.eq(clk.i)
        m.domains.sync = sync = ClockDomain("sync")
        m.d.comb += sync.clk.eq(pll.clk_out)
        platform.add_clock_constraint(sync.clk, self.pll.fout_mhz * 1e6)
        button = pin("i", platform.request(*board.reset, dir="-"), "reset_buf")
        reset = Signal()
        m.d.comb += reset.eq(~pll.locked | button.i)
        m.submodules.reset_sync = ResetSynchronizer(reset, domain="sync")

        m.submodules.core = core = UartAccel(self.bridge)
        uart = platform.request("uart", 0, dir="-")
        rx, tx = pin("i", uart.rx, "rx_buf"), pin("o", uart.tx, "tx_buf")
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        for i, value in enumerate((core.busy, core.done, core.error, pll.locked)[: board.leds]):
            led = pin("o", board.led_port(platform, i), f"led_buf{i}")
            m.d.comb += led.o.eq(value)
        return m
