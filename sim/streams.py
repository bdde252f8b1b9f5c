"""cocotb verification components for ``amaranth.lib.stream`` ports.

A DUT stream member ``x`` appears as ports ``x__payload``, ``x__valid`` and ``x__ready``.
:class:`StreamBench` drives any number of source streams (into the DUT) and sink streams (out of
it) from one coroutine, one loop iteration per clock: that is several times faster than one
coroutine per stream, and it makes the cycle count of a transfer exact.

Each cycle, after the rising edge, sources raise ``valid`` (or idle with probability ``idle``)
and hold it until the beat transfers -- a producer never waits for ``ready`` -- and sinks drive
``ready`` (low with probability ``backpressure``). After ``ReadOnly`` the handshakes that will
happen at the next edge are sampled. That loop -- the streams' state, the seeded draws, the
bounds -- is :class:`sim.stream_loop.StreamLoop`, shared with Amaranth's simulator; this module
gives it cocotb's ports and triggers.

When the bench writes matters. Ports are written through the GPI at once (the fast path, see
:class:`_Port`), and on an event-driven simulator such as Icarus a write made in the time step
of the edge itself, before every flip-flop has sampled, races with them: a beat is taken twice.
Verilator evaluates the whole edge before cocotb's ``RisingEdge`` callback runs, so there the
write lands after every flip-flop has sampled. On any other simulator the bench first waits
for the edge's ``ReadWrite`` phase -- where cocotb applies its own scheduled writes -- so the
same stimulus lands in the same cycle everywhere. Every run is bounded: ``max_cycles`` in total and
``stall_cycles`` without any transfer; either raises :class:`StreamTimeout` naming the streams
that are stuck and the seed.
"""

from __future__ import annotations

import cocotb
from cocotb.triggers import ReadOnly, ReadWrite, RisingEdge

from .stream_loop import StreamLoop, StreamStats, StreamTimeout

__all__ = ["StreamTimeout", "StreamStats", "StreamBench", "check_ports", "reset",
           "edge_writes_are_safe"]


class XValueError(AssertionError):
    """A port read undefined (x or z) bits on a four-state simulator."""


def check_ports(dut, sidecar: dict) -> list[str]:
    """Names of sidecar ports that do not resolve on ``dut`` (empty when all do)."""
    missing = []

    def walk(node):
        for member in node["members"].values():
            if member["type"] == "port":
                try:
                    handle = getattr(dut, member["name"])
                    if len(handle) != member["width"]:
                        missing.append(f"{member['name']} (width {len(handle)}, "
                                       f"sidecar {member['width']})")
                except AttributeError:
                    missing.append(member["name"])
            else:
                walk(member)

    walk(sidecar["ports"])
    return missing


def edge_writes_are_safe() -> bool:
    """Whether a GPI write made in ``RisingEdge``'s callback lands after the edge everywhere.

    True on Verilator only (two-state, and it evaluates the edge completely before the callback).
    """
    return cocotb.SIM_NAME.lower().startswith("verilator")


async def reset(dut, cycles: int = 2) -> None:
    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(dut.clk)
    dut.rst.value = 0


class _Port:
    """Fast access to one port. cocotb's public ``handle.value`` builds a ``LogicArray`` per access,
    which halves the cycles per second of a bench that touches ports every clock; the GPI handle
    underneath (``handle._handle``) reads and writes plain ints and bit strings.

    Verilator is two-state, so a read always is an integer. On a four-state simulator every read
    goes through the bit string and an ``x`` or ``z`` bit raises :class:`XValueError` naming the
    port: an undefined output is a design (or bench) fault, never a number."""

    def __init__(self, handle):
        self.handle = handle
        self.gpi = getattr(handle, "_handle", None)
        self.width = len(handle)
        self.fmt = f"0{self.width}b"
        if not edge_writes_are_safe():  # four-state: check every bit (slower, and exact)
            self.get = self.get_raw = self._get_checked

    def _get_checked(self) -> int:
        bits = self.gpi.get_signal_val_binstr() if self.gpi is not None else str(self.handle.value)
        try:
            return int(bits, 2)
        except ValueError:
            raise XValueError(f"port {self.handle._name} reads {bits!r}: undefined (x/z) bits "
                              "where the design must drive a value") from None

    def get(self) -> int:
        if self.gpi is None:
            return self.handle.value.to_unsigned()
        if self.width <= 32:
            return self.gpi.get_signal_val_long() & ((1 << self.width) - 1)
        return int(self.gpi.get_signal_val_binstr(), 2)

    def set(self, value: int) -> None:
        self.set_encoded(self.encode(value))

    # Encoded values are what the fastest GPI call takes: ints up to 31 bits, bit strings above.
    def encode(self, value: int):
        if self.gpi is None or self.width <= 31:
            return value
        return format(value, self.fmt)

    def set_encoded(self, value) -> None:
        if self.gpi is None:
            self.handle.value = value
        elif self.width <= 31:
            self.gpi.set_signal_val_int(0, value)
        else:
            self.gpi.set_signal_val_binstr(0, value)

    def get_raw(self):
        """The value in the cheapest form to read now; :meth:`decode` turns it into an int."""
        if self.gpi is None:
            return self.handle.value.to_unsigned()
        if self.width <= 32:
            return self.gpi.get_signal_val_long() & ((1 << self.width) - 1)
        return self.gpi.get_signal_val_binstr()

    @staticmethod
    def decode(raw) -> int:
        return raw if isinstance(raw, int) else int(raw, 2)


class StreamBench(StreamLoop):
    """Drive ``sources`` (name -> packed beats) and collect ``sinks`` (name -> beat count).

    The cycle loop, its random draws and bounds are :class:`sim.stream_loop.StreamLoop`'s; this
    bench supplies the GPI ports and cocotb's triggers.
    """

    def __init__(self, dut, sources: dict[str, list[int]], sinks: dict[str, int], *,
                 seed: int, idle: float | dict[str, float] = 0.0, backpressure: float = 0.0,
                 max_cycles: int = 1_000_000, stall_cycles: int = 10_000):
        self.dut = dut
        self.clk = dut.clk
        super().__init__(lambda name: _Port(getattr(dut, name)), sources, sinks, seed=seed,
                         idle=idle, backpressure=backpressure, max_cycles=max_cycles,
                         stall_cycles=stall_cycles)

    async def run(self) -> StreamStats:
        """Run until every source beat is sent and every sink beat received."""
        rising, settled = RisingEdge(self.clk), ReadOnly()
        # The write point after each edge (see the module docstring): awaited as one trigger
        # on Verilator, the fastest path; after the edge's ReadWrite phase elsewhere.
        write_phase = ReadWrite() if not edge_writes_are_safe() else None
        for edge in self.steps():
            if edge:
                await rising
                if write_phase is not None:
                    await write_phase
            else:
                await settled
        return self.stats
