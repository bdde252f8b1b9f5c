"""``hwaccel parallel``: one reference model over N simulated accelerator instances.

``--mode dp`` splits the batch over the instances (:mod:`.dp`), each instance a Dask task on a
LocalCluster bound to loopback (``--workers``) or on a running cluster (``--scheduler``), over
TLS with ``--tls`` or ``--tls-ca/--tls-cert/--tls-key`` (:mod:`..runtime.cluster`). One
row per instance count in ``--instances``: simulated cycles and the cycle model's, speedup and
efficiency against one instance at the same batch, mismatches against the golden interpreter on
one instance, hardware throughput (at the preset's clock) and simulator throughput (samples a
wall-clock second), kept apart.

``--mode pp`` splits the layers into stages on N instances of one generated top, samples
streaming through them (:mod:`.pp_run`): the rows add fill, drain, period and bubble fraction.

``--mode auto`` picks, for each instance count, the dp, pp, tp or hybrid partition with the
fewest cycles by their exact models among those that fit (:mod:`.auto`), and runs it: the row
names the ``partition`` and lists the ``candidates``.

``--mode tp`` spreads each layer over the instances (output channels, or a Linear's input
channels with int32 partial sums reduced over a ring of links: :mod:`.tp`, :mod:`.tp_run`);
``--link-latency`` may list several latencies (one row each per instance count). ``--mode
hybrid`` pipelines stages that are ``--tp-size``-way tp groups (:mod:`.hybrid`), or with
``--dp-size g`` ``g``-way data-parallel groups, each splitting the samples (:mod:`.hybrid_dp`;
with ``--shared-host-port`` the groups' lanes share one round-robin host port,
:mod:`.hybrid_dp_port`). ``--plot DIR`` writes the rows' PNGs (:mod:`.plots`), samples a second
at the preset's placed Fmax against the DSPs used among them (:mod:`.hardware`).

Exit status 0 when every row has no mismatch and ``model_cycles == cycles``, 1 otherwise, 2 on a
usage error.
"""

from __future__ import annotations

import json
import sys

from ..runtime.cluster import add_tls_arguments, tls_from_args, using_tls

HELP = ("one model over N accelerator instances (data, pipeline, tensor or hybrid parallel): "
        "cycles, model, speedup")

#: Partitions this command runs.
MODES = ("dp", "pp", "tp", "hybrid", "auto")


def _counts(text: str) -> list[int]:
    try:
        counts = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"--instances must be comma-separated integers, not {text!r}") from None
    if not counts or min(counts) < 1:
        raise ValueError(f"--instances must name instance counts >= 1, not {text!r}")
    return counts


