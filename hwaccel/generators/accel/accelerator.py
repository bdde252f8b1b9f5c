"""The accelerator: scratchpads, a host port, the command processor, DMA and the engines.

Host port (``host``: a simple synchronous memory-mapped bus, documented in :mod:`.isa`)
---------------------------------------------------------------------------------------
``host__addr``   In   ``{region (2 bits, top), offset (addr_bits)}``; regions ACT, WGT, PROG, REG
``host__wdata``  In   ``data_bits`` wide: one whole scratchpad, weight or command word per write
``host__we``     In   write ``wdata`` at ``addr`` on this edge
``host__re``     In   read ``addr``: ``host__rdata`` holds the word from the next cycle on
``host__rdata``  Out  the word read (scratchpads zero-extended; REG: STATUS then COUNTERS)

Memories are the host's only while STATUS.busy is 0 (the DMA owns their ports while a program
runs; host accesses to them then are dropped). A host reads or writes in a cycle, not both (a
read in the cycle of a write to the same word returns an undefined word on an FPGA: every
memory is ``no_rw_check``, below and :mod:`.act_banks`; an ACT write lands a cycle late, and the
host's next read of it forwards it). REG writes are always taken: CONTROL bit 0
starts the program at pc ``wdata[16:32]``, bit 1 is a soft reset that returns the processor,
DMA and engines to idle mid-program (memories keep their contents); WATCHDOG sets the watchdog
limit (:class:`.isa.Reg`). A TIMEOUT resets the engines and DMA as a soft reset does (the
processor keeps its fault status), so the next program can start at once.

The resets are registers (``soft`` for the processor, ``kill`` for the other units, with no logic
between them and the flip-flops they reset): a soft reset written in cycle t resets every unit
at the end of t + 1. The host already sees the accelerator idle in t + 1: STATUS reads as after
the reset (and the ``busy``, ``done`` and ``error`` outputs), the memories are the host's, and a
start written in t + 1 is taken in t + 2 (STATUS.busy reads 1 from t + 2, as in the cycle
after any start), so a host may write a start, or anything else, in the cycle after a soft
reset as before. The performance counters, which a start clears, still count
the units' events of t + 1. A TIMEOUT is decided a cycle ahead (:mod:`.processor`), so the
engines are reset at the end of the processor's fault cycle, as before; in that cycle, and in
a soft reset's t + 1, the datapath stores no result and takes no weight beat.

Datapath
--------
One job at a time (see :mod:`.processor`). A CONV/GEMM job streams its descriptor to the conv
engine, ``weight_words`` weight beats and ``blocks`` requantizer beats from the wide weight
scratchpad (one beat per cycle), input words from the activation scratchpad, and writes every
result beat back (the write port is never busy, so results are never back-pressured). A MAXPOOL
job does the same on the stand-alone max-pool unit. An LSTM job hands the cell the command's
sizes (the processor's ``job_lstm``, steady for the whole job), streams its weight and
parameter beats from the weight scratchpad, gathers ``ceil(I / lanes)`` activation words into
each x beat and scatters each h beat into ``ceil(H / lanes)`` words, at the command's I and H.
An ADD or AVGPOOL job runs on the element-wise unit (:mod:`.eltwise`), which drives the
activation scratchpad's read port itself (no DMA: it never waits, so it needs no FIFO) and
hands its results to the store.

Reads and writes follow the job's runs and strides (a GEMM tile's columns of A and C). The
partial-sum memory (``psum_depth`` words of ``block`` accumulators) sits beside the conv engine
for GEMMs whose K spans several tiles; a job with ``job_keep`` low (a partial K tile) counts its
result beats but stores none.

Weights: the datapath remembers the weight reads (address, count, run, stride) of the last
CONV/GEMM job; a job with the same reads gets ``reuse`` and no weight stream, since the engine's
memories already hold those beats (the weight scratchpad cannot change while a program runs).
That memory is forgotten when a program starts, at a FENCE, a soft reset or a TIMEOUT. The conv
engine only accepts its next layer's weights once its current layer has drained (and the LSTM
cell a load only between sequences), so a load that is needed cannot overlap computing without
changing the engines; loads are short (one beat per cycle from the wide memory) and counted.
"""

