"""The convolution engine: a line-buffer sliding window feeding a ``lanes x block`` MAC fabric.

Interface
---------
``layer``        In   one descriptor per layer (:func:`.layouts.layer_layout`, built by the driver)
``weights``      In   the layer's weight words, ``weight_words`` beats (``lanes x block`` int8)
``requant``      In   ``blocks`` beats of per-output-channel bias, multiplier and shift
``activations``  In   the input map, channels-last: pixel (y, x), then channel group g
``result``       Out  ``{data: block x int8, last}``: pixel (oy, ox), then output block
``psum_*``       a read and a write port to an external partial-sum memory (``block`` int
                 accumulators a word, indexed by the layer's result beat); unused unless the
                 descriptor sets ``acc_in`` / ``acc_out``
``ending``       Out  ``layer.ready`` a cycle ahead: the engine is idle, or will be from the next
                 cycle (its pipeline is empty: at most the result FIFO still holds beats)

A layer runs in three phases: accept its descriptor, load its weights and requantizers into on-chip
memories, then stream the image through. The image is read from ``activations`` exactly once.
The run phase begins once the weights are in: the requantizers (which follow them) load beside
it, and an output block's chunks issue once its requantizer is in (its bias is read in the
pipeline's stage 3), so the requantizer beats cost no cycles of their own.
With ``reuse`` set the load phase is skipped: the weight and requantizer memories still hold the
previous layer's beats (a host that knows the next layer uses the same ones saves the reload).

Partial sums (a reduction longer than one layer, e.g. a GEMM's K tiled by the accelerator): with
``acc_in`` a block's accumulators start from partial-sum word ``i`` (the layer's ``i``-th result
beat) instead of its bias; with ``acc_out`` they are also stored back to word ``i``. The result
beat is emitted either way (its requantized value is meaningless while the sum is partial; the
host drops it), so the stream and the max-pool stage behind it behave as for any layer. The read
is addressed in stage 3, two stages ahead of the accumulate (its data registered on the way),
like the requantizer memory, and a word is written after its block's last chunk, so a layer
reads every word before it writes it.

Fabric: why not the systolic array
----------------------------------
The fabric is a dedicated output-stationary "window chunk x weight block" engine: each cycle it
multiplies ``lanes`` consecutive elements of the flattened im2col window by a ``lanes x block``
weight word held on chip and accumulates ``block`` output channels; after a block's last chunk the
sums get bias, requantize (numerics' rounding) and ReLU and leave as one beat. All of a pixel's
output blocks run before the window slides, so the window data never leaves the line buffer.
The systolic array (weight-stationary) would need the image re-streamed once per K-fold and
accumulators across folds, and its fill/drain is paid per fold; this fabric's cost per output
pixel is exactly ``blocks x chunks`` cycles (conv2 on 16 x 16: 4 x 18 = 72, the ideal).

Line buffer and chunking
------------------------
A kernel is ``KH x KW``, with stride 1 or 2 on each axis and its own padding on each side.
``row_slots`` (a power of two above ``max_kernel``) memories, one per input row of a ring, hold
``(left + width + right) x groups`` words of ``lanes`` int8. The writer starts with the load
phase (the first rows need no weights) and runs up to ``row_slots - KH`` rows ahead of the
window, so a new row fills while the window is read. Top/bottom padding rows are masked on
read; a packed row (below) stores its left/right padding columns, which its shift register
needs, while a grouped or depthwise row skips them (a cycle saved per padding word) and a
read of a padding column is masked to zeros. Each word the writer stores is a shift register
of the row: the new pixel's ``shift_lanes`` channels enter at the top and older pixels move
down. With ``KW * Cin <= lanes`` ("packed", the CNN's conv1 with Cin = 1) the top ``KW * Cin``
lanes of the word at column x hold the whole kernel row ending at x, and one read per row
memory gives several kernel rows in one chunk (conv1: the full 3x3 window in one cycle, not 9).
Otherwise ("grouped") the shift is the whole word, which then holds one channel group of one
pixel, and a chunk is one group of one tap.
All row memories read the same address each cycle; a small crossbar picks the rows in ring
order and zeroes rows outside the image.

Depthwise mode (``depthwise``: groups = channels)
-------------------------------------------------
The lane dimension runs over the taps of a window register of line-buffer words and the block
dimension over one channel group's channels: see :mod:`.window`.

Pipeline (one chunk per cycle): issue -> memory read (registered) -> lane select -> products
(two cycles: registered operands and product, a DSP block's own registers on ECP5) -> column
sums (two cycles: each half of the lanes, then the halves) -> accumulate (bias preloaded) ->
multiply (two products that each fit an 18x18 multiplier, registered: :mod:`..split_product`)
-> their sum and the rounding term -> shift -> saturate into the result FIFO. Issue needs a
credit (a free FIFO row), so back-pressure on ``result`` stalls issue and never drops a result.
"""

