"""Packed wide loads (attention.packing): beats round-trip, their layout, the rows a unit writes
per beat, and the clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hwaccel.generators.attention import SIZES
from hwaccel.generators.attention.packing import (
    drain_rows,
    ln_param_entry,
    load_beats,
    load_payloads,
    pack,
    unpack,
)
from hwaccel.generators.attention.perf import load_cycles, load_words
from hwaccel.numerics.gelu import gelu_params
from hwaccel.numerics.layernorm import layernorm_params
from hwaccel.numerics.softmax import softmax_params


@pytest.mark.parametrize("bits,load", [(18, 2048), (18, 216), (8, 2048), (73, 2048), (73, 73),
                                       (5, 17)])
def test_pack_unpack_round_trip(bits, load, seed):
    rng = random.Random(seed)
    for n in (1, 2, load // bits, load // bits + 1, 256):
        # signed or unsigned entries, both extremes
        vals = [rng.randrange(-(1 << (bits - 1)), 1 << bits) for _ in range(n)]
        vals += [(1 << bits) - 1, -(1 << (bits - 1))]
        beats = pack(vals, bits, load)
        n = len(vals)
        assert len(beats) == load_beats(n, bits, load) == -(-n // (load // bits))
        assert all(0 <= b < 1 << ((load // bits) * bits) for b in beats)
        assert unpack(beats, n, bits, load) == [v & ((1 << bits) - 1) for v in vals]


def test_pack_layout_from_bit_0():
    """Entry j of a beat in bits [j*bits, (j+1)*bits); the last beat holds the rest."""
    assert pack([1, 2, 3, 4, 5], 4, 10) == [1 | 2 << 4, 3 | 4 << 4, 5]
    assert pack([-1], 4, 4) == [15]
    assert ln_param_entry(-1, -2) == ((1 << 17) - 1) | (((1 << 56) - 2) << 17)


def test_drain_rows_counts_the_rows_each_beat_touches():
    # 113 entries a beat into rows of 16: rows 0-7, 7-14, 14-15
    assert drain_rows(256, 18, 2048, 16) == [8, 8, 2]
    assert drain_rows(256, 8, 2048, 16) == [16]
    # 12 a beat, rows of 16: a beat starting at slot 12 spans two rows
    assert drain_rows(30, 18, 216, 16) == [1, 2, 1]
    assert drain_rows(32, 73, 2048, 16) == [2, 1]


def test_load_figures_of_the_default_units():
    a = SIZES["default"]
    assert [load_words(a, u, 32) for u in ("softmax", "gelu", "layernorm")] == [3, 1, 1 + 2]
    # the first beat taken, its rows cut one a cycle (8 + 8 + 2, 16, 2 + 1), the last one
    # written the cycle after; LayerNorm's setup beat first
    assert [load_cycles(a, u, 32) for u in ("softmax", "gelu", "layernorm")] == [20, 18, 6]


def test_payloads_of_each_params_kind():
    a = SIZES["tiny"]
    sp, gp = softmax_params(0.1, a.max_len), gelu_params(0.05, 0.04)
    lp = layernorm_params(0.05, 0.03, np.ones(5), np.zeros(5))
    assert unpack(load_payloads(a, sp), 256, 18, a.load_bits) == list(sp.exp_table)
    assert unpack(load_payloads(a, gp), 256, 8, a.load_bits) == [v & 0xFF for v in gp.table]
    assert unpack(load_payloads(a, lp), 5, 73, a.load_bits) == [
        ln_param_entry(g, b) for g, b in zip(lp.gamma_mult, lp.beta_add)]
    with pytest.raises(TypeError, match="params must be a SoftmaxParams, GeluParams or "
                                        "LayerNormParams, not 3"):
        load_payloads(a, 3)


def test_packing_errors_name_the_problem():
    with pytest.raises(ValueError, match="a load beat of 16 bits cannot hold one 18-bit entry"):
        pack([1], 18, 16)
    with pytest.raises(ValueError, match="entry 1 = 256 does not fit 8 bits"):
        pack([0, 256], 8, 64)
    with pytest.raises(ValueError, match="entry 0 = -129 does not fit 8 bits"):
        pack([-129], 8, 64)
    with pytest.raises(ValueError, match="300 entries need 2 beats, not 1"):
        unpack([0], 300, 8, 2048)
    with pytest.raises(ValueError, match="count must be an integer >= 1, not 0"):
        load_beats(0, 8, 64)
    with pytest.raises(ValueError, match="unit must be 'softmax', 'layernorm' or 'gelu', not "
                                         "'relu'"):
        load_words(SIZES["tiny"], "relu")
    with pytest.raises(ValueError, match="load_bits must be"):
        SIZES["tiny"].with_(load_bits=72)
