"""``nn.Module`` -> float IR (:class:`hwaccel.compiler.ir.Graph`) through ``torch.fx``.

The model is traced symbolically (``torch.fx.symbolic_trace``), its per-node shapes come from
running ``example`` through the traced graph (``ShapeProp``), and the nodes are read in order
into a chain of IR ops. Every node is either mapped exactly or refused with
:class:`UnsupportedOp`, which names the op, the node and module path, and what is supported:
nothing is approximated. ReLU is fused into the Conv2d or Linear before it (through MaxPool2d and
Flatten, which commute with it); ``out[:, -1]`` and ``h_n[-1]`` after an LSTM make it a
last-step LSTM; dropout and identities are the no-ops they are in eval mode. Every parameter
and buffer of a module it reads, and every batch-norm-folded tensor, must be finite
(:class:`~.errors.NonFiniteError` names it and its layer).
"""

from __future__ import annotations

import dataclasses
import operator

import numpy as np

from . import ir
from .errors import SUPPORTED, UnsupportedOp, check_finite, check_parameters

__all__ = ["SUPPORTED", "UnsupportedOp", "trace"]


def _np(t) -> np.ndarray:
    return t.detach().to("cpu").double().numpy().copy()


def _args(node, names: tuple[str, ...], defaults: dict) -> dict:
    """A call's arguments by name (positional ones first), defaults filled in."""
    out = dict(defaults)
    out.update(zip(names, node.args))
    out.update(node.kwargs)
    return out


def _pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


_RELU = ("relu", "relu_")
_HEADS = {"softmax": "softmax", "log_softmax": "log_softmax", "argmax": "argmax"}


