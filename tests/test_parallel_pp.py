"""Pipeline parallelism (``pp``): stages on a Verilated top of three tiny instances.

Samples stream through the top (:mod:`hwaccel.parallel.pp_sim`); their outputs equal the
golden interpreter on one instance, and every sample's start, finish and hand-over cycle at
every stage equals the cycle model (:func:`hwaccel.parallel.pp_model.model`). Partitions that
cannot run are refused naming the stage and layer.
"""

from __future__ import annotations

import random
from fractions import Fraction

import pytest
import torch
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.sim import Simulator
from torch import nn

import hwaccel
from hwaccel.compiler.cases import make, split_bands
from hwaccel.generators.accel.config import PRESETS
from hwaccel.generators.link import Link, LinkConfig
from hwaccel.generators.link.config import PRESETS as LINKS
from hwaccel.generators.multi import FIRST_BEAT, CopySender, LinkWriter, PipelineConfig
from hwaccel.parallel.link import LinkModel
from hwaccel.parallel.pp import PartitionError, partition, sample_inputs
from hwaccel.parallel.pp_model import RUN_SEEN, copy_cycles, holds, model, occupancy
from hwaccel.parallel.traffic import Receiver, Transfer

TOP = PipelineConfig(PRESETS["tiny"], 3, LINKS["tiny"], name="tiny3")


@pytest.fixture(scope="module")
def design():
    from hwaccel.sim.runner import design_for

    return design_for(TOP)


def _compiled(name, n=6):
    net, inputs = make(name)
    x = inputs(n, torch.Generator().manual_seed(14))
    cm = hwaccel.compile(net, x, preset="tiny")
    return cm, cm.quantize_input(x)


def _stream(design, cm, xi, part):
    from hwaccel.parallel.pp_sim import golden, outputs_of, simulate

    words, measured = simulate(design, TOP, part, sample_inputs(part, cm, xi))
    got, ref = outputs_of(part, words), golden(cm, xi)
    mismatches = int((got.reshape(len(xi), -1) != ref.reshape(len(xi), -1)).any(axis=1).sum())
    return mismatches, measured, model(part, len(xi), TOP.link)


@pytest.mark.parametrize("name", ["branches", "sequential"])
def test_pipeline_is_bit_exact_and_the_model_equals_every_sample_cycle(design, name):
    """``branches`` hands a residual's two live tensors across a cut; ``sequential`` one."""
    cm, xi = _compiled(name)
    part = partition(cm, xi, 3, link=TOP.link)
    mismatches, measured, predicted = _stream(design, cm, xi, part)
    assert mismatches == 0
    assert measured.rows() == predicted.rows()
    assert measured.cycles == predicted.cycles > 0
    assert 0 < measured.bubble_fraction < 1


class Balanced(nn.Module):
    """Three identical 4 -> 4 channel 3x3 convs on a 4x4 map: equal stage programs, equal
    16-word boundaries."""

    def __init__(self):
        super().__init__()
        self.c = nn.ModuleList(nn.Conv2d(4, 4, 3, padding=1) for _ in range(3))

    def forward(self, x):
        for c in self.c:
            x = torch.relu(c(x))
        return x


def test_balanced_pipeline_fill_period_and_bubbles(design):
    torch.manual_seed(3)
    net = Balanced().eval()
    x = torch.randn(8, 4, 4, 4)
    cm = hwaccel.compile(net, x, preset="tiny")
    xi = cm.quantize_input(x)
    part = partition(cm, xi, 3, link=TOP.link)
    assert len({s.cycles for s in part.stages}) == 1
    mismatches, t, predicted = _stream(design, cm, xi, part)
    assert mismatches == 0 and t.rows() == predicted.rows()
    m, p, st = len(xi), 3, part.stages
    occ = occupancy(part, TOP.link)
    copy = copy_cycles(TOP.link, st[0].output.words)
    ins = [st[0].input.words, copy, copy]
    # Busy: every input transfer and program (and the read-back), none of them waiting.
    assert [t.busy(k) for k in range(p)] == \
        [m * (ins[k] + st[k].cycles + RUN_SEEN) + (m * st[-1].output.words if k == p - 1 else 0)
         for k in range(p)]
    # Sample 0 crosses with no wait; stage 0's copy outlasts its 16 host words, and that
    # excess is in its occupancy (its period) but not in the sample's latency.
    assert holds(st) == [False, False, True] and copy > ins[0]
    assert t.fill == sum(occ) - (copy - ins[0])
    # The steady interval is the slowest instance's occupancy.
    assert t.period == max(occ)
    # GPipe's (p - 1) / (m + p - 1) needs equal stages and a latency of p periods: here the
    # latency is below it, but the first two stages idle beside the last one's read-back.
    assert t.fill < p * t.period and len(set(occ)) > 1
    assert t.bubbles > Fraction(p - 1, m + p - 1)


