"""``xla``: the float IR as one ``jax.jit`` function, on a TPU or GPU when JAX has one.

The function is built from the compiler's float IR (:mod:`hwaccel.compiler.ir`), not from the
``nn.Module``, so it checks that the IR means what the module computes: convolutions are
``lax.conv_general_dilated`` (per-side padding, depthwise as feature groups), pooling
``lax.reduce_window``, adds read their values by name as the DAG has them, an LSTM layer a
``lax.scan`` over the steps (input projections of all steps computed up front, as cuDNN does),
a transformer's attention products, softmax and layer norms ``jnp`` ops as the float reference
has them.
Every contraction asks for ``Precision.HIGHEST``: TPUs otherwise multiply float32 in bfloat16,
and recent GPUs in TF32, which would not be the float model any more.

Batches are padded to one fixed size so ``jit`` compiles once per shape (the batch and the
batch-1 latency shape), and both compiles happen before the clock starts.
"""

from __future__ import annotations

import time

import numpy as np

from ...compiler import ir
from ...compiler.reference import seq_view
from . import BackendRun, BackendUnavailable, batch1_latency, chunks, progress

__all__ = ["XlaBackend", "build_function"]


def _jax():
    try:
        import jax
    except ModuleNotFoundError as exc:
        raise BackendUnavailable("xla: jax is not installed (pip install 'hwaccel[runtime]')") \
            from exc
    return jax


def _lstm_layer(jax, x, lw: ir.LstmWeights, hi):
    """``x`` is ``N x T x I``; returns every step's h, ``N x T x H`` (PyTorch gate order)."""
    jnp, lax = jax.numpy, jax.lax
    w_ih, w_hh = jnp.asarray(lw.w_ih, jnp.float32), jnp.asarray(lw.w_hh, jnp.float32)
    bias = jnp.asarray(lw.b_ih + lw.b_hh, jnp.float32)
    gx = jnp.einsum("nti,gi->tng", x, w_ih, precision=hi) + bias  # T x N x 4H
    n, hid = x.shape[0], lw.hidden_size

    def step(carry, g):
        h, c = carry
        g = g + jnp.einsum("nh,gh->ng", h, w_hh, precision=hi)
        i, f, gg, o = jnp.split(g, 4, axis=1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(gg)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zero = jnp.zeros((n, hid), jnp.float32)
    _, hs = lax.scan(step, (zero, zero), gx)
    return hs.transpose(1, 0, 2)


def _pointwise(jax, op, x):
    """``ir.Gelu`` or ``ir.Pointwise`` ``op`` of every value of ``x`` (PyTorch's definitions,
    :data:`hwaccel.numerics.POINTWISE`)."""
    nn = jax.nn
    if isinstance(op, ir.Gelu):
        return nn.gelu(x, approximate=op.approximate == "tanh")
    return _expr(jax, op.tree(), x)


def _attention(jax, op, x, *more):
    """The transformer ops of :mod:`hwaccel.compiler.ir_attention` (``x`` batch first), as
    :mod:`hwaccel.compiler.reference` computes them."""
    jnp = jax.numpy
    hi = jax.lax.Precision.HIGHEST
    if isinstance(op, ir.MatMul):
        b = more[0].swapaxes(-2, -1) if op.transpose_b else more[0]
        return jnp.matmul(x, b, precision=hi) * op.scale
    if isinstance(op, ir.Softmax):
        if op.causal:   # row i sees columns j <= i
            above = jnp.triu(jnp.ones(x.shape[-2:], bool), 1)
            x = jnp.where(above, -jnp.inf, x)
        return jax.nn.softmax(x, axis=-1)
    if isinstance(op, ir.LayerNorm):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)   # biased, as PyTorch's
        return ((x - mean) / jnp.sqrt(var + op.eps) * jnp.asarray(op.weight, jnp.float32)
                + jnp.asarray(op.bias, jnp.float32))
    if isinstance(op, ir.Slice):
        return x[..., op.start:op.stop]
    if isinstance(op, ir.Concat):
        return jnp.concatenate((x, *more), axis=-1)
    if isinstance(op, ir.AddConstant):
        return x + jnp.asarray(op.value, jnp.float32)
    if isinstance(op, ir.TokenMean):
        return x.mean(axis=1)
    return x[:, op.index]   # ir.Token


def _expr(jax, tree: tuple, x):
    """Expression ``tree`` (:func:`hwaccel.numerics.check_expr`) of ``x``."""
    jnp, nn = jax.numpy, jax.nn
    kind = tree[0]
    if kind == "x":
        return x
    if kind == "c":
        return tree[1]
    if kind in ("add", "sub", "mul", "div"):
        a, b = _expr(jax, tree[1], x), _expr(jax, tree[2], x)
        return a + b if kind == "add" else a - b if kind == "sub" else a * b if kind == "mul" \
            else a / b
    from ...numerics import POINTWISE

    fn, x = tree[1], _expr(jax, tree[3], x)
    a = {**POINTWISE[fn][1], **dict(zip(POINTWISE[fn][1], tree[2]))}

    def softplus(v, beta=1.0, threshold=20.0):
        return jnp.where(beta * v > threshold, v, jnp.logaddexp(beta * v, 0.0) / beta)

    return {"sigmoid": nn.sigmoid, "tanh": jnp.tanh, "silu": nn.silu,
            "hardswish": nn.hard_swish, "hardsigmoid": nn.hard_sigmoid,
            "softplus": lambda v: softplus(v, **a), "mish": lambda v: v * jnp.tanh(softplus(v)),
            "elu": lambda v: nn.elu(v, **a), "celu": lambda v: nn.celu(v, **a),
            "selu": nn.selu, "logsigmoid": nn.log_sigmoid, "softsign": nn.soft_sign,
            "hardtanh": lambda v: jnp.clip(v, a["min_val"], a["max_val"]),
            "gelu": lambda v: nn.gelu(v, approximate=False),
            "gelu_tanh": lambda v: nn.gelu(v, approximate=True),
            "relu": nn.relu}[fn](x)


