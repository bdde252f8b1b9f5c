"""The lowering's emission pass: :class:`_Emitter` writes each op's commands for every sample,
with every tensor where the memory plan (:func:`.memory.plan`) put it, on a
:class:`~.builders.PlacedBuilder` (or a :class:`~.builders.DryBuilder` that only counts). How
each op runs is in :mod:`.lower`'s docstring; :func:`.lower.lower` drives it op by op, and
:func:`.im2col.layer_cycles` runs it on one layer alone."""

from __future__ import annotations

import numpy as np

from ..generators.accel.config import AccelConfig
from ..generators.accel.driver import ActTensor
from ..generators.conv.layer import ConvLayer
from . import im2col, ir, lower_attention, lower_bands
from .builders import DryBuilder, PlacedBuilder
from .fuse import fused_add_args, fused_gelu_params
from .line_view import line_dilation
from .line_view import view as line_view
from .lower_types import LoweringError, gemm_parts, linear_as_conv, wide_pointwise
from .memory import DoesNotFit


class _Emitter:
    """Emits each op's commands for every sample, with tensors where the plan put them."""

    def __init__(self, cfg: AccelConfig, vals: dict, where: dict, batch: int, dry: bool):
        self.cfg, self.vals, self.where, self.batch = cfg, vals, where, batch
        self.b = DryBuilder(cfg) if dry else PlacedBuilder(cfg)
        self.d2s: dict = {}   # conv name -> the depth-to-space it writes (lower_types)
        self.bands: dict = {}     # a banded chain's last conv -> its lower_bands.Chain
        self.banded: set = set()  # the chains' other convs (the last one runs them)
        self.marks: list = []     # (layer, programs ended, commands) after each layer's commands

    def tensors(self, value: str) -> list[ActTensor]:
        v = self.vals[value]
        return v.tensors(self.where[v.block], self.batch, self.cfg.lanes)

    def engine(self, name: str, fn):
        """``fn()``, with an engine-limit error re-raised naming the layer."""
        try:
            return fn()
        except DoesNotFit:
            raise
        except ValueError as exc:
            raise LoweringError(f"layer {name!r} cannot run on {self.cfg.slug}: {exc}") from exc

    def per_sample(self, op, call) -> None:
        """``call(i)`` for every sample ``i``, its output at the plan's place."""
        self.b.layer = op.name
        out = self.tensors(op.name)
        for i in range(self.batch):
            self.b.at = out[i].addr
            self.engine(op.name, lambda i=i: call(i))

    def put(self, value: str, xs: list[np.ndarray]) -> None:
        for t, x in zip(self.tensors(value), xs):
            self.b.at = t.addr
            self.b.put(x)

    def op(self, op) -> None:
        if op.name in self.banded:
            return None
        if op.name in self.bands:
            return lower_bands.emit(self, self.bands[op.name])
        if isinstance(op, ir.QATTENTION_OPS):
            return lower_attention.emit(self, op)
        xs = self.tensors(op.inputs[0])
        if isinstance(op, ir.QConv) and self.vals[op.inputs[0]].kind != "patches" and (
                d := line_dilation(op, (xs[0].channels, xs[0].height, xs[0].width),
                                   self.cfg)) > 1:   # the line as rows of d (line_view)
            op = line_view(op, d)
            xs = [ActTensor(x.addr, x.channels, x.width // d, d, self.cfg.lanes) for x in xs]
        if isinstance(op, ir.QConv) and self.vals[op.inputs[0]].kind == "patches":
            im2col.emit(self, op, xs)
        elif isinstance(op, ir.QConv) and op.name in self.d2s:
            self.depth_to_space(op, xs)
        elif isinstance(op, ir.QConv) and op.depthwise:
            self.dwconv(op, xs)
        elif isinstance(op, ir.QConv) and wide_pointwise(self.cfg, op, xs[0].channels,
                                                             xs[0].width):
            self.pointwise_gemm(op, xs)
        elif isinstance(op, ir.QConv):
            self.conv(op, xs, op.w, stride=op.stride, padding=op.padding, pool=op.pool)
        elif isinstance(op, ir.QMaxPool) and op.line:
            self.line_maxpool(op, xs)
        elif isinstance(op, ir.QMaxPool):
            self.per_sample(op, lambda i: self.b.maxpool(xs[i]))
        elif isinstance(op, ir.QAvgPool):
            self.per_sample(op, lambda i: self.b.avgpool(xs[i], *op.kernel))
        elif isinstance(op, ir.QAdd):
            ys = self.tensors(op.inputs[1])
            self.per_sample(op, lambda i: self.b.add(xs[i], ys[i], op.params, relu=op.relu))
        elif isinstance(op, ir.QMul):
            self.mul(op, xs)
        elif isinstance(op, ir.QLinear):
            self.linear(op, xs)
        elif isinstance(op, ir.QLstm):
            order = range(self.batch - 1, -1, -1) if op.last_step else range(self.batch)
            self.b.layer = op.name
            v = self.vals[op.name]
            base = self.where[v.block]
            for i in order:
                self.b.at = base + i * v.stride
                self.engine(op.name, lambda i=i: self.b.lstm(xs[i], op.params))

    def mul(self, op: ir.QMul, xs) -> None:
        """One MUL a sample. A gate is copied first, with its first word again after it (two
        ADDs that copy exactly, into the ``<op> gate`` block: the MUL reads a gate in pairs of
        words, :mod:`hwaccel.generators.accel.isa`)."""
        ys = self.tensors(op.inputs[1])
        if op.gate:   # the driver's gate(), each at its place in the block
            base, g = self.where[f"{op.name} gate"], ys[0].groups
            self.b.layer = op.name
            for i, y in enumerate(ys):
                self.b.at = base + i * (g + 1)
                ys[i] = self.b.gate(y)
        self.per_sample(op, lambda i: self.b.mul(xs[i], ys[i], op.shift, relu=op.relu,
                                                 gate=op.gate))

    def pointwise_gemm(self, op: ir.QConv, xs) -> None:
        """A wide 1x1 conv (:func:`~.lower_types.wide_pointwise`) as the GEMM of its pixels by its
        ``Cin x Cout`` weights, one a sample: channels-last, a map's pixels are the GEMM's rows
        of A and its output's rows of C, and the processor tiles N and K in hardware
        (:mod:`~hwaccel.generators.accel.isa`), so the sums, requantizers and ReLU are the
        conv's, with no channel or row limit but the accumulators' range; the samples share one
        copy of the weights. Weights beyond the weight scratchpad run as a Linear's do, in parts
        of the output blocks, a pixel at a time (:meth:`linear_parts`)."""
        wk = op.w[:, :, 0, 0].T
        if self.linear_parts(op, xs, xs[0].channels, wk, xs[0].height * xs[0].width):
            return
        self.per_sample(op, lambda i: self.b.gemm(
            self.b.view(xs[i], xs[i].channels, 1, xs[i].height * xs[i].width), wk, op.bias,
            op.multiplier, op.shift, relu=op.relu, share=(op.name,)))

    def depth_to_space(self, op: ir.QConv, xs) -> None:
        """A 1 x 1 conv into a depth-to-space by ``f`` (a ConvTranspose2d of kernel = stride
        ``f``, a nearest upsampling; :mod:`.trace_upsample`) as GEMMs that write each output
        where the depth-to-space puts it: input row ``r``'s ``W`` pixels make output row ``f r +
        a``'s ``f W`` pixels, channels-last, so for each ``a`` a GEMM of the row's pixels by
        the weights of the ``f`` pixels ``(a, b)`` (``Cin x f * C``, each pixel's channels
        padded to whole words) writes that output row whole. ``f`` weight sets, each stored
        once and run for every row of every sample in turn (the engine keeps a job's weights
        for the next job that has the same); ``f x H`` GEMMs a sample."""
        d2s, lanes = self.d2s[op.name], self.cfg.lanes
        f, (cin, h, w) = d2s.factor, (xs[0].channels, xs[0].height, xs[0].width)
        c = op.w.shape[0] // (f * f)
        go = -(-c // lanes)
        n = f * go * lanes
        if gemm_parts(self.cfg, xs[0].groups, n) != 1:   # (not split in parts of outputs)
            kw, nb = xs[0].groups, n // lanes * self.cfg.word_beats
            raise DoesNotFit(f"the weights of layer {op.name!r} ({(kw + 1) * nb} words: {nb} "
                             f"output blocks of {kw} weight words and a requantizer word) do "
                             f"not fit the weight scratchpad of {self.cfg.slug} "
                             f"({self.cfg.wgt_depth} words)")
        wk = op.w[:, :, 0, 0].reshape(c, f, f, cin)   # channel c * f * f + a * f + b
        per = [np.broadcast_to(np.asarray(v, dtype=np.int64), (c * f * f,)).reshape(c, f, f)
               for v in (op.bias, op.multiplier, op.shift)]
        pad = ((0, 0), (0, go * lanes - c))
        out = self.tensors(d2s.name)
        self.b.layer = op.name
        for a in range(f):
            wa = np.zeros((cin, f, go * lanes), dtype=np.int64)
            wa[:, :, :c] = wk[:, a].transpose(2, 1, 0)   # (cin, b, c)
            args = (wa.reshape(cin, n), *(np.pad(v[:, a].T, pad, mode=m).reshape(-1) for v, m
                                          in zip(per, ("constant", "edge", "edge"))))
            for x, y in zip(xs, out):
                for r in range(h):
                    row = ActTensor(x.addr + r * w * x.groups, cin, 1, w, lanes)
                    self.b.at = y.addr + (f * r + a) * f * w * go
                    self.engine(op.name, lambda row=row, args=args, key=(op.name, a):
                                self.b.gemm(row, *args, relu=op.relu, share=key))

    def line_maxpool(self, op: ir.QMaxPool, xs) -> None:
        """A line's max over each 4 consecutive values: MAXPOOL's 2 x 2 windows over the line
        laid out as ``L // 2`` rows of 2 pixels (channels-last, the same words), in bands of
        at most the unit's ``max_height`` rows (an even number: a window's two rows are four
        consecutive values, so bands are independent)."""
        out, lanes = self.tensors(op.name), self.cfg.lanes
        rows = xs[0].width // 4 * 2   # the rows of 2 that whole windows cover
        band = max(2, self.cfg.conv.max_height // 2 * 2)
        self.b.layer = op.name
        for x, y in zip(xs, out):
            for r0 in range(0, rows, band):
                r = min(band, rows - r0)
                self.b.at = y.addr + r0 // 2 * y.groups
                self.engine(op.name, lambda x=x, r0=r0, r=r: self.b.maxpool(ActTensor(
                    x.addr + 2 * r0 * x.groups, x.channels, r, 2, lanes)))

    def in_bands(self, op, xs, w, pool) -> bool:
        """Run ``op`` in bands (:meth:`conv_bands`) if its map is taller than the line buffer,
        or its line wider than it (no pool); whether it did."""
        t0, c = xs[0], self.cfg.conv
        axis = 0 if t0.height > c.max_height else \
            1 if t0.height == 1 and t0.width > c.max_width and not pool else None
        if axis is not None:
            self.conv_bands(op, xs, w, axis=axis, pool=pool)
        return axis is not None

    def conv(self, op, xs, w, *, stride, padding, pool) -> None:
        t0 = xs[0]
        if self.in_bands(op, xs, w, pool):
            return
        self.engine(op.name, lambda: ConvLayer(t0.height, t0.width, t0.channels, w.shape[0],
                                               ir.squash(w.shape[2:]), stride, padding,
                                               op.relu, pool))
        self.per_sample(op, lambda i: self.b.conv(xs[i], w, op.bias, op.multiplier, op.shift,
                                                  stride=stride, padding=padding,
                                                  relu=op.relu, pool=pool))

    def conv_bands(self, op, xs, w, axis: int = 0, pool: bool = False) -> None:
        """A map taller than the engine's line buffer (``axis`` 0), or a line (a one-row map)
        wider than it (``axis`` 1): one CONV (depthwise or dense) per band of output rows
        (columns), each reading the input rows (columns) its windows cover (channels-last,
        either is a run of consecutive words, in and out), padded only where the whole map
        is. With a fused 2 x 2 ``pool`` (rows only) a band is an even number of the conv's
        rows, so each of its pooled rows is whole."""
        k, s = op.kernel[axis], op.strides[axis]
        top, left, bottom, right = op.pads
        size, lanes = (xs[0].height, xs[0].width)[axis], self.cfg.lanes
        f = 2 if pool else 1
        osize = tuple(n // f for n in op.out_size(xs[0].height, xs[0].width))
        most = (self.cfg.conv.max_height, self.cfg.conv.max_width)[axis]
        what, unit = (("height", "rows"), ("width", "columns"))[axis]
        n = ((most - k) // s + 1) // f   # (pooled) output rows (columns) whose windows fit
        if n < 1:
            raise LoweringError(f"layer {op.name!r} cannot run on {self.cfg.slug}: its kernel "
                                f"{what} {k} at stride {s}" + (" and a 2 x 2 pool" if pool
                                                              else "")
                                + f" exceeds the line buffer's {most} {unit}")
        step = (xs[0].width, 1)[axis]   # pixels an input row (column) is from the next
        ostep = (osize[1], 1)[axis]
        out = self.tensors(op.name)
        self.b.layer = op.name
        call = self.b.dwconv if op.depthwise else self.b.conv
        for o0 in range(0, osize[axis], n):
            nb = min(n, osize[axis] - o0)
            lo, hi, above, below = lower_bands.window_rows(f * o0, f * (o0 + nb), k, s,
                                                           (top, left)[axis], size)
            pads = ir.squash((above, left, below, right) if axis == 0 else
                             (top, above, bottom, below))
            for i, x in enumerate(xs):
                shape = (hi - lo, x.width) if axis == 0 else (1, hi - lo)
                band = ActTensor(x.addr + lo * step * x.groups, x.channels, *shape, lanes)
                self.b.at = out[i].addr + o0 * ostep * out[i].groups
                self.engine(op.name, lambda band=band, pads=pads: call(
                    band, w, op.bias, op.multiplier, op.shift, stride=op.stride, padding=pads,
                    relu=op.relu, pool=pool))

    def dwconv(self, op, xs) -> None:
        """A depthwise conv: one depthwise CONV per sample, or per band of output rows on a map
        taller than the line buffer (of columns on a line wider than it: :meth:`conv_bands`);
        a kernel beyond the engine's ``dw_kernel`` or a padding beyond its ``max_pad`` is
        refused naming the layer."""
        if self.in_bands(op, xs, op.w, op.pool):
            return
        self.per_sample(op, lambda i: self.b.dwconv(xs[i], op.w, op.bias, op.multiplier,
                                                    op.shift, stride=op.stride,
                                                    padding=op.padding, relu=op.relu,
                                                    pool=op.pool))

    def linear(self, op: ir.QLinear, xs) -> None:
        if lower_attention.joint_linear(self, op):   # one GEMM for the group's ops
            return
        x, t0 = self.vals[op.inputs[0]], xs[0]
        if x.kind == "flat" and linear_as_conv(
                self.cfg, (t0.channels, t0.height, t0.width), op.w.shape[0]):
            w = op.w.reshape(op.w.shape[0], t0.channels, t0.height, t0.width)
            return self.conv(op, xs, w, stride=1, padding=0, pool=False)
        n, lanes = op.w.shape[0], self.cfg.lanes
        rows_per = t0.width if x.kind == "seq" else 1
        if x.kind == "flat":  # one row of every pixel's words, channels-last
            k = t0.words * lanes
            wk = np.zeros((t0.height, t0.width, t0.groups * lanes, n), dtype=np.int64)
            chw = op.w.T.reshape(t0.channels, t0.height, t0.width, n)
            wk[:, :, : t0.channels] = chw.transpose(1, 2, 0, 3)
            wk = wk.reshape(k, n)
        else:
            k, wk = t0.channels, op.w.T
        if self.linear_parts(op, xs, k, wk, rows_per):
            return
        if any(t.addr != t0.addr + i * t0.words for i, t in enumerate(xs)):  # a token's rows
            return lower_attention.linear_per_sample(self, op, xs, wk)
        a = self.b.view(t0, k, 1, self.batch * rows_per)
        self.b.layer = op.name
        self.b.at = self.tensors(op.name)[0].addr
        self.engine(op.name, lambda: self.b.gemm(a, wk, op.bias, op.multiplier, op.shift,
                                                 relu=op.relu, gelu=fused_gelu_params(op),
                                                 add=fused_add_args(self, op)))

    def linear_parts(self, op: ir.QLinear | ir.QConv, xs, k: int, wk, rows_per: int) -> bool:
        """A Linear (or a 1x1 conv run as a GEMM, a row a pixel) whose GEMM's weights (``(kw + 1) x
        nb`` words, :mod:`~hwaccel.generators. accel.isa`) do not fit the weight scratchpad: its
        output channels in parts of whole blocks that each fit, part after part. A GEMM writes its
        rows of C its own ``nb`` words apart, so a part is a one-row GEMM for every row of every
        sample, writing the part's words of the row. Its weights are stored once for all its rows,
        but a part of more than one engine tile loads them into the engine again for every row (the
        hardware reuses only a job's weights equal to the job's before), so at batch 1 this costs
        nothing and beyond it a load a row. A part that does not fit what is left of the scratchpad
        starts the next program (:class:`~.builders.PlacedBuilder`). False (one GEMM) when the
        weights fit, and for a fused GELU or ADD; :class:`DoesNotFit` when a single block's do
        not."""
        cfg, lanes = self.cfg, self.cfg.lanes
        n, kw = wk.shape[1], -(-k // lanes)
        parts = gemm_parts(cfg, kw, n)
        if parts == 1 or fused_gelu_params(op) is not None or fused_add_args(self, op) is not None:
            return False
        blk, nw = cfg.conv.block, cfg.word_beats
        if parts == 0:   # a part is whole words: nw blocks of kw weight words and a requantizer's
            least = (f"one output block at a time ({kw + 1} words: " if nw == 1 else
                     f"one output word at a time ({nw} blocks of {blk} channels, {nw * (kw + 1)} "
                     f"words: each ")
            raise DoesNotFit(
                f"the weights of layer {op.name!r} do not fit the weight scratchpad of "
                f"{cfg.slug} ({cfg.wgt_depth} words) even {least}{kw} weight words and a "
                f"requantizer word); short by {nw * (kw + 1) - cfg.wgt_depth} words")
        nb = -(-n // blk)
        per = -(-nb // parts // nw) * nw * blk   # channels of a part (whole words), as even as fit
        out = self.tensors(op.name)
        self.b.layer = op.name
        bias, mult, shift = (np.broadcast_to(np.asarray(v), (n,))
                             for v in (op.bias, op.multiplier, op.shift))
        for n0 in range(0, n, per):
            part = slice(n0, min(n, n0 + per))
            args, key = (wk[:, part], bias[part], mult[part], shift[part]), (op.name, n0)
            for i, x in enumerate(xs):
                for r in range(rows_per):
                    row = ActTensor(x.addr + r * kw, k, 1, 1, lanes)
                    self.b.at = out[i].addr + r * out[i].groups + n0 // lanes
                    self.engine(op.name, lambda row=row, args=args, key=key: self.b.gemm(
                        row, *args, relu=op.relu, share=key))
        return True
