"""How many int8 values saturate, per layer, on given inputs -- counted exactly.

An int8 value *saturates* (is clipped) when the exact integer the arithmetic produced before
saturation lies outside [-128, 127] and the value is therefore stored as 127 or -128. Exact
integer means the rounded value the hardware computes before it clamps:

* the input: ``round_half_even(x / input_scale)`` (:func:`hwaccel.numerics.quantize`);
* a Conv2d or Linear: the requantizer's ``(acc * M + 2**(S-1)) >> S``
  (:func:`hwaccel.numerics.requantize`), per output value before a fused max-pool;
* a residual add: ``(a*Ma + b*Mb + 2**(S-1)) >> S`` (:func:`hwaccel.numerics.add_requantize`),
  and a positional embedding's constant add (the same arithmetic);
* a product of two activations (attention's scores and ``P . V``): its requantizer, as a
  Linear's;
* an LSTM layer: every step's h, ``(o * tanh(c) + 2**16) >> 17``
  (:func:`hwaccel.numerics.cell_update`); it reaches 128 only when o * tanh(c) is within
  half a step of 1.0.

So a value that is exactly 127 (or -128) is not counted, and neither is ReLU's clamp of
negative values to zero: that is the activation, not saturation. Embedding tables and max-pools
and average pools do not requantize (a table is quantized at its own ``max|w| / 127``: nothing
saturates; an average of int8 values is an int8 value).

Some saturation is by design: the quantizer clips the input and each hidden tensor where that
minimizes its quantization error over the calibration data (:mod:`.calibrate`), so the rare
values of its tail beyond the clip saturate. The graph's output is calibrated at ``max|x|``:
there a count means values beyond anything the calibration data held.

The counts come from the integer twin (:func:`hwaccel.compiler.int8.forward`), which equals the
golden model and the RTL exactly, so they are the hardware's own. Every backend saturates; none
wraps around: the input is clamped on the host (:func:`hwaccel.numerics.quantize`), and the
requantizers of the golden model, the twin and the RTL clamp (the conv engine's
``Mux(y > 127, 127, Mux(y < lo, lo, y))``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..numerics import INT8, INT32
from ..numerics import quantize as quantize_values
from . import ir

__all__ = ["Clipped", "saturation", "format_saturation"]


@dataclass(frozen=True)
class Clipped:
    """Saturation at one stage: ``layer`` ("input" or the layer's name) produced ``values``
    int8 values over the batch; ``high`` were clipped to 127, ``low`` to -128."""

    layer: str
    values: int
    high: int
    low: int

    @property
    def saturated(self) -> int:
        return self.high + self.low

    def to_json(self) -> dict:
        return asdict(self) | {"saturated": self.saturated}


def saturation(qg: ir.QGraph, x, batch: int = 256) -> list[Clipped]:
    """:class:`Clipped` for the input (float inputs only) and for every requantizing layer
    (Conv2d, Linear, add, LSTM, attention's products and constant adds) of ``qg``, in order,
    over the batch ``x`` (floats or token ids)."""
    from .int8 import forward
    from .quantize import quantize_input

    x_int = quantize_input(qg, x)  # checks shape, finiteness and token ids
    out = []
    if not qg.tokens:
        xf = ir.graph_input(qg, x.detach().to("cpu").numpy() if hasattr(x, "detach")
                            else np.asarray(x))
        exact = quantize_values(xf.astype(np.float64), qg.input_scale, INT32)
        out.append(Clipped("input", int(exact.size), int((exact > INT8.max).sum()),
                           int((exact < INT8.min).sum())))
    tally: dict = {}
    for i in range(0, len(x_int), batch):
        forward(qg, x_int[i:i + batch], "cpu", tally)
    names = [op.name for op in qg.ops
             if isinstance(op, (ir.QConv, ir.QLinear, ir.QAdd, ir.QMul, ir.QLstm, ir.QMatMul,
                                ir.QAddConstant))]
    out += [Clipped(name, *tally.get(name, (0, 0, 0))) for name in names]
    return out


def format_saturation(rows: list[Clipped], samples: int) -> list[str]:
    """Table lines: one per stage, values clipped high and low and their share."""
    if not rows:
        return []
    head = ["layer", "values", "saturated", "at 127", "at -128", "share"]
    cells = [[r.layer, f"{r.values:,}", f"{r.saturated:,}", f"{r.high:,}", f"{r.low:,}",
              f"{r.saturated / r.values:.2%}" if r.values else "-"] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(head)]
    lines = [f"saturation on {samples} samples (integer twin, exact): int8 values clipped to "
             f"127 or -128 because their exact value lay beyond",
             "  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(c, widths)) for c in cells]
    return lines
