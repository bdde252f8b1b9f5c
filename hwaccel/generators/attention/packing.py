"""Packed wide loads: how a table or a parameter list travels to an attention unit in beats.

A load port takes beats of ``load_bits`` (:attr:`~.config.AttentionConfig.load_bits`, the
accelerator's weight-scratchpad word). A beat holds ``per_beat = load_bits // entry_bits``
entries, entry ``j`` of the beat in bits ``[j * entry_bits, (j + 1) * entry_bits)`` (packed
from bit 0, two's complement for signed entries, the bits above the last entry zero); an entry
is never split across beats, and the last beat of a load holds what is left. This module is the
one definition: the driver packs with :func:`pack`, the golden interpreter unpacks with
:func:`unpack`, the units' RTL takes beats laid out this way, and the cycle models count
:func:`load_beats` and :func:`drain_rows`.

The three loads (:func:`load_spec`): the softmax exponent table (256 x 18-bit entries), the GELU
table (256 x 8-bit) and the LayerNorm parameters (``C`` x ``{G, B}`` of
:func:`~.layernorm.ln_param_layout`, 73 bits); LayerNorm's ``{C, E, S}`` setup is a beat of its
own on its own port.

A unit writes a beat into memories whose rows hold ``row_entries`` entries (the tables:
:attr:`~.config.AttentionConfig.table_row`; LayerNorm: ``lanes`` channels), one row a cycle; a
beat whose entries span ``k`` rows takes ``k`` cycles (:func:`drain_rows`), and the port takes
the next beat in the cycle of the last one.
"""

from __future__ import annotations

import math

from ...numerics import MULT_BITS
from ...numerics.gelu import GELU_TABLE_SIZE
from ...numerics.softmax import EXP_TABLE_SIZE

__all__ = ["TABLE_ROW", "per_beat", "load_beats", "pack", "unpack", "drain_rows", "load_spec",
           "load_payloads", "ln_param_entry", "LN_PARAM_BITS", "GELU_ENTRY_BITS"]

#: Entries in one row of a unit's table memory by default (one per lane copy of the exponent
#: or GELU table): a table load writes one such row a cycle, and a lookup reads a row and
#: selects an entry of it (16 x 18 bits: one 16-deep LUT RAM per entry slot).
#: :attr:`~.config.AttentionConfig.table_row` sets it per configuration.
TABLE_ROW = 16
#: Width of one LayerNorm parameter entry ``{G, B}``: a 17-bit ``G`` then a 56-bit ``B``.
LN_PARAM_BITS = MULT_BITS + 1 + 56
#: Width of a GELU table entry.
GELU_ENTRY_BITS = 8


def _check(name, value, lo):
    if isinstance(value, bool) or not isinstance(value, int) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, not {value!r}")


def per_beat(entry_bits: int, load_bits: int) -> int:
    """Entries of ``entry_bits`` in one ``load_bits`` beat; raises ``ValueError`` naming both if
    not even one fits."""
    _check("entry_bits", entry_bits, 1)
    _check("load_bits", load_bits, 1)
    if load_bits < entry_bits:
        raise ValueError(f"a load beat of {load_bits} bits cannot hold one {entry_bits}-bit "
                         f"entry")
    return load_bits // entry_bits


def load_beats(count: int, entry_bits: int, load_bits: int) -> int:
    """Beats of a load of ``count`` entries."""
    _check("count", count, 1)
    return math.ceil(count / per_beat(entry_bits, load_bits))


def pack(values, entry_bits: int, load_bits: int) -> list[int]:
    """The beats (non-negative ints below ``2**load_bits``) of ``values`` (ints that fit
    ``entry_bits`` signed or unsigned; negative ones are stored two's complement)."""
    k = per_beat(entry_bits, load_bits)
    vals = [int(v) for v in values]
    _check("count", len(vals), 1)
    mask = (1 << entry_bits) - 1
    beats = []
    for b in range(0, len(vals), k):
        word = 0
        for j, v in enumerate(vals[b:b + k]):
            if not -(1 << (entry_bits - 1)) <= v <= mask:
                raise ValueError(f"entry {b + j} = {v} does not fit {entry_bits} bits")
            word |= (v & mask) << (j * entry_bits)
        beats.append(word)
    return beats


def unpack(beats, count: int, entry_bits: int, load_bits: int) -> list[int]:
    """The ``count`` unsigned entries of ``beats`` (the inverse of :func:`pack`, entries read
    as unsigned ``entry_bits``-bit numbers)."""
    k = per_beat(entry_bits, load_bits)
    mask = (1 << entry_bits) - 1
    beats = [int(b) for b in beats]
    need = load_beats(count, entry_bits, load_bits)
    if len(beats) < need:
        raise ValueError(f"{count} entries need {need} beats, not {len(beats)}")
    return [(beats[i // k] >> ((i % k) * entry_bits)) & mask for i in range(count)]


def drain_rows(count: int, entry_bits: int, load_bits: int, row_entries: int) -> list[int]:
    """Memory rows of ``row_entries`` entries each beat of a load of ``count`` entries touches
    (a row shared by two beats counts for both): the cycles a unit spends writing each beat."""
    k = per_beat(entry_bits, load_bits)
    _check("row_entries", row_entries, 1)
    rows = []
    for start in range(0, load_beats(count, entry_bits, load_bits) * k, k):
        n = min(k, count - start)
        first = start % row_entries
        rows.append(math.ceil((first + n) / row_entries))
    return rows


def load_spec(attention, unit: str, channels: int | None = None) -> tuple[int, int, int]:
    """``(count, entry_bits, row_entries)`` of ``unit``'s packed load on ``attention`` (an
    :class:`~.config.AttentionConfig`): ``"softmax"``, ``"gelu"`` or ``"layernorm"`` (with
    ``channels``)."""
    if unit == "softmax":
        return EXP_TABLE_SIZE, attention.exp_bits, attention.table_row
    if unit == "gelu":
        return GELU_TABLE_SIZE, GELU_ENTRY_BITS, attention.table_row
    if unit == "layernorm":
        _check("channels", channels, 1)
        return channels, LN_PARAM_BITS, attention.lanes
    raise ValueError(f"unit must be 'softmax', 'layernorm' or 'gelu', not {unit!r}")


def ln_param_entry(gamma: int, beta: int) -> int:
    """One LayerNorm parameter entry: ``G`` (17-bit two's complement) in bits 0-16, ``B``
    (56-bit) above it."""
    g_bits = MULT_BITS + 1
    return (int(gamma) & ((1 << g_bits) - 1)) | ((int(beta) & ((1 << 56) - 1)) << g_bits)


def load_payloads(attention, params) -> list[int]:
    """The load beats of ``params`` for the units of ``attention``: a ``SoftmaxParams``'
    exponent table, a ``GeluParams``' table or a ``LayerNormParams``' ``{G, B}`` entries
    (LayerNorm's setup beat is not among them)."""
    from ...numerics.gelu import GeluParams
    from ...numerics.layernorm import LayerNormParams
    from ...numerics.softmax import SoftmaxParams

    lb = attention.load_bits
    if isinstance(params, SoftmaxParams):
        return pack(params.exp_table, attention.exp_bits, lb)
    if isinstance(params, GeluParams):
        return pack(params.table, GELU_ENTRY_BITS, lb)
    if isinstance(params, LayerNormParams):
        return pack([ln_param_entry(g, b) for g, b in zip(params.gamma_mult, params.beta_add)],
                    LN_PARAM_BITS, lb)
    raise TypeError(f"params must be a SoftmaxParams, GeluParams or LayerNormParams, not "
                    f"{params!r}")
