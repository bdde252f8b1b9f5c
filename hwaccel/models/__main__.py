"""``python -m hwaccel.models [NAME ...]``: train (or load from the cache) each reference model
and print its MACs, folded parameters, time to train or load, and held-out score."""

from __future__ import annotations

import sys
import time

from torch import nn

from .metrics import folded_params, macs
from .registry import WORKLOADS, workload
from .train import cache_dir, evaluate, load


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(WORKLOADS)
    try:
        chosen = [workload(n) for n in names]
    except ValueError as exc:
        print(f"python -m hwaccel.models: error: {exc}", file=sys.stderr)
        return 2
    print(f"cache: {cache_dir()}")
    print(f"{'model':<18} {'MACs':>12} {'published':>10} {'params':>9} {'load s':>7}  score")
    for w in chosen:
        start = time.perf_counter()
        module, split = load(w.name)
        seconds = time.perf_counter() - start
        # the MAC counter knows Conv2d, Linear and attention: the LSTM gets none, not a wrong one
        lstm = any(isinstance(m, nn.LSTM) for m in module.modules())
        count, params = (("-", "-") if lstm else
                         (f"{macs(module, w.input_shape, dtype=w.input_dtype):,}",
                          f"{folded_params(module):,}"))
        score = evaluate(w.name, module, split)
        print(f"{w.name:<18} {count:>12} {w.published_macs or '-':>10} {params:>9} "
              f"{seconds:>7.1f}  {w.metric} {score:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
