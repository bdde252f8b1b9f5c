"""``hwaccel bench parallel --random N``: the parallel cycle models against the RTL at random
points.

Each point draws a mode (``dp``, ``pp``, ``tp`` or ``hybrid``), an instance count, a partition
(dp: own host ports or one shared port; pp: random cuts at layer boundaries; tp: a split; hybrid:
stages of tp groups or of dp groups), a link (latency ``L`` and receive buffer ``D``; the width
``W`` is the activation word's bytes, as a pipeline top requires) and a batch, and runs it on the
RTL of small models on a small preset:

* dp: every shard on its own Verilated instance (:func:`hwaccel.parallel.dp.run_instance`),
  composed as :func:`~hwaccel.parallel.dp.run_dp` does (own ports: the sum of the phases;
  shared: the arbiter's cycle model), against :func:`~hwaccel.parallel.dp.model_phases`
  composed by the port's recurrence;
* pp: the samples streamed through one Verilated top per link of ``--links`` (built once,
  reused by every point on that link), every sample's start, finish and hand-over cycle against
  :func:`hwaccel.parallel.pp_model.model`;
* hybrid of dp groups: random cuts into at most ``--max-instances`` stages, groups of 1 to 3
  instances, each lane's shard streamed through the same tops
  (:func:`hwaccel.parallel.hybrid_dp.run_lanes`), every lane's timeline against the model's;
  the lanes on a port each or, at random, on one shared port (:mod:`hwaccel.parallel.
  hybrid_dp_port`: the lanes' tops clocked together); that draw comes from a stream of its own
  (the seed and the point), so the other draws of a seed are what they were without it;
* tp and hybrid of tp groups (:func:`hwaccel.parallel.tp_points.point`): on the chain models of
  :mod:`hwaccel.parallel.tp_points` (``--model``'s graph need not be a chain), every share's
  program on the Verilated preset, the ring stepped beat by beat against
  :func:`hwaccel.parallel.tp_sim.model`; its own link latency and buffer.

A row is one point: ``cycles`` (simulated), ``model_cycles``, ``cycles_match`` (every figure
equal: for pp and hybrid of dp groups every sample's row of the timeline, for tp and hybrid of
tp groups the one-instance reference's cycles too) and ``mismatches`` (samples whose outputs
differ from the golden interpreter's). The command fails if any point's model is not exact.
"""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np

COLUMNS = ["point", "mode", "N", "partition", "L", "W", "D", "batch", "cycles", "model_cycles",
           "cycles_match", "mismatches"]


def add_arguments(p) -> None:
    p.add_argument("--random", type=int, default=50, help="points to draw (default 50)")
    p.add_argument("--seed", type=int, default=14, help="seed of the draw (default 14)")
    p.add_argument("--model", default="branches",
                   help="a model of hwaccel.compiler.cases for the dp, pp and hybrid-of-dp-"
                        "groups points (default: branches)")
    p.add_argument("--preset", default="tiny", help="accelerator preset (default: tiny)")
    p.add_argument("--max-instances", type=int, default=3,
                   help="instances (dp, pp, tp) or pipeline stages (hybrid) at most (default 3)")
    p.add_argument("--max-batch", type=int, default=6, help="samples at most (default 6)")
    p.add_argument("--links", default="2:16,0:4,5:8",
                   help="pp links as L:D (latency cycles : buffer bytes), comma-separated; one "
                        "Verilated top each (default 2:16,0:4,5:8)")


def _links(text: str, lanes: int):
    from ..generators.link.config import LinkConfig
    from ..generators.multi import PipelineConfig

    out = []
    for item in text.split(","):
        try:
            lat, buf = (int(v) for v in item.split(":"))
        except ValueError:
            raise ValueError(f"--links takes L:D pairs, not {item!r}") from None
        link = LinkConfig(width=lanes, latency=lat, buffer=buf,
                          watchdog=max(64, 4 * (2 * lat + 1)), name=f"l{lat}_d{buf}")
        default = PipelineConfig.link
        out.append(default if replace(link, name=default.name) == default else link)
    return out


def _dp_point(cm, xi, n: int, shared: bool, ref) -> dict:
    from ..parallel.dp import model_phases, run_instance, shards
    from ..parallel.dp_port import finish, own_ports, simulate_shared

    parts = shards(len(xi), n)
    runs = [run_instance(cm, xi[s]) for s in parts]
    traces = [ph for _, ph in runs]
    sim = simulate_shared(traces) if shared else own_ports(traces)
    model = finish([model_phases(cm, xi[s]) for s in parts], shared)
    got = np.concatenate([ints for ints, _ in runs]).reshape(len(xi), -1)
    return {"partition": "shared port" if shared else "own ports", "cycles": max(sim),
            "model_cycles": max(model), "cycles_match": sim == model,
            "mismatches": int(np.any(got != ref, axis=1).sum())}


