"""Host side of the LSTM engine's streams: pack loads and sequences, unpack h (tests, benches).

Weight order: lane ``p``'s memory word ``a`` is ``[W_ih | W_hh][row(q), col]`` for its lane row
``q = s * P + p`` with, in the x part (``a < slots * I``), ``col = a // slots``,
``s = a % slots``, and in the h part ``col = I + (a - slots * I) // slots``. That is the order the
lanes consume them: each element of ``[x; h]`` is used by all ``slots`` rows of a lane in turn.
Lane row ``q`` holds gate ``q % 4`` of hidden unit ``q // 4``, i.e. PyTorch row
``row(q) = (q % 4) * H + q // 4`` (:func:`lane_rows`). Rows past 4H (when P does not divide 4H)
are zero padding. Everything here follows the sizes of ``cfg``: for a cell that runs smaller
sizes, pass the run's config (:meth:`~.config.LstmConfig.run`).
"""

from __future__ import annotations

import numpy as np

from ...hdl.pack import pack, pack_rows, unpack_rows
from ...numerics import GATE_FMT, INT8
from .config import LstmConfig
from .model import LstmParams

__all__ = ["weight_beats", "param_beats", "x_beats", "unpack_h", "expected_h_lasts",
           "lane_rows", "weight_positions"]


def lane_rows(hidden_size: int) -> np.ndarray:
    """PyTorch gate row of each lane row ``q < 4H``: gate ``q % 4`` of unit ``q // 4``."""
    q = np.arange(4 * hidden_size)
    return (q % 4) * hidden_size + q // 4


def weight_positions(cfg: LstmConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, cols)``, each ``weight_depth x P``: beat ``a``, lane ``p`` holds lane row
    ``rows[a, p]`` (at least 4H: padding) and column ``cols[a, p]`` of ``[W_ih | W_hh]``."""
    P, R, I = cfg.lanes, cfg.slots, cfg.input_size
    a = np.arange(cfg.weight_depth)
    in_x = a < R * I
    col = np.where(in_x, a // R, I + (a - R * I) // R)
    slot = np.where(in_x, a % R, (a - R * I) % R)
    rows = slot[:, None] * P + np.arange(P)[None, :]
    return rows, np.broadcast_to(col[:, None], rows.shape)


def weight_beats(cfg: LstmConfig, p: LstmParams) -> list[int]:
    """The ``weights`` stream of one load: ``cfg.weight_depth`` words of ``P x int8``."""
    p.check(cfg)
    w = np.zeros((cfg.lanes * cfg.slots, cfg.input_size + cfg.hidden_size), dtype=np.int64)
    w[: cfg.rows] = np.concatenate([p.w_ih, p.w_hh], axis=1)[lane_rows(cfg.hidden_size)]
    rows, cols = weight_positions(cfg)
    return pack_rows(w[rows, cols].tolist(), INT8.bits)


def param_beats(cfg: LstmConfig, p: LstmParams) -> list[int]:
    """The ``params`` stream of one load: 4H ``{bias, mult_x, shift_x, mult_h, shift_h}`` words."""
    p.check(cfg)
    mb, sb = cfg.mult_bits, cfg.shift_bits
    out = []
    for q in range(cfg.rows):
        word = pack([int(p.bias[q])], GATE_FMT.bits)
        off = GATE_FMT.bits
        for value, bits in ((p.mult_x[q], mb), (p.shift_x[q], sb), (p.mult_h[q], mb),
                            (p.shift_h[q], sb)):
            word |= int(value) << off
            off += bits
        out.append(word)
    return out


def x_beats(sequences) -> list[int]:
    """The ``x`` stream for ``sequences`` (each T x I int8), ``last`` on each one's final step."""
    out = []
    for x in sequences:
        x = np.asarray(x, dtype=np.int64)
        flags = [0] * (len(x) - 1) + [1]
        out.extend(pack_rows(x.tolist(), INT8.bits, flags))
    return out


def unpack_h(cfg: LstmConfig, words) -> tuple[np.ndarray, list[int]]:
    """h vectors (N x H int8) and their ``last`` flags from the ``h`` stream's words."""
    rows, lasts = unpack_rows(list(words), INT8.bits, cfg.hidden_size)
    return np.array(rows, dtype=np.int64).reshape(-1, cfg.hidden_size), lasts


def expected_h_lasts(cfg: LstmConfig, lengths) -> list[int]:
    if cfg.output == "last":
        return [1] * len(lengths)
    return [int(t == n - 1) for n in lengths for t in range(n)]