class _Reader:
    """Reads a traced graph node by node into a chain of IR ops."""

    def __init__(self, gm):
        self.modules = dict(gm.named_modules())
        self.ops: list = []
        self.head = None               # the node whose value the next op must consume
        self.role: dict = {}           # node -> "lstm" | "state" | "h_n" | "size"
        self.input_shape: tuple = ()
        self.tokens = False
        self.host = "logits"
        self.names: set[str] = set()

    # --- helpers -------------------------------------------------------------------------------
    def name(self, node) -> str:
        """An op's name: its module path (``conv1``, ``features.0``) or, for a function, its
        node name; a module called twice gets ``#2``, ``#3``: names are unique."""
        base = node.target if node.op == "call_module" else node.name
        name, k = base, 1
        while name in self.names:
            k += 1
            name = f"{base}#{k}"
        self.names.add(name)
        return name

    @staticmethod
    def shape(node) -> tuple:
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape[1:]) if hasattr(meta, "shape") else ()

    def take(self, node, arg, where: str) -> None:
        if arg is not self.head:
            name = getattr(arg, "name", repr(arg))
            raise UnsupportedOp("non-chain dataflow", where,
                                f"it reads {name}, not the previous result "
                                f"{getattr(self.head, 'name', None)} (only chains of ops: no "
                                f"residual connections, branches or reused results)")
        if self.host != "logits":
            raise UnsupportedOp("an op after the host head", where,
                                f"{self.host} must be the model's last op")
        self.head = node

    def add(self, node, where: str, op) -> None:
        self.take(node, node.args[0], where)
        self.ops.append(op)

    def relu(self, node, where: str) -> None:
        self.take(node, node.args[0], where)
        for i in range(len(self.ops) - 1, -1, -1):
            op = self.ops[i]
            if isinstance(op, (ir.Conv2d, ir.Linear)):
                self.ops[i] = dataclasses.replace(op, relu=True)
                return
            if not isinstance(op, (ir.MaxPool2d, ir.Flatten)):
                break
        after = type(self.ops[-1]).__name__ if self.ops else "the input"
        raise UnsupportedOp("ReLU", where, f"it follows {after}; a ReLU is fused into the "
                                           f"Conv2d or Linear before it")

    def image(self, node, where: str, what: str) -> None:
        """Refuse ``what`` unless its input is a batch of ``(C, H, W)`` images."""
        shape = self.shape(node.args[0])
        if len(shape) != 3:
            raise UnsupportedOp(what, where, f"on a per-sample shape {shape}; it takes "
                                             f"(channels, height, width) images")

    def flatten(self, node, where: str) -> None:
        src, dst = self.shape(node.args[0]), self.shape(node)
        if dst == src:  # a reshape that changes nothing
            self.take(node, node.args[0], where)
            return
        if len(src) != 3 or dst != (int(np.prod(src)),):
            raise UnsupportedOp("reshape", where, f"per-sample shape {src} -> {dst}; only an "
                                                  f"image's flatten to a vector is supported")
        self.add(node, where, ir.Flatten(self.name(node)))

    def maxpool(self, node, where: str, a: dict) -> None:
        k, s = _pair(a["kernel_size"]), _pair(a["stride"] or a["kernel_size"])
        bad = {n: v for n, v, ok in (("kernel_size", k, k == (2, 2)), ("stride", s, s == (2, 2)),
                                     ("padding", a["padding"], _pair(a["padding"]) == (0, 0)),
                                     ("dilation", a["dilation"], _pair(a["dilation"]) == (1, 1)),
                                     ("ceil_mode", a["ceil_mode"], not a["ceil_mode"]),
                                     ("return_indices", a["return_indices"],
                                      not a["return_indices"])) if not ok}
        if bad:
            raise UnsupportedOp("MaxPool2d attribute", where,
                                ", ".join(f"{n}={v!r}" for n, v in bad.items()))
        self.image(node, where, "MaxPool2d")
        self.add(node, where, ir.MaxPool2d(self.name(node)))

    def set_head(self, node, where: str, kind: str, dim) -> None:
        rank = len(self.shape(node.args[0])) + 1
        if dim not in (-1, rank - 1):
            raise UnsupportedOp(kind, where, f"dim={dim!r}; only the last dimension")
        self.take(node, node.args[0], where)
        self.host = kind

    # --- modules -------------------------------------------------------------------------------
    def module(self, node) -> None:
        import torch.nn as nn

        m = self.modules[node.target]
        where = f"{node.name} (module {node.target!r}, {type(m).__name__})"
        check_parameters(m, node.target)  # before any of them is folded, scaled or quantized
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)):
            self.take(node, node.args[0], where)
        elif isinstance(m, nn.ReLU):
            self.relu(node, where)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self.batchnorm(node, where, m)
        elif isinstance(m, nn.Conv2d):
            self.ops.append(self.conv(node, where, m))
        elif isinstance(m, nn.MaxPool2d):
            self.maxpool(node, where, {n: getattr(m, n) for n in (
                "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices")})
        elif isinstance(m, nn.Linear):
            if len(self.shape(node.args[0])) not in (1, 2):
                raise UnsupportedOp("Linear", where, f"on a per-sample shape "
                                    f"{self.shape(node.args[0])}; flatten an image first")
            bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_features)
            self.add(node, where, ir.Linear(self.name(node), _np(m.weight), bias))
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise UnsupportedOp("Flatten attribute", where,
                                    f"start_dim={m.start_dim}, end_dim={m.end_dim}")
            self.flatten(node, where)
        elif isinstance(m, nn.Embedding):
            if self.ops or not self.tokens:
                raise UnsupportedOp("Embedding", where, "only on the model's token-id input")
            if m.max_norm is not None:
                raise UnsupportedOp("Embedding attribute", where,
                                    f"max_norm={m.max_norm} (renormalizes rows)")
            self.add(node, where, ir.Embedding(self.name(node), _np(m.weight)))
        elif isinstance(m, nn.LSTM):
            self.lstm(node, where, m)
        elif isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            self.set_head(node, where, "softmax" if isinstance(m, nn.Softmax) else "log_softmax",
                          m.dim)
        else:
            raise UnsupportedOp(f"module {type(m).__name__}", where)

    def batchnorm(self, node, where: str, m) -> None:
        """Fold an eval-mode batch norm into the Conv2d or Linear that produced its input:
        ``y = (x - mean) * gamma / sqrt(var + eps) + beta`` is a per-channel affine map, so it
        becomes the layer's weights and bias (exact up to float64 rounding)."""
        import torch.nn as nn

        prev = self.ops[-1] if self.ops else None
        want = ir.Conv2d if isinstance(m, nn.BatchNorm2d) else ir.Linear
        if not isinstance(prev, want) or prev.relu or (want is ir.Linear and len(
                self.shape(node.args[0])) != 1):
            raise UnsupportedOp(type(m).__name__, where, f"only right after a {want.__name__} "
                                                         f"(on vectors for BatchNorm1d, no ReLU "
                                                         f"between): it is folded into it")
        if m.running_mean is None:
            raise UnsupportedOp(f"{type(m).__name__} attribute", where,
                                "track_running_stats=False (batch statistics at inference)")
        self.take(node, node.args[0], where)
        scale = _np(m.weight) if m.affine else np.ones(m.num_features)
        shift = _np(m.bias) if m.affine else np.zeros(m.num_features)
        var = _np(m.running_var) + m.eps
        with np.errstate(invalid="ignore", divide="ignore"):  # refused just below, by name
            scale = scale / np.sqrt(var)
        w = prev.weight * scale.reshape(-1, *([1] * (prev.weight.ndim - 1)))
        b = (prev.bias - _np(m.running_mean)) * scale + shift
        why = f"; {node.target}.running_var + eps must be > 0, not {float(var.min())!r}"
        for what, v in (("weight", w), ("bias", b)):
            check_finite(v, f"{prev.name}.{what} with {node.target} folded in",
                         f"{prev.name!r} ({type(prev).__name__})",
                         hint=why if (var <= 0).any() else "")
        self.ops[-1] = dataclasses.replace(prev, weight=w, bias=b)

    def conv(self, node, where: str, m) -> ir.Conv2d:
        k, s = _pair(m.kernel_size), _pair(m.stride)
        attrs = [("kernel_size", k, k[0] == k[1]), ("stride", s, s[0] == s[1] and s[0] in (1, 2)),
                 ("groups", m.groups, m.groups == 1),
                 ("dilation", m.dilation, _pair(m.dilation) == (1, 1)),
                 ("padding_mode", m.padding_mode, m.padding_mode == "zeros")]
        pad = m.padding
        if pad == "valid":
            pad = (0, 0)
        elif pad == "same":
            pad = ((k[0] - 1) // 2,) * 2 if k[0] % 2 == 1 and s[0] == 1 else "same"
        pad = _pair(pad)
        attrs.append(("padding", m.padding, pad[0] == pad[1] and isinstance(pad[0], int)
                      and pad[0] <= (k[0] - 1) // 2))
        bad = [f"{n}={v!r}" for n, v, ok in attrs if not ok]
        if bad:
            raise UnsupportedOp("Conv2d attribute", where, ", ".join(bad))
        self.image(node, where, "Conv2d")
        bias = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels)
        self.take(node, node.args[0], where)
        return ir.Conv2d(self.name(node), _np(m.weight), bias, s[0], pad[0])

    def lstm(self, node, where: str, m) -> None:
        bad = [f"{n}={v!r}" for n, v, ok in (
            ("batch_first", m.batch_first, m.batch_first),
            ("bidirectional", m.bidirectional, not m.bidirectional),
            ("proj_size", m.proj_size, m.proj_size == 0)) if not ok]
        if len(node.args) > 1 or node.kwargs:
            bad.append("an initial state (h0, c0); the cell starts from zero")
        if bad:
            raise UnsupportedOp("LSTM attribute", where, ", ".join(bad))
        if len(self.shape(node.args[0])) != 2:
            raise UnsupportedOp("LSTM", where, f"on a per-sample shape "
                                f"{self.shape(node.args[0])}; it takes a (steps, features) input")
        layers = []
        for k in range(m.num_layers):
            w_ih = getattr(m, f"weight_ih_l{k}")
            b = [getattr(m, f"bias_{n}_l{k}") if m.bias else None for n in ("ih", "hh")]
            zeros = np.zeros(w_ih.shape[0])
            layers.append(ir.LstmWeights(_np(w_ih), _np(getattr(m, f"weight_hh_l{k}")),
                                         *(zeros if v is None else _np(v) for v in b)))
        self.add(node, where, ir.LSTM(self.name(node), tuple(layers)))
        self.role[node] = "lstm"

    # --- getitem on LSTM results ---------------------------------------------------------------
    def getitem(self, node, where: str) -> None:
        src, idx = node.args
        role = self.role.get(src)
        last = self.ops[-1] if self.ops else None
        if role == "lstm" and idx in (0, 1):
            self.take(node, src, where)
            self.role[node] = None if idx == 0 else "state"
            return
        if role == "state" and idx == 0:
            self.take(node, src, where)
            self.role[node] = "h_n"
            return
        if role == "h_n" and idx in (-1, len(last.layers) - 1):
            return self.last_step(node, src, where, last)
        if role is None and isinstance(last, ir.LSTM) and not last.last_step:
            steps = self.shape(src)[0] if self.shape(src) else None
            sl = slice(None)
            if isinstance(idx, tuple) and len(idx) in (2, 3) and idx[0] == sl and \
                    idx[1] in (-1, steps - 1 if steps else -1) and idx[2:] in ((), (sl,)):
                return self.last_step(node, src, where, last)
        raise UnsupportedOp("indexing", where, f"[{idx!r}] on {src.name}; only an LSTM's "
                                               f"out[:, -1] or h_n[-1] (its last step)")

    def last_step(self, node, src, where: str, lstm: ir.LSTM) -> None:
        self.take(node, src, where)
        self.ops[-1] = dataclasses.replace(lstm, last_step=True)
        self.role[node] = None

    # --- functions and methods -----------------------------------------------------------------
    def call(self, node) -> None:
        import torch
        import torch.nn.functional as F

        t = node.target
        name = t if isinstance(t, str) else getattr(t, "__name__", repr(t))
        where = f"{node.name} ({'.' if node.op == 'call_method' else ''}{name})"
        if node.op == "call_method" and name in ("size", "dim") or (
                t is getattr and node.args[1] == "shape"):
            self.role[node] = "size"  # feeds a reshape's arguments, not the chain
        elif t is operator.getitem and self.role.get(node.args[0]) == "size":
            self.role[node] = "size"
        elif t is operator.getitem:
            self.getitem(node, where)
        elif name in _RELU and t in (torch.relu, torch.relu_, F.relu, "relu", "relu_"):
            self.relu(node, where)
        elif name in ("flatten", "view", "reshape") and t in (torch.flatten, "flatten", "view",
                                                               "reshape"):
            if name == "flatten":
                a = _args(node, ("input", "start_dim", "end_dim"), {"start_dim": 0,
                                                                     "end_dim": -1})
                if a["start_dim"] != 1 or a["end_dim"] != -1:
                    raise UnsupportedOp("flatten", where, f"start_dim={a['start_dim']}, "
                                                          f"end_dim={a['end_dim']}")
            self.flatten(node, where)
        elif t is F.max_pool2d or name == "max_pool2d":
            a = _args(node, ("input", "kernel_size", "stride", "padding", "dilation",
                             "ceil_mode", "return_indices"),
                      {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                       "return_indices": False})
            self.maxpool(node, where, a)
        elif t is F.dropout:
            a = _args(node, ("input", "p", "training"), {"p": 0.5, "training": True})
            if a["training"] is not False:
                raise UnsupportedOp("dropout in training mode", where,
                                    "pass training=self.training (False in eval mode)")
            self.take(node, node.args[0], where)
        elif t == "contiguous":
            self.take(node, node.args[0], where)
        elif name in _HEADS and t in (torch.softmax, torch.log_softmax, torch.argmax,
                                      F.softmax, F.log_softmax, "softmax", "log_softmax",
                                      "argmax"):
            a = _args(node, ("input", "dim"), {"dim": None})
            self.set_head(node, where, _HEADS[name], a["dim"])
        else:
            raise UnsupportedOp(f"{'method' if node.op == 'call_method' else 'function'} "
                                f"{name}", where)

    # --- the graph -----------------------------------------------------------------------------
    def read(self, graph) -> ir.Graph:
        for node in graph.nodes:
            if node.op == "placeholder":
                if self.head is not None:
                    raise UnsupportedOp("a second input", node.name, "models take one tensor")
                meta = node.meta.get("tensor_meta")
                self.head = node
                self.input_shape = tuple(meta.shape[1:])
                self.tokens = not meta.dtype.is_floating_point
            elif node.op == "call_module":
                self.module(node)
            elif node.op in ("call_function", "call_method"):
                self.call(node)
            elif node.op == "get_attr":
                raise UnsupportedOp("a parameter used outside its module", node.name,
                                    f"{node.target} (use the module, e.g. nn.Linear)")
            elif node.op == "output":
                if node.args[0] is not self.head:
                    raise UnsupportedOp("model output", node.name,
                                        "it must be the single result of the chain of ops")
        if self.tokens and not (self.ops and isinstance(self.ops[0], ir.Embedding)):
            raise UnsupportedOp("integer input", "the model's input",
                                "token ids must go through an Embedding first")
        if not self.ops:
            raise UnsupportedOp("an empty model", "forward", "it has no layers")
        return ir.Graph(self.input_shape, self.tokens, tuple(self.ops), self.host)


def trace(model, example) -> ir.Graph:
    """The float IR of ``model`` (traced in eval mode; its training flag is restored)."""
    import torch
    import torch.fx
    from torch.fx.passes.shape_prop import ShapeProp

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    example = torch.as_tensor(example)
    was_training = model.training
    model.eval()
    try:
        try:
            gm = torch.fx.symbolic_trace(model)
        except Exception as exc:  # fx's errors: data-dependent control flow and the like
            raise UnsupportedOp("untraceable Python in forward()", type(model).__name__,
                                f"torch.fx cannot trace it ({exc})") from exc
        with torch.no_grad():
            ShapeProp(gm).propagate(example)
        gm.graph.eliminate_dead_code()  # e.g. the unused (h_n, c_n) of `x, _ = lstm(x)`
        return _Reader(gm).read(gm.graph)
    finally:
        model.train(was_training)