def add_arguments(p) -> None:
    p.add_argument("--model", required=True,
                   help="a reference workload (hwaccel.models.WORKLOADS): cnn, lstm, ...; "
                        "or gemm<K>, a K x K Linear (--batch M: an M x K x K GEMM, "
                        "hwaccel.parallel.gemm)")
    p.add_argument("--mode", choices=MODES, default="dp",
                   help="dp: the batch split over the instances, each running the same program; "
                        "pp: the layers split into stages, samples streaming through them "
                        "(hwaccel.parallel.pp_run); tp: each layer over the instances "
                        "(hwaccel.parallel.tp); hybrid: pp stages of tp groups "
                        "(hwaccel.parallel.hybrid) or of dp groups (--dp-size); auto: the "
                        "one of dp, pp, tp and hybrid with the fewest modelled cycles that "
                        "fits (hwaccel.parallel.auto)")
    p.add_argument("--link-latency", default="2",
                   help="pp, tp, hybrid: cycles each way on a link (default 2); tp takes "
                        "several, comma-separated")
    p.add_argument("--link-buffer", type=int, default=None,
                   help="pp, tp, hybrid: a link's receive buffer in bytes (default: 5 "
                        "words, full rate at latency 2)")
    p.add_argument("--tp-split", choices=("auto", "n", "k"), default="auto",
                   help="tp, hybrid: split every Conv/Linear over output channels (n), every "
                        "Linear over input channels with int32 partial sums (k), or per layer "
                        "the one with fewer modelled cycles (auto, the default)")
    p.add_argument("--tp-lstm", choices=("batch", "replicate"), default="batch",
                   help="tp, hybrid: an LSTM layer (whose cell cannot split its hidden units) "
                        "splits the batch's sequences over the group (batch, the default) or "
                        "runs whole on every instance (replicate)")
    p.add_argument("--tp-backend", choices=("golden", "rtl"), default="golden",
                   help="tp, hybrid: run each instance's share of a layer on the golden "
                        "interpreter and the cycle model (golden, the default) or on the "
                        "Verilated accelerator (rtl)")
    p.add_argument("--tp-size", type=int, default=None,
                   help="hybrid: instances in each tp group (default 2; --instances must be "
                        "multiples of it)")
    p.add_argument("--dp-size", type=int, default=None,
                   help="hybrid: pipeline stages of data-parallel groups of this many "
                        "instances instead of tp groups, each splitting the batch's samples "
                        "(hwaccel.parallel.hybrid_dp; --instances must be multiples of it)")
    p.add_argument("--instances", default="4",
                   help="instance counts, comma-separated: one row each (default: 4)")
    p.add_argument("--preset", default="default", help="accelerator preset (default: default)")
    p.add_argument("--batch", type=int, default=16,
                   help="samples (the first held-out ones) split over the instances (default 16)")
    p.add_argument("--shared-host-port", action="store_true",
                   help="dp: the instances share one round-robin host port; hybrid with --dp-size: "
                        "the lanes do (default: one each)")
    p.add_argument("--calibration", type=int, default=512,
                   help="training samples that calibrate activation scales (default: 512)")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="state hardware throughput at this clock (default: the preset's "
                        "placed Fmax, from build/impl or committed, as hwaccel advise finds "
                        "it; else an implementation report's Fmax, else a nominal clock)")
    p.add_argument("--workers", type=int, default=None,
                   help="LocalCluster workers (default: one a core)")
    p.add_argument("--scheduler", default=None,
                   help="address of a running Dask scheduler (default: a LocalCluster)")
    add_tls_arguments(p)
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.add_argument("--plot", default=None, metavar="DIR",
                   help="write PNGs into DIR: speedup and efficiency against instances per "
                        "mode, pp's bubbles and timelines, and samples/s at the placed Fmax "
                        "against DSPs used (hwaccel.parallel.plots)")
    p.add_argument("--dsps-per-instance", type=int, default=None,
                   help="--plot: state an instance's DSPs (default: the preset's placement "
                        "or Yosys report, hwaccel.parallel.hardware)")


COLUMNS = ["mode", "N", "batch", "port", "cycles", "model", "speedup", "efficiency",
           "mismatches", "link util", "bubbles", "hw samples/s", "sim samples/s", "wall s",
           "workers", "note"]


def format_rows(rows) -> str:
    """A table of :class:`.dp.DpRow` s, the clock under it."""
    cells = [[r.mode, str(r.instances), str(r.batch), "shared" if r.shared_host_port else "own",
              f"{r.cycles:,}", f"{r.model_cycles:,}", f"{r.speedup:.3f}", f"{r.efficiency:.3f}",
              str(r.mismatches), f"{r.link_utilization:.2f}",
              "-" if r.bubble_fraction is None else f"{r.bubble_fraction:.3f}",
              f"{r.hw_samples_per_second:,.0f}", f"{r.sim_samples_per_second:.2f}",
              f"{r.wall_seconds:.2f}", str(r.workers or "-"), r.note] for r in rows]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(COLUMNS)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(COLUMNS, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.rjust(w) for v, w in zip(c, widths)) for c in cells]
    if rows:
        r = rows[0]
        lines.append(f"one instance, the whole batch: {r.single_cycles:,} cycles (model "
                     f"{r.single_model_cycles:,}); hw samples/s at {r.clock_mhz:.1f} MHz: "
                     f"{r.clock_source}; sim samples/s: wall clock of the instances' "
                     f"simulation")
    return "\n".join(lines)


def failures(rows) -> list[str]:
    out = [f"{r.instances} instances: {r.mismatches} samples differ from golden"
           for r in rows if r.mismatches]
    out += [f"{r.instances} instances: model {r.model_cycles:,} != simulated {r.cycles:,} "
            f"cycles" for r in rows if r.model_cycles != r.cycles]
    out += [f"one instance: model {r.single_model_cycles:,} != simulated "
            f"{r.single_cycles:,} cycles" for r in rows[:1]
            if r.single_model_cycles != r.single_cycles]
    return out


