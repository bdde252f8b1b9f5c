"""The driver's attention commands (:class:`~.driver.ProgramBuilder` inherits them): SOFTMAX,
LAYERNORM, GELU and MATMUL (:mod:`.isa`), with their parameters stored in the weight
scratchpad in the words :mod:`.attn_isa` defines, tables and per-channel parameters packed into
weight words as :mod:`hwaccel.generators.attention.packing` defines (shared by identity, as a
layer's weights are).

A sequence is an ``ActTensor`` of ``channels x 1 x T`` (``T`` rows of ``ceil(channels /
lanes)`` words, channels-last, as every tensor): the rows of a MATMUL, a SOFTMAX or a LAYERNORM.
"""

from __future__ import annotations

import math

from ...numerics import MULT_BITS
from ...numerics.gelu import GeluParams
from ...numerics.layernorm import LayerNormParams
from ...numerics.softmax import SoftmaxParams
from ..attention.packing import load_payloads
from .attn_isa import ln_setup_layout
from .isa import Op

__all__ = ["AttentionCommands", "ATTN_DEFAULTS"]

#: Every ``attn`` field, zero (a command fills in its own).
ATTN_DEFAULTS = {"n": 0, "causal": 0, "src2": 0, "k": 0, "sa": 0, "sb": 0, "sc": 0,
                 "transpose": 0, "mult": 0, "shift": 0}


class AttentionCommands:
    """SOFTMAX, LAYERNORM, GELU and MATMUL for :class:`~.driver.ProgramBuilder`."""

    def _attn(self, op: Op, **fields) -> None:
        from .driver import encode

        self._units(op.name)
        attn = {k: fields.pop(k, v) for k, v in ATTN_DEFAULTS.items()}
        self.commands.append(encode(self.cfg, op, attn=attn, **fields))

    def _units(self, what: str) -> None:
        if self.cfg.attention is None:
            raise ValueError(f"{self.cfg.slug} has no attention units (config attention=None), "
                             f"so it has no {what} command")

    def _shared_wgt(self, params, kind: str, words) -> int:
        key = (id(params), kind)
        if key not in self._weights:
            self._weights[key] = (params, None, self._put_wgt(list(words())))
        return self._weights[key][2]

    @staticmethod
    def _rows(x) -> int:
        return x.height * x.width

    def softmax(self, x, params: SoftmaxParams, *, causal: bool = False):
        """SOFTMAX of every row of sequence ``x`` (``channels`` = the row length); returns a new
        tensor of probabilities (0..127). ``causal``: row ``r`` sees columns ``0..r``."""
        self._units("SOFTMAX")
        if not isinstance(params, SoftmaxParams):
            raise TypeError(f"params must be a SoftmaxParams, not {params!r}")
        if x.channels > self.cfg.attention.max_len:
            raise ValueError(f"softmax rows of {x.channels} are longer than the unit's max_len "
                             f"{self.cfg.attention.max_len}")
        if causal and self._rows(x) > x.channels:
            raise ValueError(f"a causal softmax needs at most as many rows as columns, not "
                             f"{self._rows(x)} rows of {x.channels}")
        base = self._shared_wgt(params, "softmax",
                                lambda: load_payloads(self.cfg.attention, params))
        out = self.alloc(x.channels, x.height, x.width)
        self._attn(Op.SOFTMAX, src=x.addr, dst=out.addr, wgt=base, count=self._rows(x),
                   n=x.channels, causal=int(bool(causal)))
        return out

    def layernorm(self, x, params: LayerNormParams):
        """LAYERNORM of every row of sequence ``x`` (``params.channels`` channels)."""
        from ..conv.layouts import pack_struct

        self._units("LAYERNORM")
        if not isinstance(params, LayerNormParams):
            raise TypeError(f"params must be a LayerNormParams, not {params!r}")
        if x.channels != params.channels:
            raise ValueError(f"x has {x.channels} channels and the LayerNorm {params.channels}")
        if x.channels > self.cfg.attention.max_channels:
            raise ValueError(f"LayerNorm rows of {x.channels} channels exceed the unit's "
                             f"max_channels {self.cfg.attention.max_channels}")

        def words():
            yield pack_struct(ln_setup_layout(), {"eps": params.eps_term, "shift": params.shift})
            yield from load_payloads(self.cfg.attention, params)

        base = self._shared_wgt(params, "layernorm", words)
        out = self.alloc(x.channels, x.height, x.width)
        self._attn(Op.LAYERNORM, src=x.addr, dst=out.addr, wgt=base, count=self._rows(x),
                   n=x.channels)
        return out

    def gelu(self, x, params: GeluParams):
        """GELU of every value of ``x`` (any tensor); returns a new tensor of its shape."""
        if not isinstance(params, GeluParams):
            raise TypeError(f"params must be a GeluParams, not {params!r}")
        self._units("GELU")
        base = self._shared_wgt(params, "gelu", lambda: load_payloads(self.cfg.attention, params))
        out = self.alloc(x.channels, x.height, x.width)
        self._attn(Op.GELU, src=x.addr, dst=out.addr, wgt=base, count=x.words)
        return out

    def matmul_raw(self, *, src: int, sa: int, src2: int, sb: int, dst: int, sc: int, m: int,
                   k: int, n: int, multiplier: int, shift: int, transpose: bool) -> None:
        """One MATMUL with every field given (word addresses and row strides, :mod:`.isa`):
        what a compiler emits for a head's columns of joined tensors."""
        if not (0 <= multiplier < (1 << MULT_BITS)) or shift < 1:
            raise ValueError(f"matmul requantizer must be M in [0, 2**{MULT_BITS}), S >= 1, "
                             f"not ({multiplier}, {shift})")
        self._attn(Op.MATMUL, src=src, dst=dst, count=m, k=k, n=n, src2=src2, sa=sa, sb=sb,
                   sc=sc, mult=multiplier, shift=shift, transpose=int(bool(transpose)))
        self.macs += m * k * n
        # C's words are now in use (a view over them, e.g. the joined heads, may follow)
        self.act_top = max(self.act_top, dst + (m - 1) * sc + math.ceil(n / self.cfg.lanes))

    def matmul(self, a, b, multiplier: int, shift: int, *, transpose: bool = False):
        """``requantize(A @ B)`` (``A @ B^T`` with ``transpose``) of sequences ``a`` (M rows of
        K) and ``b`` (K rows of N, or N rows of K); returns the M rows of N."""
        m, k = self._rows(a), a.channels
        n = self._rows(b) if transpose else b.channels
        if (b.channels if transpose else self._rows(b)) != k:
            raise ValueError(f"matmul inner sizes differ: A has K = {k}, B "
                             f"{b.channels if transpose else self._rows(b)}")
        out = self.alloc(n, 1, m)
        self.matmul_raw(src=a.addr, sa=a.groups, src2=b.addr, sb=b.groups, dst=out.addr,
                        sc=math.ceil(n / self.cfg.lanes), m=m, k=k, n=n,
                        multiplier=multiplier, shift=shift, transpose=transpose)
        return out
