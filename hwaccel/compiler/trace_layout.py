"""The tracer's readers of hand-written attention: the reshapes that split ``(batch, tokens,
features)`` into heads and back, their transposes, products of two activations, the scale folded
into them, causal masks, ``F.softmax`` and ``F.scaled_dot_product_attention``; and the token
heads (``x.mean(1)``, ``x[:, 0]``) and constants added on the device (positional embeddings).

Per-head tensors never become IR values: a :class:`Heads` keeps, per head, the ``(rows,
columns)`` matrix it is made of (a value, or a :class:`Cols` slice of one, emitted as a
:class:`~.ir_attention.Slice` only when read) and the order of its per-sample axes. A product or
softmax of heads is one op per head; reshaping the heads back to ``(tokens, features)`` is a
:class:`~.ir_attention.Concat`. A mixin of :class:`hwaccel.compiler.trace._Reader`.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import UnsupportedOp
from .trace_attention import Const, Results, causal_of

__all__ = ["Cols", "Split", "Heads", "Masked", "LayoutReaders"]


@dataclass(frozen=True)
class Cols:
    """Columns ``start:stop`` of the ``(T, F)`` value ``value`` (not emitted yet)."""

    value: str
    start: int
    stop: int


@dataclass(frozen=True)
class Split:
    """The tuple ``x.split(...)`` / ``x.chunk(...)`` returns: one :class:`Cols` per part."""

    parts: tuple


@dataclass(frozen=True)
class Heads:
    """A per-sample tensor made of one ``(rows, columns)`` matrix per head (a value name or
    :class:`Cols`); ``axes`` orders ``'h'`` (absent for one matrix), ``'r'`` and ``'c'``."""

    parts: tuple
    axes: tuple


@dataclass(frozen=True)
class Masked:
    """Attention scores with the causal mask applied: only a softmax may read them."""

    scores: Heads


_MATMUL = (operator.matmul, "matmul", "bmm")
_SCALE = (operator.mul, operator.truediv, "mul", "div")


def _number(arg) -> float | None:
    """``arg`` if it is a number, or an fx node computed from shapes and numbers only."""
    v = arg.meta.get("constant") if hasattr(arg, "meta") else arg
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


class LayoutReaders:
    """Readers of hand-written attention; ``self`` is a :class:`~.trace._Reader`."""

    def materialize(self, v, where: str) -> str:
        """The value name of ``v`` (a value name, :class:`Cols` or one ``(r, c)`` matrix)."""
        if isinstance(v, str):
            return v
        if isinstance(v, Cols):
            key = (v.value, v.start, v.stop)
            if key not in self.slices:
                self.slices[key] = self.put(ir.Slice(self.fresh(f"{v.value}[{v.start}:{v.stop}]"),
                                                     v.start, v.stop, inputs=(v.value,)))
            return self.slices[key]
        if isinstance(v, Heads) and v.axes == ("r", "c"):
            return self.materialize(v.parts[0], where)
        if isinstance(v, Masked):
            raise UnsupportedOp("masked attention scores", where, "only a softmax over the last "
                                                                  "dimension may read them")
        raise UnsupportedOp("a per-head tensor", where, f"axes {v.axes}; only products, softmax "
                            f"and transposes of heads, then a reshape back to (batch, tokens, "
                            f"features)")

    def layout(self, arg, where: str) -> Heads:
        v = self.resolve(arg, where)
        if isinstance(v, (Heads, Masked)):
            return v
        if isinstance(v, Cols) or isinstance(v, str) and len(self.shape(arg)) == 2:
            return Heads((v,), ("r", "c"))
        self.value(arg, where)  # refuses what it is
        raise UnsupportedOp("a product", where, f"of a per-sample shape {self.shape(arg)}; "
                                                f"only (tokens, features) matrices and heads")

    def result(self, parts: list, heads: bool):
        return Heads(tuple(parts), ("h", "r", "c")) if heads else parts[0]

    # --- entry point ---------------------------------------------------------------------------
    def layout_call(self, node, t, name: str, where: str) -> bool:
        """Read ``node`` if it is one of this module's; whether it was."""
        import torch
        import torch.nn.functional as F

        src = self.env.get(node.args[0]) if node.args and hasattr(node.args[0], "users") else None
        if t is operator.getitem and isinstance(src, (Split, Results)):
            self.part(node, where, src, node.args[1])
        elif t is getattr and isinstance(src, Results) and node.args[1] in ("values", "indices"):
            self.part(node, where, src, ("values", "indices").index(node.args[1]))
        elif t is operator.getitem and self.columns(node, where):
            pass
        elif name in ("split", "chunk") and t in (torch.split, torch.chunk, "split", "chunk"):
            self.split(node, where, name)
        elif name in ("view", "reshape", "flatten", "unflatten") and self.reshape(node, where):
            pass
        elif name in ("transpose", "permute") and t in (torch.transpose, torch.permute,
                                                        "transpose", "permute"):
            dims = node.args[1] if name == "permute" and len(node.args) == 2 else node.args[1:]
            if not dims:  # by keyword
                dims = tuple(node.kwargs.values())
            if not self.seq_view(node, where, name, tuple(dims)):   # a line as a sequence
                self.transpose(node, where, name, tuple(dims))
        elif t in _MATMUL or t in (torch.matmul, torch.bmm):
            self.matmul(node, where)
        elif t in _SCALE and _number(node.args[1]) is not None:
            k = _number(node.args[1])
            self.scale(node, where, k if t in (operator.mul, "mul") else 1 / k)
        elif t in ("masked_fill", torch.masked_fill):
            self.masked_fill(node, where)
        elif t is F.scaled_dot_product_attention:
            self.sdpa(node, where)
        elif name == "mean" and t in (torch.mean, "mean"):
            self.token_mean(node, where)
        elif name in ("amax", "sum") and t in (torch.amax, torch.sum, "amax", "sum") and len(
                self.shape(node.args[0])) == 3 and node.args[0] not in self.lines:
            self.spatial_reduce(node, where, name)   # an image's global max or sum
        elif name == "amax" and t in (torch.amax, "amax") and node.args[0] in self.lines:
            self.line_reduce(node, where, name)   # a line's global max
        elif name in ("layer_norm", "gelu") and t in (F.layer_norm, F.gelu):
            self.functional(node, where, name)
        else:
            return False
        return True

    # --- reading parts -------------------------------------------------------------------------
    def part(self, node, where: str, src, i: int) -> None:
        if isinstance(src, Split):
            self.env[node] = src.parts[i]
        elif src.values[i] is None:
            raise UnsupportedOp("a module's result", where, f"[{i}]: {src.why}")
        else:
            self.env[node] = src.values[i]

    def columns(self, node, where: str) -> bool:
        """``x[..., a:b]`` / ``x[:, :, a:b]`` of a (tokens, features) value: a :class:`Cols`;
        whether ``node`` was one."""
        arg, idx = node.args
        shape, sl = self.shape(arg), slice(None)
        if len(shape) != 2 or not isinstance(idx, tuple) or len(idx) not in (2, 3) or \
                idx[:-1] not in ((Ellipsis,), (sl, sl)) or not isinstance(idx[-1], slice) or \
                idx[-1].step not in (None, 1):
            return False
        start, stop, _ = idx[-1].indices(shape[1])
        if start >= stop:
            return False
        v = self.resolve(arg, where)
        base, off = (v.value, v.start) if isinstance(v, Cols) else (self.value(arg, where), 0)
        self.env[node] = Cols(base, off + start, off + stop)
        return True

    def split(self, node, where: str, name: str) -> None:
        arg = node.args[0]
        a = self.kwarg(node, ("tensor", "split_size_or_sections" if name == "split" else
                              "chunks", "dim"), {"dim": 0})
        shape = self.shape(arg)
        if len(shape) != 2 or a["dim"] not in (-1, 2):
            raise UnsupportedOp(name, where, f"dim={a['dim']} of a per-sample shape {shape}; "
                                             f"only the features of (batch, tokens, features)")
        v = self.resolve(arg, where)
        base, off = (v.value, v.start) if isinstance(v, Cols) else (self.value(arg, where), 0)
        parts, at = [], off
        for m in node.meta["tensor_meta"]:
            parts.append(Cols(base, at, at + m.shape[-1]))
            at += m.shape[-1]
        self.env[node] = Split(tuple(parts))

    def reshape(self, node, where: str) -> bool:
        """Split a ``(T, F)`` value into heads ``(T, h, d)`` or join ``(T, h, d)`` heads back;
        whether ``node`` was one of these."""
        arg = node.args[0]
        src, dst, v = self.shape(arg), self.shape(node), self.env.get(arg)
        if isinstance(v, Heads) and v.axes == ("r", "h", "c") and dst == (src[0], src[1] *
                                                                          src[2]):
            parts = tuple(self.materialize(p, where) for p in v.parts)
            self.emit(node, ir.Concat(self.name(node), inputs=parts))
            return True
        if isinstance(v, (Heads, Masked)):
            raise UnsupportedOp("reshape", where, f"of heads with axes {getattr(v, 'axes', '')}"
                                                  f" to {dst}; transpose them to (batch, tokens,"
                                                  f" heads, dim) first")
        if len(src) == 2 and len(dst) == 3 and dst[0] == src[0] and dst[1] * dst[2] == src[1]:
            v = self.resolve(arg, where)
            base, off = (v.value, v.start) if isinstance(v, Cols) else (self.value(arg, where),
                                                                        0)
            d = dst[2]
            self.env[node] = Heads(tuple(Cols(base, off + i * d, off + (i + 1) * d)
                                         for i in range(dst[1])), ("r", "h", "c"))
            return True
        return False

    def transpose(self, node, where: str, name: str, dims: tuple) -> None:
        h = self.layout(node.args[0], where)
        if isinstance(h, Masked):
            raise UnsupportedOp(name, where, "of masked scores; only a softmax may read them")
        rank = len(h.axes) + 1
        dims = tuple(d + rank if isinstance(d, int) and d < 0 else d for d in dims)
        if name == "transpose":
            perm = list(range(rank))
            perm[dims[0]], perm[dims[1]] = perm[dims[1]], perm[dims[0]]
        else:
            perm = list(dims)
        if sorted(perm) != list(range(rank)) or perm[0] != 0:
            raise UnsupportedOp(name, where, f"dims {dims}; the batch dimension stays first")
        self.env[node] = Heads(h.parts, tuple(h.axes[p - 1] for p in perm[1:]))

    # --- products and softmax ------------------------------------------------------------------
    def pairs(self, a: Heads, b: Heads, where: str, what: str):
        if ("h" in a.axes) != ("h" in b.axes) or len(a.parts) != len(b.parts) or any(
                "h" in x.axes and x.axes[0] != "h" for x in (a, b)):
            raise UnsupportedOp(what, where, f"of axes {a.axes} and {b.axes} ({len(a.parts)} and "
                                             f"{len(b.parts)} heads); only (tokens, features) "
                                             f"matrices, or as many heads as the batch's second "
                                             f"dimension on both")
        return zip(a.parts, b.parts)

    def matmul(self, node, where: str) -> None:
        a, b = (self.layout(x, where) for x in node.args[:2])
        if isinstance(a, Masked) or isinstance(b, Masked) or a.axes[-2:] != ("r", "c"):
            raise UnsupportedOp("matmul", where, "its first operand must be (tokens, features) "
                                                 "or heads of them, not transposed or masked")
        transpose_b = b.axes[-2:] == ("c", "r")
        base, n = self.name(node), self.shape(node)[-1]
        outs = [self.put(ir.MatMul(self.fresh(f"{base}.{i}") if len(a.parts) > 1 else base, n,
                                   transpose_b=transpose_b,
                                   inputs=(self.materialize(x, where),
                                           self.materialize(y, where))))
                for i, (x, y) in enumerate(self.pairs(a, b, where, "matmul"))]
        self.env[node] = self.result(outs, "h" in a.axes)

    def scale(self, node, where: str, factor: float) -> None:
        """A product's scale (``* 1 / sqrt(d)``) folded into the product(s) before it, when
        nothing else reads them."""
        arg = node.args[0]
        v = self.env.get(arg) if hasattr(arg, "users") else None
        parts = v.parts if isinstance(v, Heads) else (v,)
        ops = {op.name: i for i, op in enumerate(self.ops)}
        if len(arg.users) != 1 or not all(isinstance(p, str) and p in ops and isinstance(
                self.ops[ops[p]], ir.MatMul) for p in parts):
            if isinstance(v, str):   # a table of the product (:mod:`.trace_pointwise`)
                return self.scalar(node, where, "mul", factor, arg)
            raise UnsupportedOp(f"function {getattr(node.target, '__name__', node.target)}",
                                where, "a multiply or divide by a number of attention heads "
                                       "is only folded into the matmul before it, when "
                                       "nothing else reads it")
        for p in parts:
            op = self.ops[ops[p]]
            self.ops[ops[p]] = dataclasses.replace(op, scale=op.scale * float(factor))
        self.env[node] = v

    def masked_fill(self, node, where: str) -> None:
        a = self.kwarg(node, ("input", "mask", "value"), {})
        mask = self.env.get(a["mask"]) if hasattr(a["mask"], "users") else None
        rows = self.shape(node)[-2] if len(self.shape(node)) >= 2 else 0
        if a["value"] != float("-inf") or not isinstance(mask, Const) or mask.value.dtype != bool:
            raise UnsupportedOp("masked_fill", where, f"value={a['value']!r}; only a causal "
                                                      f"mask filled with -inf before a softmax")
        causal_of(mask, rows, where, "masked_fill mask")
        self.masked(node, where, a["input"])

    def masked(self, node, where: str, arg) -> None:
        h = self.layout(arg, where)
        if isinstance(h, Masked) or h.axes[-2:] != ("r", "c"):
            raise UnsupportedOp("a causal mask", where, f"on axes {h.axes}; only on scores")
        self.env[node] = Masked(h)

    def softmax(self, node, where: str, arg) -> None:
        h = self.layout(arg, where)
        causal = isinstance(h, Masked)
        h = h.scores if causal else h
        if h.axes[-2:] != ("r", "c"):
            raise UnsupportedOp("softmax", where, f"over axes {h.axes}; only each row")
        base = self.name(node)
        outs = [self.put(ir.Softmax(self.fresh(f"{base}.{i}") if len(h.parts) > 1 else base,
                                    causal, inputs=(self.materialize(p, where),)))
                for i, p in enumerate(h.parts)]
        self.env[node] = self.result(outs, "h" in h.axes)

    def sdpa(self, node, where: str) -> None:
        a = self.kwarg(node, ("query", "key", "value", "attn_mask", "dropout_p", "is_causal",
                              "scale", "enable_gqa"),
                       {"attn_mask": None, "dropout_p": 0.0, "is_causal": False, "scale": None,
                        "enable_gqa": False})
        what = "scaled_dot_product_attention attribute"
        if a["dropout_p"] not in (0, 0.0):
            raise UnsupportedOp(what, where, f"dropout_p={a['dropout_p']!r} (dropout in training "
                                             f"mode); pass dropout_p=0.0 outside training")
        if a["enable_gqa"]:
            raise UnsupportedOp(what, where, "enable_gqa=True; as many key heads as query heads")
        q, k, v = (self.layout(x, where) for x in (a["query"], a["key"], a["value"]))
        self.pairs(q, v, where, "attention")
        rows = self.shape(a["query"])[-2]
        mask = a["attn_mask"]
        if mask is not None:
            mask = self.env.get(mask) if hasattr(mask, "users") else mask
            if isinstance(mask, Const) and mask.value.dtype == bool:  # True: takes part
                mask = Const(~mask.value)
        causal = bool(a["is_causal"]) or causal_of(mask, rows, where, "attn_mask")
        if any(isinstance(x, Masked) or x.axes[-2:] != ("r", "c") for x in (q, k, v)):
            raise UnsupportedOp("scaled_dot_product_attention", where,
                                "query, key and value must be (tokens, dim) or heads of them")
        d = self.shape(a["query"])[-1]
        scale = a["scale"] if a["scale"] is not None else 1 / math.sqrt(d)
        base, n = self.name(node), self.shape(a["key"])[-2]
        outs = []
        for i, ((qh, kh), vh) in enumerate(zip(self.pairs(q, k, where, "attention"), v.parts)):
            s = self.put(ir.MatMul(self.fresh(f"{base}.scores{i}"), n, float(scale), True,
                                   inputs=(self.materialize(qh, where),
                                           self.materialize(kh, where))))
            p = self.put(ir.Softmax(self.fresh(f"{base}.probs{i}"), causal, inputs=(s,)))
            outs.append(self.put(ir.MatMul(self.fresh(f"{base}.pv{i}"), self.shape(node)[-1],
                                           inputs=(p, self.materialize(vh, where)))))
        self.env[node] = self.result(outs, "h" in q.axes)

    # --- heads and constants -------------------------------------------------------------------
    def token_mean(self, node, where: str) -> None:
        a = self.kwarg(node, ("input", "dim", "keepdim"), {"dim": None, "keepdim": False})
        shape = self.shape(node.args[0])
        if node.args[0] in self.lines:   # a Conv1d model's (C, L): the mean over its length
            return self.line_mean(node, where, a["dim"], a["keepdim"])
        if len(shape) == 3:  # an image's mean over its height and width: the global average
            return self.spatial_mean(node, where, a["dim"], a["keepdim"])
        if len(shape) != 2 or a["dim"] not in (1, -2, (1,), (-2,)) or a["keepdim"]:
            raise UnsupportedOp("mean", where, f"dim={a['dim']!r}, keepdim={a['keepdim']!r} on a "
                                               f"per-sample shape {shape}; only the mean over "
                                               f"the tokens of (batch, tokens, features), dim=1")
        self.unary(node, where, ir.TokenMean)

    def functional(self, node, where: str, name: str) -> None:
        if name == "gelu":
            return self.gelu(node, where, node.kwargs.get("approximate", "none"))
        a = self.kwarg(node, ("input", "normalized_shape", "weight", "bias", "eps"),
                       {"weight": None, "bias": None, "eps": 1e-5})
        feats = self.shape(node.args[0])[-1]
        params = []
        for k, default in (("weight", np.ones(feats)), ("bias", np.zeros(feats))):
            v = self.env.get(a[k]) if hasattr(a[k], "users") else None
            if a[k] is not None and not isinstance(v, Const):
                raise UnsupportedOp("layer_norm", where, f"{k} computed from the input")
            params.append(default if a[k] is None else np.asarray(v.value, dtype=np.float64))
        shape = a["normalized_shape"]
        shape = tuple(n.meta.get("constant", n) if hasattr(n, "meta") else n for n in (
            shape if isinstance(shape, (tuple, list)) else (shape,)))
        if shape != (feats,):
            raise UnsupportedOp("layer_norm attribute", where, f"normalized_shape={shape!r}; "
                                                               f"only the last axis ({feats},)")
        self.unary(node, where, lambda n: ir.LayerNorm(n, *params, float(a["eps"])))

    def add_constant(self, node, where: str, arg, const: Const) -> None:
        """``x + c``: a causal mask (-inf above the diagonal) on scores, or a constant added on
        the device (positional embeddings)."""
        c = np.asarray(const.value, dtype=np.float64)
        shape = self.shape(arg)
        if np.isneginf(c).any():
            causal_of(const, shape[-2] if len(shape) >= 2 else 0, where, "an additive mask")
            return self.masked(node, where, arg)
        try:
            full = np.broadcast_to(c, (1, *shape))[0].copy()
        except ValueError:
            full = None
        if full is None or c.ndim > len(shape) + 1 or (c.ndim == len(shape) + 1 and
                                                       c.shape[0] != 1):
            raise UnsupportedOp("add of a constant", where, f"of shape {tuple(c.shape)} to a "
                                                            f"per-sample shape {shape}; only one "
                                                            f"constant for every sample")
        from .errors import check_finite

        check_finite(full, const.param or "a constant", where)
        self.unary(node, where, lambda n: ir.AddConstant(n, full))
