"""Tensor parallelism: each layer of a compiled chain model spread over N instances.

Every layer runs layer-major on the whole batch (as the compiler runs it), as one program per
instance that holds that instance's share of the layer. How a layer is shared (:class:`TpLayer`):

* ``n`` (N-split): the layer's output channels are cut into N parts of whole words (``lanes``
  channels a word; the first parts take the extra words, a part may be empty when the layer has
  fewer output words than instances). Instance ``j`` runs the layer with its rows of the
  weights, bias and requantizer; its int8 slice of the output is exactly the whole layer's
  channels (the requantizer is per output channel). A ring all-gather then gives every instance
  the whole output, unless the next layer is a K-split Linear: its input slice on instance
  ``j`` is then exactly the channels instance ``j`` computed (both cut by :func:`word_parts`),
  so the gather is skipped (a column- then row-parallel pair, as Megatron-LM pairs its MLP).
* ``k`` (K-split, Linear layers only): the layer's input channels are cut the same way;
  instance ``j`` sums the products of its channels (instance 0 adds the bias) into int32 partial
  sums. A ring reduce-scatter adds the int32 partial sums chunk by chunk (chunks: the output
  channels cut into whole words), each instance requantizes the chunk it holds complete with
  :func:`hwaccel.numerics.requantize` and the layer's per-channel multiplier and shift, and a
  ring all-gather of the int8 chunks gives every instance the whole output. Requantizing the
  reduced int32 sums is what one instance does, so the result is bit-exact; reducing int8
  outputs would not be.
* ``b`` (LSTM layers, by default): the batch's sequences cut over the instances, each running
  the whole layer on its own sequences, then an all-gather of the outputs (skipped when the
  next layer is ``b`` too: each instance keeps its sequences' rows). The cell runs a whole
  sequence from zero state, so its hidden units cannot be split: that needs every instance's
  ``h`` at every step, which the cell cannot take. So a tp group shares an LSTM layer's batch,
  not its channels (``lstm="replicate"``: every instance runs the whole layer instead).
* ``replicated``: every instance runs the whole layer (no traffic): pools and depthwise convs
  (no reduction to share; each instance has the whole input), and LSTM layers when asked.
* ``whole``: every layer of a one-instance plan.

What runs where (see :mod:`.tp_sim` for the timing): an instance's share of a layer is a program
lowered by the compiler from a one-layer graph of the sliced layer (:func:`hwaccel.compiler.
lower.lower`), run by a runner (:mod:`.tp_layers`): by default the golden interpreter
(:func:`hwaccel.generators.accel.model.run_program`) for its int8 outputs and
:func:`hwaccel.generators.accel.perf.program_perf` for its cycles; with
:class:`.tp_rtl.RtlRunner` the Verilated accelerator, its outputs read back and its ``cycles``
counter (the cycle model's figure stays beside it, ``Share.model_cycles``). A K-split share's
int32 partial sums are not something the accelerator emits (its GEMM requantizes inside the
job): they are computed here as the exact integer sum the engine accumulates (products of int8
values in int64, checked to fit the int32 accumulator), and its cycles are those of the same
GEMM on the K slice (on the RTL with the RTL runner).

Refused (:class:`TpError`, naming the layer or instance): a model that is not a chain (a layer
reading two values, attention ops); ``k`` forced on a layer that is not a Linear; a share whose
program does not fit one program of the preset, or an instance whose resident shares (every
layer's weights and commands stay loaded) exceed its weight scratchpad or program memory.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..compiler import ir
from .tp_layers import Share, TpError, TpLayer, golden_runner, layer, segments, word_parts

__all__ = ["TpError", "Share", "TpLayer", "TpPlan", "SPLITS", "word_parts", "plan",
           "layer_inputs", "layer_count", "LSTM_POLICIES"]

#: What ``split`` may ask for: every layer N-split, K-split, or the faster of the two per layer.
SPLITS = ("auto", "n", "k")
#: What an LSTM layer does over several instances (it cannot be split over channels).
LSTM_POLICIES = ("batch", "replicate")


@dataclass(frozen=True)
class TpPlan:
    """A compiled model's layers over ``instances`` instances of ``config`` at ``batch``:
    ``input_words`` the host writes into each instance (the first layer's input, or its K
    slice), ``output_words`` it reads back from instance 0 (the last layer's whole output)."""

    config: object
    instances: int
    batch: int
    layers: tuple[TpLayer, ...]
    input_words: tuple[int, ...]
    output_words: int

    def describe(self) -> str:
        out = []
        for la in self.layers:
            parts = ", ".join(f"{s.hi - s.lo}" for s in la.shares)
            what = {"n": "output channels", "k": "input channels", "b": "samples"}
            how = f"{what[la.split]} {parts}" if la.split in what else la.reason
            kept = "" if la.gather else ", kept in place"
            out.append(f"{la.name}: {la.split} ({how}{kept}); cycles "
                       f"{', '.join(str(s.cycles) for s in la.shares)}")
        return "\n".join(out)


def layer_count(compiled) -> int:
    """Layers :func:`plan` sees (a Flatten joins the layer after it)."""
    return len(segments(compiled.qgraph))


def layer_inputs(compiled, x_int) -> np.ndarray:
    """The first layer's int8 input batch (the embedded sequence of token inputs)."""
    qg = compiled.qgraph
    return np.asarray(qg.ops[0].table[x_int] if qg.tokens else x_int, dtype=np.int64)


def plan(compiled, x_int, instances: int, split: str = "auto", *, link=None,
         layers: slice | None = None, x_layer=None, lstm: str = "batch", run=None
         ) -> tuple[TpPlan, np.ndarray]:
    """The :class:`TpPlan` of ``compiled`` on the batch ``x_int`` (int8 values or token ids)
    over ``instances`` instances, and the int8 outputs the instances produce. ``split``: one of
    :data:`SPLITS` (``auto``: per layer the split with the fewer modelled cycles over links of
    ``link``, N-split on ties); ``layers``: a range of layer indices (default: all), whose
    first layer reads ``x_layer`` (int8, batch first; default: computed from ``x_int`` on one
    instance); ``lstm``: ``batch`` (an LSTM layer's sequences split over the instances, ``b``)
    or ``replicate`` (every instance runs the whole layer); ``run``: what runs each share's
    program (default: :func:`.tp_layers.golden_runner`).

    Raises
    ------
    TpError
        Naming the layer or instance that cannot run (module docstring).
    """
    from .tp_sim import layer_cycles

    if lstm not in LSTM_POLICIES:
        raise TpError(f"lstm must be one of {', '.join(LSTM_POLICIES)}, not {lstm!r}")
    if split not in SPLITS:
        raise TpError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    if not isinstance(instances, int) or isinstance(instances, bool) or instances < 1:
        raise TpError(f"instances must be a positive integer, not {instances!r}")
    cfg = compiled.config
    run = run or golden_runner(cfg)
    segs = segments(compiled.qgraph)
    segs = segs if layers is None else segs[layers]
    if not segs:
        raise TpError(f"layers {layers} of the model's {len(segments(compiled.qgraph))} hold "
                      f"no layer")
    x = layer_inputs(compiled, np.asarray(x_int)) if x_layer is None else np.asarray(x_layer)
    if x_layer is None and layers is not None and layers.start:
        for ops, op in segments(compiled.qgraph)[:layers.start]:
            x = layer(cfg, ops, op, x, 1, "n", lstm, run)[1]
    first_x, out = x, []
    for ops, op in segs:
        if split == "auto" and isinstance(op, ir.QLinear) and instances > 1:
            # a K-split after an N-split spares that one's all-gather
            spared = layer_cycles(cfg, out[-1], link) - layer_cycles(
                cfg, dataclasses.replace(out[-1], gather=False), link) \
                if out and out[-1].split == "n" else 0
            tries = [layer(cfg, ops, op, x, instances, s, lstm, run) for s in ("n", "k")]
            best = min(tries, key=lambda t: layer_cycles(cfg, t[0], link) -
                       (spared if t[0].split == "k" else 0))
        else:
            best = layer(cfg, ops, op, x, instances, "n" if split == "auto" else split, lstm,
                         run)
        if out and (out[-1].split, best[0].split) in (("b", "b"), ("n", "k")):
            out[-1] = dataclasses.replace(out[-1], gather=False)
        out.append(best[0])
        x = best[1]
    _check_resident(cfg, out, instances)
    inputs = tuple(s.act_top for s in out[0].shares)
    return TpPlan(cfg, instances, len(first_x), tuple(out), inputs, out[-1].out_words), x


def _check_resident(cfg, layers, n) -> None:
    for j in range(n):
        wgt = sum(la.shares[j].wgt_words for la in layers)
        cmds = sum(la.shares[j].commands for la in layers)
        if wgt > cfg.wgt_depth:
            raise TpError(f"instance {j}: its shares of every layer need {wgt} weight words "
                          f"resident and {cfg.slug}'s weight scratchpad holds {cfg.wgt_depth}")
        if cmds > cfg.prog_depth:
            raise TpError(f"instance {j}: its shares of every layer are {cmds} commands and "
                          f"{cfg.slug}'s program memory holds {cfg.prog_depth}")
