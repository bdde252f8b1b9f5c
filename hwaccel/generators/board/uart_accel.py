"""The accelerator behind a UART: receiver, bridge, transmitter and the accelerator, wired."""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..accel.accelerator import Accelerator
from .bridge import Bridge
from .config import BridgeConfig
from .uart_rx import UartRx
from .uart_tx import UartTx

__all__ = ["UartAccel"]


class UartAccel(wiring.Component):
    """What a board top instantiates and what the Verilator test runs: two pins in, the
    accelerator inside.

    Parameters
    ----------
    config : BridgeConfig

    Members
    -------
    rx : ``In(1)``, init 1    the serial line from the host
    tx : ``Out(1)``, init 1   the serial line to the host
    busy, done, error : ``Out(1)``   the accelerator's STATUS bits (for LEDs)
    """

    def __init__(self, config: BridgeConfig):
        if not isinstance(config, BridgeConfig):
            raise TypeError(f"config must be a BridgeConfig, not {config!r}")
        self.config = config
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1), "busy": Out(1),
                          "done": Out(1), "error": Out(1)})

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        m.submodules.uart_rx = rx = UartRx(divisor=cfg.divisor)
        m.submodules.uart_tx = tx = UartTx(divisor=cfg.divisor)
        m.submodules.bridge = bridge = Bridge(cfg)
        m.submodules.accel = accel = Accelerator(cfg.accel)
        wiring.connect(m, rx.source, bridge.rx)
        wiring.connect(m, bridge.tx, tx.sink)
        wiring.connect(m, bridge.host, accel.host)
        m.d.comb += [rx.rx.eq(self.rx), self.tx.eq(tx.tx), bridge.busy.eq(accel.busy),
                     self.busy.eq(accel.busy), self.done.eq(accel.done),
                     self.error.eq(accel.error)]
        return m