from __future__ import annotations

from functools import reduce

from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ...hdl.dsp import registered_product
from .ahead import held, late_step
from .config import ConvConfig
from .dw_beats import beat_blocks, group_words
from .layouts import (
    activation_layout,
    layer_layout,
    psum_bits,
    requant_layout,
    result_layout,
    weight_layout,
)
from .requantize import requantize_stages
from .rw import NO_RW_CHECK, data_register, read_data
from .sequencer import issue_logic
from .window import depthwise_window

__all__ = ["ConvEngine", "engine_signature", "psum_ports"]

FIFO_DEPTH = 16  # > issue-to-FIFO latency (11, 12 with product_register): a result a cycle


def psum_ports(cfg: ConvConfig) -> dict:
    """The partial-sum memory ports (the engine drives the addresses; data arrives one cycle
    after its read address, as from a block-RAM read port)."""
    index = range(cfg.max_width * cfg.max_height * cfg.max_blocks)
    return {"psum_raddr": Out(index), "psum_rdata": In(psum_bits(cfg)),
            "psum_waddr": Out(index), "psum_wdata": Out(psum_bits(cfg)), "psum_we": Out(1)}


def engine_signature(cfg: ConvConfig) -> wiring.Signature:
    """The engine's ports (see the module docstring): also those of :class:`.chain.ConvPool`,
    which puts the max-pool stage behind it without changing the interface."""
    return wiring.Signature({
        "layer": In(stream.Signature(layer_layout(cfg))),
        "weights": In(stream.Signature(weight_layout(cfg))),
        "requant": In(stream.Signature(requant_layout(cfg))),
        "activations": In(stream.Signature(activation_layout(cfg))),
        "result": Out(stream.Signature(result_layout(cfg))),
        "ending": Out(1),
        **psum_ports(cfg),
    })


