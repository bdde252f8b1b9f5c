"""Random tensor-parallel and hybrid points on small models: the model against the simulation.

Each point draws a mode (``tp`` or ``hybrid``), a small chain model (``sequential``, ``mlp``,
``batchnorm`` of :mod:`hwaccel.compiler.cases`, or :class:`TinyLstm`), an instance count, a
split (``auto``, ``n``, and ``k`` where every layer is a Linear), a hybrid group size, a link
(latency ``L`` and receive buffer ``D``; width ``W`` the activation word's bytes) and a batch,
and runs it with every share on ``backend`` (``rtl``: the Verilated preset). A row: ``cycles``
(simulated), ``model_cycles``, ``cycles_match`` and ``mismatches`` against the golden
interpreter on one instance. ``python -m hwaccel.parallel.tp_points [COUNT] [SEED] [BACKEND]``
prints one line a point and a summary; exit status 1 if any point differs.
"""

from __future__ import annotations

import functools
import random
import sys

import torch
from torch import nn

__all__ = ["TinyLstm", "MODELS", "compiled", "random_points", "point"]

#: The models points draw from.
MODELS = ("sequential", "mlp", "batchnorm", "tiny_lstm")


class TinyLstm(nn.Module):
    """The reference LSTM's shape at the tiny cell's sizes: an embedding, two stacked layers,
    the last step into a Linear."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.emb = nn.Embedding(20, 6)
        self.rnn = nn.LSTM(6, 5, num_layers=2, batch_first=True)
        self.out = nn.Linear(5, 7)

    def forward(self, t):
        _, (h, _) = self.rnn(self.emb(t))
        return self.out(h[-1])


@functools.lru_cache(maxsize=16)
def compiled(name: str, n: int, preset: str = "tiny"):
    """``(compiled model, float or token inputs of n samples)`` for one of :data:`MODELS`
    (one compile per process: callers must not change them)."""
    import hwaccel
    from hwaccel.compiler.cases import make

    if name == "tiny_lstm":
        net = TinyLstm().eval()
        x = torch.randint(0, 20, (n, 5), generator=torch.Generator().manual_seed(5))
    else:
        net, inputs = make(name)
        x = inputs(n, torch.Generator().manual_seed(14))
    return hwaccel.compile(net, x, preset=preset), x


def random_points(count: int, seed: int = 14, backend: str = "golden",
                  max_batch: int = 6) -> list[dict]:
    """``count`` random points (module docstring), drawn from ``seed``."""
    cases = {name: compiled(name, max_batch) for name in MODELS}
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        name = rng.choice(MODELS)
        mode = rng.choice(["tp", "hybrid"])
        rows.append({"point": i, **point(rng, mode, name, *cases[name], backend, max_batch)})
    return rows


def point(rng: random.Random, mode: str, name: str, cm, x, backend: str = "golden",
          max_batch: int = 6, max_instances: int = 4, max_stages: int | None = None) -> dict:
    """One point of ``mode`` (``tp`` or ``hybrid``) on the model ``name`` (compiled ``cm``, its
    samples ``x``), the rest drawn from ``rng`` (module docstring): tp over at most
    ``max_instances``, hybrid over at most ``max_stages`` stages (default: one a layer)."""
    from ..generators.link.config import LinkConfig
    from .hybrid import run_hybrid
    from .tp import layer_count
    from .tp_run import run_tp

    latency = rng.choice([0, 1, 2, 5, 16])
    lanes = cm.config.lanes
    buffer = lanes * rng.randint(1, 2 * latency + 2)
    link = LinkConfig(width=lanes, latency=latency, buffer=buffer,
                      watchdog=max(64, 4 * (2 * latency + 1)), name="point")
    split = rng.choice(["auto", "n"] + (["k"] if name == "mlp" else []))
    m = rng.randint(1, max_batch)
    row = {"mode": mode, "model": name, "split": split, "L": latency, "W": lanes, "D": buffer,
           "batch": m}
    if mode == "tp":
        n = rng.randint(1, max_instances)
        (r,) = run_tp(cm, x[:m], [n], [latency], buffer=buffer, split=split, backend=backend,
                      clock=(100.0, "given"))
    else:
        group = rng.randint(1, 2)
        n = group * rng.randint(1, min(layer_count(cm), max_stages or layer_count(cm)))
        (r,) = run_hybrid(cm, x[:m], [n], group=group, split=split, link=link, backend=backend,
                          clock=(100.0, "given"))
        row["group"] = group
    row.update(N=n, cycles=r.cycles, model_cycles=r.model_cycles,
               cycles_match=r.cycles == r.model_cycles
               and r.single_cycles == r.single_model_cycles, mismatches=r.mismatches)
    return row


def main(argv: list[str]) -> int:
    count = int(argv[0]) if argv else 50
    seed = int(argv[1]) if len(argv) > 1 else 14
    backend = argv[2] if len(argv) > 2 else "rtl"
    rows = random_points(count, seed, backend)
    for r in rows:
        print(" ".join(f"{k}={v}" for k, v in r.items()))
    exact = sum(r["cycles_match"] for r in rows)
    bad = sum(r["mismatches"] for r in rows)
    print(f"{exact} of {len(rows)} points equal their model; {bad} samples differ from golden "
          f"(backend {backend}, seed {seed})")
    return 0 if exact == len(rows) and not bad else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
