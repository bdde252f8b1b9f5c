"""Configuration of the UART bridge and of the board tops around it.

:class:`BridgeConfig` is the simulated and the synthesized design alike: an accelerator behind
a UART bridge (:class:`.uart_accel.UartAccel`), with its UART ``divisor`` in clocks per bit.
:class:`BoardConfig` picks a board (:mod:`.boards`), an accelerator preset, the clock the
board's PLL makes and the baud rate; the bridge's divisor and quiet gap follow from them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...config import check_int, check_name
from ..accel.config import AccelConfig

__all__ = ["BridgeConfig", "BoardConfig", "BOARD_MHZ", "DEFAULT_MHZ", "board_mhz"]

#: The clock a board's PLL makes for a preset when none is asked for: the clock that preset's
#: routed build met on that board (nextpnr seed 1; the README gives each run), by board and
#: accelerator slug. Any other pair gets :data:`DEFAULT_MHZ`.
BOARD_MHZ: dict[tuple[str, str], float] = {
    ("ulx3s", "accel_tiny"): 30.0,     # Fmax 33.1 MHz at 30 (33.7 at 50: not met)
    # Fmax 111.52 MHz at 100 since the board flow maps multiplies as the OOC flow does
    # (107.18 before it; 106.5 at 50), speed grade 8
    ("ecpix5", "accel_ecp5"): 100.0,
}
DEFAULT_MHZ = 50.0


def board_mhz(board: str, slug: str) -> float:
    """The default PLL clock of ``board`` for the preset of accelerator ``slug``."""
    return BOARD_MHZ.get((board, slug), DEFAULT_MHZ)


@dataclass(frozen=True)
class BridgeConfig:
    """An accelerator reached through a UART and the framed protocol of :mod:`.framing`.

    Parameters
    ----------
    accel : AccelConfig
        The accelerator behind the bridge.
    divisor : int
        Clock cycles per UART bit (1 in simulation; ``clock / baud`` on a board).
    max_words : int
        Most words one WRITE frame carries (the bridge buffers a whole frame, so that its
        checksum is verified before any word is written: ``4 + max_words x word_bytes`` bytes
        of block RAM, ``word_bytes`` being the widest region's word).
    gap : int
        Quiet cycles that end a frame: a frame whose next byte does not come within ``gap``
        cycles is TRUNCATED, and after a fault the bridge waits for ``gap`` quiet cycles before
        it replies. At least 20 bit times (two bytes).
    name : str
    """

    accel: AccelConfig
    divisor: int = 1
    max_words: int = 16
    gap: int = 64
    name: str = "sim"

    def __post_init__(self):
        if isinstance(self.accel, dict):   # from a sidecar
            from ..accel.config import AccelConfig as _A

            object.__setattr__(self, "accel", _A(**self.accel))
        if not isinstance(self.accel, AccelConfig):
            raise TypeError(f"accel must be an AccelConfig, not {self.accel!r}")
        check_int("divisor", self.divisor, min=1, max=1 << 20)
        check_int("max_words", self.max_words, min=1, max=255)
        check_int("gap", self.gap, min=20 * self.divisor, max=1 << 30)
        if 4 + self.max_words * self.word_bytes > 0xFFFF:
            raise ValueError(f"max_words must be at most {(0xFFFF - 4) // self.word_bytes} "
                             f"(a frame's payload is at most 65535 bytes), not "
                             f"{self.max_words!r}")
        check_name(self.name)

    @property
    def kind(self) -> str:
        return "uart"

    @property
    def slug(self) -> str:
        return f"uart_{self.name}"

    @property
    def region_bytes(self) -> tuple[int, int, int, int]:
        """Bytes of one word of each region on the link (ACT, WGT, PROG, REG):
        :func:`.framing.region_bytes`."""
        from .framing import region_bytes

        return region_bytes(self.accel)

    @property
    def word_bytes(self) -> int:
        """Bytes of the widest word a frame carries (the buffer holds ``max_words`` of them)."""
        return max(self.region_bytes)

    @property
    def buffer_bytes(self) -> int:
        return 4 + self.max_words * self.word_bytes

    def derived(self) -> dict:
        return {"region_bytes": list(self.region_bytes), "word_bytes": self.word_bytes,
                "buffer_bytes": self.buffer_bytes,
                "accel": self.accel.derived()}

    def with_(self, **changes) -> BridgeConfig:
        return replace(self, **changes)

    def build(self):
        from .uart_accel import UartAccel

        return UartAccel(self)


@dataclass(frozen=True)
class BoardConfig:
    """A bitstream's worth of choices: board, accelerator preset, clock and baud rate.

    Parameters
    ----------
    board : str
        A key of :data:`.boards.BOARDS` (``ulx3s``, ``ecpix5``).
    preset : str
        An accelerator preset (``hwaccel.generators.accel`` ``PRESETS`` or ``MODEL_PRESETS``).
    freq_mhz : float or None
        The clock the PLL makes from the board's oscillator (the accelerator's clock); by
        default the clock this preset's build met on this board (:data:`BOARD_MHZ`), else
        :data:`DEFAULT_MHZ`.
    baud : int
        The UART's bit rate; ``freq_mhz`` must divide into it within 1 %.
    max_words : int
        As :class:`BridgeConfig`.
    gap_us : float
        The quiet time that ends a frame, in microseconds: USB serial adapters deliver a
        host's write in USB packets up to a millisecond apart, so the default is 4 ms.
    """

    board: str = "ulx3s"
    preset: str = "ecp5"
    freq_mhz: float | None = None
    baud: int = 1_000_000
    max_words: int = 16
    gap_us: float = 4000.0

    def __post_init__(self):
        from ..accel.config import MODEL_PRESETS, PRESETS
        from .boards import BOARDS

        if self.board not in BOARDS:
            raise ValueError(f"board must be one of {', '.join(map(repr, BOARDS))}, "
                             f"not {self.board!r}")
        if self.preset not in {**PRESETS, **MODEL_PRESETS}:
            raise ValueError(f"preset must be one of "
                             f"{', '.join(map(repr, {**PRESETS, **MODEL_PRESETS}))}, "
                             f"not {self.preset!r}")
        if self.freq_mhz is None:
            object.__setattr__(self, "freq_mhz", board_mhz(self.board, self.accel.slug))
        if not 10.0 <= float(self.freq_mhz) <= 400.0:
            raise ValueError(f"freq_mhz must be within 10..400 (the ECP5 PLL's outputs), "
                             f"not {self.freq_mhz!r}")
        check_int("baud", self.baud, min=1200, max=12_000_000)
        _ = self.divisor   # checks the rate error

    @property
    def accel(self) -> AccelConfig:
        from ..accel.config import MODEL_PRESETS, PRESETS

        return {**PRESETS, **MODEL_PRESETS}[self.preset]

    @property
    def divisor(self) -> int:
        """Clocks per UART bit; raises if the rate it gives is more than 1 % off ``baud``."""
        clock = self.freq_mhz * 1e6
        d = max(1, round(clock / self.baud))
        if abs(clock / d - self.baud) > 0.01 * self.baud or d < 4:
            raise ValueError(f"baud {self.baud} is not a divisor of {self.freq_mhz} MHz within "
                             f"1 % (nearest: {clock / d:.0f} at {d} clocks a bit; at least 4)")
        return d

    @property
    def slug(self) -> str:
        return f"{self.board}_{self.accel.slug}"

    def bridge(self, freq_mhz: float | None = None) -> BridgeConfig:
        """The bridge at ``freq_mhz`` (default ``self.freq_mhz``; the PLL's actual output)."""
        cfg = self if freq_mhz is None else replace(self, freq_mhz=freq_mhz)
        return BridgeConfig(self.accel, divisor=cfg.divisor, max_words=self.max_words,
                            gap=max(20 * cfg.divisor, round(self.gap_us * cfg.freq_mhz)),
                            name=self.slug)
