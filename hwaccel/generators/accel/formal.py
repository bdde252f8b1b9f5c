"""Formal harnesses of the accelerator (run by ``hwaccel verify``): its command processor
(below), its DMA read unit (:class:`ReaderHarness`) and the whole accelerator's soft reset
(:class:`AcceleratorHarness`: processor, DMA, engines and job datapath idle the cycle after a
host soft reset, on ``accel_tiny``).

The processor runs alone with everything around it free: any program-memory word on every
read, any ``job_done`` and ``progress`` from the datapath in any cycle, any host start and
soft reset. The one assumption is the accelerator's own: the WATCHDOG register holds a value
below the config's ``watchdog`` (:class:`.accelerator.Accelerator` writes 0 for anything larger),
and the processor is reset by a soft reset exactly as the accelerator wires it
(``ResetInserter``; here the reset register is a free input).

Properties ("no hang"):

``watchdog``      a job never runs more than ``watchdog`` cycles without a stream transfer:
                  it finishes or faults (TIMEOUT) first. Proved at the config's own limit
                  (2048 cycles on ``tiny``) by 1-induction with four helper invariants,
                  each independent of the limit's value: in a job the processor's counter
                  ``watch`` equals the harness's count of cycles without progress (both
                  restart at the job's issue, both grow by one per quiet cycle and restart
                  on progress); ``watch`` never exceeds ``watchdog`` (at ``watchdog`` it is at
                  or past any limit the register can hold, so the job faults unless it
                  finishes that cycle); and ``watch`` is at most the job's age unless that
                  age is saturated (``RIPE``), so a GEMM tile waiting to ripen never holds
                  off the timeout at a large count; that age is at most ``RIPE`` (its
                  register can hold more, which would wrap); and at ``watchdog`` the abort
                  is decided (``expire``: the processor decides it a cycle ahead). pdr did
                  not find these relations on a 2048-cycle counter within minutes; stated,
                  they make the step inductive.
``between_jobs``  outside a job, the processor reaches its next job, retires a command or goes
                  idle within :data:`OVERHEAD` cycles (fetch, decode, checks, tile, issue);
                  a command retires only at a pc inside program memory, and while busy the
                  pc moves only by one per retired command: a program retires at most
                  ``prog_depth`` commands before DONE or a fault.
``soft_reset``    a soft reset leaves the processor idle (not busy, no job) the next cycle
                  (for the whole accelerator, whose soft reset is a register loaded from the
                  host's write, see :class:`AcceleratorHarness`).

With free progress a job may run as long as the datapath keeps moving data, so these
properties bound every stall, not the program's total time.

Mutants: ``watchdog`` with the WATCHDOG value unchecked (a limit above the config's), on a
16-cycle watchdog (:data:`MUTANT_WATCHDOG`) so that the stall shows within 20-odd cycles;
``between_jobs`` with a processor whose clock enable a free input can hold off (a processor
that can freeze); ``soft_reset`` with the soft reset not wired.
"""

from __future__ import annotations

from dataclasses import replace

from amaranth.hdl import Assert, Assume, EnableInserter, Module, ResetInserter, Signal
from amaranth.lib.fifo import SyncFIFO

from ...formal.props import Harness, driven, fifo_bounds, replaced, stream_rules
from . import accelerator as accelerator_module
from . import reader as reader_module
from .accelerator import Accelerator
from .config import PRESETS, AccelConfig
from .isa import CONTROL_RESET, Reg, Region
from .processor import RIPE, Processor
from .reader import Reader

__all__ = ["ProcessorHarness", "ReaderHarness", "AcceleratorHarness", "PROPERTIES",
           "formal_configs", "formal_checks", "OVERHEAD"]

PROPERTIES = ("watchdog", "between_jobs", "soft_reset")

#: The watchdog limit the ``watchdog`` mutant runs with (see :class:`ProcessorHarness`).
MUTANT_WATCHDOG = 16

#: Cycles from one job, command or start to the next event: FETCH, DECODE, CALC, CHECK, TILE,
#: ISSUE, plus one (after a job, decode-ahead skips FETCH and DECODE, and a command checked
#: under the job goes straight to ISSUE, or to CHECK: the bound then has two cycles or more to
#: spare).
OVERHEAD = 7


def formal_configs() -> dict[str, AccelConfig]:
    cfg = PRESETS["tiny"]
    return {cfg.slug: cfg}


