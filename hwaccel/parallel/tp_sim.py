"""A tensor-parallel plan (:mod:`.tp`) run over a ring of links, and its closed-form model.

The system
----------
``N`` instances in a ring: link ``j`` carries instance ``j``'s words to instance ``(j + 1) mod
N`` (one :class:`~hwaccel.generators.link.LinkConfig` for all). Each instance has its own host
port. A run of one batch:

1. the host writes each instance's input (``TpPlan.input_words[j]``, one word a cycle; all ports
   at once);
2. per layer: every instance with a share starts its program when its input is complete, and is
   seen finished ``cycles + RUN_SEEN`` later (:data:`.pp_model.RUN_SEEN`); the collective starts
   when every instance has finished (a barrier);
3. the collective, in ring steps. In step ``s`` link ``j`` carries one chunk; a step starts when
   the previous one is over on every link, i.e. when each link's last beat has arrived and its
   credits are back at the sender (``left + L + 1`` of the last beat: the link is idle, so every
   step's transfers start on idle links). A chunk's words are offered from ``FIRST_BEAT`` cycles
   after the step starts (the copy engine's read-ahead, :data:`~hwaccel.generators.multi.
   FIRST_BEAT`).

   * ``n`` (and ``b``, chunks of samples): all-gather, ``N - 1`` steps; in step ``s`` link ``j``
     carries chunk ``(j - s) mod N`` (``lanes`` bytes a word). A ``b`` layer followed by another
     keeps its rows, and an ``n`` layer followed by a K-split Linear keeps its channels (they
     are that Linear's input slice on the same instance): no collective.
   * ``k``: reduce-scatter, ``N - 1`` steps of int32 chunks (``4 lanes`` bytes a word; link ``j``
     carries chunk ``(j - s) mod N``, which instance ``j + 1`` adds into its own partial sums as
     the beats arrive); then each instance requantizes the chunk it holds complete (``(j + 1)
     mod N``), one word a cycle; then the all-gather of those int8 chunks (in step ``s`` link
     ``j`` carries chunk ``(j + 1 - s) mod N``).

   A chunk of no words moves nothing; a step that moves nothing takes no cycle.
4. the host reads the last layer's whole output from instance 0 (``output_words``).

What is simulated and what is modelled
--------------------------------------
:func:`simulate` steps the ring: each link is a :class:`.link.LinkModel` kept for the whole run
(every beat's offer, credit, arrival and credit return, the link Component's cycles exactly), the
instances' programs end at their :func:`~hwaccel.generators.accel.perf.program_perf` cycles (the
counters the RTL reports, equal by the accelerator's tests), and the chunks' values travel the
ring as the schedule moves them: each instance assembles the whole output from what arrived (and
adds the int32 partial sums it received, then requantizes), and every instance's copy must equal
the layer's output. The int32 drain of a K-split share, the add as beats arrive and the one-word-
a-cycle requantizer are a modelled unit (the accelerator requantizes inside its GEMM job and
emits int8 only). :func:`model` is the closed form of the same schedule: per step
``FIRST_BEAT + max_j transfer_cycles(bytes_j) + L`` (:func:`.link.transfer_cycles`), no
simulation; the two must agree exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..generators.link.config import LinkConfig
from ..generators.multi.sender import FIRST_BEAT
from ..numerics import requantize
from .link import LinkModel, transfer_cycles
from .pp_model import RUN_SEEN
from .traffic import Transfer

__all__ = ["TpTiming", "simulate", "model", "layer_cycles", "default_ring_link", "ring_steps"]


@dataclass
class TpTiming:
    """A run's cycles: ``cycles`` (the output read back), per layer the cycle its compute
    started and its collective ended (``layers``), bytes each link carried (``link_bytes``)."""

    cycles: int = 0
    layers: list = field(default_factory=list)
    link_bytes: list = field(default_factory=list)
    comm_cycles: int = 0


def default_ring_link(accel, latency: int = 2, buffer: int | None = None) -> LinkConfig:
    """A link ``lanes`` bytes wide (a word a beat) of ``latency``, with the buffer that keeps
    it at a beat a cycle (``2L + 1`` words) unless ``buffer`` is given."""
    lanes = accel.lanes
    buffer = (2 * latency + 1) * lanes if buffer is None else buffer
    return LinkConfig(width=lanes, latency=latency, buffer=buffer,
                      watchdog=max(64, 4 * (2 * latency + 1)), name="tp")


def ring_steps(layer, n: int) -> list[list[tuple[str, int, int]]]:
    """``layer``'s collective over ``n`` instances as ring steps: per step, per link ``j``,
    ``(kind, chunk, words)`` with kind ``sum`` (int32 partial sums: ``4 lanes`` bytes a word),
    ``requant`` (no link: the words instance ``j`` requantizes) or ``gather`` (int8: ``lanes``
    bytes a word); ``words`` counts the chunk's words as int8 activations."""
    return _steps(layer, n) if layer.split in ("n", "k", "b") and layer.gather and n > 1 \
        else []