class ConvEngine(wiring.Component):
    """A convolution engine built from a :class:`ConvConfig`.

    Parameters
    ----------
    config : ConvConfig

    Members
    -------
    layer, weights, requant, activations : ``In(stream.Signature(...))``
    result : ``Out(stream.Signature(result_layout(config)))``
    ending : ``Out(1)``     idle, or idle from the next cycle on (see the module docstring)

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`ConvConfig`.
    """

    def __init__(self, config: ConvConfig):
        if not isinstance(config, ConvConfig):
            raise TypeError(f"config must be a ConvConfig, not {config!r}")
        self.config = config
        super().__init__(engine_signature(config))

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        L, B, NS = cfg.lanes, cfg.block, cfg.row_slots
        desc = Signal(layer_layout(cfg))
        idle, load, run, drain = (Signal(name=n) for n in ("idle", "load", "run", "drain"))
        state = Signal(2)
        m.d.comb += [idle.eq(state == 0), load.eq(state == 1), run.eq(state == 2),
                     drain.eq(state == 3)]

        # --- memories --------------------------------------------------------------------------
        # No read of the weights or the line-buffer rows that a chunk uses meets a write to its
        # word in the same cycle (shown by simulation, not proved: tests/test_conv_rw.py,
        # :data:`.rw.RW_POISON`): Yosys need add no
        # read-during-write logic (ECP5: an address compare into a register and a multiplexer
        # on every output bit, f679977's placed critical path on a row), and the weight read
        # goes straight into ``s1_w``, which the block RAM takes as its output register.
        wmem = m.submodules.wmem = memory.Memory(
            shape=unsigned(L * B * 8), depth=cfg.weight_depth, init=[], attrs=NO_RW_CHECK)
        w_wr, w_rd = wmem.write_port(), wmem.read_port()
        rq_width = Shape.cast(requant_layout(cfg)).width
        pmem = m.submodules.pmem = memory.Memory(shape=unsigned(rq_width), depth=cfg.max_blocks,
                                                 init=[])
        p_wr, p_rd = pmem.write_port(), pmem.read_port()
        banks = []
        for b in range(NS):
            mem = memory.Memory(shape=unsigned(L * 8), depth=cfg.row_words, init=[],
                                attrs=NO_RW_CHECK)
            m.submodules[f"row{b}"] = mem
            banks.append((mem.write_port(), mem.read_port()))

        # --- layer descriptor and loading ------------------------------------------------------
        w_count = Signal(range(cfg.weight_depth + 1))
        p_count = Signal(range(cfg.max_blocks + 1))
        m.d.comb += self.layer.ready.eq(idle)
        start = self.layer.valid & idle
        with m.If(start):
            m.d.sync += [desc.eq(self.layer.payload),
                         state.eq(Mux(self.layer.payload.reuse, 2, 1))]
        # The run phase begins once the weights are in (depthwise: the first channel group's);
        # the requantizers (depthwise: the other groups' beats) keep loading meanwhile, and a
        # block (a group) issues once its own are in.
        loading = load | (run & ~desc.reuse)
        # A stream's room (its count short of the job's total) is a flag kept a cycle ahead:
        # the count's compare was in front of the ready into the accelerator's stream and back
        # into the write enable (c5086a7's placed paths into the weight RAM, 12.7 ns).
        w_room, p_room = Signal(name="w_room"), Signal(name="p_room")
        m.d.comb += [
            self.weights.ready.eq(loading & w_room),
            w_wr.addr.eq(w_count), w_wr.data.eq(self.weights.payload),
            w_wr.en.eq(self.weights.valid & self.weights.ready),
            self.requant.ready.eq(loading & p_room),
            p_wr.addr.eq(p_count), p_wr.data.eq(self.requant.payload),
            p_wr.en.eq(self.requant.valid & self.requant.ready),
        ]
        # The counts step with a beat taken, else hold or clear at a start (never both); their
        # next values, as candidates, are what the sequencer compares a cycle ahead.
        w_next, p_next = (late_step(m, c, c.name, wr.en, c + 1, start, 0)
                          for c, wr in ((w_count, w_wr), (p_count, p_wr)))
        for room, c, (taken, stepped), field in ((w_room, w_count, w_next[0], "weight_words"),
                                                 (p_room, p_count, p_next[0], "blocks")):
            total = beat_blocks(cfg, desc) if field == "blocks" else desc[field]
            m.d.sync += room.eq(Mux(start, self.layer.payload[field] != 0,
                                    Mux(taken, stepped != total, c != total)))
        first_in = (p_count != 0) & (w_count >= group_words(cfg, desc.kernel_h, desc.kernel_w))
        with m.If(load & Mux(desc.depthwise, first_in, ~w_room)):
            m.d.sync += state.eq(2)

        issue = issue_logic(m, cfg, desc, self.layer, self.activations, run, load | run, start,
                            banks, w_rd, held(w_next, w_count), held(p_next, p_count))
        busy = self._pipeline(m, platform, cfg, desc, issue, banks, (w_wr, w_rd), p_rd, start)
        with m.If(run & issue["done"] & issue["written"]):
            m.d.sync += state.eq(3)
        with m.If(drain & ~busy):
            m.d.sync += state.eq(0)
        m.d.comb += self.ending.eq(idle | (drain & ~busy))
        return m

    # --- datapath ------------------------------------------------------------------------------
    def _pipeline(self, m, platform, cfg, desc, issue, banks, wmem, p_rd, start):
        L, B, NS = cfg.lanes, cfg.block, cfg.row_slots
        acc_shape = signed(cfg.acc_bits)

        def stage(name, value, shape=1, reset_less=False):
            sig = data_register(shape, name) if reset_less else Signal(shape, name=name)
            m.d.sync += sig.eq(value)
            return sig

        # The data registers have no reset: a stage's data is used only where its ``go`` or
        # ``valid`` bit (which a reset clears) marks it, and an accumulator starts from its
        # bias or partial sum at a block's first chunk. So the units' reset (``kill``, a
        # register) drives the control bits alone, not every flip-flop of the datapath: at
        # 60c88e2 it reached 9,373 of accel_ecp5's flip-flops through one LUT.
        def datum(name, value, shape):
            return stage(name, value, shape, reset_less=True)

        # Stage 0: the memories' outputs are valid and go into registers as they leave (a block
        # RAM's clock-to-out is its slowest part: no logic follows it in the same cycle).
        keys = ("go", "first", "last", "end", "nb")
        s0 = {k: stage(f"s0_{k}", issue[k], range(cfg.max_blocks) if k == "nb" else 1)
              for k in keys}
        words = [datum(f"s1_bank{b}", read_data(m, wp, rp, f"row{b}"), L * 8)
                 for b, (wp, rp) in enumerate(banks)]
        # (Without a reset the weight RAM takes it as its output register.)
        w1 = datum("s1_w", read_data(m, *wmem, "wmem"), L * B * 8)
        # Stage 1: pick rows in ring order and lanes by row width.
        s1 = {k: stage(f"s1_{k}", v, v.shape()) for k, v in s0.items()}
        row_words = []
        for r, (slot, ok) in enumerate(issue["rows"]):
            s_slot = stage(f"s1_slot{r}", stage(f"s0_slot{r}", slot, range(NS)), range(NS))
            s_ok = stage(f"s1_ok{r}", stage(f"s0_ok{r}", ok))
            word = Signal(L * 8, name=f"row_word{r}")
            with m.Switch(s_slot):
                for b in range(NS):
                    with m.Case(b):
                        m.d.comb += word.eq(Mux(s_ok, words[b], 0))
            row_words.append(word)
        lanes = Signal(L * 8)
        with m.Switch(desc.row_lanes):
            for rw in range(1, L + 1):  # row_lanes = lanes (grouped) is the default case
                with (m.Case(rw) if rw < L else m.Default()):
                    parts = []
                    for lane in range(L):
                        r, i = divmod(lane, rw)
                        src = L - rw + i
                        parts.append(row_words[r][src * 8:(src + 1) * 8]
                                     if r < len(row_words) else Const(0, 8))
                    m.d.comb += lanes.eq(Cat(*parts))
        a2 = datum("s2_a", lanes, L * 8)
        window = {k: stage(f"s0_{k}", issue[k], issue[k].shape()) for k in ("rd", "rd_first",
                                                                           "dc", "nx")}
        a2w = depthwise_window(m, cfg, window, row_words, stage)
        w2 = datum("s2_w", w1, L * B * 8)
        s2 = {k: stage(f"s2_{k}", v, v.shape()) for k, v in s1.items()}

        # Stage 3, two cycles: products, registered at the multiplier's inputs and output (on
        # ECP5 the MULT18X18D's own registers, :func:`hwaccel.hdl.dsp.registered_product`).
        # A multiplier takes the broadcast lane k, or (depthwise) channel n of window word k.
        def act(k, n):
            own = a2w[k][n * 8:(n + 1) * 8] if n < L else Const(0, 8)
            return Mux(desc.depthwise, own, a2[k * 8:(k + 1) * 8]).as_signed()

        prods = [[registered_product(
            m, act(k, n), w2[(k * B + n) * 8:(k * B + n + 1) * 8].as_signed(),
            platform=platform, name=f"prod_k{k}_n{n}", fabric=False)
            for n in range(B)] for k in range(L)]
        s2m = {k: stage(f"s2m_{k}", v, v.shape()) for k, v in s2.items()}
        s3 = {k: stage(f"s3_{k}", v, v.shape()) for k, v in s2m.items()}
        goes = [s2m["go"]]
        if cfg.product_register:
            # A product register in the fabric (no reset, a data register): its own cycle
            # for the route from the DSP row to the column's adder tree.
            prods = [[datum(f"prod_k{k}_n{n}_q", p, p.shape()) for n, p in enumerate(row)]
                     for k, row in enumerate(prods)]
            goes.append(s3["go"])
            s3 = {k: stage(f"s3p_{k}", v, v.shape()) for k, v in s3.items()}
        # The result beat a chunk belongs to: its partial-sum word, read with the parameters
        # in stage 3 (its block, its beat) and registered as they leave the block RAMs, so
        # they arrive with stage 4 from registers.
        beat = Signal.like(self.psum_raddr, name="s3_beat")
        with m.If(s3["go"] & s3["last"]):
            m.d.sync += beat.eq(beat + 1)
        with m.If(start):
            m.d.sync += beat.eq(0)
        m.d.comb += [p_rd.addr.eq(s3["nb"]), self.psum_raddr.eq(beat)]
        params_q = datum("s4_params", p_rd.data, len(p_rd.data))
        psum_q = datum("s4_psum", self.psum_rdata, len(self.psum_rdata))
        beat4 = stage("s4_beat", stage("s3s_beat", beat, beat.shape()), beat.shape())

        # Stage 4, two cycles: column sums over the chunk's lanes, each half of the lanes
        # summed into a register (3s), then the halves (an adder tree one level shorter a
        # cycle, where the products' routes from the multiplier columns take most of it).
        def column(n, lanes):
            return reduce(lambda x, y: x + y, [prods[k][n] for k in lanes])

        halves = [range(0, (L + 1) // 2), range((L + 1) // 2, L)]
        parts = [[datum(f"half{j}_n{n}", column(n, h), acc_shape)
                  for j, h in enumerate(halves) if len(h)] for n in range(B)]
        sums = [datum(f"sum_n{n}", reduce(lambda x, y: x + y, parts[n]), acc_shape)
                for n in range(B)]
        s3s = {k: stage(f"s3s_{k}", v, v.shape()) for k, v in s3.items()}
        s4 = {k: stage(f"s4_{k}", v, v.shape()) for k, v in s3s.items()}
        params = data.View(requant_layout(cfg), params_q)

        # Stage 5: accumulate; a block's first chunk starts from its bias.
        accs = []
        mults = [data_register(unsigned(cfg.mult_bits), f"mult_n{n}") for n in range(B)]
        shifts = [data_register(unsigned(cfg.shift_bits), f"shift_n{n}") for n in range(B)]
        for n in range(B):
            acc = data_register(acc_shape, f"acc_n{n}")
            part = psum_q[n * cfg.acc_bits:(n + 1) * cfg.acc_bits].as_signed()
            with m.If(s4["go"]):
                m.d.sync += acc.eq(Mux(s4["first"], Mux(desc.acc_in, part, params[n].bias), acc)
                                   + sums[n])
            with m.If(s4["go"] & s4["last"]):
                m.d.sync += [mults[n].eq(params[n].multiplier), shifts[n].eq(params[n].shift)]
            accs.append(acc)
        v5 = stage("s5_valid", s4["go"] & s4["last"])
        e5 = stage("s5_end", s4["end"])
        m.d.comb += [self.psum_waddr.eq(stage("s5_beat", beat4, beat.shape())),
                     self.psum_wdata.eq(Cat(*accs)), self.psum_we.eq(v5 & desc.acc_out)]

        # Stages 6 to 8: the requantizer (:mod:`.requantize`).
        outs, (v6, v7, v8), e8 = requantize_stages(m, cfg, platform, accs, mults, shifts,
                                                   desc.relu, v5, e5, stage, datum)

        fifo = m.submodules.fifo = SyncFIFO(width=Shape.cast(result_layout(cfg)).width,
                                            depth=FIFO_DEPTH)
        m.d.comb += [fifo.w_en.eq(v8), fifo.w_data.eq(Cat(*outs, e8)),
                     self.result.valid.eq(fifo.r_rdy), self.result.payload.eq(fifo.r_data),
                     fifo.r_en.eq(self.result.ready)]
        # Issue's credit (a free FIFO row: credits != 0) is a register worked out a cycle
        # ahead: with a row spent and none freed, credits - 1 != 0 is credits != 1.
        credits = Signal(range(FIFO_DEPTH + 1), init=FIFO_DEPTH)
        spent, freed = issue["go"] & issue["last"], fifo.r_rdy & fifo.r_en
        has_credit = Signal(init=1)
        m.d.comb += issue["credit"].eq(has_credit)
        m.d.sync += [credits.eq(credits - spent + freed),
                     has_credit.eq(Mux(spent & ~freed, credits != 1, has_credit | freed))]
        return reduce(lambda x, y: x | y, [s0["go"], s1["go"], s2["go"], *goes, s3["go"],
                                           s3s["go"], s4["go"], v5, v6, v7, v8])
