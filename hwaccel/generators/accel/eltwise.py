"""The element-wise unit: the residual ADD, the product MUL and average pooling, off the
activation scratchpad.

It runs one ADD, MUL or AVGPOOL job at a time (:mod:`.isa` documents the commands) and talks to the
scratchpad directly: it drives the read port's address while its job runs, registers the words
read (the block RAM's output goes into flip-flops and nothing else) and hands each result word
to the write port. It never waits -- the read port is its own for the job and the write
port takes a word every cycle -- so it needs no FIFO, and its timing is a formula
(:mod:`.perf`):

* ADD: one word a cycle. Each read returns two consecutive words (:mod:`.act_banks`), so the
  unit reads words ``2j, 2j + 1`` of ``a``, then the same two of ``b``; each pair is registered
  as it arrives, then ``a * mult_a`` for both words is registered at the multipliers' inputs and
  output and kept while ``b``'s pair follows, then ``+ b * mult_b`` (the same multipliers, one a
  lane of each word), then the rounding term added to the first word, then to the second while
  the first is shifted, each word saturated a cycle after its shift: ``count + ADD_TAIL``
  cycles of the job
  (``2 * ceil(count / 2)`` reads; an odd count's last pair has one word and so one result cycle
  less).
* MUL (``AccelConfig.elt_mul``): the ADD's reads, pipeline and cycles, each multiplier's
  operand a lane of ``a``'s word in place of ``mult_b`` (``a``'s pair is in the datapath's word
  registers when ``b``'s is read, so the operand register takes it then) and 0 in place of
  ``mult_a``: ``0 + a x b``, rounded and shifted. A gate pixel's ``b`` (``mult_b = n``)
  is read at ``src2`` plus its offset in the pixel, which steps by a pair and wraps at ``n``.
* AVGPOOL: two set-up cycles (the address steps ``kw x blocks``, ``width x blocks`` and
  ``kh x width x blocks``, one multiply each), then one read a cycle in window order -- a window
  row of ``kw x blocks`` consecutive words, the next row ``width x blocks`` further on -- each
  word, registered as it arrives, its lanes biased to unsigned bytes by flipping their sign bits,
  added into the accumulator word of its block (one per block, registers). A window's last
  word completes its block's sum, which goes on to the multiply (registered at its inputs and
  output), then the rounding term, then the shift, then clamp and un-bias
  (:func:`hwaccel.numerics.average_with`) while the next window accumulates:
  ``AVG_SETUP + out_pixels x kh x kw x blocks + AVG_TAIL`` cycles of the job.

Clock speed: no path does more than one multiply (and an add), and none starts at the block
RAM: its clock-to-output time (5.8 ns at ECP5 speed 6 without the RAM's output register) ends
in a register of the words as they leave the RAMs (``elt_rd``), and the datapaths' word
registers take them a cycle later (the bank select and the route from the RAMs into the word
registers were 16 of the 50 inputs a 12.5 ns clock left late at 4c652d6). The ADD's products
are registered at the multipliers' inputs and outputs, so its multiplies and its add are on
different cycles; so are the AVGPOOL divider's multiply, its rounding add, its shift and its
clamp. The rounding add, the shift and the clamp are stages of their own
(:func:`hwaccel.generators.rounding.rounding_terms`): in one cycle they were the whole
accelerator's critical path on ECP5 (about 24 ns, at 1d5b06f).
"""

from __future__ import annotations

from functools import reduce
from types import SimpleNamespace

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...hdl.delay import delay
from ...hdl.dsp import DSP_LATENCY, registered_product
from ...impl.yosys import DSP_ATTR
from ...numerics import MULT_BITS
from ..conv.rw import data_register
from .config import AccelConfig
from .elt_gate import gate_pointer
from .elt_products import SharedLaneProducts, avg_fits_a_block, shares_lane_products, staged_product
from .elt_tail import Tails
from .isa import elt_layout

__all__ = ["Eltwise", "ADD_TAIL", "AVG_SETUP", "AVG_TAIL"]