def _steps(layer, n):
    out = []
    w = layer.chunks
    if layer.split == "k":
        for s in range(n - 1):
            out.append([("sum", (j - s) % n, w[(j - s) % n]) for j in range(n)])
        out.append([("requant", (j + 1) % n, w[(j + 1) % n]) for j in range(n)])
        off = 1
    else:
        off = 0
    for s in range(n - 1):
        out.append([("gather", (j + off - s) % n, w[(j + off - s) % n]) for j in range(n)])
    return out


def _run_cycles(share, modelled: bool = False) -> int:
    """Cycles from a share's start to the cycle it is seen finished: as run (simulation) or
    from the cycle model."""
    return 0 if share.empty else (share.model_cycles if modelled else share.cycles) + RUN_SEEN


def layer_cycles(cfg, layer, link: LinkConfig | None) -> int:
    """A layer's cycles in :func:`model`'s terms from a barrier: its slowest share and its
    collective (what ``split=auto`` compares)."""
    link = link or default_ring_link(cfg)
    n = len(layer.shares)
    return max(_run_cycles(s, True) for s in layer.shares) + _collective(cfg, layer, n, link)


def _collective(cfg, layer, n, link) -> int:
    total = 0
    for step in ring_steps(layer, n):
        if step[0][0] == "requant":
            total += max(words for _, _, words in step)
            continue
        sizes = [words * cfg.lanes * (4 if kind == "sum" else 1) for kind, _, words in step
                 if words]
        if sizes:
            total += FIRST_BEAT + max(transfer_cycles(link, b) for b in sizes) + link.latency
    return total


def model(plan, link: LinkConfig) -> TpTiming:
    """The run's cycles from the closed forms alone (module docstring)."""
    cfg, n = plan.config, plan.instances
    t = TpTiming()
    ready = list(plan.input_words)
    for layer in plan.layers:
        start = min(ready)
        done = max(r + _run_cycles(s, True) for r, s in zip(ready, layer.shares))
        comm = _collective(cfg, layer, n, link)
        t.comm_cycles += comm
        t.layers.append((start, done + comm))
        ready = [done + comm] * n
    t.cycles = ready[0] + plan.output_words
    return t


