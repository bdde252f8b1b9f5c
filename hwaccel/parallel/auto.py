"""``hwaccel parallel --mode auto``: the partition with the fewest modelled cycles, among those
that fit.

For ``N`` instances and a batch of ``m`` samples the candidates are:

* ``dp`` over ``n = 1 .. N`` instances with their own host ports (and, with
  ``shared_host_port``, ``n = 2 .. N`` sharing one round-robin port): modelled by
  :func:`.dp.model_phases` composed by :func:`.dp_port.finish` -- the figure
  :func:`.dp.run_dp` reports as ``model_cycles``;
* ``pp`` into ``k = 1 .. N`` stages, each the balanced cut (:func:`.pp.balanced`), the ``m``
  samples streamed through them: modelled by :func:`.pp_model.model` over the top's link;
* ``tp`` over ``n = 2 .. N`` instances, every layer N- or K-split (the faster per layer,
  :func:`.tp.plan`), the batch layer-major: modelled by :func:`.tp_sim.model` over the ring's
  link -- the figure :func:`.tp_run.run_tp` reports as ``model_cycles``;
* ``hybrid`` over ``n = 4 .. N`` instances as ``n / g`` pipeline stages of ``g``-way tp groups
  (every ``g`` dividing ``n`` with at least two stages), the cut of :func:`.hybrid.stage_plans`:
  modelled by :func:`.pp_model.model` fed the groups' closed forms, as
  :func:`.hybrid.run_hybrid` reports it;
* ``hybrid-dp`` over ``n = 4 .. N`` instances as ``n / g`` pipeline stages of ``g``-way
  data-parallel groups (every ``g`` dividing ``n`` with at least two stages), ``g`` lanes each
  streaming its shard through pp's balanced cut: modelled by :func:`.hybrid_dp.hybrid_dp_model`
  (the slowest lane's :func:`.pp_model.model` over the pp link), as
  :func:`.hybrid_dp.run_hybrid_dp` reports it (on the pipeline top's RTL); with
  ``shared_host_port``, the lanes on one round-robin port too (:mod:`.hybrid_dp_port`).

Both models are exact (they equal the simulated cycles), so the choice is made from them alone,
without simulating. A candidate that cannot run is dropped with its reason: a ``dp`` shard
larger than one program holds (:class:`~hwaccel.compiler.memory.DoesNotFit`, naming the
tensor), a batch smaller than ``n``, a ``pp`` split refused by the partitioner
(:class:`.pp.PartitionError`, naming the stage, layers and weight groups), a ``tp`` or
``hybrid`` plan refused by :mod:`.tp` (:class:`.tp.TpError`: a model that is not a chain, a
share that does not fit, naming the layer or instance). So a batch that one
instance does not hold still runs when a split of it does (capacity-driven parallelism). When
no candidate fits, :class:`NoPartitionFits` names every candidate's reason; a model that does
not fit one instance even at batch 1 fits no candidate (every ``pp`` stage keeps the
single-instance memory plan), and the refusal names its tensor.

The chosen candidate (fewest modelled cycles; ties: fewer instances, then ``dp``, ``pp``,
``tp``, ``hybrid``, ``hybrid-dp`` in that order, own ports before a shared one) runs through its
own runner (:func:`.dp.run_dp`, :func:`.pp_run.run_pp`, :func:`.tp_run.run_tp`,
:func:`.hybrid.run_hybrid` or :func:`.hybrid_dp.run_hybrid_dp`; tp and hybrid with each share's
program on the golden model and its cycle model, as ``--mode tp`` runs them by default), so its
row carries simulated ``cycles`` next to ``model_cycles`` and ``mismatches`` against golden.
The row (:class:`AutoRow`) is that runner's row with ``mode`` ``"auto"``, ``partition`` (what
was chosen) and ``candidates`` (each with its modelled cycles or why it was dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Candidate", "NoPartitionFits", "AutoRow", "candidates", "choose", "run_auto",
           "describe", "MODES"]

#: The partitions auto weighs, in the order that breaks a tie.
MODES = ("dp", "pp", "tp", "hybrid", "hybrid-dp")


class NoPartitionFits(ValueError):
    """No candidate partition can run; the message names why each was dropped."""


@dataclass(frozen=True)
class Candidate:
    """One partition: ``model_cycles`` from its exact model, or ``None`` and ``reason`` when it
    cannot run; ``stages``: a ``pp`` candidate's layers per stage, a ``hybrid`` one's layer
    ranges (a ``hybrid-dp`` one's layers per stage); ``tp_size``, ``dp_size``: a ``hybrid`` or
    ``hybrid-dp`` candidate's group size."""

    mode: str
    instances: int
    shared_host_port: bool = False
    model_cycles: int | None = None
    reason: str = ""
    stages: tuple = ()
    tp_size: int = 0
    dp_size: int = 0

    @property
    def fits(self) -> bool:
        return self.model_cycles is not None

    @property
    def label(self) -> str:
        if self.mode == "pp":
            return f"pp {self.instances} stage{'s' if self.instances > 1 else ''}"
        if self.mode == "tp":
            return f"tp {self.instances} instances"
        if self.mode == "hybrid":
            return f"hybrid {self.instances // self.tp_size} stages x {self.tp_size}-way tp"
        if self.mode == "hybrid-dp":
            return (f"hybrid {self.instances // self.dp_size} stages x {self.dp_size}-way dp"
                    + (", shared port" if self.shared_host_port else ""))
        port = "shared port" if self.shared_host_port else "own ports"
        return f"dp {self.instances} instance{'s' if self.instances > 1 else ''}, {port}"

    def key(self) -> tuple:
        """The order of preference among candidates that fit."""
        return (self.model_cycles, self.instances, MODES.index(self.mode),
                self.shared_host_port)

    def to_json(self) -> dict:
        return {"label": self.label, "mode": self.mode, "instances": self.instances,
                "shared_host_port": self.shared_host_port, "model_cycles": self.model_cycles,
                "fits": self.fits, "reason": self.reason, "tp_size": self.tp_size,
                "dp_size": self.dp_size,
                "stages": [list(s) for s in self.stages]}


def _dp(compiled, x_int, n: int, shared: bool) -> Candidate:
    from ..compiler.memory import DoesNotFit
    from .dp import model_phases, shards
    from .dp_port import finish

    batch = len(x_int)
    if batch < n:
        return Candidate("dp", n, shared, reason=f"a batch of {batch} cannot give each of {n} "
                                                 f"instances a sample")
    try:
        traces = [model_phases(compiled, x_int[s]) for s in shards(batch, n)]
    except DoesNotFit as exc:
        size = -(-batch // n)
        return Candidate("dp", n, shared, reason=f"a shard of {size} samples does not fit one "
                                                 f"instance: {exc}")
    return Candidate("dp", n, shared, max(finish(traces, shared)))


def _pp(compiled, x_int, k: int, link) -> Candidate:
    from ..compiler.memory import DoesNotFit
    from .pp import PartitionError, balanced
    from .pp_model import model

    try:
        part = balanced(compiled, x_int, k, link=link)
    except (PartitionError, DoesNotFit) as exc:
        return Candidate("pp", k, reason=str(exc))
    return Candidate("pp", k, False, model(part, len(x_int), link).cycles,
                     stages=tuple(tuple(s.layers) for s in part.stages))


def _tp(compiled, x_int, n: int, ring) -> Candidate:
    from ..compiler.memory import DoesNotFit
    from .tp import TpError, plan
    from .tp_sim import model

    try:
        p, _ = plan(compiled, x_int, n, "auto", link=ring)
    except (TpError, DoesNotFit) as exc:
        return Candidate("tp", n, reason=str(exc))
    return Candidate("tp", n, model_cycles=model(p, ring).cycles)


def _hybrid(compiled, x_int, n: int, g: int, ring) -> Candidate:
    from ..compiler.memory import DoesNotFit
    from .hybrid import hybrid_model
    from .tp import TpError

    try:
        cycles, ranges = hybrid_model(compiled, x_int, n, g, "auto", ring)
    except (TpError, DoesNotFit) as exc:
        return Candidate("hybrid", n, reason=str(exc), tp_size=g)
    return Candidate("hybrid", n, model_cycles=cycles, stages=tuple(ranges), tp_size=g)


def _hybrid_dp(compiled, x_int, n: int, g: int, link, shared: bool = False) -> Candidate:
    from ..compiler.memory import DoesNotFit
    from .hybrid_dp import hybrid_dp_model

    try:
        cycles, stages = hybrid_dp_model(compiled, x_int, n, g, link, shared)
    except (ValueError, DoesNotFit) as exc:   # PartitionError, a lane without a sample
        return Candidate("hybrid-dp", n, shared, reason=str(exc), dp_size=g)
    return Candidate("hybrid-dp", n, shared, model_cycles=cycles,
                     stages=tuple(map(tuple, stages)), dp_size=g)


def candidates(compiled, x_int, instances: int, *, shared_host_port: bool = False,
               link=None, ring=None, modes=MODES) -> list[Candidate]:
    """Every candidate partition of the batch ``x_int`` (int8 values) over at most
    ``instances`` instances, each with its modelled cycles or why it cannot run; ``link``:
    the pp links (default: :func:`.pp_run.default_link`); ``ring``: the tp and hybrid groups'
    links (default: :func:`.tp_run.link_for` at latency 2); ``modes``: which of :data:`MODES`
    to weigh."""
    from .pp_run import default_link
    from .tp_run import link_for

    if not isinstance(instances, int) or isinstance(instances, bool) or instances < 1:
        raise ValueError(f"instances must be a positive integer, not {instances!r}")
    if compiled.refusal is not None:
        raise NoPartitionFits(
            f"no partition fits {compiled.config.slug}: one instance cannot run the model even "
            f"at batch 1 ({compiled.refusal}), and every pp stage keeps the single-instance "
            f"memory plan, so no split fits either")
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        raise ValueError(f"modes must be some of {', '.join(MODES)}, not {modes!r}")
    link = link or default_link(compiled.config)
    ring = ring or link_for(compiled.config, 2, None)
    out = []
    if "dp" in modes:
        out += [_dp(compiled, x_int, n, False) for n in range(1, instances + 1)]
        if shared_host_port:
            out += [_dp(compiled, x_int, n, True) for n in range(2, instances + 1)]
    if "pp" in modes:
        out += [_pp(compiled, x_int, k, link) for k in range(1, instances + 1)]
    if "tp" in modes:
        out += [_tp(compiled, x_int, n, ring) for n in range(2, instances + 1)]
    if "hybrid" in modes:
        out += [_hybrid(compiled, x_int, n, g, ring) for n in range(4, instances + 1)
                for g in range(2, n // 2 + 1) if n % g == 0]
    if "hybrid-dp" in modes:
        out += [_hybrid_dp(compiled, x_int, n, g, link, shared)
                for shared in ((False, True) if shared_host_port else (False,))
                for n in range(4, instances + 1) for g in range(2, n // 2 + 1) if n % g == 0]
    return out


def choose(cands: list[Candidate]) -> Candidate:
    """The candidate that fits with the fewest modelled cycles (ties: fewer instances, dp,
    own ports); :class:`NoPartitionFits` naming each reason when none fits."""
    fit = [c for c in cands if c.fits]
    if not fit:
        raise NoPartitionFits("no partition fits: " + "; ".join(f"{c.label}: {c.reason}"
                                                               for c in cands))
    return min(fit, key=Candidate.key)


class AutoRow:
    """The chosen partition's row (a :class:`.dp.DpRow` or :class:`.pp_run.PpRow`, whose
    fields it shows) with ``mode`` ``"auto"``, the ``partition`` chosen and every candidate."""

    mode = "auto"

    def __init__(self, row, partition: Candidate, cands: list[Candidate]):
        self.row, self.partition, self.candidates = row, partition, list(cands)

    def __getattr__(self, name):
        if name == "row":
            raise AttributeError(name)
        return getattr(self.row, name)

    @property
    def note(self) -> str:
        return "; ".join(v for v in (f"chose {self.partition.label}", self.row.note) if v)

    def to_json(self) -> dict:
        out = self.row.to_json()
        out.update(mode="auto", note=self.note, partition=self.partition.to_json(),
                   candidates=[c.to_json() for c in self.candidates])
        return out


def run_auto(compiled, x, instances, *, shared_host_port: bool = False, link=None, top=None,
             client=None, clock=None, ring=None, modes=MODES) -> list[AutoRow]:
    """One :class:`AutoRow` for each instance count in ``instances`` on the samples ``x``:
    the best candidate over at most that many instances, run (dp and pp on the RTL). ``top``:
    the pp :class:`~hwaccel.generators.multi.PipelineConfig` to run on (its link is the pp
    link); ``client``: a Dask client for dp's instances; ``ring``, ``modes``: as
    :func:`candidates`."""
    from .dp import run_dp
    from .hybrid import run_hybrid
    from .hybrid_dp import run_hybrid_dp
    from .pp_run import default_link, pipeline_config, run_pp
    from .tp_run import link_for, run_tp

    counts = [int(v) for v in instances]
    if not counts or min(counts) < 1:
        raise ValueError(f"instances must be counts >= 1, not {instances!r}")
    link = top.link if top is not None else link or default_link(compiled.config)
    ring = ring or link_for(compiled.config, 2, None)
    x_int = compiled.quantize_input(x)
    rows = []
    for n in counts:
        cands = candidates(compiled, x_int, n, shared_host_port=shared_host_port, link=link,
                           ring=ring, modes=modes)
        best = choose(cands)
        if best.mode == "tp":
            (row,) = run_tp(compiled, x, [best.instances], (ring.latency,), buffer=ring.buffer,
                            clock=clock)
        elif best.mode == "hybrid":
            (row,) = run_hybrid(compiled, x, [best.instances], group=best.tp_size, link=ring,
                                clock=clock)
        elif best.mode == "hybrid-dp":
            pcfg = top or pipeline_config(compiled.config, best.instances // best.dp_size, link)
            (row,) = run_hybrid_dp(compiled, x, [best.instances], group=best.dp_size, top=pcfg,
                                   clock=clock, shared_host_port=best.shared_host_port)
        elif best.mode == "dp":
            (row,) = run_dp(compiled, x, [best.instances], shared_host_port=best.shared_host_port,
                            client=client, clock=clock)
        else:
            pcfg = top or pipeline_config(compiled.config, best.instances, link)
            (row,) = run_pp(compiled, x, [best.instances], link=link, clock=clock, top=pcfg)
            if tuple(tuple(s) for s in row.stages) != best.stages:
                raise RuntimeError(f"internal: pp ran stages {row.stages}, not the candidate's "
                                   f"{best.stages}")
        if row.model_cycles != best.model_cycles:
            raise RuntimeError(f"internal: {best.label} ran with model {row.model_cycles:,} "
                               f"cycles, not the candidate's {best.model_cycles:,}")
        rows.append(AutoRow(row, best, cands))
    return rows


def describe(rows: list[AutoRow]) -> str:
    """Each row's candidates, one a line: modelled cycles, or why it was dropped."""
    lines = []
    for r in rows:
        lines.append(f"auto over at most {max(c.instances for c in r.candidates)} instances, "
                     f"batch {r.batch}: chose {r.partition.label}")
        for c in sorted(r.candidates, key=lambda c: (not c.fits, c.key() if c.fits else ())):
            mark = "*" if c == r.partition else " "
            what = f"{c.model_cycles:,} cycles" if c.fits else f"dropped: {c.reason}"
            lines.append(f"  {mark} {c.label}: {what}")
    return "\n".join(lines)


def auto_rows(args, compiled, x, counts, clock) -> list[AutoRow]:
    """``hwaccel parallel --mode auto``'s rows from its parsed ``args`` (the link's options,
    the host port, the Dask cluster)."""
    from ..generators.link.config import LinkConfig
    from ..runtime.cluster import client_for
    from .tp_run import link_for

    lanes = compiled.config.lanes
    latency = args.link_latency
    buffer = args.link_buffer if args.link_buffer is not None else 5 * lanes
    link = LinkConfig(width=lanes, latency=latency, buffer=buffer,
                      watchdog=max(64, 4 * (2 * latency + 1)), name="pp")
    ring = link_for(compiled.config, latency, args.link_buffer)
    with client_for(args.scheduler, args.workers) as client:
        return run_auto(compiled, x, counts, shared_host_port=args.shared_host_port, link=link,
                        client=client, clock=clock, ring=ring)
