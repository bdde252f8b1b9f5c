"""``N`` accelerator instances chained by ``N - 1`` links, with device-to-device copies.

One top, so a simulator steps every instance and link together, cycle for cycle.

Interface (``N = config.instances``, ``k`` an instance, ``j`` a link from ``j`` to ``j + 1``)
-----------------------------------------------------------------------------------------------
``sel``            In   the instance the external host port reaches
``host``           In   the accelerator's host port (:mod:`..accel.accelerator`), to instance
                        ``sel``; ``host__rdata`` is instance ``sel``'s read data
``start``          In   bit ``k``: start instance ``k``'s program at pc 0 in this cycle (a CONTROL
                        write on its host port)
``copy<j>``        In   ``start``, ``src``, ``dst``, ``count``: copy ``count`` activation words
                        from instance ``j``'s scratchpad (its send mirror) at ``src`` to
                        instance ``j + 1``'s at ``dst`` over link ``j``
                        (:class:`.sender.CopySender` into the link, :class:`.writer.LinkWriter`
                        out of it)
``busy``           Out  bit ``k``: instance ``k``'s STATUS.busy (``done``, ``error`` likewise)
``copying``        Out  bit ``j``: copy ``j`` started and its last word not yet written
``stalled``        Out  bit ``j``: link ``j``'s watchdog latched (:class:`..link.Link`)

Send mirrors: every instance that sends (``k < N - 1``) has a block RAM beside it, as deep and
wide as its activation scratchpad, that takes every write into the scratchpad (the
accelerator's ``tap``: the host's, the link writer's and the datapath's), so it holds what the
scratchpad holds. Copy ``k`` reads the mirror, not instance ``k``: an instance's host port is
never the sender's, so it can take its next input (over the external port, or copy ``k - 1``)
while its last output leaves. What the mirror may not see while a copy reads it: a program run
on instance ``k`` (its stores), and a write into the words being copied (the next input, where
its range overlaps the output's); the controller (:mod:`hwaccel.parallel.pp_model`) holds both
back until the copy is done.

Instance ``k``'s host port, in priority order: its ``start`` (the CONTROL write), the writer of
copy ``k - 1`` (writes; ready only while instance ``k`` is idle and not starting), and last the
external port when ``sel == k``. So a copy into an instance waits, through the link's credits,
until it is idle. The external port is for loading weights and programs, sample inputs and
reading results while nothing else uses that instance's port (the controller,
:mod:`hwaccel.parallel.pp_sim`, sees to it).

Copy timing: with ``copy<j>__start`` high in cycle ``s``, word 0 is offered to the link at
``s + 3`` (:data:`.sender.FIRST_BEAT`), each beat crosses as :class:`hwaccel.parallel.link.
LinkModel` says, and a beat is written in the cycle it leaves the link.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..accel.accelerator import Accelerator, host_signature
from ..accel.isa import CONTROL_START, Region
from ..conv.rw import NO_RW_CHECK
from ..link.link import Link
from .config import PipelineConfig
from .sender import CopySender
from .writer import LinkWriter

__all__ = ["Pipeline", "copy_signature"]


def copy_signature(config: PipelineConfig) -> wiring.Signature:
    a = config.accel
    return wiring.Signature({"start": Out(1), "src": Out(a.addr_bits), "dst": Out(a.addr_bits),
                             "count": Out(range(a.act_depth + 1))})


class Pipeline(wiring.Component):
    """The top of a :class:`PipelineConfig`.

    Raises
    ------
    TypeError
        If ``config`` is not a :class:`PipelineConfig`.
    """

    def __init__(self, config: PipelineConfig):
        if not isinstance(config, PipelineConfig):
            raise TypeError(f"config must be a PipelineConfig, not {config!r}")
        self.config = config
        n = config.instances
        members = {"sel": In(range(n)), "host": In(host_signature(config.accel)),
                   "start": In(n)}
        for j in range(n - 1):
            members[f"copy{j}"] = In(copy_signature(config))
        members.update({"busy": Out(n), "done": Out(n), "error": Out(n),
                        "copying": Out(n - 1), "stalled": Out(n - 1)})
        super().__init__(members)

    def elaborate(self, platform):
        cfg, a = self.config, self.config.accel
        n = cfg.instances
        m = Module()
        insts = [Accelerator(a, tap=k < n - 1) for k in range(n)]
        senders = [CopySender(a) for _ in range(n - 1)]
        writers = [LinkWriter(a) for _ in range(n - 1)]
        links = [Link(cfg.link) for _ in range(n - 1)]
        for k, inst in enumerate(insts):
            m.submodules[f"accel{k}"] = inst
        for j in range(n - 1):
            m.submodules[f"sender{j}"] = senders[j]
            m.submodules[f"link{j}"] = links[j]
            m.submodules[f"writer{j}"] = writers[j]
            wiring.connect(m, senders[j].source, links[j].sink)
            wiring.connect(m, links[j].source, writers[j].sink)
            c = getattr(self, f"copy{j}")
            m.d.comb += [senders[j].start.eq(c.start), senders[j].src.eq(c.src),
                         senders[j].count.eq(c.count), writers[j].start.eq(c.start),
                         writers[j].dst.eq(c.dst),
                         self.copying[j].eq(senders[j].busy | writers[j].busy),
                         self.stalled[j].eq(links[j].stalled)]

        def at(region, offset):
            return Cat(offset, Const(int(region), 2))

        rdata = Signal(a.data_bits)
        for k, inst in enumerate(insts):
            h = inst.host
            m.d.comb += [self.busy[k].eq(inst.busy), self.done[k].eq(inst.done),
                         self.error[k].eq(inst.error)]
            sender = senders[k] if k < n - 1 else None
            writer = writers[k - 1] if k > 0 else None
            if sender is not None:   # reads the send mirror (the module docstring)
                mirror = memory.Memory(shape=unsigned(a.act_bits), depth=a.act_depth, init=[],
                                       attrs=NO_RW_CHECK)
                m.submodules[f"mirror{k}"] = mirror
                rd, wr = mirror.read_port(), mirror.write_port()
                m.d.comb += [wr.addr.eq(inst.tap.addr), wr.data.eq(inst.tap.data),
                             wr.en.eq(inst.tap.en), rd.addr.eq(sender.addr), rd.en.eq(sender.re),
                             sender.rdata.eq(rd.data)]
            if writer is not None:
                m.d.comb += writer.free.eq(~inst.busy & ~self.start[k])
            with m.If(self.start[k]):
                m.d.comb += [h.addr.eq(at(Region.REG, Const(0, a.addr_bits))),
                             h.wdata.eq(CONTROL_START), h.we.eq(1)]
            if writer is not None:
                with m.Elif(writer.we):
                    m.d.comb += [h.addr.eq(at(Region.ACT, writer.addr)),
                                 h.wdata.eq(writer.wdata), h.we.eq(1)]
            with m.Elif(self.sel == k):
                m.d.comb += [h.addr.eq(self.host.addr), h.wdata.eq(self.host.wdata),
                             h.we.eq(self.host.we), h.re.eq(self.host.re)]
            with m.If(self.sel == k):
                m.d.comb += rdata.eq(h.rdata)
        m.d.comb += self.host.rdata.eq(rdata)
        return m