#: Job cycles of an ADD beyond one a word (an even count): after its last read, the words
#: registered as they leave the RAMs, then in the datapath, the multipliers' operand and
#: product registers (:data:`DSP_LATENCY`), their data
#: (``a*mult_a + b*mult_b`` registered), the first word's rounding register, the second's (and
#: the first's shift register), the second's shift register (and the first's result register),
#: the second's result register, the store, and the cycle the datapath sees every result
#: written.
ADD_TAIL = 9 + DSP_LATENCY
#: AVGPOOL cycles before its first read: the two set-up multiplies.
AVG_SETUP = 2
#: Job cycles after an AVGPOOL's last read: the word registered as it leaves the RAMs, then in
#: the datapath, its data (the sum registered), the multipliers' operand and product registers
#: (:data:`DSP_LATENCY`), the rounding register, the shift register, the result register, the
#: store, and the cycle the datapath sees every result written.
AVG_TAIL = 8 + DSP_LATENCY


class Eltwise(wiring.Component):
    """The ADD/AVGPOOL unit of an :class:`AccelConfig`.

    Members
    -------
    start : ``In(1)``               begin the job (a pulse, while idle)
    avg : ``In(1)``                 the job is an AVGPOOL (else an ADD)
    mul : ``In(1)``                 (with ``elt_mul``) the job is a MUL
    src : ``In``, count : ``In``    first word of ``a`` (ADD) or of the map (AVGPOOL); ADD words
    args : ``In(elt_layout)``       the command's ``elt`` fields; held while the job runs
    addr : ``Out``, rdata : ``In``  the scratchpad's read port (data one cycle after address,
                                    registered here: the datapaths see it a cycle later)
    pair, rup : ``Out``             an ADD reads a pair: ``rup`` is ``(addr + 1) >> 1``
    rnext : ``In``                  the word after ``rdata``'s (the same read, :mod:`.act_banks`)
    result_valid, result : ``Out``  a result word for the write port (taken every cycle)
    busy : ``Out(1)``               reads or results remain
    moved : ``Out(1)``              a word was read this cycle (progress, for the watchdog)
    """

    def __init__(self, config: AccelConfig):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        self.config = cfg = config
        ad = cfg.act_depth
        super().__init__({
            "start": In(1), "avg": In(1), "src": In(range(ad)), "count": In(range(ad + 1)),
            "args": In(elt_layout(cfg)),
            "addr": Out(range(ad)), "pair": Out(1), "rup": Out(range((ad + 1) // 2)),
            "rdata": In(cfg.act_bits), "rnext": In(cfg.act_bits),
            "result_valid": Out(1), "result": Out(cfg.act_bits),
            "busy": Out(1), "moved": Out(1),
            **({"mul": In(1)} if cfg.elt_mul else {}),
        })

    def elaborate(self, platform):
        cfg = self.config
        m = Module()
        mode_avg = Signal()
        issuing = Signal()
        setup = Signal(range(AVG_SETUP + 1))
        # The result register, shared by both datapaths' last stages. The data registers here
        # have no reset (a reset clears the valid bits and tags that mark them; an average's
        # sums start from 0 at a window's first word), so the units' reset drives the control.
        res, res_valid = data_register(cfg.act_bits, "elt_res"), Signal()
        m.d.comb += [self.result.eq(res), self.result_valid.eq(res_valid)]
        m.d.sync += res_valid.eq(0)
        with m.If(self.start):
            m.d.sync += mode_avg.eq(self.avg)
        mode_mul = None
        if cfg.elt_mul:
            mode_mul = Signal()
            with m.If(self.start):
                m.d.sync += mode_mul.eq(self.mul)
        # The job's pointers and counters load while the unit does not issue (ADD) or in the
        # first set-up cycle (AVGPOOL), not on ``start``: the processor's job fields hold from
        # before ``start`` until RIPE cycles after it (.tiling), and ``start`` is at the end of
        # the processor's ISSUE decision (its range checks' compare): through it into the read
        # pointers was the netlist estimate's deepest path (15.1 ns at 48a413b).
        # The words as they leave the RAMs, registered (no reset: the reads' tags mark them).
        rd, rn = (data_register(len(w), n) for w, n in ((self.rdata, "elt_rd"),
                                                         (self.rnext, "elt_rn")))
        m.d.sync += [rd.eq(self.rdata), rn.eq(self.rnext)]
        # Under lut_multipliers AVGPOOL's lane multipliers (DSP blocks) take the ADD's first
        # word too (:mod:`.elt_products`), and the two datapaths share their last stages
        # (:mod:`.elt_tail`): one job runs at a time.
        share = shares_lane_products(cfg)
        shared = SharedLaneProducts(m, cfg, platform, mode_avg) if share else None
        tails = Tails(m, res, res_valid, mode_avg if share else None)
        pipe_add = self._add(m, platform, issuing & ~mode_avg, ~issuing, tails, rd, rn, shared,
                             mode_mul)
        pipe_avg = self._avg(m, platform, issuing & mode_avg, setup, tails, rd, shared)
        tail = [tails.shared("elt_r")] if share else []      # its busy bit
        with m.If(self.start):
            m.d.sync += [issuing.eq(~self.avg & (self.count != 0)),
                         setup.eq(Mux(self.avg, AVG_SETUP, 0))]
        with m.Elif(setup != 0):
            m.d.sync += setup.eq(setup - 1)
            with m.If(setup == 1):
                m.d.sync += issuing.eq(1)
        with m.If(pipe_add.stop | pipe_avg.stop):
            m.d.sync += issuing.eq(0)
        m.d.comb += [self.addr.eq(Mux(mode_avg, pipe_avg.addr, pipe_add.addr)),
                     self.pair.eq(~mode_avg), self.rup.eq(pipe_add.rup),
                     self.moved.eq(issuing),
                     self.busy.eq(reduce(lambda x, y: x | y, [
                         issuing, setup != 0, pipe_add.busy, pipe_avg.busy, *tail, res_valid]))]
        return m

    def _add(self, m, platform, issue, load, tails, rd, rn, shared, mode_mul):
        """ADD: read two words of ``a``, then the same two of ``b``; ``a * mult_a``;
        ``+ b * mult_b``; round, shift, clamp the first word, then the second. With
        ``mode_mul`` (a MUL job) ``0 * 0`` then ``+ b * a``."""
        cfg, p = self.config, self.args.add
        lanes = cfg.lanes
        a_ptr, b_ptr = Signal(range(cfg.act_depth)), Signal(range(cfg.act_depth))
        left = Signal(range(cfg.act_depth + 1))
        ph = Signal()                      # 0: read a pair of a, 1: the same pair of b
        got_a, got_b, summed, second = Signal(), Signal(), Signal(), Signal()
        pair, pair_b = Signal(), Signal()      # the pair read has a second word of the job
        prod_a = [[data_register(signed(8 + MULT_BITS + 1), f"add_pa{j}_{i}")
                   for i in range(lanes)] for j in range(2)]
        total = [[data_register(signed(8 + MULT_BITS + 2), f"add_t{j}_{i}")
                  for i in range(lanes)] for j in range(2)]
        stop = Signal()
        # Each pointer's ``(ptr + 1) >> 1`` kept beside it: the bank-0 address of the pair's
        # second word (:mod:`.act_banks`), so no adder follows the pointers into the RAMs.
        a_up, b_up = (Signal(range(cfg.act_depth // 2 + 1), name=n) for n in ("a_up", "b_up"))
        with m.If(load):
            m.d.sync += [a_ptr.eq(self.src), b_ptr.eq(p.src2), left.eq(self.count), ph.eq(0),
                         a_up.eq((self.src + 1) >> 1), b_up.eq((p.src2 + 1) >> 1)]
        b_step = [b_ptr.eq(b_ptr + 2), b_up.eq(b_up + 1)]
        if mode_mul is not None:
            b_step = gate_pointer(m, self.args.add, self.mul, load, b_ptr, b_up)
        with m.If(issue):
            m.d.sync += ph.eq(~ph)
            with m.If(ph):
                m.d.sync += [*b_step, left.eq(left - 2)]
                m.d.comb += stop.eq(left <= 2)
            with m.Else():
                m.d.sync += [a_ptr.eq(a_ptr + 2), a_up.eq(a_up + 1)]
        # A read's pair arrives the cycle after its read (``*0``), is registered as it leaves
        # the RAMs (``rd``, ``rn``) and again the cycle after, with its tags.
        read_a0, read_b0, pair0 = Signal(), Signal(), Signal()
        read_a, read_b, pair_r = Signal(), Signal(), Signal()
        words = [data_register(len(self.rdata), "add_w0"),
                 data_register(len(self.rnext), "add_w1")]
        m.d.sync += [read_a0.eq(issue & ~ph), read_b0.eq(issue & ph), pair0.eq(left >= 2),
                     read_a.eq(read_a0), read_b.eq(read_b0), pair_r.eq(pair0),
                     words[0].eq(rd), words[1].eq(rn),
                     got_a.eq(read_a), got_b.eq(read_b), pair.eq(pair_r),
                     second.eq(summed & pair_b)]
        # One multiplier a lane of each word: a's products, then b's (added to a's). Each is a
        # signal of its own, so both uses share it, and the multiplier's operand comes first:
        # Yosys' `booth` maps mult x byte to ~20 % fewer LUTs than byte x mult (docs/ecp5-dsp.md).
        # The multiplier's operand is chosen a cycle ahead (from the read's tag), so a register
        # feeds the multiplier directly: the choice was on 85e3ccd's placed critical path.
        if mode_mul is None:
            mult, operands = Signal.like(p.mult_a, name="add_mult"), None
            m.d.sync += mult.eq(Mux(read_b, p.mult_b, p.mult_a))
        else:
            # MUL: a register a lane of each word, taking ``a``'s lane as ``b``'s pair is read
            # (``a``'s is then in ``words``), else 0; an ADD's ``mult`` as before.
            operands = [[Signal(signed(MULT_BITS + 1), name=f"mul_op{j}_{i}")
                         for i in range(lanes)] for j in range(2)]
            for j, w in enumerate(words):
                for i, o in enumerate(operands[j]):
                    lane = Mux(read_b, w[8 * i: 8 * i + 8].as_signed(), 0)
                    add = Cat(Mux(read_b, p.mult_b, p.mult_a), Const(0, 1)).as_signed()
                    m.d.sync += o.eq(Mux(mode_mul, lane, add))
        # Each product is registered at the multiplier's inputs and output (on ECP5 the
        # MULT18X18D's own registers, :func:`hwaccel.hdl.dsp.registered_product`), so no path
        # both multiplies and adds: through the block's combinational multiply into the add was
        # 85e3ccd's placed critical path (16.0 ns). Under ``lut_multipliers`` the same registers
        # are fabric ones around a LUT multiply (the DSP blocks are the MACs'), but for the
        # first word's, on AVGPOOL's blocks where they are ``shared``. The tags follow.
        # With ``add_product_stage`` the second word's (LUT) products take a register between
        # their partial products (:func:`.elt_products.staged_product`), a cycle later than
        # the first word's; the tail rounds the first word's sum a cycle before the second's,
        # so the second's is taken a cycle later and the job keeps its cycles.
        dsp = None if cfg.lut_multipliers else platform
        staged = cfg.add_product_stage

        def product(j, i, w):
            b = w[8 * i: 8 * i + 8].as_signed()
            a = Cat(mult, Const(0, 1)).as_signed() if operands is None else operands[j][i]
            if shared is not None and j == 0:
                return shared.add(i, a, b)
            if staged and j == 1:
                return staged_product(m, a, b, name=f"add_q{j}_{i}")
            return registered_product(m, a, b, platform=dsp, name=f"add_q{j}_{i}", fabric=False)

        prods = [[product(j, i, w) for i in range(lanes)] for j, w in enumerate(words)]
        got_a_q, got_b_q, pair_q = (delay(m, s, DSP_LATENCY, f"add_{s.name}")
                                    for s in (got_a, got_b, pair))
        late = [delay(m, s[-1], 1, f"{s[-1].name}_late")[0] for s in (got_a_q, got_b_q)
                if staged]
        # The words taken on each pair of tags: both on the products' (one stage), or the
        # first word's there and the second's a cycle later.
        takes = [((got_a_q[-1], got_b_q[-1]), (0, 1) if not staged else (0,))]
        if staged:
            takes.append((late, (1,)))
        for n, ((take_a, take_b), js) in enumerate(takes):
            with m.If(take_a):
                m.d.sync += [pa.eq(q) for j in js for pa, q in zip(prod_a[j], prods[j])]
            with m.If(take_b):
                m.d.sync += [t.eq(pa + q) for j in js
                             for t, pa, q in zip(total[j], prod_a[j], prods[j])]
                if n == 0:
                    m.d.sync += pair_b.eq(pair_q[-1])
        m.d.sync += summed.eq(got_b_q[-1])
        lo = Mux(p.relu, 0, -128)
        clamping = tails("add_r", [Mux(second, t1, t0) for t0, t1 in zip(*total)], p.shift,
                         summed | second, (lo, 127))
        return SimpleNamespace(addr=Mux(ph, b_ptr, a_ptr), rup=Mux(ph, b_up, a_up), stop=stop,
                               busy=read_a0 | read_b0 | read_a | read_b | got_a | got_b
                               | Cat(*got_a_q, *got_b_q, *late).any()
                               | summed | second | clamping)

    def _avg(self, m, platform, issue, setup, tails, rd, shared):
        """AVGPOOL: window-order reads, per-block accumulators, multiply, round, clamp."""
        cfg, p = self.config, self.args.avg
        lanes, ad, acc_bits = cfg.lanes, cfg.act_depth, cfg.avg_acc_bits
        # Steps are at most the map's words, which the processor has checked fit the scratchpad.
        run_len, row_step, orow_step = (Signal(range(ad + 1)) for _ in range(3))
        with m.If(setup == AVG_SETUP):
            m.d.sync += [run_len.eq(p.kw * p.blocks), row_step.eq(p.width * p.blocks)]
        with m.If(setup == 1):
            m.d.sync += orow_step.eq(p.kh * row_step)
        # Loop counters (block, window column and row, output column and row) and pointers.
        b, dx, dy = Signal.like(p.blocks), Signal.like(p.kw), Signal.like(p.kh)
        ox, oy = Signal.like(p.out_width), Signal.like(p.out_height)
        addr, row0, win0, orow0 = (Signal(range(2 * ad + 1)) for _ in range(4))
        # Each counter's "at its last value" is a flag register, so the loop's choice is a few
        # gates of flip-flops (it was a subtract and a compare a counter, then the priority
        # chain into the pointers: accel_ecp5's deepest netlist path at 7233122, 14.5 ns).
        counters = (b, dx, dy, ox, oy)
        ends = (p.blocks, p.kw, p.kh, p.out_width, p.out_height)   # all >= 1 (checked)
        lasts = [Signal.like(c, name=f"avg_last{i}") for i, c in enumerate(counters)]
        at = [Signal(name=f"avg_at{i}") for i in range(len(counters))]
        with m.If(setup == AVG_SETUP):
            m.d.sync += [x.eq(e - 1) for x, e in zip(lasts, ends)]
        with m.If(setup == 1):   # every counter is 0
            m.d.sync += [a.eq(x == 0) for a, x in zip(at, lasts)]
        stop = Signal()

        def step(n, base):
            """Counter ``n`` steps; counters below it wrap to 0, those above hold."""
            sync = [counters[n].eq(counters[n] + 1), at[n].eq(counters[n] + 1 == lasts[n])]
            for i in range(n):
                sync += [counters[i].eq(0), at[i].eq(lasts[i] == 0)]
            return sync + [addr.eq(base)]

        with m.If(setup == AVG_SETUP):
            m.d.sync += [b.eq(0), dx.eq(0), dy.eq(0), ox.eq(0), oy.eq(0), addr.eq(self.src),
                         row0.eq(self.src), win0.eq(self.src), orow0.eq(self.src)]
        with m.If(issue):
            with m.If(~at[0]):
                m.d.sync += step(0, addr + 1)
            with m.Elif(~at[1]):
                m.d.sync += step(1, addr + 1)
            with m.Elif(~at[2]):
                m.d.sync += [*step(2, row0 + row_step), row0.eq(row0 + row_step)]
            with m.Elif(~at[3]):
                m.d.sync += [*step(3, win0 + run_len), win0.eq(win0 + run_len),
                             row0.eq(win0 + run_len)]
            with m.Elif(~at[4]):
                nxt = orow0 + orow_step
                m.d.sync += [*step(4, nxt), orow0.eq(nxt), win0.eq(nxt), row0.eq(nxt)]
            with m.Else():
                m.d.comb += stop.eq(1)
        # The word read this cycle arrives next cycle (``*0``: its tags), is registered as it
        # leaves the RAMs (``rd``), and again the cycle after, its tags beside it.
        read0, first0, last0, tag0 = Signal(), Signal(), Signal(), Signal.like(b)
        read, first_r, last_r = Signal(), Signal(), Signal()
        got, first, last = Signal(), Signal(), Signal()
        tag_r, tag_b = Signal.like(b), Signal.like(b)
        word = data_register(len(self.rdata), "avg_w")
        m.d.sync += [read0.eq(issue), first0.eq((dx == 0) & (dy == 0)),
                     last0.eq(at[1] & at[2]), tag0.eq(b),
                     read.eq(read0), first_r.eq(first0), last_r.eq(last0), tag_r.eq(tag0),
                     word.eq(rd),
                     got.eq(read), first.eq(first_r), last.eq(last_r), tag_b.eq(tag_r)]
        acc = [data_register(lanes * acc_bits, f"acc{i}") for i in range(cfg.avg_max_blocks)]
        # The accumulator a word adds to (``cur``) is chosen a cycle ahead, by the tag of the
        # word on the read port, so no cycle both chooses among the blocks' accumulators and
        # adds: the choice was accel_ecp5's critical path at 781df41 (21.6 ns, seven LUT
        # levels before the add). The word added in that cycle may have the same tag (one
        # block): its sum is not in its accumulator yet, so it is taken instead.
        # The choice is an AND-OR of registers: ``tag_r`` one-hot, and ``tag_b == tag_r``, each
        # registered beside the tags (a chain of compares of ``tag_r`` was ten LUT levels, the
        # netlist estimate's deepest path at c553654, 13.9 ns).
        one_hot, same = Signal(len(acc), name="avg_pick"), Signal(init=1, name="avg_same")
        m.d.sync += [one_hot.eq(Const(1, len(acc)) << tag0), same.eq(tag_r == tag0)]
        pick = reduce(lambda x, y: x | y, [Mux(one_hot[i], a, 0) for i, a in enumerate(acc)])
        cur = data_register(lanes * acc_bits, "avg_cur")
        biased = [word[8 * i: 8 * i + 8] ^ 0x80 for i in range(lanes)]
        sums = Cat(*[(Mux(first, 0, cur[acc_bits * i: acc_bits * (i + 1)]) + u)[:acc_bits]
                     for i, u in enumerate(biased)])
        m.d.sync += cur.eq(Mux(got & same, sums, pick))
        sum_w, sum_v = data_register(lanes * acc_bits, "avg_sum"), Signal()
        m.d.sync += sum_v.eq(got & last)
        with m.If(got):
            for i, a in enumerate(acc):
                with m.If(tag_b == i):
                    m.d.sync += a.eq(sums)
            m.d.sync += sum_w.eq(sums)
        # The divider's multiplies are registered at their inputs and output (on ECP5 the
        # MULT18X18D's own registers, :func:`hwaccel.hdl.dsp.registered_product`), so the
        # block's combinational delay and its routes in and out are not one path. Each stays on
        # a DSP block of its own where the FPGA flow maps other multiplies to LUTs
        # (AccelConfig.lut_multipliers; DSP_ATTR on the plain path): an unsigned 15 x 17 bit
        # product at ecp5_144's window of 128, one MULT18X18D. Operands wider than the block's
        # 18 signed bits (windows from about 200: a 17-bit accumulator or an 18-bit multiplier)
        # are an inferred multiply between the same registers.
        prod_bits = acc_bits + cfg.avg_mult_bits
        fits = avg_fits_a_block(cfg)

        def product(i):
            a = Cat(sum_w[acc_bits * i: acc_bits * (i + 1)], Const(0, 1)).as_signed()
            b = Cat(p.mult, Const(0, 1)).as_signed()
            if shared is not None:
                return shared.avg(i, a, b)
            return registered_product(m, a, b, platform=platform if fits else None,
                                      name=f"avg_q{i}", fabric=False, attrs={DSP_ATTR: 1})

        prods = [product(i)[:prod_bits] for i in range(lanes)]
        prod_v = delay(m, sum_v, DSP_LATENCY, "avg_prod_v")
        clamping = tails("avg_r", prods, p.shift, prod_v[-1], (None, 255),   # >= 0
                         unbias=True)
        return SimpleNamespace(addr=addr[: len(self.addr)], stop=stop,
                               busy=read0 | read | got | sum_v | Cat(*prod_v).any() | clamping)
