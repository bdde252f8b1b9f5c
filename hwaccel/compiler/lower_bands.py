"""Banded chains: a run of convs whose maps do not all fit the activation scratchpad at once,
run a band of output rows at a time (patch-based inference, as MCUNetV2 schedules a MobileNet's
first stages on a microcontroller).

A chain is consecutive convs, each reading only the one before it, whose intermediate maps have
no other reader: a MobileNetV2 block's expansion, depthwise and projection, or two 3 x 3 convs.
Its input and its output stay whole in the scratchpad; each intermediate map lives only as one
band, in a buffer of the band's rows. For each band of the last conv's output rows the
lowering works back through the chain: a conv's output rows ``[a, b)`` read its input rows
``[a s - t, (b - 1) s - t + k)`` clipped to the map (zero padding only at the map's own
edges, as :meth:`.lower_emit._Emitter.conv_bands` pads a tall map's bands), and those rows are
what the conv before it writes into its buffer. So each band's commands are the chain's
convs over a few rows, in order, sample after sample; every output value is the same integer
as the whole map's (a conv's output pixel depends only on its window), and rows that two
bands' windows share are computed twice (a 3 x 3 conv's band of ``r`` rows reads ``r + 2``).

Banding costs those rows and a command per conv and band, so it is tried only when the plain
plan does not fit (:func:`.lower.lower`): :func:`search` tries the chains with the largest
intermediate maps first, then each in the fewest bands that fit beside the others', and keeps,
of the sets with and without a first conv over im2col patches, the one that computes the fewest
MACs twice. A conv's band must fit the engine's line buffer (``max_height`` input rows; a
GEMM-run 1 x 1 conv has no such limit).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ActTensor
from . import im2col, ir
from .lower_types import gemm_parts, wide_pointwise

__all__ = ["Chain", "candidates", "choices", "emit", "fewer", "search", "window_rows"]

#: The band counts tried, fewest first (each chain at most its output's rows).
BAND_COUNTS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64)


@dataclass(frozen=True)
class Step:
    """One conv of one band: its input rows ``[lo, hi)``, output rows ``[a, b)`` and the
    band's per-side padding ``(top, left, bottom, right)``."""

    lo: int
    hi: int
    a: int
    b: int
    pads: tuple[int, int, int, int]


