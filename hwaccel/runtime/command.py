"""``hwaccel compare``: a reference model, or yours (``FILE.py:NAME``), on every backend, in
one table (or JSON).

Exit status: 0 when every backend that ran succeeded and every integer backend equals
``golden``; 1 when a backend failed or an integer backend (``rtl``, ``torch-int8``) differs from
``golden`` on any sample. A backend that cannot run here (no GPU, no JAX) is skipped with one
line that says why; that is not a failure.

``--workers N`` runs the program backends' batches (``golden``, ``rtl``) as Dask tasks on a
LocalCluster of N worker processes bound to loopback; ``--scheduler ADDR`` on a running cluster
instead (as ``hwaccel sweep`` does); ``--tls`` (or ``--tls-ca/--tls-cert/--tls-key`` for a
``tls://`` scheduler) encrypts the cluster's connections (:mod:`.cluster`). The outputs,
mismatches and cycles are the same as in one process; only the wall times differ.
"""

from __future__ import annotations

import json
import sys

from .cluster import add_tls_arguments, tls_from_args, using_tls

HELP = "one reference model on several backends: accuracy, agreement, cycles, latency"


def add_arguments(p) -> None:
    from .backends import names
    from .compare import DEFAULT_BACKENDS

    p.add_argument("--model", required=True,
                   help="a reference workload (hwaccel.models.WORKLOADS): cnn, lstm, resnet8, "
                        "dscnn, mobilenet, autoencoder, transformer or transformer_tokens; or "
                        "your model, FILE.py:NAME (hwaccel.models.user_model): no labels, so "
                        "agreement and mismatches")
    p.add_argument("--input-shape", default=None, metavar="SHAPE",
                   help="a user model's per-sample input shape, C,H,W or F or T,F, when "
                        "NAME gives no inputs: they are drawn at random (seeded)")
    p.add_argument("--backends", default=",".join(DEFAULT_BACKENDS),
                   help=f"comma-separated, of: {', '.join(names())} "
                        f"(default: {','.join(DEFAULT_BACKENDS)})")
    p.add_argument("--samples", type=int, default=None,
                   help="the first N held-out samples (default: the whole held-out split)")
    p.add_argument("--preset", default="default",
                   help="accelerator preset (default: default); transformers run on "
                        "default_attention and ecp5_attention (the latter builds its RTL "
                        "in minutes)")
    p.add_argument("--calibration", type=int, default=512,
                   help="training samples that calibrate activation scales (default: 512)")
    p.add_argument("--clock-mhz", type=float, default=None,
                   help="state hardware latency at this clock (default: the preset's Fmax from "
                        "build/impl, else a nominal clock)")
    p.add_argument("--json", action="store_true",
                   help="the report as one JSON object: rows (one per backend), saturation")
    p.add_argument("--workers", type=int, default=None,
                   help="shard golden's and rtl's batches over a LocalCluster of N Dask "
                        "workers (default: run them in this process)")
    p.add_argument("--scheduler", default=None,
                   help="shard them over the running Dask cluster at this address "
                        "(tcp://host:8786, or tls://host:8786 with the TLS files) instead")
    add_tls_arguments(p)
    p.add_argument("--port", default=None,
                   help="the fpga backend's serial port (/dev/ttyUSB0): a board running the "
                        "preset's bitstream (make bitstream BOARD=ulx3s PRESET=...)")
    p.add_argument("--baud", type=int, default=1_000_000,
                   help="the fpga backend's baud rate (the bitstream's; default 1000000)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")


def run(args) -> int:
    from ..models.user_model import parse_shape
    from .compare import compare, format_rows

    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not backends:
        raise ValueError("--backends must name at least one backend")
    tls = tls_from_args(args)
    if tls is not None and args.workers is None and not args.scheduler:
        raise ValueError("TLS secures a Dask cluster: give --workers or --scheduler too")
    with using_tls(tls):
        result = compare(args.model, backends, samples=args.samples, preset=args.preset,
                         input_shape=parse_shape(args.input_shape),
                         calibration=args.calibration, clock_mhz=args.clock_mhz,
                         progress=not args.no_progress and sys.stderr.isatty(),
                         workers=args.workers, scheduler=args.scheduler,
                         backend_options={"fpga": {"port": args.port, "baud": args.baud}})
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(format_rows(result))
    for failure in result.failures:
        print(f"hwaccel compare: FAILED: {failure}", file=sys.stderr)
    return 1 if result.failures else 0
