"""Cycle model of the convolution engine: when each output pixel issues, from the config alone.

The engine (:mod:`.engine`) runs a layer in three phases: load (one weight or requantizer beat
per cycle), run (a *sequencer* issues one window chunk per cycle), drain (the pipeline empties);
a *writer* stores the image into the line buffer one word per cycle from the load phase's first
cycle on (``write_from``, before the run phase's cycle 0). The interplay has exactly two rules,
both from the RTL:

* the sequencer issues pixel ``(oy, ox)``'s ``blocks x chunks`` chunks back to back, the first
  one the cycle after the writer has stored the last word of the window's bottom-right column
  (input row ``min(oy*sh + KH - 1 - top, H - 1)``, padded column ``ox*sw + KW - 1``; a column
  the writer does not store, right of the image, counts as the row's last word);
* the writer stores input row ``r`` (packed: ``(left + W + right) x groups`` words, padding
  columns included; grouped and depthwise: ``W x groups``, the padding columns being masked
  on read) only while ``r + top < ytop + row_slots``, ``ytop = oy*sh`` being the window's top
  row: it may run ``row_slots - KH`` rows ahead of the window, no further. Once the last pixel
  has issued the rows still unread (dropped by a stride) are stored without waiting.

A depthwise layer (``desc["depthwise"]``) replaces the first rule: the sequencer reads the
window's columns into its register one per cycle, each the cycle after the writer stored it (the
first pixel of an output row reads its image columns ``left .. KW-1``, the first read clearing
the register's left padding, the next ones the ``sw`` new columns), the pixel's ``dw_chunks``
chunks issue back to back from the cycle of its last read (the cycle after the previous pixel's
last chunk if it reads nothing), and the next pixel's reads start the cycle after its last chunk;
except that the next output row's first read shares the cycle of a row's last chunk when that
cycle reads nothing of its own (``dw_chunks > 1``) or reads a padding column (the row's last
window reaches the right padding), and the writer has stored it by then. A pixel costs
``sw - 1 + dw_chunks`` cycles at best, a row start ``KW - 1 - left`` more (one less when its
first read came early).

(``KH x KW`` kernel, strides ``sh``/``sw``, padding ``top``/``left``/``bottom``/``right``; the
bottom and right padding enter only through the output size and the row's stored columns.)

Inside the accelerator the activation stream starves the writer at most once: its DMA delivers
its first word ``DMA_FIRST`` cycles after the job starts and then one word per cycle (it
prefetches into a FIFO), one cycle after the writer may start (``LOAD_START``, or
``REUSE_RUN_START`` with the weights reused): one ``stall_input`` cycle, none when a packed
row's left padding words fill it. The result FIFO's 16 credits exceed the
issue-to-FIFO latency, so credits never stall issue on a ready sink. The walk is per output
pixel, so a layer costs microseconds to model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .config import ConvConfig

__all__ = ["RunTimeline", "run_timeline", "job_cycles", "stream_cycles", "ConvPerf",
           "layer_perf"]

# Inside the accelerator (activations and weights from its DMA, results stored every cycle),
# counted from the cycle a job starts (the processor's ISSUE state is cycle 0):
#: The descriptor is taken at 1; the load state begins at 2 and takes a beat a cycle from 3; the
#: run phase begins ``RUN_START + load beats`` (the load's count registers, then the state).
RUN_START = 4
#: With the weights reused there is no load state: the run phase begins at 2.
REUSE_RUN_START = 2
#: The activation DMA's first word (address at 1, memory read at 2, its FIFO's output at 3).
DMA_FIRST = 3
#: The load state's first cycle: the writer stores the image from then on, while the weights
#: load (with the weights reused, the run state's first cycle, ``REUSE_RUN_START``).
LOAD_START = 2
#: From the last chunk's issue to the job's end: the pipeline's 6 stages, the result FIFO, the
#: max-pool stage, the store, the written count and the done check.
ISSUE_TAIL = 9
#: From the writer's last word to the job's end, when the writer finishes last.
WRITE_TAIL = 3


@dataclass(frozen=True)
class RunTimeline:
    """The run phase of one layer, in cycles counted from its first run cycle (cycle 0).

    ``issue`` chunks issue one per cycle; ``window_stalls`` cycles before the last one issue none
    (waiting for the writer to store a window's last column, the first window's fill included).
    ``last_issue`` is the cycle of the last chunk, ``last_write`` that of the writer's last
    word; ``input_stalls`` cycles the writer waited for its first activation word.
    """

    issue: int
    window_stalls: int
    last_issue: int
    last_write: int
    input_stalls: int = 0


def _row_gate(r: int, top: int, slots: int, stride: int, row_end: list[int],
              write_from: int = 0) -> int | None:
    """First cycle the writer may store input row ``r``: ``r + top < oy*stride + slots`` needs
    output rows up to ``oy - 1`` issued (``ytop`` moves the cycle after a row's last chunk);
    ``None`` when that output row does not exist (the row waits for the layer's end). The first
    rows may be stored from ``write_from`` on (the load phase)."""
    if r + top < slots:
        return write_from
    oy = -(-(r + top - slots + 1) // stride)
    return row_end[oy - 1] + 1 if oy - 1 < len(row_end) else None


def run_timeline(cfg: ConvConfig, desc: dict, first_word: int = 0,
                 write_from: int = 0) -> RunTimeline:
    """The run phase of the layer whose descriptor is ``desc`` (:func:`.layer.descriptor`'s
    fields, or a decoded command's) on ``cfg``; see the module docstring for the two rules.
    The first activation word arrives at cycle ``first_word`` of the run phase (or before); the
    writer may store from cycle ``write_from`` (``<= 0``: the load phase's first cycle)."""
    h, w, kh, kw = desc["height"], desc["width"], desc["kernel_h"], desc["kernel_w"]
    top, left = desc["pad_top"], desc["pad_left"]
    sh, sw = (2 if desc["stride2_h"] else 1), (2 if desc["stride2_w"] else 1)
    groups, oh, ow = desc["groups"], desc["out_height"], desc["out_width"]
    per_pixel = desc["weight_words"]             # blocks x chunks
    # A packed row shifts through its padding columns; a grouped or depthwise one skips them.
    skip = 0 if desc["packed"] else left
    row_words = (w + (left + desc["pad_right"] if desc["packed"] else 0)) * groups
    # The last column a row stores: a packed row's right padding, else its last image column.
    last_col = w + left + desc["pad_right"] - 1 if desc["packed"] else w + left - 1

    def stored(r: int, c: int) -> int:
        """The cycle after the writer stored padded column ``c`` of row ``r`` (a column it
        does not store, right of the image: the row's last word)."""
        return row_start[r] + (min(c, last_col) - skip + 1) * groups
    slots = cfg.row_slots
    row_start: list[int] = []                   # writer: first cycle of each stored input row
    row_end: list[int] = []                     # sequencer: last chunk of each output row
    t_free = write_from                         # the writer's next free cycle
    t_issue = 0                                 # the sequencer's next free cycle
    stalls = 0
    input_stalls = 0

    def write_rows_up_to(r_need: int) -> None:
        nonlocal t_free, input_stalls
        while len(row_start) <= r_need:
            gate = _row_gate(len(row_start), top, slots, sh, row_end, write_from)
            assert gate is not None, "the writer would wait for an output row not yet issued"
            start = max(t_free, gate)
            if not row_start:   # the row's padding columns need no data, its pixels do
                input_stalls = max(0, first_word - (left - skip) * groups - start)
                start += input_stalls
            row_start.append(start)
            t_free = start + row_words

    # Depthwise: may the next row's first read share the cycle of a row's last chunk? Only
    # when that cycle has no read of its own (more than one chunk a pixel) or reads a padding
    # column (masked: the read port is free).
    dw_early = per_pixel > 1 or (ow - 1) * sw + kw - 1 >= w + left
    rcol = left               # depthwise: the next column to read (left padding: cleared)
    for oy in range(oh):
        need_row = min(oy * sh + kh - 1 - top, h - 1)
        write_rows_up_to(need_row)
        for ox in range(ow):
            if desc.get("depthwise"):
                t, chunk = t_issue, t_issue
                while rcol <= ox * sw + kw - 1:     # one read a cycle, once the column is stored
                    chunk = max(t, stored(need_row, rcol))
                    t = chunk + 1
                    rcol += 1
                stalls += chunk - t_issue
                t_issue = chunk + per_pixel
                continue
            need_col = ox * sw + kw - 1
            avail = stored(need_row, need_col)
            start = max(t_issue, avail)
            stalls += start - t_issue
            t_issue = start + per_pixel
        row_end.append(t_issue - 1)
        rcol = left
        if desc.get("depthwise") and dw_early and oy + 1 < oh:
            nxt = min((oy + 1) * sh + kh - 1 - top, h - 1)
            write_rows_up_to(nxt)
            if stored(nxt, left) <= t_issue - 1:   # read with the last chunk
                rcol = left + 1
    last_issue = t_issue - 1
    # Rows no window needs are stored once the last pixel has issued (``done`` opens the gate).
    while len(row_start) < h:
        gate = _row_gate(len(row_start), top, slots, sh, row_end, write_from)
        start = max(t_free, last_issue + 1 if gate is None else min(gate, last_issue + 1))
        row_start.append(start)
        t_free = start + row_words
    return RunTimeline(oh * ow * per_pixel, stalls, last_issue, t_free - 1, input_stalls)


def job_cycles(cfg: ConvConfig, desc: dict, *, reuse: bool = False) -> tuple[int, int, int]:
    """``(cycles, load beats, input stalls)`` of one layer as the accelerator runs it: from the
    cycle the job starts to the cycle its last result is stored (the ``conv_busy`` counter).

    The load phase moves ``weight_words + blocks`` beats, one a cycle (none with ``reuse``: the
    engine holds the weights); the run phase ends ``ISSUE_TAIL`` cycles after the last chunk
    issues (one less when the max-pool stage drops the map's odd last row or column: the last
    result then leaves before the last beat is pooled), or ``WRITE_TAIL`` after the writer's last
    word when the writer ends later (a stride that skips the last rows).
    """
    end, load, t = _job(cfg, desc, reuse)
    return end, load, t.input_stalls


def _job(cfg: ConvConfig, desc: dict, reuse: bool) -> tuple[int, int, RunTimeline]:
    """``(cycles, load beats, run timeline)`` of one job (:func:`job_cycles`)."""
    load = 0 if reuse else desc["weight_words"] + desc["blocks"]
    start = REUSE_RUN_START if reuse else RUN_START + load
    t = run_timeline(cfg, desc, first_word=DMA_FIRST - start, write_from=LOAD_START - start)
    drop = bool(desc["pool"] and (desc["out_width"] % 2 or desc["out_height"] % 2))
    return start + max(t.last_issue + ISSUE_TAIL - drop, t.last_write + WRITE_TAIL), load, t


#: On its own (every stream always valid and ready, as the conv bench's ``timing`` mode feeds
#: it), counted from the cycle the descriptor transfers: weights and requantizers load in
#: parallel from the next cycle, one beat each a cycle; the run phase begins two cycles after
#: the last load beat (the counts register, then the state).
STREAM_RUN_START = 2
#: A chunk's result transfers this many cycles after the chunk issues: the pipeline's 6 stages,
#: the result FIFO's output and the max-pool stage's pass-through register.
STREAM_RESULT = 8


def stream_cycles(cfg: ConvConfig, desc: dict) -> int:
    """Cycles from the descriptor's transfer to the last result's, both included, of a layer
    that does not pool, on an engine whose streams are always valid and ready."""
    if desc["pool"]:
        raise ValueError("stream_cycles models layers that do not pool (the pool's last "
                         "result may leave before the last chunk issues)")
    run = max(desc["weight_words"], desc["blocks"]) + STREAM_RUN_START
    t = run_timeline(cfg, desc, first_word=1 - run, write_from=1 - run)   # load from cycle 1
    return run + t.last_issue + STREAM_RESULT + 1


@dataclass(frozen=True)
class ConvPerf:
    """Where the cycles of one layer go (as :func:`job_cycles` counts them):
    ``cycles = load + issue + window_stalls + tail``."""

    layer: str
    load: int
    issue: int
    window_stalls: int
    tail: int
    cycles: int
    macs: int
    mac_units: int
    utilization: float     # MACs / (cycles x MAC units)

    def to_json(self) -> dict:
        return asdict(self)


def layer_perf(cfg: ConvConfig, layer) -> ConvPerf:
    """The cycle model of one :class:`~.layer.ConvLayer` on ``cfg`` (see :func:`job_cycles`); a
    depthwise layer is one job per ``dw_channels`` channels, as the accelerator runs it."""
    from dataclasses import replace

    from .layer import descriptor

    jobs = 1
    one = layer
    if layer.depthwise:   # one job per channel group of dw_channels (the accelerator's walk)
        jobs = -(-layer.cin // cfg.dw_channels)
        one = replace(layer, cin=min(layer.cin, cfg.dw_channels),
                      cout=min(layer.cin, cfg.dw_channels))
    d = descriptor(cfg, one)
    cycles, load, t = _job(cfg, d, False)
    tail = cycles - load - t.issue - t.window_stalls
    cycles *= jobs
    return ConvPerf(repr(layer), load * jobs, t.issue * jobs, t.window_stalls * jobs,
                    tail * jobs, cycles, layer.macs, cfg.macs,
                    layer.macs / (cycles * cfg.macs))


def depthwise_report(preset: str = "default") -> list[str]:
    """The reference models' depthwise layers on accelerator preset ``preset``'s conv engine:
    cycles (one job per channel group) and utilization. A map wider or taller than the line
    buffer is modelled on the same engine with ``max_width``/``max_height`` raised to it (its
    cost per pixel does not depend on them), and marked so."""
    from ..accel.config import PRESETS as ACCEL_PRESETS
    from .cases import DEPTHWISE_LAYERS

    cfg = ACCEL_PRESETS[preset].conv
    lines = []
    for name, layer in DEPTHWISE_LAYERS.items():
        big = layer.width > cfg.max_width or layer.height > cfg.max_height
        c = cfg.with_(max_width=max(cfg.max_width, layer.width),
                      max_height=max(cfg.max_height, layer.height)) if big else cfg
        p = layer_perf(c, layer)
        lines.append(f"{name:16s} {layer.height}x{layer.width}x{layer.cin} s{layer.stride_h}: "
                     f"{p.cycles} cycles, {p.macs} MACs, utilization {p.utilization:.3f} "
                     f"(issue {p.issue}, window stalls {p.window_stalls}, load {p.load}, "
                     f"tail {p.tail})" + (" [line buffer widened to the map]" if big else ""))
    return lines


if __name__ == "__main__":
    import sys

    print("\n".join(depthwise_report(*sys.argv[1:2])))
