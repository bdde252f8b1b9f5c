"""``nn.Module`` -> float IR (:class:`hwaccel.compiler.ir.Graph`) through ``torch.fx``.

The model is traced symbolically (``torch.fx.symbolic_trace``), its per-node shapes come from
running ``example`` through the traced graph (a ``torch.fx.Interpreter``), and the nodes are read
in order into a DAG of IR ops over named values (:mod:`.ir`). Every node is either mapped exactly or
refused with :class:`UnsupportedOp`, which names the op, the node and module path, and what is
supported: nothing is approximated. A Conv1d model's ``(C, L)`` values are one-row images
(:mod:`.trace_line`). ``F.pad`` and ``nn.ZeroPad2d`` (zeros, per side) become the
padding of the Conv2d that reads them; ReLU is fused into the Conv2d, Linear or add before it
(through MaxPool2d and Flatten, which commute with it), batch norms into the layer before them
and ``out[:, -1]`` / ``h_n[-1]`` into the LSTM before them, each only when nothing else reads
that layer's output (:mod:`.fold`); dropout and identities are the no-ops they are in eval
mode. Every parameter and buffer of a module it reads, and every batch-norm-folded tensor, must
be finite (:class:`~.errors.NonFiniteError` names it and its layer).

Nodes that do not depend on the input's values (parameters and buffers read in ``forward``,
masks built from them and from shapes) are kept as constants, with the values the example run
gave them: a constant added to a sequence is a positional embedding, a constant mask is checked
to be causal. Transformer modules are lowered from their parameters (:mod:`.trace_attention`),
hand-written attention is followed through its head reshapes (:mod:`.trace_layout`), into the
ops of :mod:`.ir_attention`.
"""

from __future__ import annotations

import dataclasses
import operator
from typing import NamedTuple

import numpy as np

from . import ir
from .errors import SUPPORTED, UnsupportedOp, check_parameters
from .fold import BatchNorm, Relu, fold
from .fold_scalar import affine_tables
from .trace_attention import Const, TransformerReaders
from .trace_channels import ChannelReaders, ChannelView
from .trace_layout import Cols, Heads, LayoutReaders, Masked
from .trace_line import LineReaders
from .trace_ops import Head, LayerReaders, Pad, call_args, np_of
from .trace_pointwise import PointwiseReaders
from .trace_pools import PoolReaders
from .trace_upsample import UpsampleReaders

__all__ = ["SUPPORTED", "UnsupportedOp", "trace"]


_HEADS = {"softmax": "softmax", "log_softmax": "log_softmax", "argmax": "argmax"}


