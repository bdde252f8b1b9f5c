"""The accelerator's performance counters (:data:`.isa.COUNTERS`): their registers, and the
events of the energy counters (``act_reads``, ``act_writes``, ``weight_reads``), what the
datapath (:mod:`.accelerator`) adds to each a cycle.

The scratchpads' read ports have no enable (a block RAM reads its address every cycle), so a
read counts where a unit issues it and takes its word:

* ``act_reads``: accesses of the activation scratchpad's banks (:mod:`.act_banks`) and of
  MATMUL's copy of it (:func:`.job_io.matmul_io`, on configurations with attention units). The
  activation DMA's words (CONV, GEMM and MATMUL's A, MAXPOOL, LSTM, SOFTMAX, LAYERNORM, GELU):
  one bank each, counted as the stream hands them on (every word a job's DMA reads is taken
  before the job ends); the element-wise unit's reads: an ADD's read takes words ``x`` and
  ``x + 1`` from both banks, 2 (an odd count's last pair too), an AVGPOOL's one word, 1;
  MATMUL's gatherer: one word on each of its two ports a read cycle, the rows past K (or N,
  transposed) not read (:attr:`.matmul_gather.MatmulGather.reads`); a fused ADD's residual
  (:mod:`.fuse`): one word of the copy per result word of the GEMM's jobs (a partial K tile's
  too).
* ``act_writes``: the words the store writes while a job runs (whichever unit made them; a
  partial K tile's are not written). With attention units each goes to MATMUL's copy as well.
* ``weight_reads``: the weight DMA's words (the weight and requantizer beats of a CONV/GEMM
  job that does not reuse held weights, a fused GELU's table, an LSTM's weights and
  parameters, an attention unit's load); MATMUL's beats come from the activation scratchpad.

The cycle model's side is :mod:`.perf_events`.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Mux, Signal, Value

from .isa import COUNTERS

__all__ = ["COUNTER_BITS", "counter_registers", "energy_events", "mac_slots_due"]

COUNTER_BITS = 48


def counter_registers(m, events: dict, clear) -> SimpleNamespace:
    """One ``COUNTER_BITS`` register per name of :data:`.isa.COUNTERS`, in that order, adding
    ``events[name]`` every cycle; all cleared (to 0) in a cycle of ``clear`` instead.

    Each event is registered (``added[name]``) and added a cycle later, so the logic that
    decides an event (the processor's retire, the datapath's handshakes) and the counter's
    48-bit carry chain are separate paths (together they were the netlist estimate's deepest
    path at 48761ce, 14.0 ns). ``clear`` clears the registered events too, so a program's
    totals are the same. Returns ``values`` (the counters, in order) and ``added`` (the event
    registers, by name): a host reads a counter plus its registered event, every event up to
    the cycle before (a read in the cycle after the program's end sees its last cycle), added
    as the host reads it (:func:`.host_port.host_reads`)."""
    values, added = [], {}
    for name in COUNTERS:
        c = Signal(COUNTER_BITS, name=f"count_{name}")
        e = Signal(Value.cast(events[name]).shape(), name=f"event_{name}")
        with m.If(clear):
            m.d.sync += [c.eq(0), e.eq(0)]
        with m.Else():
            m.d.sync += [c.eq(c + e), e.eq(events[name])]
        values.append(c)
        added[name] = e
    return SimpleNamespace(values=values, added=added)


def energy_events(m, *, active, act_wen, act_taken, elt, elt_avg, weight_taken) -> SimpleNamespace:
    """The energy counters' events: ``events`` (counter name -> the value added a cycle) and
    ``matmul(gather, adder)``, to call once MATMUL's gatherer and the fused ADD exist (on
    configurations with attention units): their reads count from then on.

    ``active``: a job runs; ``act_wen``: the activation scratchpad's write enable;
    ``act_taken``: an activation DMA word is handed on; ``elt``: the element-wise unit (its
    ``start`` and ``moved``), ``elt_avg``: its job is an AVGPOOL (steady at ``start``);
    ``weight_taken``: a weight DMA word is handed on."""
    elt_add = Signal()   # the element-wise unit's job is an ADD: two words a read
    with m.If(elt.start):
        m.d.sync += elt_add.eq(~elt_avg)
    mm_reads = Signal(range(3))   # MATMUL's gatherer: words read this cycle
    residual = Signal()           # a fused ADD reads a residual word
    elt_reads = Mux(elt.moved, Mux(elt_add, 2, 1), 0)

    def matmul(gather, adder):
        m.d.comb += [mm_reads.eq(gather.reads), residual.eq(adder.a_valid)]

    events = {
        "act_reads": act_taken + elt_reads + mm_reads + residual,
        "act_writes": act_wen & active,
        "weight_reads": weight_taken,
    }
    return SimpleNamespace(events=events, matmul=matmul)


def mac_slots_due(m, cfg, proc, soft, conv_kind) -> Signal:
    """What ``mac_slots`` adds a cycle: a conv job's slots, two cycles after its start.

    The processor hands over the product's factors, multiplied here between registers (the
    product into the job field, and the ISSUE decision then the counter's carry chain, were
    among the deepest paths). A program ends long after its last job starts, so the totals
    are the same. A job abandoned in its ISSUE (``proc.abort_next``) or started in a soft
    reset's cycle counts none: a program started right after must not see them."""
    fabric = Signal.like(proc.job_fab_pixels * proc.job_fab_words, name="mac_fabric")
    conv_started = Signal(name="conv_started")
    m.d.sync += [fabric.eq(proc.job_fab_pixels * proc.job_fab_words),
                 conv_started.eq(proc.job_start & (proc.job_kind == conv_kind)
                                 & ~proc.abort_next & ~soft)]
    slots_due = Signal.like(fabric * cfg.macs, name="mac_slots_due")
    m.d.sync += slots_due.eq(Mux(conv_started, fabric * cfg.macs, 0))
    return slots_due