def test_equal_occupancy_pipeline_meets_gpipes_bubble_law(design):
    """Three stages tuned to one occupancy (:mod:`hwaccel.parallel.pp_equal`): a sample's
    latency is exactly three periods, so the bubble fraction is (p - 1) / (m + p - 1)."""
    import numpy as np

    from hwaccel.parallel.pp_equal import equal_stages, reference
    from hwaccel.parallel.pp_sim import simulate

    part = equal_stages(TOP.accel, TOP.link)
    o = occupancy(part, TOP.link)[0]
    assert occupancy(part, TOP.link) == [o] * 3
    rng = np.random.default_rng(5)
    p = 3
    for m in (1, 8):
        inputs = [rng.integers(-128, 128, (part.stages[0].input.words, TOP.accel.lanes))
                  for _ in range(m)]
        words, t = simulate(design, TOP, part, inputs)
        assert all(np.array_equal(w, r) for w, r in zip(words, reference(part, inputs)))
        assert t.rows() == model(part, m, TOP.link).rows()
        assert t.fill == p * o and t.period == (o if m > 1 else t.fill)
        assert t.cycles == (m + p - 1) * o
        assert [t.busy(k) for k in range(p)] == [m * o] * p
        assert t.bubbles == Fraction(p - 1, m + p - 1)


def test_refused_partitions_name_the_stage_and_layer():
    net, inputs = split_bands()
    x = inputs(2, torch.Generator().manual_seed(1))
    cm = hwaccel.compile(net, x, preset="tiny")
    xi = cm.quantize_input(x)
    with pytest.raises(PartitionError, match=r"stage 1 \(layers 5\).*layer '5' was itself "
                                             r"lowered into weight groups 0, 1"):
        partition(cm, xi, [5])
    with pytest.raises(PartitionError, match=r"stage 1 \(layers 1, 2, 3, 4, 5\).*layer '5'"):
        partition(cm, xi, [1])
    with pytest.raises(PartitionError, match=r"in \[1, 6\).*not \[6\]"):
        partition(cm, xi, [6])
    with pytest.raises(PartitionError, match="cannot split 6 layers"):
        partition(cm, xi, 7)
    with pytest.raises(PartitionError, match="cuts must be increasing"):
        partition(cm, xi, [3, 2])
    with pytest.raises(PartitionError, match="no split into 2 stages can run"):
        partition(cm, xi, 2)   # layer 5 straddles the weight groups: no stage can hold it


def test_top_refuses_a_link_wider_than_a_word():
    with pytest.raises(ValueError, match="link.width must be the activation word's bytes"):
        PipelineConfig(PRESETS["tiny"], 2, LINKS["default"])
    with pytest.raises(ValueError, match="instances must be at least 2"):
        PipelineConfig(PRESETS["tiny"], 1, LINKS["tiny"])


def test_pp_rows_against_one_instance(design):
    """``hwaccel parallel --mode pp``'s rows: one instance (instance 0 of the same top, the
    whole model) and three stages; the model equals the simulation on every sample."""
    from hwaccel.parallel.pp_run import run_pp

    net, inputs = make("branches")
    x = inputs(5, torch.Generator().manual_seed(2))
    cm = hwaccel.compile(net, x, preset="tiny")
    one, three = run_pp(cm, x, [1, 3], top=TOP, clock=(50.0, "given"))
    for r in (one, three):
        assert r.samples_equal and r.model_cycles == r.cycles and r.mismatches == 0
        assert r.single_cycles == one.cycles == r.single_model_cycles
        assert r.speedup == one.cycles / r.cycles and r.period == r.slowest_occupancy
    assert one.link_utilization == 0 and one.stages == [[s for r in three.stages for s in r]]
    assert len(three.stages) == 3 and 0 < three.link_utilization < 1


