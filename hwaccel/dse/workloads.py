"""The reference workloads, lowered for the two kinds of design point.

Systolic array points run every layer as GEMMs (:func:`gemm_layers`) through the array's exact
cycle model (:mod:`hwaccel.generators.systolic.perf`):

* CNN: each convolution as its im2col GEMM (``M`` = output pixels x batch, ``K = k*k*Cin``,
  ``N = Cout``), fc1 and fc2 as GEMMs with ``M`` = batch.
* LSTM (two layers of 64 over ``SEQ_LEN`` tokens, then Linear 10): a layer's input projections
  for all steps are one GEMM (``M = SEQ_LEN x batch``, ``K = I``, ``N = 4H``: x is known before
  the recurrence starts); its recurrent projections are one GEMM per step (``M`` = batch,
  ``K = H``, ``N = 4H``), since ``h_t`` needs ``h_{t-1}``.

Only GEMM cycles are counted on the array: requantization, activation functions, pooling and
the embedding lookup are left to the units around it (their cost is not part of this model).

Accelerator points run the same models as programs through :mod:`hwaccel.generators.accel.perf`:
the CNN program of :func:`hwaccel.generators.accel.cases.cnn_program` and an LSTM program of
two LSTM commands (on an accelerator with an LSTM cell) followed by a GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..generators.conv.cases import CNN_LAYERS
from ..generators.conv.model import im2col_shape
from ..models.data import SEQ_LEN
from ..models.nets import CLASSES, EMBED, HIDDEN

__all__ = ["GemmLayer", "WORKLOADS", "gemm_layers", "accel_program"]

WORKLOADS = ("cnn", "lstm")


@dataclass(frozen=True)
class GemmLayer:
    """``repeat`` GEMMs of ``(M x K) @ (K x N)``, run one after the other."""

    name: str
    m: int
    k: int
    n: int
    repeat: int = 1

    @property
    def macs(self) -> int:
        return self.repeat * self.m * self.k * self.n


def gemm_layers(workload: str, batch: int = 1) -> list[GemmLayer]:
    """The GEMMs of ``workload`` (``"cnn"`` or ``"lstm"``) for ``batch`` inputs."""
    if workload == "cnn":
        out = []
        for name, layer in CNN_LAYERS.items():
            m, k, n = im2col_shape(layer)
            out.append(GemmLayer(name, m * batch, k, n))
        flat = 3 * 3 * 64
        return out + [GemmLayer("fc1", batch, flat, 64), GemmLayer("fc2", batch, 64, CLASSES)]
    if workload == "lstm":
        gates = 4 * HIDDEN
        return [
            GemmLayer("lstm1_x", SEQ_LEN * batch, EMBED, gates),
            GemmLayer("lstm1_h", batch, HIDDEN, gates, repeat=SEQ_LEN),
            GemmLayer("lstm2_x", SEQ_LEN * batch, HIDDEN, gates),
            GemmLayer("lstm2_h", batch, HIDDEN, gates, repeat=SEQ_LEN),
            GemmLayer("fc", batch, HIDDEN, CLASSES),
        ]
    raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, not {workload!r}")


def accel_program(cfg, workload: str, batch: int = 1):
    """``(command words, {layer name: pcs})`` of ``workload`` on accelerator ``cfg``.

    Raises ``ValueError`` when the accelerator cannot run it (no LSTM cell, too small).
    """
    import numpy as np

    from ..generators.accel.cases import cnn_program, random_requant
    from ..generators.accel.driver import ProgramBuilder

    if workload == "cnn":
        prog = cnn_program(cfg, batch, seed=0).builder
        names = ["conv1", "conv2", "conv3", "fc1"]
        layers = {name: list(range(i * batch, (i + 1) * batch)) for i, name in enumerate(names)}
        layers["fc2"] = [4 * batch]
        return prog.commands, layers
    if workload != "lstm":
        raise ValueError(f"workload must be one of {', '.join(WORKLOADS)}, not {workload!r}")
    lc = cfg.lstm
    if lc is None:
        raise ValueError(f"{cfg.slug} has no LSTM cell (config lstm=None)")
    if lc.input_size < EMBED or lc.hidden_size < HIDDEN:
        raise ValueError(f"{cfg.slug}'s LSTM cell runs up to {lc.input_size} -> "
                         f"{lc.hidden_size}, the reference LSTM needs {EMBED} -> {HIDDEN}")
    from ..generators.lstm.cases import random_params

    rng = np.random.default_rng(0)
    b = ProgramBuilder(cfg)
    layers: dict[str, list[int]] = {"lstm1": [], "lstm2": []}
    ref = lc.with_(input_size=EMBED, hidden_size=HIDDEN)   # the command's sizes
    p1, p2 = random_params(ref, rng), random_params(ref, rng)   # stored once, used by all
    for _ in range(batch):
        x = b.put(np.zeros((EMBED, 1, SEQ_LEN), dtype=np.int64))
        layers["lstm1"].append(len(b.commands))
        h1 = b.lstm(x, p1)
        layers["lstm2"].append(len(b.commands))
        b.lstm(h1, p2)
    # fc: one GEMM over the batch's last h vectors (gathered here as a fresh tensor: the cycles
    # are those of the same GEMM).
    rows = b.put(np.zeros((HIDDEN, 1, batch), dtype=np.int64))
    layers["fc"] = [len(b.commands)]
    w = np.zeros((HIDDEN, CLASSES), dtype=np.int64)
    b.gemm(rows, w, *random_requant(rng, CLASSES, HIDDEN), relu=False)
    b.done()
    return b.commands, layers