#: The processor's registers that only feed arithmetic the properties do not read: the range
#: checks' factors and room (unnamed ``$signal`` registers), the GEMM tiling pipeline and the
#: job fields handed to the datapath, with the word the checks read (``ccmd``: the next command's
#: while a job runs) and the running command's copies of what its tiles read of them
#: (``run_*``). Abstracted, they are free in every cycle, so a check may
#: pass or fault and a GEMM may have any number of tiles; the state, pc, status, watchdog,
#: tile age and command word stay exact. (Named one by one: a wire selection would also catch
#: ``prog_addr``, the pc's low bits, or pc + 1's while a job issues or runs.)
DATAPATH = ("$signal*", "$like*", "nxt_*", "gb", "geo_*", "kwb", "n_next", "wk_next", "step_*",
            "tn_cur", "rem", "pixels_out", "oh_calc", "ow_calc", "past", "legal", "more*",
            "k_tiled", "job_*", "ccmd", "run_*")


class ProcessorHarness(Harness):
    """One property of the :class:`Processor` of an :class:`AccelConfig`."""

    abstract = tuple(f"w:proc.{n}" for n in DATAPATH)

    def __init__(self, config: AccelConfig, prop: str, *, mutant: bool = False):
        if prop not in PROPERTIES:
            raise ValueError(f"prop must be one of {', '.join(PROPERTIES)}, not {prop!r}")
        super().__init__(prop, mutant=mutant)
        if prop == "watchdog" and not mutant:
            self.induction = 1
        elif prop == "watchdog" and config.watchdog > MUTANT_WATCHDOG:
            # A stall past a 2048-cycle limit takes 2048 cycles to show: the broken variant
            # runs on a 16-cycle counter, where its counterexample is 20-odd cycles deep.
            self.note = f"mutant with watchdog={MUTANT_WATCHDOG} (config: {config.watchdog})"
            config = replace(config, watchdog=MUTANT_WATCHDOG)
        self.config = config
        self.proc = Processor(config)
        self.soft = Signal()
        p = self.proc
        self.take(p.prog_data, p.start, p.start_pc, p.job_done, p.progress, p.watch_last,
                  self.soft)
        self.freeze = Signal()
        if mutant and prop == "between_jobs":
            self.take(self.freeze)

    def build(self, m: Module, platform) -> None:
        cfg, p = self.config, self.proc
        wired = not (self.mutant and self.prop == "soft_reset")
        self.body = body = self.open_up(p, platform)
        unit = ResetInserter(self.soft)(body) if wired else body
        if self.mutant and self.prop == "between_jobs":
            unit = EnableInserter(~self.freeze)(unit)
        m.submodules.proc = unit
        if not (self.mutant and self.prop == "watchdog"):
            m.d.comb += Assume(p.watch_last < cfg.watchdog)   # a limit of at most ``watchdog``
        getattr(self, f"_{self.prop}")(m)

    def _watchdog(self, m: Module) -> None:
        cfg, p = self.config, self.proc
        quiet = Signal(range(cfg.watchdog + 3), name="quiet_in_job")
        with m.If(p.in_job & ~p.progress & ~p.job_start):
            with m.If(quiet != cfg.watchdog + 2):
                m.d.sync += quiet.eq(quiet + 1)
        with m.Else():
            m.d.sync += quiet.eq(0)
        with m.If(p.in_job):
            m.d.comb += Assert(quiet <= cfg.watchdog, "a job stalled past the watchdog")
            if not self.mutant:  # the helper invariants (see the module docstring)
                watch, age = driven(self.body, "watch"), driven(self.body, "age")
                expire = driven(self.body, "expire")
                m.d.comb += [
                    Assert(watch == quiet, "the watchdog counter disagrees with the quiet cycles"),
                    Assert(watch <= cfg.watchdog, "the watchdog counter passed its limit"),
                    Assert((watch != cfg.watchdog) | expire,
                           "the watchdog counter at its top without an abort decided"),
                    Assert((watch <= age) | (age == RIPE), "the watchdog counter outran the age"),
                    Assert(age <= RIPE, "the age passed its saturation"),
                ]

    def _between_jobs(self, m: Module) -> None:
        cfg, p = self.config, self.proc
        gap = Signal(range(OVERHEAD + 2), name="gap")
        with m.If(p.busy & ~p.in_job & ~p.retire & ~p.job_start):
            with m.If(gap != OVERHEAD + 1):
                m.d.sync += gap.eq(gap + 1)
        with m.Else():
            m.d.sync += gap.eq(0)
        m.d.comb += Assert(gap <= OVERHEAD, "no job, command or idle within the overhead")
        # Commands are finite: a command retires only at a pc inside program memory, and while
        # busy the pc moves only by one per retired command (GEMM tiles do not move it), so a
        # program retires at most prog_depth commands before DONE or a PC_RANGE fault.
        m.d.comb += Assert(~p.retire | (p.pc < cfg.prog_depth), "retired outside the program")
        was_busy, was_retire, was_pc = Signal(), Signal(), Signal.like(p.pc)
        m.d.sync += [was_busy.eq(p.busy), was_retire.eq(p.retire), was_pc.eq(p.pc)]
        with m.If(was_busy & p.busy):
            m.d.comb += Assert(p.pc == was_pc + was_retire, "pc moved without a retire")

    def _soft_reset(self, m: Module) -> None:
        p = self.proc
        after = Signal(name="after_soft")
        m.d.sync += after.eq(self.soft)
        with m.If(after):
            m.d.comb += Assert(~p.busy & ~p.in_job, "busy after a soft reset")


