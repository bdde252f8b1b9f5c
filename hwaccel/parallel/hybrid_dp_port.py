"""The lanes of a hybrid pipeline of dp groups (:mod:`.hybrid_dp`) on one shared host port.

With ``--shared-host-port`` the ``g`` lanes (lane ``i``: instance ``i`` of every stage) share
one external host port, as the instances of dp do (:mod:`.dp_port`): a round-robin arbiter
grants one word a cycle -- among the lanes that have a word to move in the cycle, the first at
or after the pointer (by lane, cyclically), the pointer then moving past the lane granted (the
beat-wise :class:`hwaccel.generators.link.HostPortArbiter`). Each lane's controller
(:class:`.pp_model.Controller`) is unchanged: it starts a transfer (a sample's input into its
stage 0, an output read back from its last stage) when its port is idle, and the transfer is
finished the cycle after its last word is granted; a lane waiting for the port idles there
(its timeline counts the wait in the transfer: ``recv`` of stage 0 and ``send`` of the last
stage are when the controller asked). Lanes share nothing else, so they interact only through
the port.

* :func:`simulate_lanes` (``cycles``): ``g`` copies of the pipeline top, one a lane, clocked
  together cycle by cycle, each under its controller (:class:`.pp_sim.LaneSim`); every cycle the
  arbiter above grants one lane's word, which that lane's top takes on its host port;
* :func:`model_lanes` (``model_cycles``): the lanes' cycle models (:class:`.pp_model.LaneModel`)
  composed by the port's recurrence from event to event, as :func:`.dp_port.shared_port` does:
  between events the set of lanes asking is fixed, so the lane at position ``pos`` of the
  cyclic order gets words in cycles ``pos, pos + k, ...`` of the interval (``k`` asking).

Both give every lane's :class:`.pp_model.Timeline`; the tests hold them equal.
"""

from __future__ import annotations

from .pp_model import LaneModel

__all__ = ["model_lanes", "simulate_lanes"]


def model_lanes(partition, sizes, link) -> list:
    """Each lane's :class:`.pp_model.Timeline`: lane ``i`` streams ``sizes[i]`` samples through
    the stages of ``partition``, every lane's transfers on one round-robin host port."""
    lanes = [LaneModel(partition, n, link) for n in sizes]
    g = len(lanes)
    left = [0] * g            # words left in each lane's port transfer
    t, pointer, done = 0, 0, set()
    while True:
        for i, lane in enumerate(lanes):
            for _, words in lane.step(t, i in done):
                left[i] = words
        if all(lane.ctl.finished for lane in lanes):
            return [lane.ctl.t for lane in lanes]
        asking = sorted((i for i in range(g) if left[i]), key=lambda i: (i - pointer) % g)
        k = len(asking)
        # the lane at position pos gets its last word in cycle t + pos + (left - 1) k
        ends = [t + pos + (left[i] - 1) * k + 1 for pos, i in enumerate(asking)]
        nexts = [lane.next_event for lane in lanes if lane.next_event is not None]
        if not ends + nexts:
            raise RuntimeError(f"internal: the lanes' model stopped at cycle {t}: "
                               f"{[lane.ctl.phase for lane in lanes]}")
        nxt = min(ends + nexts)
        span, done = nxt - t, set()
        for pos, i in enumerate(asking):
            if pos < span:
                left[i] -= (span - 1 - pos) // k + 1
                if not left[i]:
                    done.add(i)
        if k:
            pointer = (asking[(span - 1) % k] + 1) % g
        t = nxt


def simulate_lanes(design, pcfg, partition, lane_inputs, *, limit: int = 20_000_000):
    """Stream lane ``i``'s samples ``lane_inputs[i]`` (:func:`.pp.sample_inputs`' words)
    through its own copy of the top ``design`` of ``pcfg``, all clocked together and sharing
    one arbitrated host port; returns per lane its samples' output words and its measured
    :class:`.pp_model.Timeline`.

    Raises
    ------
    .pp_sim.PipelineHang
        If a lane is not through after ``limit`` cycles, or a link's watchdog latches (naming
        the lane).
    """
    from .pp_sim import LaneSim, open_top

    tops = []
    try:
        for _ in lane_inputs:
            tops.append(open_top(design, pcfg, partition))
        lanes = [LaneSim(top, partition.stages, inputs, name=f"lane {i}")
                 for i, (top, inputs) in enumerate(zip(tops, lane_inputs))]
        g, pointer = len(lanes), 0
        while not all(lane.ctl.finished for lane in lanes):
            asking = []
            for i, lane in enumerate(lanes):
                lane.check(limit)
                if lane.act():
                    asking.append(i)
            if asking:
                grant = min(asking, key=lambda i: (i - pointer) % g)
                lanes[grant].drive()
                pointer = (grant + 1) % g
            for top in tops:
                top.h.step(1)
            for lane in lanes:
                lane.settle()
        return [lane.outs for lane in lanes], [lane.ctl.t for lane in lanes]
    finally:
        for top in tops:
            top.h.close()