@dataclass(frozen=True, eq=False)
class Chain:
    """The convs ``ops`` (in order) run in bands: ``steps[band][k]`` is conv ``k``'s part of
    a band, ``shapes[k]`` its input's ``(channels, height, width)``."""

    ops: tuple
    shapes: tuple
    steps: tuple

    @property
    def bands(self) -> int:
        return len(self.steps)

    def recomputed_macs(self) -> int:
        """MACs a sample the bands compute twice: rows that two bands' windows share."""
        extra = 0
        for k, (op, shape) in enumerate(zip(self.ops, self.shapes)):
            out_h = op.out_size(*shape[1:])[0]
            rows = sum(s[k].b - s[k].a for s in self.steps)
            extra += (rows - out_h) * ir.macs(op, shape) // out_h
        return extra

    def describe(self, lanes: int) -> str:
        words = sum(self.buffer_words(k, lanes) for k in range(len(self.ops) - 1))
        return (f"{self.ops[0].name} .. {self.ops[-1].name}: {len(self.ops)} convs in "
                f"{self.bands} bands of output rows, their intermediate maps held a band at a "
                f"time ({words} words); {self.recomputed_macs():,} MACs a sample recomputed "
                f"where bands overlap")

    def buffer_words(self, k: int, lanes: int) -> int:
        """Words of the buffer for conv ``k``'s output band (``k`` before the last)."""
        c, _, w = self.shapes[k + 1]
        return max(s[k].b - s[k].a for s in self.steps) * w * -(-c // lanes)


def window_rows(a: int, b: int, k: int, s: int, before: int, size: int) -> tuple:
    """``(lo, hi, pad_before, pad_after)``: the input rows ``[lo, hi)`` of a map of ``size``
    that output rows ``[a, b)`` of a ``k``-tap, stride-``s`` conv padded ``before`` read, and
    the padding their windows take beyond the map on each side."""
    i0, i1 = a * s - before, (b - 1) * s - before + k
    lo, hi = max(i0, 0), min(i1, size)
    return lo, hi, lo - i0, i1 - hi


def _runs_as(cfg: AccelConfig, op, shape) -> str | None:
    """How conv ``op`` runs over a band (``gemm``, ``dw``, ``conv``), or None when it cannot be
    in a chain (a fused pool, a depth-to-space's conv, a GEMM in parts, a map wider than the
    line buffer)."""
    c, _, w = shape
    if not isinstance(op, ir.QConv) or op.pool:
        return None
    if wide_pointwise(cfg, op, c, w):
        return "gemm" if gemm_parts(cfg, -(-c // cfg.lanes), op.w.shape[0]) == 1 else None
    if w > cfg.conv.max_width:
        return None
    return "dw" if op.depthwise else "conv"


def _steps(ops, shapes, bands: int, cfg: AccelConfig) -> tuple | None:
    """Each band's steps, back from the last conv's output rows split evenly in ``bands``;
    None when a conv's band is taller than the line buffer."""
    kinds = [_runs_as(cfg, op, s) for op, s in zip(ops, shapes)]
    out_h = ops[-1].out_size(*shapes[-1][1:])[0]
    cuts = [round(i * out_h / bands) for i in range(bands + 1)]
    result = []
    for a, b in zip(cuts, cuts[1:]):
        band = []
        for op, (_, h, _), kind in zip(reversed(ops), reversed(shapes), reversed(kinds)):
            (k, _), (s, _), (top, left, _, right) = op.kernel, op.strides, op.pads
            lo, hi, above, below = window_rows(a, b, k, s, top, h)
            if kind != "gemm" and hi - lo > cfg.conv.max_height:
                return None
            band.append(Step(lo, hi, a, b, (above, left, below, right)))
            a, b = lo, hi
        result.append(tuple(reversed(band)))
    return tuple(result)


def candidates(ops, cfg: AccelConfig, vals: dict, output: str, skip=(),
               head: bool = True) -> list[tuple]:
    """The chains that could run in bands: maximal runs of two or more convs, each reading only
    the conv before it (not always the op before it: a large kernel's stack of shifted copies
    in parts, each part's conv after every part), whose outputs (but the last's) no other op
    reads and are not the graph's output. With ``head``, a first conv over im2col patches is
    in a chain as the 1 x 1 conv it runs as (:func:`.im2col.as_pointwise`), its patches
    whole. ``vals``: every value's :class:`~.lower_types.Value` (the plain layout's);
    ``skip``: convs that run otherwise (a depth-to-space's)."""
    reads = Counter(v for op in ops for v in op.inputs)
    fit, after = {}, {}   # the convs that may band; a conv -> the one that alone reads it
    for op in ops:
        x = vals[op.inputs[0]] if op.inputs else None
        if x is not None and x.kind == "patches":   # the 1 x 1 conv over the host's patches
            op = im2col.as_pointwise(op)
        if (op.name not in skip and x is not None and x.kind in ("image", "patches")
                and (head or x.kind == "image")
                and _runs_as(cfg, op, (x.channels, x.height, x.width)) is not None):
            fit[op.name] = op
            prev = op.inputs[0]
            if len(op.inputs) == 1 and prev in fit and reads[prev] == 1 and prev != output:
                after[prev] = op
    runs, inner = [], set(op.name for op in after.values())
    for name, op in fit.items():   # each run from its first conv, in the graph's order
        if name in inner:
            continue
        run = [op]
        while run[-1].name in after:
            run.append(after[run[-1].name])
        if len(run) > 1:
            runs.append(tuple(run))
    return runs


def _largest(run, vals, lanes: int) -> int:
    """Words of the run's largest intermediate map, for one sample."""
    return max(vals[op.name].height * vals[op.name].width * -(-vals[op.name].channels // lanes)
               for op in run[:-1])


def search(ops, cfg: AccelConfig, vals: dict, output: str, skip, fits) -> tuple | None:
    """The chains to run in bands, or None when no choice fits (``fits(chains)`` says whether
    the memory plan does). For the candidates with a first conv over patches and those
    without: the first of :func:`choices` that fits (searched only if the most banded, the
    last, does), then each chain in the fewest bands that still fit beside the others'. Of
    those, the set that computes the fewest MACs twice."""
    found = []
    for head in (False, True) if any(v.kind == "patches" for v in vals.values()) else (False,):
        options = list(choices(ops, cfg, vals, output, skip, head))
        if not options or not fits(options[-1]):
            continue
        chains = list(next(c for c in options if fits(c)))
        for i, ch in enumerate(chains):
            chains[i] = next((alt for alt in fewer(ch, cfg)
                              if fits((*chains[:i], alt, *chains[i + 1:]))), ch)
        found.append(tuple(chains))
    return min(found, key=lambda c: sum(ch.recomputed_macs() for ch in c), default=None)


def choices(ops, cfg: AccelConfig, vals: dict, output: str, skip=(), head: bool = True):
    """Sets of chains to try, in order: the ``m`` chains with the largest intermediate maps
    (``m`` = 1, 2, ...), each in ``n`` bands (``n`` in :data:`BAND_COUNTS`, fewest first; a
    chain's bands are at most its output's rows, and more where a band of ``n`` would not fit
    the line buffer). The last set is the most banded. ``head`` as :func:`candidates`."""
    plans = []   # per chain, largest first: its band counts' steps, fewest bands first
    for r in sorted(candidates(ops, cfg, vals, output, skip, head),
                    key=lambda r: -_largest(r, vals, cfg.lanes)):
        shapes = tuple((vals[op.inputs[0]].channels, vals[op.inputs[0]].height,
                        vals[op.inputs[0]].width) for op in r)
        steps = _fitting(r, shapes, cfg)
        if steps:
            plans.append((r, shapes, steps))
    seen = set()
    for m in range(1, len(plans) + 1):
        for n in BAND_COUNTS:
            chains = tuple(Chain(r, shapes, steps[next((b for b in steps if b >= n),
                                                       max(steps))])
                           for r, shapes, steps in plans[:m])
            key = tuple(ch.bands for ch in chains)
            if key not in seen:
                seen.add(key)
                yield chains


def fewer(chain: Chain, cfg: AccelConfig) -> list[Chain]:
    """The chain in fewer bands, fewest first (each band count that fits the line buffer)."""
    return [Chain(chain.ops, chain.shapes, s)
            for n, s in _fitting(chain.ops, chain.shapes, cfg).items() if n < chain.bands]


def _fitting(ops, shapes, cfg: AccelConfig) -> dict:
    """Band count -> steps, fewest first, for each count of :data:`BAND_COUNTS` (at most the
    last conv's output rows) whose bands fit the line buffer."""
    rows = ops[-1].out_size(*shapes[-1][1:])[0]
    counts = sorted({min(n, rows) for n in BAND_COUNTS})
    return {n: s for n in counts if (s := _steps(ops, shapes, n, cfg)) is not None}


def emit(em, chain: Chain) -> None:
    """The chain's commands on emitter ``em``: per sample, per band, each conv over its rows,
    intermediate bands in their buffers (``"<conv> band"`` blocks), the last conv's rows into
    its whole output; a mark per command, so each counts as its conv's."""
    cfg, lanes, ops = em.cfg, em.cfg.lanes, chain.ops
    bufs = [em.where[f"{op.name} band"] for op in ops[:-1]]
    outs = em.tensors(ops[-1].name)
    for x, out in zip(em.tensors(ops[0].inputs[0]), outs):
        for band in chain.steps:
            src, row0 = x, 0          # the tensor the next conv reads, and its first row
            for k, (op, st) in enumerate(zip(ops, band)):
                c, _, w = chain.shapes[k]
                t = ActTensor(src.addr + (st.lo - row0) * w * src.groups, c, st.hi - st.lo, w,
                              lanes)
                oc, ow = op.w.shape[0], op.out_size(*chain.shapes[k][1:])[1]
                at = (out.addr + st.a * ow * out.groups if k == len(ops) - 1 else bufs[k])
                em.b.layer, em.b.at = op.name, at
                em.engine(op.name, lambda op=op, t=t, st=st: _run(em, op, t, st, cfg))
                em.marks.append((op.name, len(em.b.programs), len(em.b.commands)))
                src, row0 = ActTensor(at, oc, st.b - st.a, ow, lanes), st.a


def _run(em, op, t: ActTensor, st: Step, cfg: AccelConfig) -> ActTensor:
    kind = _runs_as(cfg, op, (t.channels, t.height, t.width))
    args = (op.bias, op.multiplier, op.shift)
    if kind == "gemm":
        return em.b.gemm(em.b.view(t, t.channels, 1, t.height * t.width), op.w[:, :, 0, 0].T,
                         *args, relu=op.relu, share=(op.name,))
    call = em.b.dwconv if kind == "dw" else em.b.conv
    return call(t, op.w, *args, stride=op.stride, padding=ir.squash(st.pads), relu=op.relu,
                pool=False)