def build_function(graph: ir.Graph):
    """A jitted ``f(x) -> logits`` of the float IR ``graph`` (``x`` batch-first)."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax
    hi = lax.Precision.HIGHEST

    def f32(a):
        return jnp.asarray(np.asarray(a, dtype=np.float32))

    def op_fn(op, x, *more):
        if isinstance(op, ir.Embedding):
            return jnp.take(f32(op.weight), x, axis=0)
        if isinstance(op, ir.Conv2d):
            t, left, b, r = op.pads
            y = lax.conv_general_dilated(
                x, f32(op.weight), op.strides, [(t, b), (left, r)],
                dimension_numbers=("NCHW", "OIHW", "NCHW"), feature_group_count=op.groups,
                precision=hi)
            y = y + f32(op.bias)[None, :, None, None]
            return jax.nn.relu(y) if op.relu else y
        if isinstance(op, ir.MaxPool2d):
            win = (1, 1, 1, 4) if op.line else (1, 1, 2, 2)
            return lax.reduce_window(x, -jnp.inf, lax.max, win, win, "VALID")
        if isinstance(op, ir.AvgPool2d):
            win = (1, 1, *op.kernel)
            return lax.reduce_window(x, 0.0, lax.add, win, win, "VALID") / (
                op.kernel[0] * op.kernel[1])
        if isinstance(op, ir.Add):
            y = op.weights[0] * x + op.weights[1] * more[0]
            return jax.nn.relu(y) if op.relu else y
        if isinstance(op, ir.Mul):   # a gate (N, C, 1, 1) broadcasts over the map's pixels
            y = x * more[0]
            return jax.nn.relu(y) if op.relu else y
        if isinstance(op, ir.Flatten):
            return x.reshape(x.shape[0], -1)
        if isinstance(op, ir.Unflatten):
            return x[:, :, None, None]
        if isinstance(op, ir.SeqView):   # (N, C, H, W) <-> (N, H W, C)
            return seq_view(x, op.to_line, op.hw)
        if isinstance(op, ir.DepthToSpace):   # pixel_shuffle: (n, c, a, b, i, j) -> (c, ia, jb)
            n, c, h, w, f = *x.shape, op.factor
            y = x.reshape(n, c // (f * f), f, f, h, w).transpose(0, 1, 4, 2, 5, 3)
            return y.reshape(n, c // (f * f), h * f, w * f)
        if isinstance(op, ir.Linear):
            y = jnp.matmul(x, f32(op.weight).T, precision=hi) + f32(op.bias)
            return jax.nn.relu(y) if op.relu else y
        if isinstance(op, (ir.Gelu, ir.Pointwise)):
            return _pointwise(jax, op, x)
        if isinstance(op, ir.ATTENTION_OPS):
            return _attention(jax, op, x, *more)
        if isinstance(op, ir.LSTM):
            for lw in op.layers:
                x = _lstm_layer(jax, x, lw, hi)
            return x[:, -1] if op.last_step else x
        raise TypeError(f"xla: no JAX lowering for IR op {type(op).__name__} ({op.name!r})")

    def forward(x):
        env = {ir.INPUT: x}
        for op in graph.ops:
            env[op.name] = op_fn(op, *(env[v] for v in op.inputs))
        return env[graph.output]  # the host head (softmax, argmax) is applied by the caller

    return jax.jit(forward)


class XlaBackend:
    integer = False
    hardware = False

    def __init__(self, *, name: str):
        self.name = name

    def check(self) -> str:
        jax = _jax()
        d = jax.devices()[0]
        return f"{d.platform}:{d.id} ({d.device_kind})"

    def run(self, compiled, x, *, batch: int = 256, latency_samples: int = 16,
            progress_bar: bool = False) -> BackendRun:
        """Outputs of the float IR on ``x`` in batches of ``batch`` (the last one padded)."""
        from ...compiler.errors import check_finite

        check_finite(x, "input")
        jax = _jax()
        device = self.check()
        graph = compiled.graph
        x = ir.graph_input(graph, np.asarray(x.numpy() if hasattr(x, "numpy") else x))
        x = x.astype(np.int32 if graph.tokens else np.float32)
        fn = build_function(graph)
        size = min(batch, len(x))

        def call(xb):
            pad = size - len(xb) if len(xb) > 1 else 0  # batch-1 calls keep their own shape
            xp = np.concatenate([xb, np.zeros((pad, *xb.shape[1:]), xb.dtype)]) if pad else xb
            return jax.block_until_ready(fn(xp))[: len(xb)]

        call(x[:size])  # compile the batch shape ...
        call(x[:1])     # ... and the batch-1 shape before the clock starts
        parts = chunks(len(x), size)
        t0 = time.perf_counter()
        out = [np.asarray(call(x[s])) for s in progress(parts, total=len(parts), desc=self.name,
                                                        enabled=progress_bar)]
        seconds = time.perf_counter() - t0
        latency = batch1_latency(call, x, latency_samples)
        logits = compiled.postprocess(np.concatenate(out).astype(np.float64))
        return BackendRun(self.name, device, logits, seconds, latency)
