"""A transformer's cycles by op class: where ``hwaccel bench accel --workload transformer`` spends
them.

Each layer of the compiled model (the quantized IR's op, named as the tracer names it, e.g.
``encoder.layers.0.self_attn.scores0``) falls into one class, decided by the op's type first and
its name only where the type alone does not tell (a product of two activations is ``scores``
unless its first operand is a softmax's output, then it is ``P.V``; a Linear is a projection
inside an attention block, an FFN layer when named ``linear1``/``linear2``):

=============  ==============================================================================
projections    the Linear layers of an attention block (q, k, v, out)
scores         Q . K^T (MATMUL whose operands are not probabilities)
softmax        SOFTMAX
P.V            probabilities times values (MATMUL whose first operand is a softmax's output)
LayerNorm      LAYERNORM
FFN            the feed-forward Linear layers (linear1, linear2)
GELU           GELU
adds           residual adds and constant adds (the positional embedding)
other          the rest: the patch embedding, pooling, the head, DONE, the host's writes
=============  ==============================================================================

:func:`op_summary` takes the per-layer rows of :func:`.workloads.model_rows` (cycle-model cycles,
equal to the RTL's when ``cycles_match``) and returns one row per class with its cycles, their
share of the total, its MACs and, for the classes with MACs, the fraction of their ideal
(MACs / (cycles x mac units)); :func:`headline` the figures of the attention issue: whole-model
utilization, ``Q.K^T`` and ``P.V`` against their ideal, and the share of softmax, LayerNorm,
GELU and adds together.
"""

from __future__ import annotations

__all__ = ["CLASSES", "NONLINEAR", "op_class", "op_summary", "headline"]

CLASSES = ("projections", "scores", "softmax", "P.V", "LayerNorm", "FFN", "GELU", "adds",
           "other")
#: The classes the issue's target bounds together (at most 25 % of the cycles).
NONLINEAR = ("softmax", "LayerNorm", "GELU", "adds")

_BY_TYPE = {"QSoftmax": "softmax", "QLayerNorm": "LayerNorm", "QGelu": "GELU", "QAdd": "adds",
            "QAddConstant": "adds"}
_PROJECTIONS = {"q", "k", "v", "out", "in_proj", "out_proj", "q_proj", "k_proj", "v_proj",
                "query", "key", "value"}
_FFN = {"linear1", "linear2"}


def op_class(op, producers: dict) -> str:
    """The class of quantized op ``op``; ``producers`` maps a tensor name to the op making
    it (the quantized IR names an op's output by the op)."""
    kind = type(op).__name__
    if kind in _BY_TYPE:
        return _BY_TYPE[kind]
    last = op.name.rsplit(".", 1)[-1]
    if kind == "QMatMul":
        src = producers.get(op.inputs[0])
        seen = set()
        while src is not None and type(src).__name__ in ("QSlice", "QConcat") \
                and src.name not in seen:   # a head's slice of the probabilities
            seen.add(src.name)
            src = producers.get(src.inputs[0])
        return "P.V" if src is not None and type(src).__name__ == "QSoftmax" else "scores"
    if kind == "QLinear":
        if last in _FFN:
            return "FFN"
        if last in _PROJECTIONS and ("attn" in op.name or "attention" in op.name):
            return "projections"
    return "other"


def op_summary(cm, layer_rows: list[dict], total: int, mac_units: int) -> list[dict]:
    """One row per class of :data:`CLASSES` (those with cycles) from the per-layer rows:
    ``op_class``, ``model_cycles``, ``share`` of ``total``, ``macs``, ``utilization`` (of the
    class's own cycles: its fraction of the ideal; only for a class with MACs) and the
    ``layers`` counted in it."""
    ops = {op.name: op for op in cm.qgraph.ops}
    producers = ops   # an op's output is named by the op
    per = {c: {"model_cycles": 0, "macs": 0, "layers": []} for c in CLASSES}
    for r in layer_rows:
        op = ops.get(r["layer"])
        c = op_class(op, producers) if op is not None else "other"
        per[c]["model_cycles"] += r["model_cycles"]
        per[c]["macs"] += r.get("macs", 0)
        per[c]["layers"].append(r["layer"])
    rows = []
    for c in CLASSES:
        p = per[c]
        if not p["model_cycles"]:
            continue
        row = {"layer": f"ops: {c}", "op_class": c, "model_cycles": p["model_cycles"],
               "share": p["model_cycles"] / total, "macs": p["macs"], "layers": p["layers"],
               "source": "perf model"}
        if p["macs"]:   # a class without MACs (softmax, LayerNorm, ...) has no utilization
            row["utilization"] = p["macs"] / (p["model_cycles"] * mac_units)
        rows.append(row)
    return rows


def headline(summary: list[dict], utilization: float) -> dict:
    """The issue's figures from :func:`op_summary`'s rows and the whole model's utilization."""
    by = {r["op_class"]: r for r in summary}

    def ideal(c):
        return by[c].get("utilization") if c in by else None

    return {"utilization": utilization, "scores_of_ideal": ideal("scores"),
            "pv_of_ideal": ideal("P.V"),
            "nonlinear_share": sum(by[c]["share"] for c in NONLINEAR if c in by),
            "shares": {r["op_class"]: r["share"] for r in summary}}
