"""The fused GELU (:mod:`.fuse`) in the golden interpreter and the cycle model: one definition of
which GEMMs are fused, where their table is, and what it does to the stored words."""

from __future__ import annotations

import numpy as np

from ...numerics.gelu import GELU_TABLE_SIZE, GeluParams, gelu_int
from ..attention.packing import GELU_ENTRY_BITS, load_beats, unpack
from .config import AccelConfig
from .isa import Op

__all__ = ["gelu_beats", "fused_gelu", "gelu_golden"]


def gelu_beats(cfg: AccelConfig) -> int:
    """Weight words of a fused GELU's table on ``cfg`` (1 on ``default_attention``)."""
    return load_beats(GELU_TABLE_SIZE, GELU_ENTRY_BITS, cfg.wgt_bits)


def fused_gelu(cfg: AccelConfig, c: dict) -> int:
    """The table's weight words if decoded command ``c`` is a GEMM with ``fuse.gelu``, else 0."""
    if cfg.attention is None or c["op"] != Op.GEMM or not c["fuse"]["gelu"]:
        return 0
    return gelu_beats(cfg)


def gelu_golden(cfg: AccelConfig, act: np.ndarray, wgt: list[int], c: dict, beats: int) -> None:
    """Every lane of the GEMM's stored words through the table at ``wgt - beats``
    (:func:`hwaccel.numerics.gelu_int`), as the GELU command maps its words."""
    from .attn_isa import signed

    words = [int(w) for w in wgt[c["wgt"] - beats:c["wgt"]]]
    table = [signed(e, GELU_ENTRY_BITS)
             for e in unpack(words, GELU_TABLE_SIZE, GELU_ENTRY_BITS, cfg.wgt_bits)]
    dst, n = c["dst"], c["count"] * c["nb"]
    act[dst:dst + n] = gelu_int(act[dst:dst + n], GeluParams(tuple(table)))