def test_a_pipeline_that_is_not_through_in_time_is_named(design):
    from hwaccel.parallel.pp_sim import PipelineHang, simulate

    cm, xi = _compiled("sequential", 2)
    part = partition(cm, xi, 3, link=TOP.link)
    with pytest.raises(PipelineHang, match=r"not through 2 samples after 150 cycles: "
                                           r"instances \['run 0', 'free', 'free'\]"):
        simulate(design, TOP, part, sample_inputs(part, cm, xi), limit=150)


class _Copy(Elaboratable):
    """A copy sender reading a memory of ``words`` (one cycle of read latency, as the host
    port), a link, and a writer whose instance is free when the test says."""

    def __init__(self, link, words):
        cfg = PRESETS["tiny"]
        self.sender, self.writer = CopySender(cfg), LinkWriter(cfg)
        self.link, self.words = Link(link), words

    def elaborate(self, platform):
        m = Module()
        m.submodules.sender, m.submodules.link = self.sender, self.link
        m.submodules.writer = self.writer
        mem = m.submodules.mem = Memory(shape=32, depth=len(self.words), init=self.words)
        rd = mem.read_port()
        bits = (len(self.words) - 1).bit_length()
        m.d.comb += [rd.addr.eq(self.sender.addr[:bits]), self.sender.rdata.eq(rd.data)]
        wiring.connect(m, self.sender.source, self.link.sink)
        wiring.connect(m, self.link.source, self.writer.sink)
        return m


def test_copy_components_equal_the_link_model_under_any_receiver():
    """Sender, link and writer alone in Amaranth's simulator, the writer's instance free on
    a random pattern: every word is written where and in the cycle LinkModel says (a sender
    offering from FIRST_BEAT on, beat after beat), with credit-bound and full-rate links."""
    rng = random.Random(14)
    words = [rng.randrange(1 << 32) for _ in range(64)]
    for case in range(12):
        latency = rng.choice([0, 1, 2, 3])
        link = LinkConfig(width=4, latency=latency, buffer=4 * rng.randint(1, 2 * latency + 2),
                          watchdog=1 << 12)
        n, src, dst = rng.randint(1, 24), rng.randrange(40), rng.randrange(1000)
        free = Receiver(tuple(rng.random() < 0.6 for _ in range(rng.randint(0, 60))))
        dut = _Copy(link, words)
        writes = []

        async def bench(ctx, dut=dut, free=free, n=n, src=src, dst=dst, writes=writes):
            ctx.set(dut.sender.start, 1)
            ctx.set(dut.sender.src, src)
            ctx.set(dut.sender.count, n)
            ctx.set(dut.writer.start, 1)
            ctx.set(dut.writer.dst, dst)
            for c in range(2000):
                ctx.set(dut.writer.free, free.ready(c))
                if c == 1:
                    for s in (dut.sender.start, dut.writer.start):
                        ctx.set(s, 0)
                if ctx.get(dut.writer.we):
                    writes.append((c, ctx.get(dut.writer.addr), ctx.get(dut.writer.wdata)))
                if c > 1 and not ctx.get(dut.writer.busy):
                    break
                await ctx.tick()

        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        beats = LinkModel(link, free).send(Transfer(4 * n, FIRST_BEAT))
        where = f"case {case}: L={latency} D={link.buffer} n={n} free={free.prefix}"
        assert [c for c, _, _ in writes] == [b.left for b in beats], where
        assert [(a, d) for _, a, d in writes] == [(dst + i, words[src + i]) for i in range(n)]


def test_random_partitions_and_sample_counts(design):
    """Random cuts of ``branches`` into 1 to 3 stages and 1 to 5 samples: every sample's
    cycles equal the model's and the outputs equal golden's."""
    cm, xi = _compiled("branches", 5)
    rng = random.Random(7)
    layers = len(partition(cm, xi, []).stages[0].layers)
    for case in range(8):
        p = rng.randint(1, 3)
        cuts = sorted(rng.sample(range(1, layers), p - 1))
        m = rng.randint(1, 5)
        part = partition(cm, xi[:m], cuts)
        mismatches, measured, predicted = _stream(design, cm, xi[:m], part)
        assert mismatches == 0, f"case {case}: cuts {cuts}, {m} samples"
        assert measured.rows() == predicted.rows(), f"case {case}: cuts {cuts}, {m} samples"