from __future__ import annotations

from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..conv.chain import ConvPool
from ..conv.layouts import requant_layout
from ..conv.maxpool import MaxPool
from .beats import join_beats
from .config import AccelConfig
from .counters import counter_registers, energy_events, mac_slots_due
from .eltwise import Eltwise
from .host_port import host_control, host_reads
from .isa import Region
from .job_io import engine_layers, lstm_io, lstm_weights, matmul_io, weight_split
from .memories import memories, psum_to
from .processor import JOB_ATTN, JOB_CONV, JOB_ELT, JOB_LSTM, JOB_POOL, Processor
from .reader import Reader
from .store import result_addresses

__all__ = ["Accelerator", "host_signature", "tap_signature"]


def host_signature(cfg: AccelConfig) -> wiring.Signature:
    return wiring.Signature({
        "addr": Out(2 + cfg.addr_bits), "wdata": Out(cfg.data_bits), "we": Out(1),
        "re": Out(1), "rdata": In(cfg.data_bits),
    })


def tap_signature(cfg: AccelConfig) -> wiring.Signature:
    return wiring.Signature({"addr": Out(range(cfg.act_depth)), "data": Out(cfg.act_bits),
                             "en": Out(1)})


class Accelerator(wiring.Component):
    """The accelerator built from an :class:`AccelConfig`.

    Members
    -------
    host : ``In(host_signature(config))``
    busy, done, error : ``Out(1)``  copies of the STATUS bits (for a harness to wait on)
    tap : ``Out(tap_signature(config))``, only with ``tap=True``: every write into the
        activation scratchpad (host, datapath), as its write port is presented it (the word
        lands a cycle later); a pipeline's send mirror keeps a copy (:mod:`..multi.pipeline`)

    Raises
    ------
    TypeError
        If ``config`` is not an :class:`AccelConfig`.
    """

    def __init__(self, config: AccelConfig, *, tap: bool = False):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = config
        members = {"host": In(host_signature(config)), "busy": Out(1), "done": Out(1),
                   "error": Out(1)}
        if tap:
            members["tap"] = Out(tap_signature(config))
        super().__init__(members)

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        host = self.host

        mem = memories(m, cfg)
        act, act_rd, act_wr = mem.act, mem.act_rd, mem.act_wr
        wgt_rd, wgt_wr, prog_rd, prog_wr = mem.wgt_rd, mem.wgt_wr, mem.prog_rd, mem.prog_wr

        # --- units -----------------------------------------------------------------------------
        proc = Processor(cfg)
        # The resets are registers: ``soft`` (the processor's) and ``kill`` (the others').
        port = host_control(m, cfg, host, proc)
        region, offset, soft, kill = port.region, port.offset, port.soft, port.kill
        conv = ConvPool(cfg.conv)
        pool = MaxPool(cfg.maxpool_config)
        # The activation scratchpad's words are registered as they leave its block RAMs
        # (:class:`.reader.Reader`'s ``registered``): a cycle more before a job's first word.
        act_dma = Reader(cfg.act_bits, cfg.act_depth, registered=True)
        wgt_dma = Reader(cfg.wgt_bits, cfg.wgt_depth)
        elt = Eltwise(cfg)
        units = [("proc", proc), ("conv", conv), ("pool", pool), ("act_dma", act_dma),
                 ("wgt_dma", wgt_dma), ("elt", elt)]
        if cfg.lstm is not None:
            from ..lstm.cell import LstmCell

            lstm = LstmCell(cfg.lstm, runtime_size=True)
            units.append(("lstm", lstm))
        if cfg.attention is not None:   # SOFTMAX, LAYERNORM, GELU (:mod:`.attn_path`)
            from .attn_path import AttnPath

            attn = AttnPath(cfg)
            units.append(("attn", attn))
        for name, unit in units:
            m.submodules[name] = ResetInserter(soft if unit is proc else kill)(unit)
        # In ``soft``'s cycle the units still run (they are reset at its end), but the host
        # already sees the accelerator idle: STATUS and ``busy`` read as after the reset, the
        # memories are the host's, and a start written then is taken in the next cycle (in
        # which STATUS.busy reads 1, as in the cycle after any start).
        busy = proc.busy & ~soft
        host_busy = busy | port.start_late
        psum_to(m, mem, conv)
        m.d.comb += [self.busy.eq(host_busy), self.done.eq(proc.done & ~soft),
                     self.error.eq(proc.error & ~soft)]

        # --- job datapath ----------------------------------------------------------------------
        active, pending = Signal(name="active"), Signal(name="pending")
        togo = Signal(range(cfg.act_depth + 1))   # the job's result beats still to come
        popped = Signal(range(cfg.wgt_depth + 1))
        # The running job's kind, a flag register each, set at a job's start (one of them)
        # and cleared with ``active``: so each is ``active`` and the kind, with no gate, and no
        # decode of a kind code is in front of the job's end, which clears ``active`` (the
        # code's decode into ``active``'s reset was a placed path at dfd1651, 13.3 ns). Every
        # unit's handshakes read its own flag, not ``active`` behind a gate: at 4c652d6 (seed
        # 3) ``active``'s fan-out into the handshakes, the max-pool's and on into the job's
        # end was the placed critical path, 14.0 ns.
        is_conv, is_pool, is_lstm, is_elt, is_attn = kinds = [
            Signal(name=f"kind_{n}") for n in ("conv", "pool", "lstm", "elt", "attn")]
        # Weight reuse: the last CONV/GEMM job's weight reads, while the engine still holds them.
        wkey = Cat(proc.job_wgt, proc.job_wgt_count, proc.job_wgt_run, proc.job_wgt_stride)
        held, held_key, reuse = Signal(name="held"), Signal.like(wkey), Signal(name="reuse")
        conv_job = proc.job_kind == JOB_CONV
        reuse_now = conv_job & held & (held_key == wkey)
        fz = None
        if cfg.attention is not None:   # GELU fused into a GEMM's result path (:mod:`.fuse`)
            from .fuse import fuse_io

            fz = fuse_io(m, cfg, proc, proc.cmd, kill, wgt_dma, JOB_CONV)
            reuse_now = reuse_now & ~fz.now
        m.d.comb += [
            act_dma.start.eq(proc.job_start), act_dma.base.eq(proc.job_src),
            act_dma.count.eq(Mux(proc.job_kind == JOB_ELT, 0, proc.job_src_count)),
            act_dma.run.eq(proc.job_src_run),
            act_dma.stride.eq(proc.job_src_stride), act_dma.group.eq(proc.job_src_group),
            wgt_dma.start.eq(proc.job_start), wgt_dma.base.eq(proc.job_wgt),
            wgt_dma.count.eq(Mux((proc.job_kind == JOB_POOL) | reuse_now, 0,
                                 proc.job_wgt_count)),
            wgt_dma.run.eq(proc.job_wgt_run), wgt_dma.stride.eq(proc.job_wgt_stride),
        ]
        if fz is not None:
            fz.now_dma()
        with m.If(proc.job_start):
            m.d.sync += [active.eq(1), pending.eq(1),
                         *(k.eq(proc.job_kind == code) for k, code in zip(
                             kinds, (JOB_CONV, JOB_POOL, JOB_LSTM, JOB_ELT, JOB_ATTN))),
                         togo.eq(proc.job_dst_count), popped.eq(0), reuse.eq(reuse_now)]
            with m.If(conv_job):
                m.d.sync += [held.eq(1), held_key.eq(wkey)]
        with m.If(proc.fence | (proc.start & ~busy) | kill):
            m.d.sync += held.eq(0)
        waits = engine_layers(m, proc, conv, pool, reuse)
        with m.If((conv.layer.valid & conv.layer.ready) | (pool.layer.valid & pool.layer.ready)
                  | is_lstm | is_elt | is_attn):
            m.d.sync += pending.eq(0)  # LSTM, element-wise and attention jobs have none
        m.d.comb += [elt.start.eq(proc.job_start & (proc.job_kind == JOB_ELT)),
                     elt.avg.eq(proc.job_avg), elt.src.eq(proc.job_src),
                     elt.count.eq(proc.job_src_count), elt.args.eq(proc.job_elt),
                     elt.rdata.eq(act_rd.data), elt.rnext.eq(act.rnext)]
        if cfg.elt_mul:
            m.d.comb += elt.mul.eq(proc.job_mul)
        # Weights, then requantizers, from one in-order read stream (depthwise: each channel
        # group's ``dw_words`` weight beats, then its ``dw_beats`` requantizers, in turn).
        to_weights = Signal(name="to_weights")   # a register: :func:`.job_io.weight_split`
        rq_bits = requant_layout(cfg.conv).size
        w_valid = wgt_dma.source.valid
        m.d.comb += [
            conv.weights.payload.eq(wgt_dma.source.payload[: cfg.lanes * cfg.conv.block * 8]),
            conv.requant.payload.eq(wgt_dma.source.payload[:rq_bits]),
            conv.weights.valid.eq(w_valid & to_weights & is_conv),
            conv.requant.valid.eq(w_valid & ~to_weights & is_conv),
        ]
        w_ready = Mux(to_weights, conv.weights.ready, conv.requant.ready)
        if cfg.lstm is not None:
            w_ready = lstm_weights(m, cfg, lstm, proc, wgt_dma, popped, is_lstm, w_ready)
        if cfg.attention is not None:
            m.d.comb += [attn.start.eq(proc.job_start & (proc.job_kind == JOB_ATTN)),
                         attn.job.eq(proc.job_attn), attn.w_count.eq(proc.job_wgt_count),
                         attn.w_valid.eq(w_valid & is_attn),
                         attn.w_data.eq(wgt_dma.source.payload),
                         attn.a_valid.eq(act_dma.source.valid & is_attn),
                         attn.a_data.eq(act_dma.source.payload)]
            w_ready = Mux(is_attn, attn.w_ready, w_ready)
        if fz is not None:   # the table's beats go to the table, not the engine
            w_ready = Mux(fz.busy, 1, w_ready)
            with m.If(fz.busy):
                m.d.comb += [conv.weights.valid.eq(0), conv.requant.valid.eq(0)]
        m.d.comb += wgt_dma.source.ready.eq(w_ready & ~kill)   # none taken in a reset's cycle
        loaded = wgt_dma.source.valid & wgt_dma.source.ready
        pop = loaded & (~fz.busy if fz is not None else 1)
        with m.If(pop):
            m.d.sync += popped.eq(popped + 1)
        if fz is not None:
            fz.stream(loaded)
        weight_split(m, cfg, proc, to_weights, popped, pop, loaded & is_conv, proc.job_start,
                     kill)
        # Activations to whichever unit runs the job.
        m.d.comb += [
            conv.activations.payload.eq(act_dma.source.payload),
            pool.sink.payload.data.eq(act_dma.source.payload),
            conv.activations.valid.eq(act_dma.source.valid & is_conv),
            pool.sink.valid.eq(act_dma.source.valid & is_pool),
        ]
        a_ready = Mux(is_conv, conv.activations.ready,
                                      is_pool & pool.sink.ready)
        if cfg.attention is not None:
            a_ready = Mux(is_attn, attn.a_ready, a_ready)
        # Results: the write port takes one per cycle, so they are never back-pressured.
        conv_valid, conv_data = join_beats(m, cfg, conv.result.valid, conv.result.payload.data,
                                           take=is_conv, restart=proc.job_start | kill)
        res_valid = Mux(is_conv, conv_valid, is_pool & pool.source.valid)
        res_data = Mux(is_conv, conv_data, pool.source.payload.data)
        m.d.comb += [conv.result.ready.eq(is_conv), pool.source.ready.eq(is_pool)]
        res_valid = Mux(is_elt, elt.result_valid, res_valid)
        res_data = Mux(is_elt, elt.result, res_data)
        if cfg.attention is not None:   # the units' words; a job ends when all are stored
            res_valid = Mux(is_attn, attn.result_valid, res_valid)
            res_data = Mux(is_attn, attn.result, res_data)
            res_valid, res_data = fz.result(is_conv, res_valid, res_data)
        idle = Mux(is_conv, conv.layer.ready,
                   Mux(is_elt, ~elt.busy, Mux(is_attn, 1, pool.layer.ready)))
        if cfg.lstm is not None:
            res_valid, res_data, lstm_idle = lstm_io(m, cfg, lstm, act_dma, is_lstm, proc,
                                                     kill, res_valid, res_data, a_ready)
            idle = Mux(is_lstm, lstm_idle, idle)
        # Results go to the job's runs (:mod:`.store`); a partial K tile's beats are counted,
        # not stored.
        # ``cfg.end_stage``: the flags are cleared a cycle after the job's end (below) and
        # read as clear in that cycle (``live``), so that end reaches one register only.
        ended, moved = Signal(name="ended"), Signal(name="moved")
        live = active & ~ended if cfg.end_stage else active
        store = res_valid & live
        with m.If(store):
            m.d.sync += togo.eq(togo - 1)
        w_addr = result_addresses(m, cfg, proc, store)
        # A conv-engine job ends in the cycle of its last store, the engine and its pool
        # stage idle from the next cycle (``ending``); the others once their unit is idle.
        # ``togo == 0`` and ``== 1`` as registers, kept from the job's start and each store,
        # so a job's end is a gate after its last store; ``togo`` counts down, so their next
        # values compare it with constants (an up count against ``dst_count`` was an adder
        # and a compare: the netlist estimate's third deepest path at 572c720, 12.9 ns).
        stored, left1 = Signal(name="stored"), Signal(name="left1")
        with m.If(proc.job_start):
            m.d.sync += [stored.eq(proc.job_dst_count == 0), left1.eq(proc.job_dst_count == 1)]
        with m.Elif(store):
            m.d.sync += [stored.eq(left1), left1.eq(togo == 2)]
        last_store = store & left1
        done = (live & ~pending & ~act_dma.busy & ~wgt_dma.busy
                & Mux(is_conv, (stored | last_store) & conv.ending, stored & idle))
        if cfg.lstm is None:
            m.d.comb += act_dma.source.ready.eq(a_ready)
        consumed = act_dma.source.valid & act_dma.source.ready
        # The processor sees a job's end and its streams' moves a cycle later (``ended`` and
        # ``moved``, registers: the datapath's handshakes, the next command's issue and the
        # watchdog's abort into the units' reset are separate paths; :data:`.perf.JOB_END`).
        # The end's own cycle counts as progress, and a unit's fault in it is void, so no
        # abort is decided for it; so does the job's ISSUE (its first RUN cycle sees it).
        m.d.sync += [ended.eq(done), moved.eq(store | consumed | loaded | (is_elt & elt.moved)
                                              | done | proc.job_start)]
        m.d.comb += [proc.job_done.eq(ended), proc.progress.eq(moved)]
        if cfg.attention is not None:
            m.d.comb += proc.job_fault.eq((attn.fault | fz.fault) & ~done)
        with m.If(ended if cfg.end_stage else done):
            m.d.sync += [active.eq(0), *(k.eq(0) for k in kinds)]

        # --- memory ports: the DMA while busy, the host otherwise ------------------------------
        host_mem = ~busy & ~proc.start
        # The datapath's ports, but in a reset's cycle (the units' last) nothing is stored and
        # the host has them (a soft reset: STATUS reads idle).
        own = live & ~kill
        m.d.comb += [
            act_rd.addr.eq(Mux(own, Mux(is_elt, elt.addr, act_dma.addr), offset)),
            act.pair.eq(own & is_elt & elt.pair), act.rup.eq(elt.rup),
            act_dma.rdata.eq(act_rd.data),
            act_wr.addr.eq(Mux(own, w_addr, offset)),
            act_wr.data.eq(Mux(own, res_data, host.wdata)),
            act_wr.en.eq(Mux(own, store & proc.job_keep,
                             host.we & host_mem & (region == Region.ACT))),
            wgt_rd.addr.eq(Mux(own, wgt_dma.addr, offset)),
            wgt_dma.rdata.eq(wgt_rd.data),
            wgt_wr.addr.eq(offset), wgt_wr.data.eq(host.wdata),
            wgt_wr.en.eq(host.we & host_mem & (region == Region.WGT)),
            # The processor asks for its first word in the start's own cycle (it registers
            # the word it reads), in which the host writes CONTROL and reads nothing.
            prog_rd.addr.eq(Mux(busy | proc.start, proc.prog_addr, offset)),
            proc.prog_data.eq(prog_rd.data),
            prog_wr.addr.eq(offset), prog_wr.data.eq(host.wdata),
            prog_wr.en.eq(host.we & host_mem & (region == Region.PROG)),
        ]

        # --- performance counters (cleared when a program starts) ------------------------------
        energy = energy_events(m, active=live, act_wen=act_wr.en, act_taken=consumed, elt=elt,
                               elt_avg=proc.job_avg, weight_taken=loaded)
        slots_due = mac_slots_due(m, cfg, proc, soft, JOB_CONV)

        def run(flag):   # a kind's cycles, but for the cycle after the job's end (``live``)
            return flag & ~ended if cfg.end_stage else flag

        events = {
            "cycles": busy,
            "conv_busy": run(is_conv),
            "pool_busy": run(is_pool),
            "lstm_busy": run(is_lstm),
            "eltwise_busy": run(is_elt | is_attn),
            "mac_slots": slots_due,
            "load_cycles": Cat(loaded, Const(0, 1)),   # two bits: MATMUL adds 2 (.job_io)
            "stall_input": run(is_conv & conv.activations.ready & ~conv.activations.valid),
            "overhead": busy & ~live,
            "commands": proc.retire,
            **energy.events,
        }
        # A job whose ISSUE found its command's fault (the processor's first ISSUE after CHECK)
        # is abandoned: the units' reset is in the next cycle (``voided``), before the job
        # stores a word, and nothing of it counts.
        voided = Signal(name="voided")
        m.d.sync += voided.eq(proc.job_start & proc.abort_next)
        counters = counter_registers(m, {k: Mux(voided, 0, v) for k, v in events.items()},
                                     proc.start & ~busy)
        status = Mux(soft, 0, Cat(host_busy, proc.done, proc.error, Signal(5), proc.cause,
                                  proc.pc))

        host_reads(m, host, port, [status, *counters.values], act.rhost, wgt_rd, prog_rd,
                   pending=[0, *counters.added.values()])
        if "tap" in self.signature.members:
            m.d.comb += [self.tap.addr.eq(act.waddr), self.tap.data.eq(act.wdata),
                         self.tap.en.eq(act.wen)]

        with m.If(kill):
            m.d.sync += [active.eq(0), *(k.eq(0) for k in kinds), pending.eq(0), togo.eq(0),
                         popped.eq(0), ended.eq(0), moved.eq(0), *(w.eq(0) for w in waits)]
        if cfg.attention is not None:   # MATMUL: B's beats gathered from the act scratchpad
            dp = SimpleNamespace(act_wr=act_wr, active=live, held=held, reuse=reuse,
                                 counters=counters)
            mirror_rd = matmul_io(m, cfg, proc, conv, act_dma, wgt_dma, act_rd, kill, busy, dp)
            fz.residual(mirror_rd)   # a fused ADD's residual reads (:mod:`.fuse`)
            energy.matmul(m.submodules.gather, m.submodules.fuse_add)
        return m
