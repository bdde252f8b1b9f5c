"""Cycle model of the convolution engine: when each output pixel issues, from the config alone.

The engine (:mod:`.engine`) runs a layer in three phases: load (one weight beat per cycle; the
requantizer beats that follow load during the run phase, each in before its block's first chunk
issues, so they never delay it), run (a *sequencer* issues one window chunk per cycle), drain
(the pipeline empties);
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

A depthwise layer (``desc["depthwise"]``) replaces the first rule: the sequencer reads the window's
columns into its register one per cycle, each the cycle after the writer stored it (the first pixel
of an output row reads its image columns ``left .. KW-1``, the first read clearing the register's
left padding, the next ones the ``sw`` new columns), the pixel's ``dw_issue(KH, KW)`` (``dw_words``
but with ``dw_trim``) chunks issue back to back from the cycle of its last read (the cycle after the
previous pixel's last chunk if it reads nothing), and the next pixel's reads start the cycle after
its last chunk; except that the next output row's first read shares the cycle of a row's last chunk
when that cycle reads nothing of its own (``dw_issue > 1``) or reads a padding column (the row's
last window reaches the right padding), and the writer has stored it by then. A pixel costs ``sw - 1
+ dw_issue`` cycles at best, a row start ``KW - 1 - left`` more (one less when its first read came
early). A depthwise layer of several channel groups (``blocks``) repeats this per group, the next
group's first read the cycle after the previous group's last chunk at the earliest; the writer
stores the groups' rows in order, one word a cycle throughout, a row of a later group gated by that
group's own windows only (``row_slots - top`` rows ahead of them from the group's start), and a
group's dropped rows once its last pixel has issued.

(``KH x KW`` kernel, strides ``sh``/``sw``, padding ``top``/``left``/``bottom``/``right``; the
bottom and right padding enter only through the output size and the row's stored columns.)

Inside the accelerator the activation stream starves the writer at most once: its DMA delivers
its first word ``DMA_FIRST`` cycles after the job starts and then one word per cycle (it
prefetches into a FIFO), two cycles after the writer may start (``LOAD_START``, or
``REUSE_RUN_START`` with the weights reused): two ``stall_input`` cycles, fewer when a packed
row's left padding words fill them. The result FIFO's 16 credits exceed the
issue-to-FIFO latency, so credits never stall issue on a ready sink. The walk is per output
pixel, so a layer costs microseconds to model.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .config import ConvConfig

__all__ = ["RunTimeline", "run_timeline", "job_cycles", "stream_cycles", "ConvPerf",
           "layer_perf", "pipe_stages", "issue_tail"]

# Inside the accelerator (activations and weights from its DMA, results stored every cycle),
# counted from the cycle a job starts (the processor's ISSUE state is cycle 0):
#: The descriptor is taken at 1; the load state begins at 2 and takes a beat a cycle from 3; the
#: run phase begins ``RUN_START + weight beats`` (the load's count registers, then the state);
#: the requantizer beats follow, block ``b``'s at ``RUN_START + weight beats + b - 1``, in before
#: the block's first chunk (run cycle ``b x groups`` at the earliest) needs it.
RUN_START = 4
#: With the weights reused there is no load state: the run phase begins at 2.
REUSE_RUN_START = 2
#: The activation DMA's first word (address at 1, memory read at 2, the read registered at 3,
#: its FIFO's output at 4).
DMA_FIRST = 4
#: The load state's first cycle: the writer stores the image from then on, while the weights
#: load (with the weights reused, the run state's first cycle, ``REUSE_RUN_START``).
LOAD_START = 2
#: The MAC and requantize pipeline's stages after the issue: memory read (registered as it
#: leaves the block RAMs), operands, the multipliers' operand and product registers, column
#: sums (two: each half of the lanes, then the halves), accumulate, the requantizer's split
#: product, its rounding add, its shift (the saturation feeds the result FIFO's write).
PIPE_STAGES = 11
#: With :attr:`.config.ConvConfig.product_register` the products take a fabric register more.
PRODUCT_STAGE = 1


def pipe_stages(cfg: ConvConfig) -> int:
    """The pipeline's stages after the issue on ``cfg``'s engine (:data:`PIPE_STAGES`, and
    :data:`PRODUCT_STAGE` with ``product_register``)."""
    return PIPE_STAGES + (PRODUCT_STAGE if cfg.product_register else 0)


def issue_tail(cfg: ConvConfig) -> int:
    """From the last chunk's issue to the job's end on ``cfg``'s engine: the pipeline's stages,
    the result FIFO and the store, the job ending in the cycle of its last store (the max-pool
    stage passes an unpooled layer's beats through combinationally; the engine is idle from
    the next cycle)."""
    return pipe_stages(cfg) + 1
#: A pooled layer's extra tail: the max-pool stage's second stage (its block RAM's read is
#: registered before the compares) and its output register.
POOL_STAGE = 2
#: From the writer's last word to the job's end, when the writer finishes last (the job ends
#: the cycle before the engine is idle again).
WRITE_TAIL = 2


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
                 write_from: int = 0, group_ready=None) -> RunTimeline:
    """The run phase of the layer whose descriptor is ``desc`` (:func:`.layer.descriptor`'s
    fields, or a decoded command's) on ``cfg``; see the module docstring for the two rules.
    The first activation word arrives at cycle ``first_word`` of the run phase (or before); the
    writer may store from cycle ``write_from`` (``<= 0``: the load phase's first cycle).

    A depthwise layer walks ``blocks`` channel groups, one image after the other (the writer's
    too, one word a cycle throughout): the writer stores a later group's first ``row_slots -
    top`` rows while the sequencer is still on an earlier one (another word of each column), and
    group ``g``'s first chunk issues no earlier than ``group_ready(g)`` (its weights loaded)."""
    h, w, kh, kw = desc["height"], desc["width"], desc["kernel_h"], desc["kernel_w"]
    top, left = desc["pad_top"], desc["pad_left"]
    sh, sw = (2 if desc["stride2_h"] else 1), (2 if desc["stride2_w"] else 1)
    groups, oh, ow = desc["groups"], desc["out_height"], desc["out_width"]
    dw = bool(desc.get("depthwise"))
    n_grp = desc["blocks"] if dw else 1
    per_pixel = cfg.dw_issue(kh, kw) if dw else desc["weight_words"]   # blocks x chunks
    # A packed row shifts through its padding columns; a grouped or depthwise one skips them.
    skip = 0 if desc["packed"] else left
    row_words = (w + (left + desc["pad_right"] if desc["packed"] else 0)) * groups
    # The last column a row stores: a packed row's right padding, else its last image column.
    last_col = w + left + desc["pad_right"] - 1 if desc["packed"] else w + left - 1
    slots = cfg.row_slots
    row_start: list[list[int]] = [[] for _ in range(n_grp)]   # writer: each row's first cycle
    row_end: list[list[int]] = [[] for _ in range(n_grp)]     # sequencer: each output row's end
    grp_end: list[int] = []                  # the last chunk of each channel group
    wg = 0                                   # the writer's channel group
    t_free = write_from                      # the writer's next free cycle
    t_issue = 0                              # the sequencer's next free cycle
    stalls = 0
    input_stalls = 0

    def stored(g: int, r: int, c: int) -> int:
        """The cycle after the writer stored padded column ``c`` of row ``r`` of group ``g``
        (a column it does not store, right of the image: the row's last word)."""
        return row_start[g][r] + (min(c, last_col) - skip + 1) * groups

    def write_one() -> None:
        nonlocal t_free, input_stalls, wg
        r = len(row_start[wg])
        gate = _row_gate(r, top, slots, sh, row_end[wg], write_from)
        if gate is None:   # a row no window needs: stored once the group's last pixel issued
            assert wg < len(grp_end), "the writer would wait for an output row not yet issued"
            gate = grp_end[wg] + 1
        elif wg < len(grp_end) and r + top >= slots:
            gate = min(gate, grp_end[wg] + 1)
        start = max(t_free, gate)
        if wg == 0 and r == 0:   # the row's padding columns need no data, its pixels do
            input_stalls = max(0, first_word - (left - skip) * groups - start)
            start += input_stalls
        row_start[wg].append(start)
        t_free = start + row_words
        if len(row_start[wg]) == h and wg + 1 < n_grp:
            wg += 1

    def write_rows_up_to(g: int, r_need: int) -> None:
        while len(row_start[g]) <= r_need:
            write_one()

    # Depthwise: may the next row's first read share the cycle of a row's last chunk? Only
    # when that cycle has no read of its own (more than one chunk a pixel) or reads a padding
    # column (masked: the read port is free).
    dw_early = per_pixel > 1 or (ow - 1) * sw + kw - 1 >= w + left
    for g in range(n_grp):
        rcol = left           # depthwise: the next column to read (left padding: cleared)
        ready = group_ready(g) if group_ready is not None else t_issue
        for oy in range(oh):
            need_row = min(oy * sh + kh - 1 - top, h - 1)
            write_rows_up_to(g, need_row)
            for ox in range(ow):
                if dw:
                    t, chunk = t_issue, t_issue
                    while rcol <= ox * sw + kw - 1:   # one read a cycle, once it is stored
                        chunk = max(t, stored(g, need_row, rcol))
                        t = chunk + 1
                        rcol += 1
                    chunk = max(chunk, ready)
                    stalls += chunk - t_issue
                    t_issue = chunk + per_pixel
                    continue
                need_col = ox * sw + kw - 1
                avail = stored(g, need_row, need_col)
                start = max(t_issue, avail)
                stalls += start - t_issue
                t_issue = start + per_pixel
            row_end[g].append(t_issue - 1)
            rcol = left
            if dw and dw_early and oy + 1 < oh:
                nxt = min((oy + 1) * sh + kh - 1 - top, h - 1)
                write_rows_up_to(g, nxt)
                if stored(g, nxt, left) <= t_issue - 1:   # read with the last chunk
                    rcol = left + 1
        grp_end.append(t_issue - 1)
    last_issue = t_issue - 1
    # Rows no window needs are stored once their group's last pixel has issued.
    while len(row_start[n_grp - 1]) < h:
        write_one()
    return RunTimeline(n_grp * oh * ow * per_pixel, stalls, last_issue, t_free - 1,
                       input_stalls)


def job_cycles(cfg: ConvConfig, desc: dict, *, reuse: bool = False) -> tuple[int, int, int]:
    """``(cycles, load beats, input stalls)`` of one layer as the accelerator runs it: from the
    cycle the job starts to the cycle its last result is stored (the ``conv_busy`` counter).

    The load phase moves ``weight_words + blocks`` beats, one a cycle (none with ``reuse``: the
    engine holds the weights), the run phase beginning after the weight beats; it ends
    :func:`issue_tail` cycles after the last chunk issues (``POOL_STAGE`` more when it pools, one
    less when the max-pool stage drops the map's odd last row or column: the last result then
    leaves before the last beat is pooled), or ``WRITE_TAIL`` after the writer's last word when
    the writer ends later (a stride that skips the last rows).
    """
    end, load, t = _job(cfg, desc, reuse)
    return end, load, t.input_stalls


def _job(cfg: ConvConfig, desc: dict, reuse: bool) -> tuple[int, int, RunTimeline]:
    """``(cycles, load beats, run timeline)`` of one job (:func:`job_cycles`).

    A depthwise job's beats come group by group (``dw_words`` weight words, then the
    ``dw_beats`` requantizers): its run phase begins once the first group's weight words and
    first requantizer are in, and group ``g`` issues from the cycle after its last requantizer
    beat (``LOAD_START + 1 + (g + 1)(dw_words + dw_beats)``)."""
    dw = bool(desc.get("depthwise"))
    load = 0 if reuse else desc["weight_words"] + desc["blocks"] * (cfg.dw_beats if dw else 1)
    ready = None
    if dw and not reuse:
        words = cfg.dw_issue(desc["kernel_h"], desc["kernel_w"])
        beats, start = words + cfg.dw_beats, RUN_START + words + 1

        def ready(g: int) -> int:
            return LOAD_START + 1 + (g + 1) * beats - start
    else:
        start = REUSE_RUN_START if reuse else RUN_START + desc["weight_words"]
    t = run_timeline(cfg, desc, first_word=DMA_FIRST - start, write_from=LOAD_START - start,
                     group_ready=ready)
    drop = bool(desc["pool"] and (desc["out_width"] % 2 or desc["out_height"] % 2))
    tail = issue_tail(cfg) + (POOL_STAGE if desc["pool"] else 0) - drop
    return start + max(t.last_issue + tail, t.last_write + WRITE_TAIL), load, t


#: On its own (every stream always valid and ready, as the conv bench's ``timing`` mode feeds
#: it), counted from the cycle the descriptor transfers: weights and requantizers load in
#: parallel from the next cycle, one beat each a cycle; the run phase begins two cycles after
#: the last weight beat (the count registers, then the state; depthwise: after the first
#: group's ``dw_words``, group ``g``'s first chunk no earlier than the cycle after its last
#: weight beat, ``(g + 1) dw_words + 1``); block ``b``'s requantizer is in from cycle
#: ``b + 2``, never later than its first chunk (a depthwise group's ``dw_beats`` too).
STREAM_RUN_START = 2


def stream_cycles(cfg: ConvConfig, desc: dict) -> int:
    """Cycles from the descriptor's transfer to the last result's, both included, of a layer
    that does not pool, on an engine whose streams are always valid and ready."""
    if desc["pool"]:
        raise ValueError("stream_cycles models layers that do not pool (the pool's last "
                         "result may leave before the last chunk issues)")
    dwc = cfg.dw_issue(desc["kernel_h"], desc["kernel_w"])
    run = (dwc if desc["depthwise"] else desc["weight_words"]) + STREAM_RUN_START
    ready = (lambda g: (g + 1) * dwc + 1 - run) if desc["depthwise"] else None
    t = run_timeline(cfg, desc, first_word=1 - run, write_from=1 - run,   # load from cycle 1
                     group_ready=ready)
    # a chunk's result transfers the pipeline's stages and the result FIFO's output after its
    # issue (the max-pool stage passes it through)
    return run + t.last_issue + pipe_stages(cfg) + 1 + 1


@dataclass(frozen=True)
class ConvPerf:
    """Where the cycles of one layer go (as :func:`job_cycles` counts them):
    ``cycles = load + issue + window_stalls + tail``, ``load`` being the beats the run phase
    waits for (the weights; a depthwise job's first group's beats), the others loading while it
    runs."""

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
    depthwise layer is a job per ``dw_groups`` channel groups of ``dw_channels`` channels (one
    group when it pools), as the accelerator runs it."""
    from dataclasses import replace

    from .layer import descriptor

    if not layer.depthwise:
        descs = [descriptor(cfg, layer)]
    else:   # one job per dw_groups channel groups of dw_channels (the accelerator's walk)
        nb = -(-layer.cin // cfg.dw_channels)
        k = 1 if layer.pool else cfg.dw_groups
        one = descriptor(cfg, replace(layer, cin=min(layer.cin, cfg.dw_channels),
                                      cout=min(layer.cin, cfg.dw_channels)))
        descs = [one | {"blocks": min(k, nb - g0), "weight_words": min(k, nb - g0)
                        * one["weight_words"]} for g0 in range(0, nb, k)]
    cycles = load = issue = stalls = 0
    for d in descs:
        c, ld, t = _job(cfg, d, False)
        ld = cfg.dw_issue(d["kernel_h"], d["kernel_w"]) + 1 if d["depthwise"] else d["weight_words"]
        cycles, load, issue, stalls = cycles + c, load + ld, issue + t.issue, stalls + \
            t.window_stalls
    tail = cycles - load - issue - stalls
    return ConvPerf(repr(layer), load, issue, stalls, tail, cycles, layer.macs, cfg.macs,
                    layer.macs / (cycles * cfg.macs))


def depthwise_report(preset: str = "default") -> list[str]:
    """The reference models' depthwise layers on accelerator preset ``preset``'s conv engine:
    cycles (a job per ``dw_groups`` channel groups) and utilization. A map wider or taller
    than the line buffer is modelled on the same engine with ``max_width``/``max_height``
    raised to it (its cost per pixel does not depend on them), and marked so."""
    from ..accel.config import MODEL_PRESETS
    from ..accel.config import PRESETS as ACCEL_PRESETS
    from .cases import DEPTHWISE_LAYERS

    table = ACCEL_PRESETS | MODEL_PRESETS
    if preset not in table:
        raise SystemExit(f"unknown accelerator preset {preset!r}; known: {', '.join(table)}")
    cfg = table[preset].conv
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