class _Reader(LayerReaders, PoolReaders, TransformerReaders, LayoutReaders, LineReaders,
              PointwiseReaders, ChannelReaders, UpsampleReaders):
    """Reads a traced graph node by node into IR ops (and :mod:`.fold`'s markers)."""

    def __init__(self, gm):
        self.modules = dict(gm.named_modules())
        self.ops: list = []
        self.env: dict = {}            # fx node -> value name, Pad, Head or a role
        self.lstm_of: dict = {}        # fx node -> (role, the LSTM's value name)
        self.input_shape: tuple = ()
        self.input_view: tuple | None = None   # the model's (C, L) when its input is a line
        self.lines: set = set()        # fx nodes of (C, L) values held as (C, 1, L) images
        self.pixels: set = set()       # of (H, W, C) values held as (H W, C): trace_channels
        self.tokens = False
        self.head = "logits"
        self.output = ""
        self.names: set[str] = {ir.INPUT}
        self.slices: dict = {}         # (value, start, stop) -> the Slice op's name
        self.selections: set[str] = set()   # convs that pick pixels and channels (0/1 weights)

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

    def resolve(self, arg, where: str):
        """What ``env`` holds for ``arg``, a softmax over the rows of a (tokens, tokens) value
        that an op reads made a :class:`~.ir_attention.Softmax` (it is not the host's head)."""
        v = self.env.get(arg) if hasattr(arg, "users") else None
        if isinstance(v, Head) and v.kind == "softmax" and v.rows:
            self.env[arg] = v = self.put(ir.Softmax(self.fresh(v.node), inputs=(v.value,)))
        return v

    def value(self, arg, where: str) -> str:
        """The value an op reads through the argument ``arg``."""
        v = self.resolve(arg, where)
        if isinstance(v, str):
            return v
        if isinstance(v, (Cols, Heads, Masked)):
            return self.materialize(v, where)
        if isinstance(v, Const):
            raise UnsupportedOp("a constant operand", where, f"{arg.name}; ops read tensors "
                                                             f"computed from the input")
        if isinstance(v, Head) and v.kind == "sigmoid":   # read on: a table, not a host head
            self.env[arg] = v = self.sigmoid_read(v)
            return v
        if isinstance(v, Head):
            raise UnsupportedOp("an op after the host head", where,
                                f"{v.kind} must be the model's last op")
        if isinstance(v, ChannelView):   # a channels-last image read: its pixels' sequence
            return self.view_value(arg, v, where)
        if isinstance(v, Pad):
            raise UnsupportedOp("F.pad / ZeroPad2d", v.where, f"it is read by {where}; zero "
                                                              f"padding is only folded into "
                                                              f"the Conv2d that reads it")
        if not hasattr(arg, "users"):
            raise UnsupportedOp("a constant operand", where, f"{arg!r}; ops read tensors "
                                                             f"computed from the input")
        raise UnsupportedOp("a tuple result", where, f"{arg.name} must be indexed first")

    def emit(self, node, op) -> None:
        self.ops.append(op)
        self.env[node] = op.name

    def alias(self, node, where: str) -> None:
        """``node`` is its input (a no-op in eval mode)."""
        v = self.env.get(node.args[0]) if hasattr(node.args[0], "users") else None
        layout = isinstance(v, (Cols, Heads, Masked))
        self.env[node] = v if layout else self.value(node.args[0], where)

    def unary(self, node, where: str, make) -> None:
        """An op of one input: ``make(name)`` reading the first argument."""
        src = self.value(node.args[0], where)
        self.emit(node, dataclasses.replace(make(self.name(node)), inputs=(src,)))

    def marker(self, node, make) -> None:
        self.ops.append(make(self.name(node)))
        self.env[node] = self.ops[-1].name

    # --- modules -------------------------------------------------------------------------------
    def module(self, node) -> None:
        import torch.nn as nn

        m = self.modules[node.target]
        where = f"{node.name} (module {node.target!r}, {type(m).__name__})"
        check_parameters(m, node.target)  # before any of them is folded, scaled or quantized
        if self.line_module(node, where, m):   # Conv1d and the 1-d pools (:mod:`.trace_line`)
            pass
        elif isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)):
            self.alias(node, where)
        elif isinstance(m, nn.ReLU):
            self.unary(node, where, lambda name: Relu(name, where))
        elif isinstance(m, nn.Hardtanh):   # nn.ReLU6 is Hardtanh(0, 6)
            self.clamp(node, where, m.min_val, m.max_val)
        elif isinstance(m, nn.LeakyReLU):
            self.leaky_relu(node, where, m.negative_slope)
        elif isinstance(m, nn.PReLU):
            self.prelu(node, where, m)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            rank = len(self.shape(node.args[0]))
            self.unary(node, where, lambda name: BatchNorm(name, where, m, node.target, rank))
        elif isinstance(m, nn.Conv2d):
            self.conv(node, where, m)
        elif self.pool_module(node, where, m) or self.channel_module(node, where, m):
            pass   # max, average and adaptive pools; nn.ChannelShuffle
        elif self.upsample_module(node, where, m):
            pass   # ConvTranspose2d, nearest Upsample, PixelShuffle
        elif isinstance(m, nn.ZeroPad2d):
            self.pad(node, where, m.padding, "constant", 0)
        elif isinstance(m, nn.Linear):
            if len(self.shape(node.args[0])) not in (1, 2):
                raise UnsupportedOp("Linear", where, f"on a per-sample shape "
                                    f"{self.shape(node.args[0])}; flatten an image first")
            bias = np_of(m.bias) if m.bias is not None else np.zeros(m.out_features)
            self.unary(node, where, lambda name: ir.Linear(name, np_of(m.weight), bias))
        elif isinstance(m, (nn.Flatten, nn.Unflatten)):   # Unflatten: a vector as an image
            if isinstance(m, nn.Flatten) and (m.start_dim != 1 or m.end_dim != -1):
                raise UnsupportedOp("Flatten attribute", where,
                                    f"start_dim={m.start_dim}, end_dim={m.end_dim}")
            self.flatten(node, where)
        elif isinstance(m, nn.Embedding):
            if not self.tokens or self.env.get(node.args[0]) != ir.INPUT:
                raise UnsupportedOp("Embedding", where, "only on the model's token-id input")
            if m.max_norm is not None:
                raise UnsupportedOp("Embedding attribute", where,
                                    f"max_norm={m.max_norm} (renormalizes rows)")
            self.unary(node, where, lambda name: ir.Embedding(name, np_of(m.weight)))
        elif isinstance(m, nn.LSTM):
            self.lstm(node, where, m)
        elif self.attention_module(node, where, m) or self.pointwise_module(node, where, m):
            pass   # attention, transformer layers, LayerNorm, GELU; SiLU, tanh, hardswish ...
        elif isinstance(m, nn.Sigmoid):
            self.set_head(node, where, "sigmoid", -1)
        elif isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            self.set_head(node, where, "softmax" if isinstance(m, nn.Softmax) else "log_softmax",
                          m.dim)
        else:
            raise UnsupportedOp(f"module {type(m).__name__}", where)

    # --- functions and methods -----------------------------------------------------------------
    def call(self, node) -> None:
        import torch
        import torch.nn.functional as F

        t = node.target
        name = t if isinstance(t, str) else getattr(t, "__name__", repr(t))
        where = f"{node.name} ({'.' if node.op == 'call_method' else ''}{name})"
        if node.op == "call_method" and name in ("size", "dim") or (
                t is getattr and node.args[1] == "shape"):
            self.lstm_of[node] = ("size", None)  # feeds a reshape's arguments, not an op
        elif t is operator.getitem and self.lstm_of.get(node.args[0], (None,))[0] == "size":
            self.lstm_of[node] = ("size", None)
        elif self.channel_call(node, t, name, where) or self.layout_call(node, t, name, where):
            pass   # channel slices, chunks and shuffles of images; attention's layouts
        elif self.upsample_call(node, t, name, where):
            pass   # F.interpolate (nearest), F.pixel_shuffle
        elif t is operator.getitem:
            self.getitem(node, where)
        elif self.activation_call(node, t, name, where):   # ReLU, clamps, LeakyReLU
            pass
        elif self.pointwise_call(node, t, where) or self.binary_call(node, t, where):
            pass   # SiLU, tanh, hardswish ...; x * sigmoid(x), x - 1 ...
        elif t in (torch.cat, torch.concat, getattr(torch, "concatenate", torch.cat)):
            self.cat(node, where)
        elif t in (operator.add, operator.iadd, torch.add, "add", "add_"):
            a = call_args(node, ("input", "other"), {"alpha": 1})
            if a["alpha"] != 1 or set(a) - {"input", "other", "alpha"}:
                raise UnsupportedOp("add attribute", where, f"alpha={a['alpha']!r}; only x + y")
            self.add(node, where, a["input"], a["other"])
        elif name in ("flatten", "view", "reshape") and t in (torch.flatten, "flatten", "view",
                                                               "reshape"):
            if name == "flatten":
                a = call_args(node, ("input", "start_dim", "end_dim"), {"start_dim": 0,
                                                                     "end_dim": -1})
                if a["start_dim"] != 1 or a["end_dim"] != -1:
                    raise UnsupportedOp("flatten", where, f"start_dim={a['start_dim']}, "
                                                          f"end_dim={a['end_dim']}")
            self.flatten(node, where)
        elif t is F.max_pool2d or name == "max_pool2d":
            a = call_args(node, ("input", "kernel_size", "stride", "padding", "dilation",
                             "ceil_mode", "return_indices"),
                      {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False,
                       "return_indices": False})
            self.maxpool(node, where, a)
        elif name == "avg_pool2d":
            a = call_args(node, ("input", "kernel_size", "stride", "padding", "ceil_mode",
                             "count_include_pad", "divisor_override"),
                      {"stride": None, "padding": 0, "ceil_mode": False,
                       "count_include_pad": True, "divisor_override": None})
            self.avgpool(node, where, a)
        elif t is F.adaptive_max_pool2d or name == "adaptive_max_pool2d":
            a = call_args(node, ("input", "output_size", "return_indices"),
                          {"return_indices": False})
            self.adaptive_max(node, where, a["output_size"], a["return_indices"])
        elif t is F.adaptive_avg_pool2d or name == "adaptive_avg_pool2d":
            self.adaptive(node, where, call_args(node, ("input", "output_size"), {})["output_size"])
        elif t is F.pad or name == "pad":
            a = call_args(node, ("input", "pad", "mode", "value"), {"mode": "constant",
                                                                "value": None})
            self.pad(node, where, a["pad"], a["mode"], a["value"])
        elif t is F.dropout:
            a = call_args(node, ("input", "p", "training"), {"p": 0.5, "training": True})
            if a["training"] is not False:
                raise UnsupportedOp("dropout in training mode", where,
                                    "pass training=self.training (False in eval mode)")
            self.alias(node, where)
        elif t == "contiguous" or t in ("expand_as", "expand") and self.read_by_products(node):
            self.alias(node, where)
        elif self.line_call(node, where, name, lambda names, d: call_args(node, names, d)):
            pass
        elif name == "sigmoid" and t in (torch.sigmoid, F.sigmoid, "sigmoid"):
            self.set_head(node, where, "sigmoid", -1)
        elif name in _HEADS and t in (torch.softmax, torch.log_softmax, torch.argmax,
                                      F.softmax, F.log_softmax, "softmax", "log_softmax",
                                      "argmax"):
            a = call_args(node, ("input", "dim"), {"dim": None})
            self.set_head(node, where, _HEADS[name], a["dim"])
        else:
            params = [self.env[a].param for a in node.all_input_nodes
                      if isinstance(self.env.get(a), Const) and self.env[a].param]
            if params:
                raise UnsupportedOp("a parameter used outside its module", where,
                                    f"{params[0]} (use the module, e.g. nn.Linear)")
            raise UnsupportedOp(f"{'method' if node.op == 'call_method' else 'function'} "
                                f"{name}", where)

    # --- the graph -----------------------------------------------------------------------------
    def read(self, graph) -> ir.Graph:
        for node in graph.nodes:
            if node.op == "placeholder":
                if self.input_shape:
                    raise UnsupportedOp("a second input", node.name, "models take one tensor")
                meta = node.meta.get("tensor_meta")
                self.env[node] = ir.INPUT
                self.input_shape = tuple(meta.shape[1:])
                self.tokens = not meta.dtype.is_floating_point
                if not self.tokens:   # a Conv1d model's (C, L) input, held as (C, 1, L)
                    self.line_input(node)
            elif "constant" in node.meta:  # computed from parameters and shapes only
                c = node.meta["constant"]
                if hasattr(c, "detach"):
                    self.env[node] = Const(np_of(c) if c.is_floating_point() else
                                           c.detach().cpu().numpy().copy(),
                                           node.target if node.op == "get_attr" else None)
                else:
                    self.lstm_of[node] = ("size", None)  # a shape or a number
            elif node.op == "call_module":
                self.mark_line(node)
                self.module(node)
            elif node.op in ("call_function", "call_method"):
                self.mark_line(node)
                self.call(node)
            elif node.op == "output":
                out = self.env.get(node.args[0]) if hasattr(node.args[0], "users") else None
                role, value = self.lstm_of.get(node.args[0], (None, None))
                if role == "lstm":  # an nn.LSTM as the last module: its every-step output
                    out = value
                if isinstance(out, Head):
                    self.head, out = out.kind, out.value
                if not isinstance(out, str) or out == ir.INPUT:
                    raise UnsupportedOp("model output", node.name,
                                        "it must be one tensor computed by the model's ops")
                self.output = out
        ops, output = fold(self.ops, self.output)
        first = [op for op in ops if ir.INPUT in op.inputs]
        if self.tokens and not (len(first) == 1 and isinstance(first[0], ir.Embedding)):
            raise UnsupportedOp("integer input", "the model's input",
                                "token ids must go through an Embedding first")
        if not ops:
            raise UnsupportedOp("an empty model", "forward", "it has no layers")
        if self.tokens and not isinstance(ops[0], ir.Embedding):  # the host gathers first
            ops.remove(first[0])
            ops.insert(0, first[0])
        ops, output = affine_tables(ops, output, self.input_shape, self.tokens)
        return ir.Graph(self.input_shape, self.tokens, tuple(ops), self.head, output,
                        input_view=self.input_view)


