"""The boards a bitstream can target, through ``amaranth-boards`` platforms.

``amaranth-boards`` 0.0.21 (PyPI) supports Amaranth 0.5 (it requires ``amaranth>=0.5,<0.7``),
so its platform descriptions -- pins, I/O standards, the oscillator -- are used as they are;
hwaccel adds only ``dsp_primitive`` (so the accelerator's products map onto MULT18X18D as
``hwaccel synth --target ecp5`` maps them) and picks the resources below.

=========  ====================  ==============  ==========  =============================
board      device                oscillator      reset       host link
=========  ====================  ==============  ==========  =============================
ulx3s      LFE5U-85F, CABGA381   clk25 (25 MHz)  button      FT231X USB serial (uart 0: rx
           (speed 6)                             FIRE1 (R1)  M1, tx L4); LEDs 0-3
ecpix5     LFE5UM5G-85F,         clk100          rst (AB1,   FT2232H channel B USB serial
           CABGA554 (speed 8)    (100 MHz)       active low) (uart 0: rx R26, tx R24); the
                                                             green of RGB LEDs 0-3
=========  ====================  ==============  ==========  =============================
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["Board", "BOARDS"]


@dataclass(frozen=True)
class Board:
    """One board: its ``amaranth-boards`` platform and the resources the top uses."""

    name: str
    module: str            # amaranth_boards.<module>
    platform_class: str
    clock: str             # the oscillator's resource
    clock_mhz: float
    reset: tuple[str, int]   # an active-high reset input (amaranth-boards inverts PinsN)
    leds: int              # LEDs the top drives (busy, done, error, PLL lock)
    device: str
    led_color: str = ""    # an RGB LED's colour to use ("g"), or "" for plain ``led`` resources

    def led_port(self, platform, index: int):
        """The pin of LED ``index`` (``dir="-"``, for an ``io.Buffer``; amaranth-boards marks
        active-low LEDs inverted, so a 1 lights it)."""
        if self.led_color:
            return getattr(platform.request("rgb_led", index, dir="-"), self.led_color)
        return platform.request("led", index, dir="-")

    def platform(self):
        """A platform instance (``amaranth_boards`` imported now); raises ``ModuleNotFoundError``
        naming the package when it is not installed."""
        try:
            mod = importlib.import_module(f"amaranth_boards.{self.module}")
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError("amaranth-boards is not installed: `pip install "
                                      "amaranth-boards` (or `pip install hwaccel[impl]`)") from exc
        base = getattr(mod, self.platform_class)
        cls = type(f"Hwaccel{self.platform_class}", (base,), {"dsp_primitive": "MULT18X18D"})
        return cls()


BOARDS: dict[str, Board] = {
    b.name: b for b in (
        Board("ulx3s", "ulx3s", "ULX3S_85F_Platform", "clk25", 25.0, ("button_fire", 0), 4,
              "LFE5U-85F-6BG381C"),
        Board("ecpix5", "ecpix5", "ECPIX585Platform", "clk100", 100.0, ("rst", 0), 4,
              "LFE5UM5G-85F-8BG554I", led_color="g"),
    )
}