def _pipeline_point(cm, xi, cuts, group: int, pcfg, design, ref, shared: bool = False) -> dict:
    """pp (``group`` 1) or a hybrid of ``group``-way dp groups: the lanes on the top, on one
    shared host port with ``shared``."""
    from ..parallel.hybrid_dp import run_lanes
    from ..parallel.pp import partition

    part = partition(cm, xi, cuts)
    got, measured, predicted = run_lanes(cm, xi, part, group, design, pcfg, shared)
    what = f"cuts {list(cuts)}" + (f" x {group}-way dp" if group > 1 else "")
    return {"partition": what + (", shared port" if shared else ""),
            "cycles": max(t.cycles for t in measured),
            "model_cycles": max(t.cycles for t in predicted),
            "cycles_match": all(a.rows() == b.rows() and a.cycles == b.cycles
                                for a, b in zip(measured, predicted)),
            "mismatches": int(np.any(got != ref, axis=1).sum())}


def _tp_point(rng, mode: str, args) -> dict:
    """tp, or a hybrid of tp groups, on one of tp_points' chain models."""
    from ..parallel.tp_points import MODELS, compiled, point

    name = rng.choice(MODELS)
    cm, x = compiled(name, args.max_batch, args.preset)
    r = point(rng, mode, name, cm, x, "rtl", args.max_batch, args.max_instances,
              args.max_instances)
    what = f"{name}, split {r['split']}"
    if mode == "hybrid":
        what = f"{name}, {r['N'] // r['group']} stages x {r['group']}-way tp, split {r['split']}"
    return {"N": r["N"], "batch": r["batch"], "partition": what, "L": r["L"], "W": r["W"],
            "D": r["D"], **{k: r[k] for k in ("cycles", "model_cycles", "cycles_match",
                                               "mismatches")}}


def run(args) -> list[dict]:
    import torch

    from ..compiler import compile as compile_model
    from ..compiler.cases import make
    from ..generators.multi import PipelineConfig
    from ..parallel.pp import partition
    from ..parallel.pp_sim import golden
    from ..sim.runner import design_for

    if args.random < 1 or args.max_instances < 1 or args.max_batch < 1:
        raise ValueError("--random, --max-instances and --max-batch must be at least 1")
    net, inputs = make(args.model)
    x = inputs(args.max_batch, torch.Generator().manual_seed(args.seed))
    cm = compile_model(net, x, preset=args.preset)
    xi = cm.quantize_input(x)
    if cm.max_batch < args.max_batch:
        raise ValueError(f"--max-batch {args.max_batch} does not fit one instance of "
                         f"{cm.config.slug} (at most {cm.max_batch})")
    ref = golden(cm, xi).reshape(len(xi), -1)
    layers = len(partition(cm, xi[:1], []).stages[0].layers)
    links = _links(args.links, cm.config.lanes)
    tops: dict = {}

    def top(link):
        if link not in tops:
            k = max(2, args.max_instances)
            same = link == PipelineConfig.link   # the default link: the tests' top's name
            pcfg = PipelineConfig(cm.config, k, link, name=f"{cm.config.name}{k}" if same
                                  else f"{cm.config.name}x{k}_{link.name}")
            tops[link] = (pcfg, design_for(pcfg))
        return tops[link]

    rng = random.Random(args.seed)
    rows = []
    for i in range(args.random):
        mode = rng.choice(["dp", "pp", "tp", "hybrid"])
        groups = rng.choice(["tp", "dp"]) if mode == "hybrid" else None
        if mode == "tp" or groups == "tp":
            rows.append({"point": i, "mode": mode, **_tp_point(rng, mode, args)})
            continue
        if mode == "dp":
            n = rng.randint(1, min(args.max_instances, args.max_batch))
            m = rng.randint(n, args.max_batch)
            row = {"point": i, "mode": mode, "N": n, "batch": m, "L": "-", "W": "-", "D": "-"}
            row.update(_dp_point(cm, xi[:m], n, rng.random() < 0.5, ref[:m]))
        else:
            p = rng.randint(1, min(args.max_instances, layers))
            g = 1 if mode == "pp" else rng.randint(1, min(3, args.max_batch))
            m = rng.randint(g, args.max_batch)
            link = rng.choice(links)
            cuts = sorted(rng.sample(range(1, layers), p - 1))
            row = {"point": i, "mode": mode, "N": p * g, "batch": m, "L": link.latency,
                   "W": link.width, "D": link.buffer}
            shared = g > 1 and random.Random(f"{args.seed}:{i}:port").choice((False, True))
            row.update(_pipeline_point(cm, xi[:m], cuts, g, *top(link), ref[:m], shared))
        rows.append(row)
    return rows
