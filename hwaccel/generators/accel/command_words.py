"""The tensors and command words the driver hands out: :class:`ActTensor` (a tensor's place in
the activation scratchpad) and :func:`encode` (one command word from its fields, :mod:`.isa`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..conv.layouts import layer_layout, pack_struct, pool_layer_layout
from .config import AccelConfig
from .isa import command_layout, elt_layout

__all__ = ["ActTensor", "encode"]


@dataclass(frozen=True)
class ActTensor:
    """A ``channels x height x width`` int8 tensor at word ``addr`` of the scratchpad."""

    addr: int
    channels: int
    height: int
    width: int
    lanes: int

    @property
    def groups(self) -> int:
        return math.ceil(self.channels / self.lanes)

    @property
    def words(self) -> int:
        return self.height * self.width * self.groups


def encode(cfg: AccelConfig, op: int, *, desc: dict | None = None, pool: dict | None = None,
           src: int = 0, dst: int = 0, wgt: int = 0, count: int = 0, kw: int = 0,
           nb: int = 0, add: dict | None = None, avg: dict | None = None,
           lstm: dict | None = None, attn: dict | None = None,
           fuse: dict | None = None) -> int:
    """One command word; ``desc``/``pool`` are the conv/max-pool descriptor fields, ``kw``/``nb``
    a GEMM's words per row of A and blocks per row of C, ``add``/``avg`` the ADD/AVGPOOL
    fields, ``lstm`` the LSTM's ``{input_size, hidden_size}``, ``attn`` the attention commands'
    fields (:mod:`.isa`)."""
    conv = cfg.conv
    d = pack_struct(layer_layout(conv), desc) if desc else 0
    p = pack_struct(pool_layer_layout(conv.pool_config), pool) if pool else 0
    elt = elt_layout(cfg)
    e = (pack_struct(elt["add"].shape, add) if add else 0) | (
        pack_struct(elt["avg"].shape, avg) if avg else 0)
    fields = {"op": int(op), "desc": d, "pool": p, "src": src, "dst": dst, "wgt": wgt,
              "count": count, "kw": kw, "nb": nb, "elt": e}
    if lstm and cfg.lstm is None:
        raise ValueError(f"{cfg.slug} has no LSTM cell, so its commands have no lstm field")
    if cfg.lstm is not None:
        fields["lstm"] = pack_struct(command_layout(cfg)["lstm"].shape, lstm) if lstm else 0
    if attn and cfg.attention is None:
        raise ValueError(f"{cfg.slug} has no attention units, so its commands have no attn field")
    if cfg.attention is not None:
        fields["attn"] = pack_struct(command_layout(cfg)["attn"].shape, attn) if attn else 0
    if fuse and cfg.attention is None:
        raise ValueError(f"{cfg.slug} has no attention units, so a GEMM has no fuse field "
                         f"(no fused GELU)")
    if cfg.attention is not None:
        fields["fuse"] = pack_struct(command_layout(cfg)["fuse"].shape, fuse) if fuse else 0
    return pack_struct(command_layout(cfg), fields)
