"""cocotb verification components for ``amaranth.lib.stream`` ports.

A DUT stream member ``x`` appears as ports ``x__payload``, ``x__valid`` and ``x__ready``.
:class:`StreamBench` drives any number of source streams (into the DUT) and sink streams (out of
it) from one coroutine, one loop iteration per clock: that is several times faster than one
coroutine per stream, and it makes the cycle count of a transfer exact.

Each cycle, after the rising edge, sources raise ``valid`` (or idle with probability ``idle``)
and hold it until the beat transfers -- a producer never waits for ``ready`` -- and sinks drive
``ready`` (low with probability ``backpressure``). After ``ReadOnly`` the handshakes that will
happen at the next edge are sampled.

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

import random
from dataclasses import dataclass, field

import cocotb
from cocotb.triggers import ReadOnly, ReadWrite, RisingEdge

__all__ = ["StreamTimeout", "StreamStats", "StreamBench", "check_ports", "reset",
           "edge_writes_are_safe"]


class StreamTimeout(AssertionError):
    """A stream bench exceeded its cycle budget (a hang or a lost beat)."""


class XValueError(AssertionError):
    """A port read undefined (x or z) bits on a four-state simulator."""


@dataclass
class StreamStats:
    cycles: int = 0                 # cycles the loop ran
    first_in: int | None = None     # cycle of the first source transfer
    last_out: int | None = None     # cycle of the last sink transfer
    received: dict[str, list[int]] = field(default_factory=dict)

    @property
    def span(self) -> int:
        """Cycles from the first input transfer to the last output transfer, both included."""
        if self.first_in is None or self.last_out is None:
            return 0
        return self.last_out - self.first_in + 1


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


class _Source:
    def __init__(self, dut, name: str, beats: list[int]):
        self.name = name
        self.payload = _Port(getattr(dut, f"{name}__payload"))
        self.valid = _Port(getattr(dut, f"{name}__valid"))
        self.ready = _Port(getattr(dut, f"{name}__ready"))
        self.beats = beats
        self.index = 0
        self.driving = False
        self.fire = False
        self.valid_level = 0
        self.encoded: list = []


class _Sink:
    def __init__(self, dut, name: str, count: int):
        self.name = name
        self.payload = _Port(getattr(dut, f"{name}__payload"))
        self.valid = _Port(getattr(dut, f"{name}__valid"))
        self.ready = _Port(getattr(dut, f"{name}__ready"))
        self.count = count
        self.got: list[int] = []
        self.ready_driven = 0
        self.fire = False


class StreamBench:
    """Drive ``sources`` (name -> packed beats) and collect ``sinks`` (name -> beat count)."""

    def __init__(self, dut, sources: dict[str, list[int]], sinks: dict[str, int], *,
                 seed: int, idle: float = 0.0, backpressure: float = 0.0,
                 max_cycles: int = 1_000_000, stall_cycles: int = 10_000):
        self.dut = dut
        self.clk = dut.clk
        self.sources = [_Source(dut, n, b) for n, b in sources.items()]
        self.sinks = [_Sink(dut, n, c) for n, c in sinks.items()]
        self.rng = random.Random(seed)
        self.seed = seed
        self.idle = idle
        self.backpressure = backpressure
        self.max_cycles = max_cycles
        self.stall_cycles = stall_cycles

    def _state(self) -> str:
        parts = [f"{s.name}: {s.index}/{len(s.beats)} sent" for s in self.sources]
        parts += [f"{k.name}: {len(k.got)}/{k.count} received" for k in self.sinks]
        return "; ".join(parts)

    async def run(self) -> StreamStats:
        """Run until every source beat is sent and every sink beat received."""
        stats = StreamStats()
        rng, idle, bp = self.rng, self.idle, self.backpressure
        sources, sinks = self.sources, self.sinks
        for s in sources:
            s.valid.set(0)
            s.valid_level = 0
            s.encoded = [s.payload.encode(b) for b in s.beats]
        for k in sinks:
            k.ready.set(0)
        remaining = sum(len(s.beats) for s in sources) + sum(k.count for k in sinks)
        rising, settled = RisingEdge(self.clk), ReadOnly()
        # The write point after each edge (see the module docstring): awaited as one trigger
        # on Verilator, the fastest path; after the edge's ReadWrite phase elsewhere.
        write_phase = ReadWrite() if not edge_writes_are_safe() else None
        cycle = 0
        last_progress = 0
        while remaining:
            await rising
            if write_phase is not None:
                await write_phase
            cycle += 1
            # Drive this cycle: a source holds valid until its beat transfers.
            for s in sources:
                if s.fire:
                    s.index += 1
                    s.driving = s.fire = False
                    remaining -= 1
                    last_progress = cycle
                if not s.driving:
                    if s.index < len(s.beats) and not (idle and rng.random() < idle):
                        s.payload.set_encoded(s.encoded[s.index])
                        s.driving = True
                        if not s.valid_level:
                            s.valid.set(1)
                            s.valid_level = 1
                    elif s.valid_level:
                        s.valid.set(0)
                        s.valid_level = 0
            for k in sinks:
                if k.fire:
                    k.fire = False
                    remaining -= 1
                    last_progress = cycle
                want = 0 if (bp and rng.random() < bp) else 1
                if want != k.ready_driven:
                    k.ready.set(want)
                    k.ready_driven = want
            await settled
            # Sample the handshakes that happen at the next edge.
            for s in sources:
                if s.driving and s.ready.get():
                    s.fire = True
                    if stats.first_in is None:
                        stats.first_in = cycle
            for k in sinks:
                if k.ready_driven and k.valid.get():
                    if len(k.got) >= k.count:
                        raise AssertionError(
                            f"{k.name} produced more than the {k.count} beats expected "
                            f"(cycle {cycle}, seed {self.seed}; {self._state()})")
                    k.got.append(k.payload.get_raw())
                    k.fire = True
                    stats.last_out = cycle
            if cycle - last_progress > self.stall_cycles or cycle > self.max_cycles:
                raise StreamTimeout(
                    f"no stream transfer for {cycle - last_progress} cycles (cycle {cycle}, "
                    f"seed {self.seed}): {self._state()}")
            if remaining == sum(1 for s in sources if s.fire) + sum(1 for k in sinks if k.fire):
                break
        await rising
        if write_phase is not None:
            await write_phase
        for s in sources:
            s.valid.set(0)
        for k in sinks:
            k.ready.set(0)
        stats.cycles = cycle
        stats.received = {k.name: [k.payload.decode(w) for w in k.got] for k in sinks}
        return stats
