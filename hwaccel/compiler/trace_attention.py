"""The tracer's readers of transformer modules: ``nn.MultiheadAttention`` (self-attention),
``nn.TransformerEncoderLayer`` and ``nn.TransformerEncoder``, which ``torch.fx`` sees as single
leaf modules (as it sees ``nn.LSTM``), lowered from their parameters into the ops of
:mod:`.ir_attention`; and ``nn.LayerNorm`` / ``F.layer_norm``, ``nn.GELU`` / ``F.gelu``. A mixin
of :class:`hwaccel.compiler.trace._Reader`; attributes the lowering does not reproduce exactly
are refused by name (:class:`~.errors.UnsupportedOp`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import UnsupportedOp, check_parameters
from .trace_ops import np_of

__all__ = ["Const", "Results", "TransformerReaders", "causal_of"]


@dataclass(frozen=True, eq=False)
class Const:
    """A tensor that does not depend on the input's values (a parameter or buffer read in
    ``forward``, or computed from them and from shapes): ``value`` as numpy; ``param`` the
    attribute path when it is a parameter or buffer read directly."""

    value: np.ndarray
    param: str | None = None


@dataclass(frozen=True)
class Results:
    """A module's tuple result (``nn.MultiheadAttention``'s ``(output, weights)``): the value
    names, ``None`` where an element is not computed (``why`` says so)."""

    values: tuple
    why: str


def causal_of(mask, rows: int, where: str, what: str) -> bool:
    """Whether the attention mask ``mask`` (``None`` or a :class:`Const`) is the causal mask of
    ``rows`` tokens (bool: True above the diagonal; float: -inf above it, 0 elsewhere); any
    other mask is refused."""
    if mask is None:
        return False
    if not isinstance(mask, Const):
        raise UnsupportedOp(what, where, "a mask computed from the input; only a constant "
                                         "causal mask (or is_causal=True)")
    m = np.asarray(mask.value)
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    above = np.triu(np.ones((rows, rows), dtype=bool), 1)
    if m.shape == (rows, rows):
        if m.dtype == bool and (m == above).all():
            return True
        if m.dtype != bool and (np.isneginf(m) == above).all() and (m[~above] == 0).all():
            return True
    raise UnsupportedOp(what, where, f"a {m.dtype} mask of shape {m.shape} that is not the "
                                     f"causal mask of {rows} tokens (True, or -inf, exactly above "
                                     f"the diagonal); no other masks")


def _hint(a: dict, mask, where: str, what: str) -> None:
    """Refuse ``is_causal=True`` without a mask: PyTorch's encoders ignore the hint then."""
    if a.get("is_causal") and mask is None:
        raise UnsupportedOp(f"{what} is_causal=True without a mask", where,
                            "PyTorch ignores the hint without the mask (the result is not "
                            "causal); pass the causal mask too")


def _layernorm_params(m, where: str, features: int) -> tuple:
    shape = tuple(m.normalized_shape)
    if shape != (features,):
        raise UnsupportedOp("LayerNorm attribute", where, f"normalized_shape={shape}; only the "
                                                           f"last axis ({features},)")
    w = np_of(m.weight) if m.weight is not None else np.ones(features)
    b = np_of(m.bias) if getattr(m, "bias", None) is not None else np.zeros(features)
    return w, b, float(m.eps)