def simulate(plan, link: LinkConfig) -> tuple[np.ndarray, TpTiming]:
    """Step the plan over a ring of ``link`` s (module docstring): the int8 output every
    instance ends with (instance 0's; all must agree) and the measured :class:`TpTiming`."""
    cfg, n = plan.config, plan.instances
    lanes = cfg.lanes
    links = [LinkModel(link, name=f"ring link {j}") for j in range(n)] if n > 1 else []
    t = TpTiming(link_bytes=[0] * n)
    ready = list(plan.input_words)     # each host port writes its instance's input
    held = None
    for layer in plan.layers:
        finish = [ready[j] + _run_cycles(s) for j, s in enumerate(layer.shares)]
        now = max(finish)
        t.layers.append((min(ready), None))
        held = _values(layer, n)
        cut = _chunk_slices(layer, n, lanes)
        if ring_steps(layer, n):
            now, held = _collect(layer, n, lanes, links, t, now, held)
        for j in range(n):
            got, want = held[j], layer.output
            if not layer.gather and n > 1:    # each instance keeps its own part
                want = _part(layer, cut[j])
                got = got.get(j, want)
            if not np.array_equal(got, want):
                raise RuntimeError(f"layer {layer.name!r}: instance {j} assembled other values "
                                   f"than the layer's output")
        t.layers[-1] = (t.layers[-1][0], now)
        ready = [now] * n
    t.cycles = ready[0] + plan.output_words
    return held[0], t


def _part(layer, cut: slice) -> np.ndarray:
    """The part of ``layer``'s output in ``cut``: samples (``b``) or output channels."""
    out = layer.output
    axis = 0 if layer.split == "b" else 1 if out.ndim == 4 else out.ndim - 1
    return out[(slice(None),) * axis + (cut,)]


def _values(layer, n):
    """What each instance holds after computing: ``n``: ``{chunk: int8 slice}``; ``k``: its
    int32 partial sums; replicated: the whole output."""
    if layer.split == "replicated" or n == 1:
        return [s.value for s in layer.shares]
    if layer.split in ("n", "b"):
        return [{j: s.value} if not s.empty else {} for j, s in enumerate(layer.shares)]
    zero = np.zeros_like(next(s.value for s in layer.shares if not s.empty))
    return [s.value if not s.empty else zero for s in layer.shares]


def _chunk_slices(layer, n, lanes):
    from .tp import word_parts

    if layer.split == "b":
        return [slice(lo, hi) for lo, hi in word_parts(len(layer.output), 1, n)]
    if layer.split not in ("n", "k"):
        return []
    nout = layer.op.w.shape[0]
    return [slice(lo, hi) for lo, hi in word_parts(nout, lanes, n)]


def _collect(layer, n, lanes, links, t, now, held):
    """Run ``layer``'s collective from cycle ``now`` on what each instance ``held`` after
    computing: the cycle it ends and every instance's whole int8 output."""
    axis = 0 if layer.split == "b" else 1 if np.ndim(layer.output) == 4 else -1
    cut = _chunk_slices(layer, n, lanes)
    if layer.split == "k":
        partial = held
        held = [dict() for _ in range(n)]
    for step in _steps(layer, n):
        if step[0][0] == "requant":
            op = layer.op
            for j, (_, c, _w) in enumerate(step):
                mult, shift = (a[cut[c]] if np.ndim(a) else a for a in (op.multiplier, op.shift))
                held[j][c] = requantize(partial[j][..., cut[c]], mult, shift, relu=op.relu)
            now += max(words for _, _, words in step)
            continue
        end = now
        moved = []
        for j, (kind, c, words) in enumerate(step):
            if not words:
                continue
            size = words * lanes * (4 if kind == "sum" else 1)
            beats = links[j].send(Transfer(size, now + FIRST_BEAT))
            t.link_bytes[j] += size
            end = max(end, beats[-1].left + links[j].config.latency + 1)
            moved.append((j, kind, c))
        for j, kind, c in moved:        # what arrived at j + 1 by the step's end
            dst = (j + 1) % n
            if kind == "sum":
                partial[dst] = partial[dst].copy()
                partial[dst][..., cut[c]] += partial[j][..., cut[c]]
            else:
                held[dst][c] = held[j][c]
        t.comm_cycles += end - now
        now = end
    out = []
    for j in range(n):
        parts = [held[j][c] for c in range(n) if cut[c].stop > cut[c].start]
        out.append(np.concatenate(parts, axis=axis) if parts else None)
    return now, out
