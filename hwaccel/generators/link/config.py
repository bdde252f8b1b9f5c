"""Configuration of the inter-accelerator link and of the shared host-port arbiter.

A beat on either block is ``{data: width x u8, count, last}`` (:func:`beat_layout`): ``count``
bytes of ``data`` are meaningful (``1 <= count <= width``, the low lanes), and ``last`` marks a
transfer's final beat. A transfer of ``S`` bytes is ``ceil(S / width)`` beats, all full but the
last. The blocks carry beats unchanged; they never look inside ``data``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from amaranth.hdl import unsigned
from amaranth.lib import data

from ...config import check_bool, check_int, check_name

__all__ = ["LinkConfig", "ArbiterConfig", "beat_layout", "arbiter_layout", "PRESETS",
           "MAX_WIDTH", "MAX_LATENCY", "MAX_BUFFER", "MAX_PORTS", "MAX_WATCHDOG"]

#: Widest beat in bytes (a 4096-bit link).
MAX_WIDTH = 512
#: Longest one-way latency in cycles (a flop per cycle of flight: the delay lines are registers).
MAX_LATENCY = 1024
#: Largest receive buffer in bytes.
MAX_BUFFER = 1 << 20
#: Most instances on one host port.
MAX_PORTS = 64
#: Longest watchdog window in cycles.
MAX_WATCHDOG = 1 << 24


def beat_layout(width: int) -> data.StructLayout:
    """One beat: ``data`` (``width`` bytes, byte ``i`` at bits ``[8i, 8i+8)``), ``count`` (the
    meaningful bytes, ``1..width``) and ``last`` (a transfer's final beat)."""
    return data.StructLayout({
        "data": data.ArrayLayout(unsigned(8), width),
        "count": unsigned(width.bit_length()),
        "last": unsigned(1),
    })


def arbiter_layout(width: int, ports: int) -> data.StructLayout:
    """A beat on the shared host port: the instance it came from (``port``) and the beat."""
    return data.StructLayout({
        "port": unsigned(max(1, (ports - 1).bit_length())),
        "beat": beat_layout(width),
    })


@dataclass(frozen=True)
class LinkConfig:
    """A point-to-point credit-flow link (:class:`~.link.Link`).

    Parameters
    ----------
    width : int
        Bytes per beat ``W``: at most one beat enters a cycle.
    latency : int
        One-way latency ``L`` in cycles, the same for beats and for returned credits: a beat
        taken at cycle ``t`` can leave the receive buffer at ``t + L``; a credit returned at
        cycle ``p`` can be spent at ``p + L + 1``. ``0`` is a wire (a beat can cross in the
        cycle it is sent).
    buffer : int
        Receive buffer ``D`` in bytes, a multiple of ``width``: ``D / W`` beats, hence credits.
    watchdog : int
        Cycles of waiting (a beat offered but held for want of a credit, or a beat at the
        receive buffer's head that the receiver does not take) with no beat taken or leaving,
        in a row, after which the ``stalled`` status output latches. More than the round trip
        ``2L + 1``, which an idle-looking credit-bound link can spend waiting for a credit.
    name : str
        Preset name; the slug is ``link_<name>``.

    Raises
    ------
    TypeError, ValueError
        Naming the field, its limit and the bad value.
    """

    width: int = 4
    latency: int = 2
    buffer: int = 16
    watchdog: int = 256
    name: str = "custom"

    kind = "link"

    def __post_init__(self):
        check_int("width", self.width, min=1, max=MAX_WIDTH)
        check_int("latency", self.latency, min=0, max=MAX_LATENCY)
        check_int("buffer", self.buffer, min=1, max=MAX_BUFFER)
        check_int("watchdog", self.watchdog, min=1, max=MAX_WATCHDOG)
        check_name(self.name)
        if self.watchdog <= self.round_trip:
            raise ValueError(f"watchdog must exceed the round trip 2 * latency + 1 "
                             f"({self.round_trip} cycles), not {self.watchdog!r}")
        if self.buffer % self.width:
            raise ValueError(f"buffer must be a multiple of width ({self.width}) bytes, "
                             f"not {self.buffer!r}")

    def with_(self, **changes) -> LinkConfig:
        return replace(self, **changes)

    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    @property
    def credits(self) -> int:
        """Credits ``C = D / W``: beats the receive buffer holds."""
        return self.buffer // self.width

    @property
    def round_trip(self) -> int:
        """Cycles one credit is out, from the beat it pays for to its next use: ``2L + 1``."""
        return 2 * self.latency + 1

    @property
    def bandwidth(self) -> Fraction:
        """Sustained bytes per cycle, ``min(W, D / (2L + 1))``, exact."""
        return min(Fraction(self.width), Fraction(self.buffer, self.round_trip))

    @property
    def full_rate_buffer(self) -> int:
        """The smallest buffer that sustains one beat a cycle: ``W * (2L + 1)`` bytes."""
        return self.width * self.round_trip

    def derived(self) -> dict:
        return {"credits": self.credits, "round_trip": self.round_trip,
                "bandwidth": str(self.bandwidth), "full_rate_buffer": self.full_rate_buffer}

    def build(self):
        from .link import Link

        return Link(self)


@dataclass(frozen=True)
class ArbiterConfig:
    """``ports`` instances sharing one host port (:class:`~.arbiter.HostPortArbiter`).

    Parameters
    ----------
    ports : int
        Instances ``N`` (input streams).
    width : int
        Bytes per beat of the host port.
    packets : bool
        ``False``: the grant moves on after every beat. ``True``: a port keeps the grant from
        its first beat to its ``last`` beat, so a transfer crosses the port unbroken.
    name : str
        Preset name; the slug is ``link_arbiter_<name>``.

    Raises
    ------
    TypeError, ValueError
        Naming the field, its limit and the bad value.
    """

    ports: int = 2
    width: int = 4
    packets: bool = False
    name: str = "custom"

    kind = "link"

    def __post_init__(self):
        check_int("ports", self.ports, min=1, max=MAX_PORTS)
        check_int("width", self.width, min=1, max=MAX_WIDTH)
        check_bool("packets", self.packets)
        check_name(self.name)

    def with_(self, **changes) -> ArbiterConfig:
        return replace(self, **changes)

    @property
    def slug(self) -> str:
        return f"{self.kind}_arbiter_{self.name}"

    def derived(self) -> dict:
        return {"port_bits": max(1, (self.ports - 1).bit_length())}

    def build(self):
        from .arbiter import HostPortArbiter

        return HostPortArbiter(self)


#: Named sizes (the generator registry lists them as ``link_<name>``/``link_arbiter_<name>``).
PRESETS: dict[str, LinkConfig | ArbiterConfig] = {
    c.slug.removeprefix("link_"): c
    for c in (
        # Small enough for Amaranth's simulator: 4 credits against a 5-cycle round trip, so
        # it runs at 4/5 of a beat a cycle, credit-bound.
        LinkConfig(width=4, latency=2, buffer=16, watchdog=64, name="tiny"),
        # A 128-bit link with 16 cycles of flight and the 33 beats of buffer that keep it at
        # a full beat a cycle (W * (2L + 1) = 528 bytes, rounded up to 64 beats).
        LinkConfig(width=16, latency=16, buffer=1024, watchdog=4096, name="default"),
        ArbiterConfig(ports=2, width=4, name="tiny"),
        ArbiterConfig(ports=4, width=16, packets=True, name="default"),
    )
}
