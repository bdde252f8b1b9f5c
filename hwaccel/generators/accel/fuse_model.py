"""The fused GELU (:mod:`.fuse`) in the golden interpreter and the cycle model: one definition of
which GEMMs are fused, where their table is, and what it does to the stored words."""

from __future__ import annotations

import numpy as np

from ...numerics.gelu import GELU_TABLE_SIZE, GeluParams, gelu_int
from ..attention.packing import GELU_ENTRY_BITS, load_beats, unpack
from .config import AccelConfig
from .isa import Op

__all__ = ["gelu_beats", "fused_gelu", "gelu_golden", "fused_add", "add_golden", "run_fused"]


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


def fused_add(cfg: AccelConfig, c: dict) -> bool:
    """Whether decoded command ``c`` is a GEMM with ``fuse.add``."""
    return cfg.attention is not None and c["op"] == Op.GEMM and bool(c["fuse"]["add"])


def add_golden(act: np.ndarray, c: dict, residual: np.ndarray) -> None:
    """The stored words plus ``residual`` (the words they replaced), lane by lane
    (:func:`hwaccel.numerics.add_requantize` with the command's ``elt.add`` fields)."""
    from ...numerics import AddRequant, add_requantize

    a = c["elt"]["add"]
    dst, n = c["dst"], c["count"] * c["nb"]
    act[dst:dst + n] = add_requantize(act[dst:dst + n], residual,
                                      AddRequant(a["mult_a"], a["mult_b"], a["shift"]),
                                      relu=bool(a["relu"]))


def run_fused(cfg: AccelConfig, act: np.ndarray, wgt: list[int], c: dict, run_gemm) -> None:
    """GEMM command ``c``: ``run_gemm(cfg, act, wgt, c)`` (the plain GEMM), then its fused GELU
    and ADD (the residual: the words the GEMM's results replace)."""
    dst, n = c["dst"], c["count"] * c["nb"]
    residual = act[dst:dst + n].copy()
    run_gemm(cfg, act, wgt, c)
    if beats := fused_gelu(cfg, c):
        gelu_golden(cfg, act, wgt, c, beats)
    if fused_add(cfg, c):
        add_golden(act, c, residual)