class TransformerReaders:
    """Readers of transformer layers; ``self`` is a :class:`~.trace._Reader`."""

    def fresh(self, base: str) -> str:
        """A unique value name derived from ``base``."""
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}#{k}"
        self.names.add(name)
        return name

    def put(self, op) -> str:
        self.ops.append(op)
        return op.name

    def seq(self, node, where: str, what: str) -> tuple:
        shape = self.shape(node)
        if len(shape) != 2:
            raise UnsupportedOp(what, where, f"on a per-sample shape {shape}; it takes a "
                                             f"(tokens, features) input, batch first")
        return shape

    def attention_module(self, node, where: str, m) -> bool:
        """Read module ``m`` if it is self-attention, a transformer encoder (layer), a
        LayerNorm or a GELU; whether it was one."""
        import torch.nn as nn

        if isinstance(m, (nn.MultiheadAttention, nn.TransformerEncoderLayer,
                          nn.TransformerEncoder)):
            for path, sub in m.named_modules():
                check_parameters(sub, f"{node.target}.{path}" if path else node.target)
            if isinstance(m, nn.MultiheadAttention):
                self.mha(node, where, m)
            elif isinstance(m, nn.TransformerEncoderLayer):
                self.encoder_layer(node, where, m)
            else:
                self.encoder(node, where, m)
        elif isinstance(m, nn.LayerNorm):
            self.layernorm(node, where, m)
        elif isinstance(m, nn.GELU):
            self.gelu(node, where, m.approximate)
        else:
            return False
        return True

    # --- single layers -------------------------------------------------------------------------
    def layernorm(self, node, where: str, m) -> None:
        w, b, eps = _layernorm_params(m, where, self.shape(node.args[0])[-1])
        self.unary(node, where, lambda name: ir.LayerNorm(name, w, b, eps))

    def gelu(self, node, where: str, approximate: str) -> None:
        if approximate not in ("none", "tanh"):
            raise UnsupportedOp("GELU attribute", where, f"approximate={approximate!r}")
        self.unary(node, where, lambda name: ir.Gelu(name, approximate))

    # --- attention -----------------------------------------------------------------------------
    def mha_checks(self, m, where: str) -> None:
        """Refuse what the self-attention lowering does not reproduce."""
        bad = [f"{n}={v!r}" for n, v, ok in (
            ("batch_first", m.batch_first, m.batch_first),
            ("add_bias_kv", m.bias_k is not None, m.bias_k is None),
            ("add_zero_attn", m.add_zero_attn, not m.add_zero_attn),
            ("kdim/vdim", (m.kdim, m.vdim), m._qkv_same_embed_dim)) if not ok]
        if bad:
            raise UnsupportedOp("MultiheadAttention attribute", where, ", ".join(bad) + "; "
                                "batch_first self-attention without bias_k/bias_v or zero "
                                "attention, kdim = vdim = embed_dim")

    def self_attention(self, base: str, src: str, m, rows: int, causal: bool) -> str:
        """Q, K, V projections, per head ``softmax(Q_h K_h^T / sqrt(d)) V_h``, the heads side by
        side and the output projection, from the parameters of ``nn.MultiheadAttention`` ``m``;
        returns the output value."""
        e, heads = m.embed_dim, m.num_heads
        d = e // heads
        w_in = np_of(m.in_proj_weight)
        b_in = np_of(m.in_proj_bias) if m.in_proj_bias is not None else np.zeros(3 * e)
        qkv = [self.put(ir.Linear(self.fresh(f"{base}.{p}"), w_in[i * e:(i + 1) * e],
                                  b_in[i * e:(i + 1) * e], inputs=(src,)))
               for i, p in enumerate("qkv")]
        outs = []
        for h in range(heads):
            if heads == 1:
                q, k, v = qkv
            else:
                q, k, v = (self.put(ir.Slice(self.fresh(f"{base}.{p}{h}"), h * d, (h + 1) * d,
                                             inputs=(x,))) for p, x in zip("qkv", qkv))
            s = self.put(ir.MatMul(self.fresh(f"{base}.scores{h}"), rows, 1 / math.sqrt(d),
                                   transpose_b=True, inputs=(q, k)))
            p = self.put(ir.Softmax(self.fresh(f"{base}.probs{h}"), causal, inputs=(s,)))
            outs.append(self.put(ir.MatMul(self.fresh(f"{base}.pv{h}"), d, inputs=(p, v))))
        cat = outs[0] if heads == 1 else self.put(ir.Concat(self.fresh(f"{base}.heads"),
                                                            inputs=tuple(outs)))
        w_out = m.out_proj
        b_out = np_of(w_out.bias) if w_out.bias is not None else np.zeros(e)
        return self.put(ir.Linear(self.fresh(f"{base}.out"), np_of(w_out.weight), b_out,
                                  inputs=(cat,)))

    def kwarg(self, node, names: tuple, defaults: dict) -> dict:
        out = dict(defaults)
        out.update(zip(names, node.args))
        out.update(node.kwargs)
        return out

    def mask_of(self, arg):
        return self.env.get(arg) if hasattr(arg, "users") else arg

    def mha(self, node, where: str, m) -> None:
        a = self.kwarg(node, ("query", "key", "value", "key_padding_mask", "need_weights",
                              "attn_mask", "average_attn_weights", "is_causal"),
                       {"key_padding_mask": None, "attn_mask": None, "is_causal": False})
        self.mha_checks(m, where)
        if not (a["query"] is a["key"] is a["value"]):
            raise UnsupportedOp("cross-attention", where, "query, key and value must be one "
                                                          "tensor (self-attention)")
        if a["key_padding_mask"] is not None:
            raise UnsupportedOp("MultiheadAttention key_padding_mask", where,
                                "padding masks are not supported; only a causal attn_mask")
        rows = self.seq(a["query"], where, "MultiheadAttention")[0]
        causal = causal_of(self.mask_of(a["attn_mask"]), rows, where, "attn_mask")
        src = self.value(a["query"], where)
        out = self.self_attention(node.target, src, m, rows, causal)
        self.env[node] = Results((out, None), "the attention weights (need_weights) are not "
                                              "computed; read only the output, [0]")

    def encoder_layer(self, node, where: str, m, prefix: str = "", src=None, mask=None,
                      arg=None) -> str:
        """One ``nn.TransformerEncoderLayer``; returns its output value."""
        import torch.nn as nn
        import torch.nn.functional as F

        base = prefix or node.target
        if prefix == "":
            a = self.kwarg(node, ("src", "src_mask", "src_key_padding_mask", "is_causal"),
                           {"src_mask": None, "src_key_padding_mask": None})
            if a["src_key_padding_mask"] is not None:
                raise UnsupportedOp("TransformerEncoderLayer src_key_padding_mask", where,
                                    "padding masks are not supported; only a causal src_mask")
            arg, mask = a["src"], self.mask_of(a["src_mask"])
            _hint(a, mask, where, "TransformerEncoderLayer")
            src = self.value(arg, where)
        rows, feats = self.seq(arg, where, "TransformerEncoderLayer")
        causal = causal_of(mask, rows, where, "src_mask")
        self.mha_checks(m.self_attn, f"{where}.self_attn")
        act = m.activation
        relu = act is F.relu or isinstance(act, nn.ReLU)
        gelu = "none" if act is F.gelu else getattr(act, "approximate", None) if isinstance(
            act, nn.GELU) else None
        if not relu and gelu is None:
            raise UnsupportedOp("TransformerEncoderLayer attribute", where,
                                f"activation={act!r}; only relu or gelu")
        norms = []
        for k in (1, 2):
            w, b, eps = _layernorm_params(getattr(m, f"norm{k}"), where, feats)
            norms.append(lambda x, k=k, w=w, b=b, eps=eps: self.put(ir.LayerNorm(
                self.fresh(f"{base}.norm{k}"), w, b, eps, inputs=(x,))))

        def attn(x):
            return self.self_attention(f"{base}.self_attn", x, m.self_attn, rows, causal)

        def ffn(x):
            lin = []
            for k in (1, 2):
                lm = getattr(m, f"linear{k}")
                b = np_of(lm.bias) if lm.bias is not None else np.zeros(lm.out_features)
                lin.append((np_of(lm.weight), b))
            h = self.put(ir.Linear(self.fresh(f"{base}.linear1"), *lin[0], relu=relu,
                                   inputs=(x,)))
            if not relu:
                h = self.put(ir.Gelu(self.fresh(f"{base}.gelu"), gelu, inputs=(h,)))
            return self.put(ir.Linear(self.fresh(f"{base}.linear2"), *lin[1], inputs=(h,)))

        def add(k, x, y):
            return self.put(ir.Add(self.fresh(f"{base}.add{k}"), inputs=(x, y)))

        if m.norm_first:
            x = add(1, src, attn(norms[0](src)))
            out = add(2, x, ffn(norms[1](x)))
        else:
            x = norms[0](add(1, src, attn(src)))
            out = norms[1](add(2, x, ffn(x)))
        if prefix == "":
            self.env[node] = out
        return out

    def encoder(self, node, where: str, m) -> None:
        import torch.nn as nn

        a = self.kwarg(node, ("src", "mask", "src_key_padding_mask", "is_causal"),
                       {"mask": None, "src_key_padding_mask": None})
        if a["src_key_padding_mask"] is not None:
            raise UnsupportedOp("TransformerEncoder src_key_padding_mask", where,
                                "padding masks are not supported; only a causal mask")
        arg, mask = a["src"], self.mask_of(a["mask"])
        _hint(a, mask, where, "TransformerEncoder")
        x = self.value(arg, where)
        for k, layer in enumerate(m.layers):
            if not isinstance(layer, nn.TransformerEncoderLayer):
                raise UnsupportedOp(f"module {type(layer).__name__}", f"{where}.layers.{k}",
                                    "a TransformerEncoder of TransformerEncoderLayers only")
            x = self.encoder_layer(node, f"{where}.layers.{k}", layer,
                                   prefix=f"{node.target}.layers.{k}", src=x, mask=mask, arg=arg)
        if m.norm is not None:
            w, b, eps = _layernorm_params(m.norm, f"{where}.norm", self.shape(arg)[-1])
            x = self.put(ir.LayerNorm(self.fresh(f"{node.target}.norm"), w, b, eps,
                                      inputs=(x,)))
        self.env[node] = x