class ReaderHarness(Harness):
    """The DMA read unit (:class:`.reader.Reader`) that feeds every engine stream of the
    accelerator, with any start, base, count, run, stride and memory data:

    ``source_stream``  ``source`` keeps ``valid`` and its payload until the transfer.
    ``fifo``           its 4-deep FIFO is never written while full nor read while empty (a
                       read issues only while the FIFO and the words in flight leave room).

``registered``: the reader that registers the memory's words (the activation DMA's).

    Mutants: a source that drops ``valid``; a FIFO of half the depth behind the same issue
    rule (a word arriving at a full FIFO is refused)."""

    PROPERTIES = ("source_stream", "fifo")

    def __init__(self, width: int, depth: int, prop: str, *, mutant: bool = False,
                 registered: bool = False):
        if prop not in self.PROPERTIES:
            raise ValueError(f"prop must be one of {', '.join(self.PROPERTIES)}, not {prop!r}")
        super().__init__(prop, mutant=mutant)
        r = self.dut = Reader(width, depth, registered=registered)
        self.take(r.start, r.base, r.count, r.run, r.stride, r.rdata)
        self.take_streams(r.source, sink=True)
        self.glitch = Signal()
        if mutant and prop == "source_stream":
            self.take(self.glitch)

    def build(self, m: Module, platform) -> None:
        r = self.dut
        if self.mutant and self.prop == "fifo":
            with replaced(reader_module, "SyncFIFO", _HalfFIFO):
                body = self.open_up(r, platform)
        else:
            body = self.open_up(r, platform)
        m.submodules.dut = body
        if self.prop == "source_stream":
            valid = r.source.valid & ~self.glitch if self.mutant else None
            stream_rules(m, r.source, valid=valid, name="source")
        else:
            fifo = body.submodules.fifo
            fifo_bounds(m, depth=fifo.depth, w_en=fifo.w_en, w_rdy=fifo.w_rdy, r_en=fifo.r_en,
                        r_rdy=fifo.r_rdy, name="dma_fifo")


