"""The tracer's readers of single layers and functions: their attributes checked against what
the compiler supports (refused by name otherwise), their IR op emitted. A mixin of
:class:`hwaccel.compiler.trace._Reader`, which holds the state (``env``, ``ops``, names)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from . import ir
from .errors import UnsupportedOp, check_finite
from .fold import LastStep, Leaky, Relu
from .fold_cat import Cat
from .fold_unflatten import image_of

__all__ = ["LayerReaders", "Pad", "Head", "call_args", "np_of", "pair"]


def last_axis(dim) -> bool:
    """Whether a reduction's ``dim`` is a 3-d tensor's last axis: ``-1`` or ``2``, alone or
    in a tuple or list."""
    return dim in (-1, 2, (-1,), (2,), [-1], [2])


def call_args(node, names: tuple[str, ...], defaults: dict) -> dict:
    """A call's arguments by name (positional ones first), defaults filled in; an argument
    computed from shapes alone (``x.shape[-1]``, a traced node) is its number."""
    out = dict(defaults)
    out.update(zip(names, node.args))
    out.update(node.kwargs)
    return {k: _number(v) for k, v in out.items()}


def _number(v):
    meta = getattr(v, "meta", None)
    c = meta.get("constant") if isinstance(meta, dict) and not meta.get("data") else None
    if isinstance(c, (int, float)):
        return c
    if isinstance(c, tuple) and c and all(isinstance(n, int) for n in c):   # x.shape[2:]
        return tuple(c)
    return v


def block_diagonal(w: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv's weights (``Cout x Cin/groups x KH x KW``) as a dense conv's: each output
    channel's group's input channels hold its weights, the others zeros. The same function
    (the zeros add nothing, in float and in int8), at ``groups`` times the MACs."""
    cout, cin_g = w.shape[:2]
    dense = np.zeros((cout, cin_g * groups, *w.shape[2:]), dtype=w.dtype)
    per = cout // groups
    for g in range(groups):
        dense[g * per:(g + 1) * per, g * cin_g:(g + 1) * cin_g] = w[g * per:(g + 1) * per]
    return dense


def torch_shape(node) -> tuple:
    """fx ``node``'s per-sample shape as PyTorch has it (``()`` without one)."""
    meta = node.meta.get("tensor_meta") if hasattr(node, "meta") else None
    return tuple(meta.shape[1:]) if hasattr(meta, "shape") else ()


def np_of(t) -> np.ndarray:
    return t.detach().to("cpu").double().numpy().copy()


def pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


@dataclass(frozen=True)
class Pad:
    """A zero-padded value: ``value`` with ``pads`` (top, left, bottom, right) around it,
    waiting for the Conv2d it folds into."""

    value: str
    pads: tuple[int, int, int, int]
    where: str


@dataclass(frozen=True)
class Head:
    """The host head ``kind`` applied to ``value``: only the model's output may read it, unless
    it is a softmax over the rows of a (tokens, tokens) value (``rows``): read by an op, that is
    a :class:`~.ir_attention.Softmax` named after the fx node ``node``."""

    kind: str
    value: str
    rows: bool = False
    node: str = ""


