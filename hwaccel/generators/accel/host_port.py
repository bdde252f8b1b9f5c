"""The accelerator's host-port registers (:mod:`.accelerator`): CONTROL (start, soft reset),
WATCHDOG, the reset registers and the registered reads.

The resets are registers with no logic between them and the flip-flops they reset: ``soft``
(the processor's) is high the cycle after the host writes CONTROL's soft-reset bit; ``kill``
(every other unit's) then too, or in the cycle the processor abandons a job, which it decides
a cycle ahead (``abort_next``: :mod:`.processor`). In ``soft``'s cycle the units still run (they
are reset at its end), so a start written then is held for the next cycle.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Module, Mux, Signal

from .config import AccelConfig
from .counters import COUNTER_BITS
from .isa import CONTROL_RESET, CONTROL_START, Reg, Region

__all__ = ["host_control", "host_reads"]


def host_control(m: Module, cfg: AccelConfig, host, proc) -> SimpleNamespace:
    """CONTROL and WATCHDOG writes into ``proc`` (its ``start``, ``start_pc`` and
    ``watch_last``); returns ``region`` and ``offset`` (of ``host.addr``), the reset
    registers ``soft`` and ``kill``, and ``start_late``: a start written in ``soft``'s cycle
    is being taken (STATUS.busy reads 1 then, as in the cycle after any start)."""
    region = host.addr[cfg.addr_bits:]
    offset = host.addr[: cfg.addr_bits]
    reg_write = host.we & (region == Region.REG)
    control = reg_write & (offset == Reg.CONTROL)
    assert CONTROL_START == 1 and CONTROL_RESET == 2  # the bits tested here
    soft_write = control & host.wdata[1]
    soft, kill = Signal(name="soft"), Signal(name="kill")
    m.d.sync += [soft.eq(soft_write), kill.eq(soft_write | proc.abort_next)]
    # A start: CONTROL's start bit without the soft-reset bit; one written in ``soft``'s cycle
    # (the processor is in reset) is taken in the next.
    start_write = control & host.wdata[0] & ~host.wdata[1]
    start_late, pc_late = Signal(name="start_late"), Signal.like(proc.start_pc, name="pc_late")
    m.d.sync += [start_late.eq(start_write & soft), pc_late.eq(host.wdata[16:32])]
    m.d.comb += [proc.start.eq((start_write & ~soft) | start_late),
                 proc.start_pc.eq(Mux(start_late, pc_late, host.wdata[16:32]))]
    # The processor takes the limit less one (``watch_last``: its compare then has no adder
    # before it); 0, or ``watchdog`` and more, is the default, ``watchdog``. The bits above
    # the limit's width are OR-ed, not compared: ``wdata >= watchdog`` on the whole host word
    # was a carry chain of 248 CCU2C (496 bits) on accel_ecp5, from the host's data.
    default = cfg.watchdog - 1
    watch_last = Signal.like(proc.watch_last, init=default)
    m.d.comb += proc.watch_last.eq(watch_last)
    w = len(watch_last)
    low = host.wdata[:w]
    too_big = (host.wdata[w:] != 0) | (low >= cfg.watchdog)
    with m.If(reg_write & (offset == Reg.WATCHDOG)):
        m.d.sync += watch_last.eq(Mux(too_big | (low == 0), default, low - 1))
    with m.If(soft_write):
        m.d.sync += watch_last.eq(default)
    return SimpleNamespace(region=region, offset=offset, soft=soft, kill=kill,
                           start_late=start_late)


def host_reads(m: Module, host, port: SimpleNamespace, regs: list, act_data, wgt_rd,
               prog_rd, pending: list = ()) -> None:
    """``host.rdata``: the word at ``host.addr`` from the cycle after ``re`` (REG: ``regs``, STATUS
    then the counters, each plus its ``pending`` value where it has one: a counter's
    registered event; the memories: their read ports, which the host addresses while they
    are its own; ``act_data`` the activation scratchpad's word as the host sees it). The
    register and its pending value are chosen into registers and added as they leave them,
    one adder beside the memories' reads: after the choice, in the same cycle, it made the
    read register's input a choice (STATUS's fields) and a 48-bit carry chain, the netlist
    estimate's deepest path at bb81e54 (14.8 ns)."""
    r_region = Signal(2)
    r_reg = Signal(max(COUNTER_BITS, 32))
    r_add = Signal()
    with m.If(host.re):
        m.d.sync += r_region.eq(port.region)
        # Mux chains rather than m.Switch: Yosys writes Switches as case statements without a
        # default, which lints as CASEINCOMPLETE.
        value, extra = 0, 0
        for i, reg in reversed(list(enumerate(regs))):
            value = Mux(port.offset == i, reg, value)
        for i, add in reversed(list(enumerate(pending))):
            extra = Mux(port.offset == i, add, extra)
        m.d.sync += [r_reg.eq(value), r_add.eq(extra)]
    m.d.comb += host.rdata.eq(
        Mux(r_region == Region.ACT, act_data,
            Mux(r_region == Region.WGT, wgt_rd.data,
                Mux(r_region == Region.PROG, prog_rd.data, (r_reg + r_add)[:len(r_reg)]))))