class _HalfFIFO(SyncFIFO):
    def __init__(self, *, width: int, depth: int):
        super().__init__(width=width, depth=depth // 2)


class AcceleratorHarness(Harness):
    """``soft_reset`` of the whole :class:`.accelerator.Accelerator`, driven only through its
    host port (any address, data, read and write in every cycle; programs and data are
    whatever the host wrote): the cycle after a host writes CONTROL with the soft-reset bit,
    the ``busy``, ``done`` and ``error`` outputs (STATUS's bits) are low and both reset
    registers are high; the cycle after that the processor is idle (not busy, no job, no job
    starting), both DMA readers are idle with empty FIFOs, the conv engine and its max-pool
    stage, the stand-alone max-pool unit, the element-wise unit and the LSTM cell are idle and
    hold no result, and the datapath hands no engine a descriptor, weight, activation or x beat
    and reports no progress or job done.

    Every unit is reset with the processor (``ResetInserter``, from the registers) and the
    datapath clears its job registers, so these signals depend only on reset values: the
    property is 1-inductive and proved by 1-induction on the full design, memories included,
    in seconds.

    Mutant: the accelerator built with only the processor wired to the soft reset (the DMA
    and the engines keep running): a job in flight survives the reset."""

    PROPERTIES = ("soft_reset",)

    def __init__(self, config: AccelConfig, prop: str, *, mutant: bool = False):
        if prop not in self.PROPERTIES:
            raise ValueError(f"prop must be one of {', '.join(self.PROPERTIES)}, not {prop!r}")
        super().__init__(prop, mutant=mutant)
        self.config = config
        dut = self.dut = Accelerator(config)
        self.take(dut.host.addr, dut.host.wdata, dut.host.we, dut.host.re)
        # The mutant's counterexample (write a command, start, five cycles to the job's issue,
        # soft reset, its two cycles) is 10 cycles long: smtbmc's base case finds it faster
        # than pdr.
        self.induction = 11 if mutant else 1

    def build(self, m: Module, platform) -> None:
        cfg, host = self.config, self.dut.host
        if self.mutant:
            with replaced(accelerator_module, "ResetInserter", _processor_only):
                body = self.open_up(self.dut, platform)
        else:
            body = self.open_up(self.dut, platform)
        m.submodules.accel = body
        u = body.submodules
        soft = (host.we & (host.addr[cfg.addr_bits:] == Region.REG)
                & (host.addr[: cfg.addr_bits] == Reg.CONTROL)
                & ((host.wdata & CONTROL_RESET) != 0))
        # The resets are registered: the host sees the accelerator idle the cycle after the
        # write (``after``), in which both reset registers are high (a helper invariant for the
        # induction: it holds by construction), and the units are idle in the cycle after that.
        after, after2 = Signal(name="after_soft"), Signal(name="after_soft2")
        m.d.sync += [after.eq(soft), after2.eq(after)]
        with m.If(after):
            m.d.comb += [Assert(~self.dut.busy & ~self.dut.done & ~self.dut.error,
                                "STATUS not idle after a soft reset"),
                         Assert(driven(body, "soft") & driven(body, "kill"),
                                "the reset registers low after a soft reset")]
        proc, conv, pool, elt = u.proc, u.conv, u.pool, u.elt
        idle = {
            "processor busy": ~proc.busy & ~proc.in_job & ~proc.job_start,
            "a DMA reader busy": ~u.act_dma.busy & ~u.wgt_dma.busy
            & ~u.act_dma.source.valid & ~u.wgt_dma.source.valid,
            "the conv engine busy": conv.layer.ready & ~conv.result.valid,
            "the max-pool unit busy": pool.layer.ready & ~pool.source.valid,
            "the element-wise unit busy": ~elt.busy & ~elt.result_valid,
            "a job in the datapath": ~conv.layer.valid & ~pool.layer.valid
            & ~conv.weights.valid & ~conv.requant.valid & ~conv.activations.valid
            & ~pool.sink.valid & ~proc.job_done & ~proc.progress,
        }
        if cfg.lstm is not None:
            lstm = u.lstm
            idle["the LSTM cell busy"] = (lstm.weights.ready & ~lstm.h.valid & ~lstm.x.valid
                                          & ~lstm.weights.valid & ~lstm.params.valid)
        with m.If(after2):
            m.d.comb += [Assert(v, f"{what} after a soft reset") for what, v in idle.items()]


def _processor_only(ctrl):
    """The mutant's ``ResetInserter``: only the processor gets the reset."""
    def insert(unit):
        return ResetInserter(ctrl)(unit) if isinstance(unit, Processor) else unit
    return insert


def formal_checks():
    """(component, property, harness factory) for every accel-package property."""
    for slug, cfg in formal_configs().items():
        name = "accel_" + slug.split("_", 1)[1] + "_processor"
        for prop in PROPERTIES:
            yield name, prop, lambda *, mutant=False, c=cfg, p=prop: ProcessorHarness(
                c, p, mutant=mutant)
        for prop in AcceleratorHarness.PROPERTIES:
            yield "accel_" + slug.split("_", 1)[1], prop, (
                lambda *, mutant=False, c=cfg, p=prop: AcceleratorHarness(c, p, mutant=mutant))
        for prop in ReaderHarness.PROPERTIES:
            for suffix, reg in (("", False), ("_registered", True)):
                yield "accel_dma_reader" + suffix, prop, (
                    lambda *, mutant=False, p=prop, r=reg: ReaderHarness(
                        4, 16, p, mutant=mutant, registered=r))