class LayerReaders:
    """Readers of one layer each; ``self`` is a :class:`~.trace._Reader`."""

    def image(self, node, where: str, what: str) -> None:
        """Refuse ``what`` unless its input is a batch of ``(C, H, W)`` images (a line's
        ``(C, 1, L)`` among them, :mod:`.trace_line`)."""
        shape = self.shape(node.args[0])
        if len(shape) != 3:
            raise UnsupportedOp(what, where, f"on a per-sample shape {shape}; it takes "
                                             f"(channels, height, width) images")

    def chain(self, node, name: str, src: str, ops: list) -> str:
        """``ops`` in a row from the value ``src``, each reading the one before: ``node``'s
        value is the last, named ``name`` (``self.name(node)``; the others keep their names,
        made unique). Returns the last one's name."""
        for i, op in enumerate(ops):
            last = i == len(ops) - 1
            op = dataclasses.replace(op, name=name if last else self.fresh(op.name),
                                     inputs=(src,))
            if last:
                self.emit(node, op)
            src = op.name if last else self.put(op)
        return src

    def flatten(self, node, where: str) -> None:
        src, dst = self.shape(node.args[0]), self.shape(node)
        if dst == src or (self.env.get(node.args[0]) is ir.INPUT and dst == self.input_shape):
            # a reshape that changes nothing; the flatten of an input held flat (trace_line)
            return self.alias(node, where)
        if len(src) == 1 and len(dst) == 3 and int(np.prod(dst)) == src[0]:   # fold_unflatten
            return self.unary(node, where, lambda name: image_of(name, where, dst))
        if len(src) != 3 or dst != (int(np.prod(src)),):
            raise UnsupportedOp("reshape", where, f"per-sample shape {src} -> {dst}; only an "
                                                  f"image's flatten to a vector, or a vector's "
                                                  f"view as a square image")
        self.unary(node, where, ir.Flatten)

    def activation_call(self, node, t, name: str, where: str) -> bool:
        """Read the function or method ``t`` (named ``name``) if it is a ReLU, a clamp or a
        LeakyReLU; whether it was one."""
        import torch
        import torch.nn.functional as F

        if name in ("relu", "relu_") and t in (torch.relu, torch.relu_, F.relu, "relu",
                                               "relu_"):
            self.unary(node, where, lambda n: Relu(n, where))
        elif t in (F.leaky_relu, F.leaky_relu_, "leaky_relu", "leaky_relu_"):
            a = call_args(node, ("input", "negative_slope", "inplace"),
                          {"negative_slope": 0.01})
            self.leaky_relu(node, where, a["negative_slope"])
        elif t in (F.relu6, F.hardtanh, F.hardtanh_, torch.clamp, torch.clamp_, torch.clip,
                   torch.clip_, "clamp", "clamp_", "clip", "clip_"):
            if t is F.relu6:
                low, high = 0, 6
            elif t in (F.hardtanh, F.hardtanh_):
                a = call_args(node, ("input", "min_val", "max_val"), {"min_val": -1.0,
                                                                       "max_val": 1.0})
                low, high = a["min_val"], a["max_val"]
            else:
                a = call_args(node, ("input", "min", "max"), {"min": None, "max": None})
                low, high = a["min"], a["max"]
            self.clamp(node, where, low, high)
        else:
            return False
        return True

    def clamp(self, node, where: str, low, high) -> None:
        """A clamp from 0 (``nn.ReLU6``, ``nn.Hardtanh(0, c)``, ``torch.clamp(x, 0, c)`` ...):
        a ReLU with the cap ``high`` (``None``: none), fused as ReLU is (:mod:`.fold`). Between
        two other numbers (``nn.Hardtanh()``'s -1 and 1): a table (``hardtanh``,
        :mod:`.trace_pointwise`)."""
        number = (int, float)
        finite = all(isinstance(v, number) and abs(v) < float("inf") for v in (low, high))
        if finite and low != 0 and low < high:
            return self.pointwise_of(node, where, "hardtanh", (low, high))
        if not (isinstance(low, number) and low == 0 and (
                high is None or isinstance(high, number) and 0 < high < float("inf"))):
            raise UnsupportedOp("clamp", where, f"min={low!r}, max={high!r}; only from 0 (a "
                                                f"ReLU), up to a number > 0 or none (ReLU6 is "
                                                f"min=0, max=6), or between two numbers (a "
                                                f"table on the GELU unit)")
        self.unary(node, where, lambda name: Relu(name, where,
                                                  cap=None if high is None else float(high)))

    def pad(self, node, where: str, pad, mode, value) -> None:
        """Zero padding per side, kept aside for the Conv2d that reads it."""
        pad = tuple(pad)
        ok = mode == "constant" and value in (None, 0, 0.0) and len(pad) in (2, 4, 6) and all(
            isinstance(p, int) and p >= 0 for p in pad) and (len(pad) < 6 or not any(
                pad[:4]) or not any(pad[4:]))
        if not ok:
            raise UnsupportedOp("F.pad / ZeroPad2d attribute", where,
                                f"pad={pad!r}, mode={mode!r}, value={value!r}; only zeros "
                                f"(constant 0), at least 0 on each side of height and width, "
                                f"or of the channels alone")
        self.image(node, where, "F.pad / ZeroPad2d")
        if node.args[0] in self.lines and len(pad) > 2:   # (length, channels[, batch])
            if any(pad[4:]):
                raise UnsupportedOp("F.pad of a line's batch", where, f"pad={pad!r} pads the "
                                                                      f"batch of a (channels, "
                                                                      f"length) line")
            if any(pad[2:4]):
                return self.channel_pad(node, where, *pad[2:4])
            pad = pad[:2]
        if len(pad) == 6 and any(pad[4:]):
            return self.channel_pad(node, where, *pad[4:])
        left, right, top, bottom = (*pad, 0, 0)[:4]
        src = self.env.get(node.args[0])
        base, more = (src.value, src.pads) if isinstance(src, Pad) else (
            self.value(node.args[0], where), (0, 0, 0, 0))
        self.env[node] = Pad(base, tuple(a + b for a, b in zip(more, (top, left, bottom,
                                                                       right))), where)

    def leaky_relu(self, node, where: str, slope) -> None:
        """``LeakyReLU(slope)`` for ``0 < slope < 1``: a :class:`~.fold.Leaky` marker, two
        element-wise ADDs once the graph is read. A slope of 0 is a ReLU (fused as one is);
        another number on an image, the per-channel form (:meth:`prelu`)."""
        number = isinstance(slope, (int, float)) and abs(slope) < float("inf")
        if number and not 0 <= slope < 1 and len(self.shape(node.args[0])) == 3:
            return self.prelu_channels(node, where, [slope] * self.shape(node.args[0])[0])
        if not (number and 0 <= slope < 1):
            raise UnsupportedOp("LeakyReLU slope", where,
                                f"negative_slope={slope!r}; only 0 <= slope < 1 (the "
                                f"element-wise ADD's multipliers are unsigned), or any on an "
                                f"image (depthwise convs)")
        if slope == 0:
            return self.unary(node, where, lambda name: Relu(name, where))
        shape = self.shape(node.args[0])
        if len(shape) not in (1, 2, 3):
            raise UnsupportedOp("LeakyReLU", where, f"on a per-sample shape {shape}; only "
                                                    f"images, sequences or vectors")
        self.unary(node, where, lambda name: Leaky(name, where, float(slope)))

    def prelu(self, node, where: str, m) -> None:
        """``nn.PReLU`` with one slope: the LeakyReLU of its learned slope; with one a channel,
        on an image: ADDs and depthwise 1 x 1 convs (:func:`.fold._leaky`)."""
        if m.num_parameters == 1:
            return self.leaky_relu(node, where, float(m.weight.detach().reshape(-1)[0]))
        if len(self.shape(node.args[0])) != 3:
            raise UnsupportedOp("PReLU", where, f"num_parameters={m.num_parameters} on a "
                                                f"per-sample shape {self.shape(node.args[0])}; "
                                                f"a slope a channel only on an image "
                                                f"(depthwise convs)")
        self.prelu_channels(node, where, np_of(m.weight).tolist())

    def prelu_channels(self, node, where: str, slopes: list) -> None:
        check_finite(np.asarray(slopes), f"{where} slopes", where)
        self.unary(node, where, lambda name: Leaky(name, where, 0.0, slopes=tuple(slopes)))

    def cat(self, node, where: str) -> None:
        """``torch.cat`` of images along channels, or of vectors or sequences along features:
        a :class:`~.fold_cat.Cat` marker, split into its readers once the graph is read."""
        a = call_args(node, ("tensors", "dim"), {"dim": 0})
        parts = list(a["tensors"])
        if not parts or not all(hasattr(p, "users") for p in parts):
            raise UnsupportedOp("cat", where, "only of tensors computed from the input")
        shapes = tuple(tuple(self.shape(p)) for p in parts)
        rank, dim = len(shapes[0]), a["dim"]
        along = {3: (1, -3), 2: (2, -1), 1: (1, -1)}.get(rank, ())
        if dim not in along or any(len(s) != rank or s[1:] != shapes[0][1:] if rank == 3
                                   else s[:-1] != shapes[0][:-1] for s in shapes):
            raise UnsupportedOp("cat", where, f"dim={dim!r} of per-sample shapes "
                                              f"{list(shapes)}; only images along channels "
                                              f"(dim=1), vectors or sequences along features "
                                              f"(dim=-1), the other sizes equal")
        self.emit(node, Cat(self.name(node), where, shapes,
                            tuple(self.value(p, where) for p in parts)))

    def add(self, node, where: str, a, b) -> None:
        from .trace_attention import Const

        if self.channel_constant_add(node, where, a, b):   # x + bias[:, None, None]
            return None
        for x, y in ((a, b), (b, a)):
            if hasattr(y, "users") and isinstance(self.env.get(y), Const) and hasattr(x, "users"):
                return self.add_constant(node, where, x, self.env[y])
        for x, k in ((a, b), (b, a)):
            if hasattr(x, "users") and isinstance(k, (int, float)) and not isinstance(k, bool):
                return self.scalar(node, where, "add", k, x)   # a table of x + k
        if not (hasattr(a, "users") and hasattr(b, "users")):
            raise UnsupportedOp("add of a constant", where, "only the sum of two tensors "
                                                            "computed from the input, or of a "
                                                            "tensor and a number")
        if self.shape(a) != self.shape(b) or len(self.shape(a)) not in (1, 2, 3):
            raise UnsupportedOp("add", where, f"of per-sample shapes {self.shape(a)} and "
                                              f"{self.shape(b)}; only equal image, sequence or "
                                              f"vector shapes (no broadcasting)")
        inputs = (self.value(a, where), self.value(b, where))
        self.emit(node, ir.Add(self.name(node), inputs=inputs))

    def set_head(self, node, where: str, kind: str, dim) -> None:
        from .trace_layout import Heads, Masked

        shape = self.shape(node.args[0])
        if dim not in (-1, len(shape)):
            raise UnsupportedOp(kind, where, f"dim={dim!r}; only the last dimension")
        src = self.env.get(node.args[0])
        if kind == "softmax" and isinstance(src, (Heads, Masked)):  # attention probabilities
            return self.softmax(node, where, node.args[0])
        rows = kind == "softmax" and len(shape) == 2
        self.env[node] = Head(kind, self.value(node.args[0], where), rows, node.name)

    def conv(self, node, where: str, m, what: str = "Conv2d") -> None:
        """A Conv2d (a Conv1d through :mod:`.trace_line`). Dilation ``d`` is the dense kernel
        of ``(k - 1) d + 1`` with zeros between the taps; groups other than 1 and depthwise
        are a dense conv with zeros between the groups: the same function, more MACs."""
        s, dil = pair(m.stride), pair(m.dilation)
        k = tuple((n - 1) * d + 1 for n, d in zip(pair(m.kernel_size), dil))   # as it runs
        src = self.env.get(node.args[0])
        folded = src.pads if isinstance(src, Pad) else (0, 0, 0, 0)
        if m.padding == "valid":
            own = (0, 0, 0, 0)
        elif m.padding == "same":  # torch's: k - 1 per axis, the odd one at the bottom/right
            own = ((k[0] - 1) // 2, (k[1] - 1) // 2, k[0] // 2, k[1] // 2)
        else:
            own = (*pair(m.padding), *pair(m.padding))
        pads = tuple(a + b for a, b in zip(own, folded))
        depthwise = m.groups == m.in_channels == m.out_channels
        # any stride on the model's input: the host writes that conv's im2col patches
        # (:mod:`.im2col`); the engine's own strides elsewhere
        first = (src.value if isinstance(src, Pad) else self.env.get(node.args[0])) == ir.INPUT
        attrs = [("stride", s, all(v in (1, 2) for v in s) or (first and min(s) >= 1)),
                 ("padding_mode", m.padding_mode, m.padding_mode == "zeros"),
                 ("padding", m.padding, pads[0] + pads[2] < k[0] and pads[1] + pads[3] < k[1])]
        bad = [f"{n}={v!r}" for n, v, ok in attrs if not ok]
        if bad:
            more = f" (with the padding before it folded in: {pads})" if any(folded) else ""
            raise UnsupportedOp(f"{what} attribute", where, ", ".join(bad) + more + "; strides "
                                "1 or 2 (any on the model's input), padding below the "
                                "(dilated) kernel on each axis")
        self.image(node, where, what)
        inp = src.value if isinstance(src, Pad) else self.value(node.args[0], where)
        bias = np_of(m.bias) if m.bias is not None else np.zeros(m.out_channels)
        w, groups = np_of(m.weight), m.groups
        if groups != 1 and not depthwise:   # a dense conv with zeros between the groups
            w, groups = block_diagonal(w, groups), 1
        if dil != (1, 1):
            dense = np.zeros((*w.shape[:2], *k), dtype=w.dtype)
            dense[:, :, ::dil[0], ::dil[1]] = w
            w = dense
        self.emit(node, ir.Conv2d(self.name(node), w, bias, ir.squash(s), ir.squash(pads),
                                  groups=groups, inputs=(inp,)))

    def lstm(self, node, where: str, m) -> None:
        bad = [f"{n}={v!r}" for n, v, ok in (
            ("batch_first", m.batch_first, m.batch_first),
            ("bidirectional", m.bidirectional, not m.bidirectional),
            ("proj_size", m.proj_size, m.proj_size == 0)) if not ok]
        if len(node.args) > 1 or node.kwargs:
            bad.append("an initial state (h0, c0); the cell starts from zero")
        if bad:
            raise UnsupportedOp("LSTM attribute", where, ", ".join(bad))
        if node.args[0] in self.lines:
            raise UnsupportedOp("LSTM", where, "over a Conv1d's (channels, length) output; it "
                                               "takes (steps, features), the other axis order")
        if len(self.shape(node.args[0])) != 2:
            raise UnsupportedOp("LSTM", where, f"on a per-sample shape "
                                f"{self.shape(node.args[0])}; it takes a (steps, features) input")
        layers = []
        for k in range(m.num_layers):
            w_ih = getattr(m, f"weight_ih_l{k}")
            b = [getattr(m, f"bias_{n}_l{k}") if m.bias else None for n in ("ih", "hh")]
            zeros = np.zeros(w_ih.shape[0])
            layers.append(ir.LstmWeights(np_of(w_ih), np_of(getattr(m, f"weight_hh_l{k}")),
                                         *(zeros if v is None else np_of(v) for v in b)))
        self.unary(node, where, lambda name: ir.LSTM(name, tuple(layers)))
        self.lstm_of[node] = ("lstm", self.env.pop(node))

    # --- getitem on LSTM results ---------------------------------------------------------------
    def getitem(self, node, where: str) -> None:
        src, idx = node.args
        role, value = self.lstm_of.get(src, (None, self.env.get(src)))
        lstm = next((op for op in self.ops if op.name == value), None)
        if role == "lstm" and idx in (0, 1):
            if idx == 0:
                self.env[node] = value
            else:
                self.lstm_of[node] = ("state", value)
            return
        if role == "state" and idx == 0:
            self.lstm_of[node] = ("h_n", value)
            return
        if role == "h_n" and idx in (-1, len(lstm.layers) - 1):
            return self.unary_from(node, value, lambda name: LastStep(name, where))
        if role is None and isinstance(lstm, ir.LSTM):
            steps = self.shape(src)[0] if self.shape(src) else None
            sl = slice(None)
            if isinstance(idx, tuple) and len(idx) in (2, 3) and idx[0] == sl and \
                    idx[1] in (-1, steps - 1 if steps else -1) and idx[2:] in ((), (sl,)):
                return self.unary_from(node, value, lambda name: LastStep(name, where))
        shape, sl = self.shape(src), slice(None)
        if role is None and len(shape) == 2 and isinstance(idx, tuple) and len(idx) in (2, 3) \
                and idx[0] == sl and isinstance(idx[1], int) and -shape[0] <= idx[1] < shape[0] \
                and idx[2:] in ((), (sl,)):  # one token of a sequence: a first-token head
            index = idx[1] % shape[0]
            return self.unary(node, where, lambda name: ir.Token(name, index))
        name = getattr(src, "name", repr(src))
        if len(shape) == 1 and idx == (sl, sl, None, None):   # a gate: the one-pixel image
            return self.unary(node, where, lambda n: image_of(n, where, (shape[0], 1, 1)))
        raise UnsupportedOp("indexing", where, f"[{idx!r}] on {name}; only an LSTM's "
                                               f"out[:, -1] or h_n[-1] (its last step), or "
                                               f"x[:, i] of a (batch, tokens, features) "
                                               f"sequence (one token)")

    def unary_from(self, node, value: str, make) -> None:
        self.emit(node, dataclasses.replace(make(self.name(node)), inputs=(value,)))