def _propagate_class():
    import torch
    from torch.fx import Interpreter
    from torch.fx.node import map_aggregate

    class Propagate(Interpreter):
        """Runs the traced graph on the example and keeps each node's tensor shapes and dtypes
        in ``node.meta["tensor_meta"]`` (as ``ShapeProp`` does, without its import of the
        symbolic-shape machinery and sympy: 0.8 s of every compile), and the value of every
        node that does not depend on the input's values (parameters, buffers, masks built from
        them and from shapes) in ``node.meta["constant"]``."""

        def run_node(self, n):
            out = super().run_node(n)
            found = []

            def meta(v):
                if isinstance(v, torch.Tensor):
                    found.append(v)
                    return TensorMeta(tuple(v.shape), v.dtype)
                return v

            value = map_aggregate(out, meta)
            if found:
                n.meta["tensor_meta"] = value
            data = n.op == "placeholder" or any(a.meta.get("data") for a in n.all_input_nodes)
            if data and not (n.op == "call_method" and n.target in ("size", "dim") or (
                    n.target is getattr and n.args[1] in ("shape", "device", "dtype"))):
                n.meta["data"] = True
            elif n.op != "output":
                n.meta["constant"] = out
            return out

    return Propagate


class TensorMeta(NamedTuple):
    """A traced value's shape and dtype (``node.meta["tensor_meta"]``)."""
    shape: tuple
    dtype: object


def trace(model, example) -> ir.Graph:
    """The float IR of ``model`` (traced in eval mode; its training flag is restored)."""
    import torch
    import torch.fx
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, not {type(model).__name__}")
    example = torch.as_tensor(example)
    _Propagate = _propagate_class()  # noqa: N806
    was_training = model.training
    model.eval()
    try:
        try:
            gm = torch.fx.symbolic_trace(model)
        except Exception as exc:  # fx's errors: data-dependent control flow and the like
            raise UnsupportedOp("untraceable Python in forward()", type(model).__name__,
                                f"torch.fx cannot trace it ({exc})") from exc
        with torch.no_grad():
            _Propagate(gm).run(example)
        gm.graph.eliminate_dead_code()  # e.g. the unused (h_n, c_n) of `x, _ = lstm(x)`
        return _Reader(gm).read(gm.graph)
    finally:
        model.train(was_training)
