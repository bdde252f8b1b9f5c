"""Board tops: the accelerator behind a UART bridge, on ECP5 boards (ULX3S, ECPIX-5).

:mod:`.framing` defines the link's frames once; :class:`.bridge.Bridge` speaks them in
hardware, :mod:`hwaccel.runtime.serial_link` on the host.
"""

from .config import BoardConfig, BridgeConfig

__all__ = ["BoardConfig", "BridgeConfig"]