def _placed_clock(cfg) -> tuple[float, str] | None:
    """The preset's placed Fmax (:func:`hwaccel.impl.placed.placed_report`: build/impl's ECP5
    report, else the committed placement), or ``None``: the rows then take the runtime's clock
    (:func:`hwaccel.runtime.compare.clock_for`)."""
    from ..impl.placed import placed_report

    report, where = placed_report(cfg)
    return (float(report["fmax_mhz"]), where) if report else None


def run(args) -> int:
    from ..runtime.cluster import client_for
    from ..runtime.runnable import compile as compile_model
    from .dp import run_dp
    from .gemm import load

    counts = _counts(args.instances)
    tls = tls_from_args(args)
    if tls is not None and args.mode in ("pp", "tp", "hybrid"):
        raise ValueError(f"--mode {args.mode} runs in this process, on no Dask cluster: TLS "
                         f"does not apply")
    from .tp_run import latencies

    lat = latencies(args.link_latency)
    if args.mode != "tp":
        if len(lat) > 1:
            raise ValueError(f"--mode {args.mode} takes one --link-latency (several only with "
                             f"--mode tp), not {args.link_latency!r}")
        args.link_latency = lat[0]
    if args.batch < 1:
        raise ValueError(f"--batch must be at least 1, not {args.batch!r}")
    if args.dsps_per_instance is not None and args.dsps_per_instance < 1:
        raise ValueError(f"--dsps-per-instance must be at least 1, not "
                         f"{args.dsps_per_instance!r}")
    if args.mode != "hybrid" and (args.tp_size, args.dp_size) != (None, None):
        raise ValueError(f"--tp-size and --dp-size size --mode hybrid's groups, not --mode "
                         f"{args.mode}'s")
    module, split = load(args.model)
    if args.batch > len(split.y_test):
        raise ValueError(f"--batch must be at most {len(split.y_test)} (the held-out split), "
                         f"not {args.batch}")
    compiled = compile_model(module, split.x_train[:8], preset=args.preset,
                             calibration=split.x_train[:args.calibration],
                             strict=args.mode != "auto")   # auto names what does not fit
    clock = (args.clock_mhz, "given") if args.clock_mhz else _placed_clock(compiled.config)
    if args.mode == "auto":
        from .auto import auto_rows

        with using_tls(tls):
            rows = auto_rows(args, compiled, split.x_test[:args.batch], counts, clock)
    elif args.mode == "pp":
        from .pp_run import pp_rows

        rows = pp_rows(args, compiled, split.x_test[:args.batch], counts, clock)
    elif args.mode == "hybrid" and args.dp_size is not None:
        from .hybrid_dp import hybrid_dp_rows

        rows = hybrid_dp_rows(args, compiled, split.x_test[:args.batch], counts, clock)
    elif args.mode in ("tp", "hybrid"):
        from .hybrid import hybrid_rows
        from .tp_run import tp_rows

        rows = (tp_rows if args.mode == "tp" else hybrid_rows)(
            args, compiled, split.x_test[:args.batch], counts, clock)
    else:
        with using_tls(tls), client_for(args.scheduler, args.workers) as client:
            rows = run_dp(compiled, split.x_test[:args.batch], counts,
                          shared_host_port=args.shared_host_port, client=client,
                          clock=clock)
    if args.json:
        print(json.dumps([r.to_json() for r in rows], indent=2))
    else:
        print(format_rows(rows))
        if args.mode == "auto":
            from .auto import describe

            print(describe(rows))
    if args.plot:
        from .hardware import placement
        from .plots import write_plots

        placed, where = placement(compiled.config, fmax_mhz=args.clock_mhz,
                                  dsp_per_instance=args.dsps_per_instance)
        if placed is None:
            print(f"hwaccel parallel: no samples_vs_dsp.png: {where}", file=sys.stderr)
        for path in write_plots(rows, args.plot, placed).values():
            print(f"wrote {path}", file=sys.stderr)
    bad = failures(rows)
    for line in bad:
        print(f"hwaccel parallel: FAILED: {line}", file=sys.stderr)
    return 1 if bad else 0
