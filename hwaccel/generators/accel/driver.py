"""The driver: commands and tensors -> the accelerator's memory images and command words.

Tensors live in the activation scratchpad channels-last: pixel (y, x) row-major, then
``ceil(C / lanes)`` words per pixel, channel ``c`` in word ``c // lanes``, lane ``c % lanes``
(channels past C are zero). A CONV/GEMM/MAXPOOL output has exactly that layout, so programs
chain layers with no host step. Weights and requantizers are stored in the engine's native beat
format (:func:`hwaccel.generators.conv.plan.plan_layer`), the way accelerators keep packed
weights. Memory is handed out by bump allocators; the runtime's compiler can do better.
"""

from __future__ import annotations

import math

import numpy as np

from ...hdl.pack import pack
from ...numerics import avg_params
from ..conv.layer import ConvLayer, descriptor
from ..conv.plan import plan_layer
from .avg_view import avg_parts
from .beats import pad_to_words
from .command_words import ActTensor, encode
from .config import AccelConfig
from .driver_attention import AttentionCommands
from .driver_elt import EltwiseCommands
from .isa import Op

__all__ = ["ActTensor", "ProgramBuilder", "encode"]


class ProgramBuilder(EltwiseCommands, AttentionCommands):
    """Builds a program and the memory images it runs on.

    Parameters
    ----------
    config : AccelConfig
    """

    def __init__(self, config: AccelConfig):
        self.cfg = config
        self.act = np.zeros((config.act_depth, config.lanes), dtype=np.int64)
        self.wgt = [0] * config.wgt_depth
        self.commands: list[int] = []
        self.act_top = 0
        self.wgt_top = 0
        self.macs = 0  # the workload's real multiply-accumulates (for utilization)
        self.lstm_macs = 0  # the same, on the LSTM cell
        self._weights: dict = {}  # (id(w), id(bias), layer) -> (w, bias, base): shared weights

    # --- memory --------------------------------------------------------------------------------
    def alloc(self, channels: int, height: int, width: int) -> ActTensor:
        t = ActTensor(self.act_top, channels, height, width, self.cfg.lanes)
        if t.addr + t.words > self.cfg.act_depth:
            raise ValueError(f"tensor of {t.words} words does not fit the activation scratchpad "
                             f"({self.cfg.act_depth} words, {self.act_top} used)")
        self.act_top += t.words
        return t

    def put(self, x) -> ActTensor:
        """Store a ``C x H x W`` int8 tensor; returns where it is."""
        x = np.asarray(x, dtype=np.int64)
        c, h, w = x.shape
        t = self.alloc(c, h, w)
        self.act[t.addr:t.addr + t.words] = to_words(x, self.cfg.lanes)
        return t

    def _put_wgt(self, words: list[int]) -> int:
        base = self.wgt_top
        if base + len(words) > self.cfg.wgt_depth:
            raise ValueError(f"{len(words)} weight words do not fit the weight scratchpad "
                             f"({self.cfg.wgt_depth} words, {base} used)")
        self.wgt[base:base + len(words)] = words
        self.wgt_top += len(words)
        return base

    # --- commands ------------------------------------------------------------------------------
    def conv(self, x: ActTensor, w, bias, multiplier, shift, *,
             stride: int | tuple[int, int] = 1, padding: int | str | tuple = 0,
             relu: bool = True, pool: bool = False) -> ActTensor:
        """CONV: ``w`` is ``Cout x Cin x KH x KW`` int8; ``stride`` and ``padding`` as
        :class:`~hwaccel.generators.conv.layer.ConvLayer` takes them (per axis, per side);
        returns the output tensor. Calls with the same ``w`` and ``bias`` objects and layer
        share one copy of the weights."""
        w_in, b_in, w = w, bias, np.asarray(w, dtype=np.int64)
        cout = w.shape[0]
        w, bias, multiplier, shift = pad_to_words(self.cfg, w, 0, bias, multiplier, shift)
        layer = ConvLayer(x.height, x.width, x.channels, w.shape[0], (w.shape[2], w.shape[3]),
                          stride, padding, relu, pool)
        key = (id(w_in), id(b_in), layer)
        if key in self._weights:  # the same layer again (another image): weights stay put
            base = self._weights[key][2]
        else:
            plan = plan_layer(self.cfg.conv, layer, np.zeros((x.channels, x.height, x.width)), w,
                              bias, multiplier, shift)
            base = self._put_wgt(plan.weights + plan.requant)
            self._weights[key] = (w_in, b_in, base)
        oh, ow = layer.result_size
        out = self.alloc(cout, oh, ow)
        self.commands.append(encode(self.cfg, Op.CONV, desc=descriptor(self.cfg.conv, layer),
                                    src=x.addr, dst=out.addr, wgt=base))
        self.macs += layer.macs * cout // layer.cout   # the model's, not the padding's
        return out

    def dwconv(self, x: ActTensor, w, bias, multiplier, shift, *,
               stride: int | tuple[int, int] = 1, padding: int | str | tuple = 0,
               relu: bool = True, pool: bool = False) -> ActTensor:
        """Depthwise CONV (``groups = channels``): ``w`` is ``C x 1 x KH x KW`` int8, a kernel
        up to the engine's ``dw_kernel``. One command; the processor runs the channel groups
        (``nb`` of them) one after the other, up to ``dw_groups`` in one engine job, so the
        weights are, per group, its ``dw_issue`` weight beats then its ``dw_beats``
        requantizer beats (a group is a word of ``lanes`` channels; with blocks below the
        lanes, computed a block a beat)."""
        w_in, b_in, w = w, bias, np.asarray(w, dtype=np.int64)
        c, lanes = x.channels, self.cfg.lanes
        if w.ndim != 4 or w.shape[:2] != (c, 1):
            raise ValueError(f"a depthwise w must have shape ({c}, 1, KH, KW), not {w.shape}")
        bias, multiplier, shift = (np.broadcast_to(np.asarray(v, dtype=np.int64), (c,))
                                   for v in (bias, multiplier, shift))
        shape = dict(kernel=(w.shape[2], w.shape[3]), stride=stride, padding=padding,
                     relu=relu, pool=pool, depthwise=True)
        whole = ConvLayer(x.height, x.width, c, c, **shape)
        key = (id(w_in), id(b_in), whole)   # the caller's objects, as conv's key
        if key in self._weights:
            base = self._weights[key][2]
        else:
            words = []
            for g0 in range(0, c, lanes):
                cg = min(lanes, c - g0)
                layer = ConvLayer(x.height, x.width, cg, cg, **shape)
                plan = plan_layer(self.cfg.conv, layer, np.zeros((cg, x.height, x.width)),
                                  w[g0:g0 + cg], bias[g0:g0 + cg], multiplier[g0:g0 + cg],
                                  shift[g0:g0 + cg])
                words += plan.weights + plan.requant
            base = self._put_wgt(words)
            self._weights[key] = (w_in, b_in, base)
        oh, ow = whole.result_size
        out = self.alloc(c, oh, ow)
        desc = descriptor(self.cfg.conv, ConvLayer(x.height, x.width, 1, 1, **shape))
        self.commands.append(encode(self.cfg, Op.CONV, desc=desc, src=x.addr, dst=out.addr,
                                    wgt=base, nb=x.groups))
        self.macs += whole.macs
        return out

    def gemm(self, a: ActTensor, w, bias, multiplier, shift, *, relu: bool = True,
             gelu=None, add=None, share=None) -> ActTensor:
        """GEMM: the ``M = H x W`` pixels of ``a`` are rows of ``K = channels``; ``w`` is
        ``K x N``. Returns ``M`` pixels (``1 x M``) of ``N`` channels. K and N may span several
        engine tiles (:mod:`.isa` gives the weight order the hardware walks). ``gelu``: a
        ``GeluParams`` whose table the result path applies (:mod:`.fuse`; attention configs).
        ``add``: ``(residual, AddRequant, relu)``, the residual ADD in the result path: the
        result overwrites ``residual`` (a ``1 x M`` tensor of N channels), which is returned.
        ``share``: a key for the weights: a later call with the same key (the same weights
        for other rows) uses the words already stored, as CONV does for another image."""
        w = np.asarray(w, dtype=np.int64)
        k, n = w.shape
        if k != a.channels:
            raise ValueError(f"w must have {a.channels} rows (K of a), not {k}")
        if a.groups > self.cfg.gemm_max_words:
            raise ValueError(f"K must be at most {self.cfg.gemm_max_words * self.cfg.lanes} "
                             f"(the accumulators' range), not {k}")
        key = ("gemm", share)
        if share is not None and key in self._weights:
            _, desc, base = self._weights[key]
        else:
            words, desc = self._gemm_words(w, bias, multiplier, shift, relu)
            table = []
            if gelu is not None:   # the table just before the weights (:mod:`.fuse`)
                from ..attention.packing import load_payloads

                self._units("GEMM with a fused GELU")
                table = load_payloads(self.cfg.attention, gelu)
            base = self._put_wgt(table + words) + len(table)
            if share is not None:
                self._weights[key] = (w, desc, base)
        rows = a.height * a.width
        fuse, elt = {"gelu": int(gelu is not None), "add": 0}, None
        if add is not None:
            self._units("GEMM with a fused ADD")
            out, p, add_relu = add
            if (out.channels, out.height * out.width) != (n, rows):
                raise ValueError(f"the residual must be {rows} pixels of {n} channels, not "
                                 f"{out.height * out.width} of {out.channels}")
            fuse["add"] = 1
            elt = {"src2": 0, "mult_a": p.multiplier_a, "mult_b": p.multiplier_b, "shift": p.shift,
                   "relu": int(add_relu)}
        else:
            out = self.alloc(n, 1, rows)
        self.commands.append(encode(self.cfg, Op.GEMM, desc=desc, src=a.addr, dst=out.addr,
                                    wgt=base, count=rows, kw=a.groups,
                                    nb=out.groups * self.cfg.word_beats,
                                    add=elt, fuse=fuse if any(fuse.values()) else None))
        self.macs += rows * k * n
        return out

    def _gemm_words(self, w, bias, multiplier, shift, relu: bool) -> tuple[list[int], dict]:
        """A GEMM's weight words in the order the processor walks its tiles (:mod:`.isa`) and
        the descriptor of its first tile."""
        w, bias, multiplier, shift = pad_to_words(self.cfg, w, 1, bias, multiplier, shift)
        k, n = w.shape
        conv, lanes, blk = self.cfg.conv, self.cfg.lanes, self.cfg.conv.block
        # A K tile of max_groups words may hold more than max_cin channels: check tiles
        # against the engine's word limits, which are what the hardware tiles by.
        tile_cfg = conv.with_(max_cin=conv.max_groups * lanes, max_cout=conv.max_blocks * blk)
        kt, nt = conv.max_groups * lanes, conv.max_blocks * blk
        bias, multiplier, shift = (np.broadcast_to(np.asarray(v, dtype=np.int64), (n,))
                                   for v in (bias, multiplier, shift))
        words, desc = [], None
        for n0 in range(0, n, nt):
            n1 = min(n, n0 + nt)
            rq = None
            for k0 in range(0, k, kt):
                k1 = min(k, k0 + kt)
                layer = ConvLayer(1, 1, k1 - k0, n1 - n0, 1, 1, 0, relu, False)
                plan = plan_layer(tile_cfg, layer, np.zeros((k1 - k0, 1, 1)),
                                  w[k0:k1, n0:n1].T[:, :, None, None], bias[n0:n1],
                                  multiplier[n0:n1], shift[n0:n1])
                words += plan.weights
                rq = plan.requant
                if desc is None:
                    desc = descriptor(tile_cfg, layer)
            words += rq
        return words, desc

    def lstm(self, x: ActTensor, params) -> ActTensor:
        """LSTM over the ``T = H x W`` pixels of ``x`` (``I`` channels each) from zero state, with
        :class:`hwaccel.generators.lstm.model.LstmParams` ``params`` of any size up to the
        cell's; returns ``1 x T`` pixels of ``H`` channels (every step's h). Calls with the same
        ``params`` object share weights.

        Raises
        ------
        ValueError
            If the config has no LSTM cell, a size is above the cell's (naming the limit), or
            ``x`` does not have ``params``' input size in channels.
        """
        from ..lstm.driver import param_beats, weight_beats

        if self.cfg.lstm is None:
            raise ValueError(f"{self.cfg.slug} has no LSTM cell (config lstm=None)")
        lc = self.cfg.lstm.run(params.input_size, params.hidden_size)
        if x.channels != lc.input_size:
            raise ValueError(f"x must have {lc.input_size} channels (the LSTM's input_size), "
                             f"not {x.channels}")
        steps = x.height * x.width
        key = (id(params), "lstm")
        if key in self._weights:
            base = self._weights[key][2]
        else:
            base = self._put_wgt(weight_beats(lc, params) + param_beats(lc, params))
            self._weights[key] = (params, None, base)
        out = self.alloc(lc.hidden_size, 1, steps)
        self.commands.append(encode(self.cfg, Op.LSTM, src=x.addr, dst=out.addr, wgt=base,
                                    count=steps, lstm={"input_size": lc.input_size,
                                                       "hidden_size": lc.hidden_size}))
        self.lstm_macs += steps * lc.macs_per_step
        return out

    def maxpool(self, x: ActTensor) -> ActTensor:
        if x.height < 2 or x.width < 2:
            raise ValueError(f"maxpool needs a map of at least 2x2, not {x.height}x{x.width}")
        c = self.cfg.conv
        for name, value, most in (("height", x.height, c.max_height),
                                  ("width", x.width, c.max_width),
                                  ("channels", x.channels, c.max_cout)):
            if value > most:
                raise ValueError(f"maxpool {name} must be at most {most}, not {value!r}")
        out = self.alloc(x.channels, x.height // 2, x.width // 2)
        pool = {"width": x.width, "height": x.height, "blocks": x.groups, "enable": 1}
        self.commands.append(encode(self.cfg, Op.MAXPOOL, pool=pool, src=x.addr, dst=out.addr))
        return out

    def avgpool(self, x: ActTensor, kh: int, kw: int) -> ActTensor:
        """AVGPOOL: the int8 mean (:func:`hwaccel.numerics.average`) of each non-overlapping
        ``kh x kw`` window, stride = window, floor (``kh, kw = x.height, x.width``: global
        average pooling); returns ``channels x (height // kh) x (width // kw)``. A map beyond
        the unit's rows runs as one command per band of window rows (:func:`.avg_parts`)."""
        cfg = self.cfg
        parts = avg_parts(cfg, x.height, x.width, x.groups, kh, kw)   # checks the window
        out = self.alloc(x.channels, x.height // kh, x.width // kw)
        mult, shift = avg_params(kh * kw)
        self.commands += [encode(cfg, Op.AVGPOOL, src=x.addr + src, dst=out.addr + dst,
                                 avg={**view, "mult": mult, "shift": shift})
                          for src, dst, view in parts]
        return out

    def view(self, first: ActTensor, channels: int, height: int, width: int) -> ActTensor:
        """A tensor over words from ``first.addr`` on (e.g. consecutive outputs as one matrix)."""
        t = ActTensor(first.addr, channels, height, width, self.cfg.lanes)
        if t.addr + t.words > self.act_top:
            raise ValueError(f"view of {t.words} words runs past the allocated scratchpad")
        return t

    def fence(self) -> None:
        self.commands.append(encode(self.cfg, Op.FENCE))

    def done(self) -> None:
        self.commands.append(encode(self.cfg, Op.DONE))

    def raw(self, word: int) -> None:
        """Append a hand-made command word (fault tests)."""
        self.commands.append(int(word))

    # --- images --------------------------------------------------------------------------------
    def act_words(self) -> list[int]:
        """The activation image as packed words, up to the last allocated one."""
        return [pack(row.tolist(), 8) for row in self.act[: self.act_top]]


def to_words(x: np.ndarray, lanes: int) -> np.ndarray:
    """``C x H x W`` -> ``(H*W*groups) x lanes`` channels-last words (zero-padded channels)."""
    c, h, w = x.shape
    groups = math.ceil(c / lanes)
    padded = np.zeros((groups * lanes, h, w), dtype=np.int64)
    padded[:c] = x
    return padded.transpose(1, 2, 0).reshape(h * w * groups, lanes)


def from_words(words: np.ndarray, t: ActTensor) -> np.ndarray:
    """Inverse of :func:`to_words` for tensor ``t`` (``words`` is the whole image)."""
    block = np.asarray(words[t.addr:t.addr + t.words], dtype=np.int64)
    hwc = block.reshape(t.height, t.width, t.groups * t.lanes)
    return hwc.transpose(2, 0, 1)[: t.channels]


