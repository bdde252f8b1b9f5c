"""Configuration of the attention units (softmax, LayerNorm, GELU): one config for all three."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ...config import check_choice, check_int, check_name
from ...numerics import INT8, MULT_BITS
from ...numerics.layernorm import (
    LN_EPS_MAX,
    LN_FRAC,
    LN_MAX_CHANNELS,
    LN_SHIFT_MAX,
    RSQRT_BITS,
    RSQRT_SHIFT,
)
from ...numerics.softmax import (
    EXP_FRAC,
    EXP_ONE,
    EXP_TABLE_SIZE,
    PROB_MAX,
    RECIP_SHIFT,
    SOFTMAX_MAX_LEN,
)
from .packing import LN_PARAM_BITS, TABLE_ROW

__all__ = ["AttentionConfig", "AttentionUnitConfig", "SIZES", "PRESETS", "UNITS", "MAX_LANES"]

#: The units one :class:`AttentionConfig` sizes (an :class:`AttentionUnitConfig` picks one).
UNITS = ("softmax", "layernorm", "gelu")
#: Widest word (int8 lanes) a unit takes; 256 is the widest activation word of any accel preset.
MAX_LANES = 256
#: Widest load beat (the widest weight word of any accel preset is 2048 bits).
MAX_LOAD_BITS = 1 << 14


@dataclass(frozen=True)
class AttentionConfig:
    """The row and word sizes of a softmax, LayerNorm and GELU unit.

    Parameters
    ----------
    max_len : int
        Longest softmax row (positions, masked ones included), at most
        :data:`~hwaccel.numerics.softmax.SOFTMAX_MAX_LEN`. Sizes the softmax row buffer and the
        row sum.
    max_channels : int
        Most LayerNorm channels, at most :data:`~hwaccel.numerics.layernorm.LN_MAX_CHANNELS`.
        Sizes the LayerNorm row buffer, its parameter memory and its sums.
    lanes : int
        int8 values per stream word (the accelerator's activation word): every unit takes and
        emits one word a cycle. At most ``max_len`` and ``max_channels`` (a wider word than any
        row only adds idle lanes).
    bits_per_cycle : int
        Quotient bits of the softmax divider and root bits of the LayerNorm square root
        resolved per cycle (restoring steps chained in one cycle, 1 to 8): each takes
        ``ceil(22 / bits_per_cycle)`` cycles a row. More bits a cycle is a longer
        combinational path (a ``sum_bits`` subtract per softmax bit, two 66-bit adds per root
        bit).
    load_bits : int
        Width of a load beat (the softmax and GELU ``table`` ports, LayerNorm's ``params``):
        the accelerator's weight-scratchpad word (:class:`~hwaccel.generators.accel.config.
        AccelConfig` sets it to its ``wgt_bits``), holding as many entries as fit
        (:mod:`.packing`). At least one LayerNorm parameter entry (73 bits).
    dividers : int
        Softmax dividers, taking rows in turn (1 to 32): short rows follow each other every
        ``div_cycles / dividers`` cycles at best. Each is a ``sum_bits`` remainder, a quotient
        and ``bits_per_cycle`` subtract-and-selects.
    roots : int
        LayerNorm reciprocal square roots, taking rows in turn (1 to 32): short rows follow
        each other every ``rsqrt_cycles / roots`` cycles at best.
    slots : int
        Rows in flight in the softmax and LayerNorm units (row-buffer slots; a power of two,
        2 to 64): a turn of the slots bounds the pace of short rows (:mod:`.perf`). Each slot
        is ``len_words`` (softmax, and as many e-buffer words) or ``ch_words`` (LayerNorm)
        buffer words and a few registers.
    table_row : int
        Entries of one row of the exponent and GELU table memories (a power of two, 1 to
        256): a load writes a row a cycle, so a 256-entry table takes ``256 / table_row``
        cycles of writes; a lookup reads a row and selects an entry of it (``table_row`` to 1
        a lane). 16 keeps each lane's table in 16-deep LUT RAM; 256 makes it registers
        written in a cycle a beat.
    name : str
        Preset name (the units' slugs are ``attention_softmax_<name>``,
        ``attention_layernorm_<name>`` and ``attention_gelu_<name>``: :meth:`unit`).

    Raises
    ------
    TypeError, ValueError
        Naming the field, its limit and the bad value.
    """

    max_len: int = 128
    max_channels: int = 256
    lanes: int = 16
    bits_per_cycle: int = 1
    load_bits: int = 2048
    dividers: int = 4
    roots: int = 4
    slots: int = 8
    table_row: int = TABLE_ROW
    name: str = "custom"

    kind = "attention"

    def __post_init__(self):
        check_int("max_len", self.max_len, min=1, max=SOFTMAX_MAX_LEN)
        check_int("max_channels", self.max_channels, min=1, max=LN_MAX_CHANNELS)
        check_int("lanes", self.lanes, min=1, max=MAX_LANES)
        check_int("bits_per_cycle", self.bits_per_cycle, min=1, max=8)
        check_int("load_bits", self.load_bits, min=LN_PARAM_BITS, max=MAX_LOAD_BITS)
        check_int("dividers", self.dividers, min=1, max=32)
        check_int("roots", self.roots, min=1, max=32)
        check_int("slots", self.slots, min=2, max=64)
        check_int("table_row", self.table_row, min=1, max=EXP_TABLE_SIZE)
        for what, v in (("slots", self.slots), ("table_row", self.table_row)):
            if v & (v - 1):
                raise ValueError(f"{what} must be a power of two, not {v!r}")
        check_name(self.name)
        for what, most in (("max_len", self.max_len), ("max_channels", self.max_channels)):
            if self.lanes > most:
                raise ValueError(f"lanes must be at most {what} ({most}), not {self.lanes!r}")

    def with_(self, **changes) -> AttentionConfig:
        return replace(self, **changes)

    # --- softmax -------------------------------------------------------------------------------
    @property
    def len_words(self) -> int:
        """Words of the longest softmax row, ``ceil(max_len / lanes)`` (the row buffer's depth)."""
        return math.ceil(self.max_len / self.lanes)

    @property
    def sum_bits(self) -> int:
        """Width of the unsigned row sum ``S <= max_len * 2**EXP_FRAC``."""
        return (self.max_len * EXP_ONE).bit_length()

    @property
    def exp_bits(self) -> int:
        """Width of an exponent-table entry (18: ``exp(0) = 2**EXP_FRAC``)."""
        return EXP_FRAC + 1

    @property
    def recip_bits(self) -> int:
        """Quotient bits of the divider: ``R <= 127 * 2**31 / exp_table[0]`` for every table
        :class:`~hwaccel.numerics.softmax.SoftmaxParams` accepts (``exp_table[0] >= 2**16``);
        one divider cycle each."""
        return ((PROB_MAX << RECIP_SHIFT) // (EXP_ONE // 2)).bit_length()

    @property
    def div_cycles(self) -> int:
        """Cycles of the divider: ``ceil(recip_bits / bits_per_cycle)``."""
        return math.ceil(self.recip_bits / self.bits_per_cycle)

    # --- LayerNorm -----------------------------------------------------------------------------
    @property
    def ch_words(self) -> int:
        """Words of the widest LayerNorm row, ``ceil(max_channels / lanes)``."""
        return math.ceil(self.max_channels / self.lanes)

    @property
    def sx_bits(self) -> int:
        """Width of the signed ``Sx``, ``|Sx| <= 128 * C``."""
        return (-INT8.min * self.max_channels).bit_length() + 1

    @property
    def sxx_bits(self) -> int:
        """Width of the unsigned ``Sxx <= 2**14 * C``."""
        return (INT8.min * INT8.min * self.max_channels).bit_length()

    @property
    def var_bits(self) -> int:
        """Width of the unsigned ``W = (C*Sxx - Sx*Sx) * 2**16 + E`` (``E < 2**50``)."""
        c = self.max_channels
        return max(((c * c * INT8.min * INT8.min) << 16).bit_length(),
                   (LN_EPS_MAX - 1).bit_length()) + 1

    @property
    def d_bits(self) -> int:
        """Width of the signed ``D_c = C*q_c - Sx`` (``|D_c| <= 255 * C``)."""
        return (255 * self.max_channels).bit_length() + 1

    @property
    def z_bits(self) -> int:
        """Width of the signed normalized value ``z`` (20 bits at 1024 channels): ``|x - mean|
        / std <= sqrt(C - 1)`` over C values, so ``|z| <= sqrt(C - 1) * 2**14 * (1 + 2**-20) +
        1/2`` (``r`` exceeds ``2**31 / sqrt(W / 4**s)`` by at most the relative truncation of
        ``w``, ``2**-20``; the shift rounds)."""
        t = math.isqrt((self.max_channels - 1) << (2 * LN_FRAC)) + 1
        return (t + (t >> 18) + 2).bit_length() + 1

    @property
    def root_bits(self) -> int:
        """Bits of ``r = floor(2**31 / sqrt(w))``: ``w >= 2**20`` gives ``r <= 2**21``."""
        return RSQRT_SHIFT - (RSQRT_BITS - 2) // 2 + 1

    @property
    def rsqrt_cycles(self) -> int:
        """Cycles of the square root: ``ceil(root_bits / bits_per_cycle)``."""
        return math.ceil(self.root_bits / self.bits_per_cycle)

    @property
    def gamma_bits(self) -> int:
        """Width of the signed ``G_c`` (``|G_c| < 2**MULT_BITS``)."""
        return MULT_BITS + 1

    @property
    def beta_bits(self) -> int:
        """Width of the signed ``B_c`` (``|B_c| < 2**55``)."""
        return 56

    @property
    def shift_max(self) -> int:
        return LN_SHIFT_MAX

    @property
    def eps_bits(self) -> int:
        return (LN_EPS_MAX - 1).bit_length()

    def derived(self) -> dict:
        return {"len_words": self.len_words, "ch_words": self.ch_words,
                "sum_bits": self.sum_bits, "recip_bits": self.recip_bits,
                "div_cycles": self.div_cycles, "rsqrt_cycles": self.rsqrt_cycles,
                "var_bits": self.var_bits, "z_bits": self.z_bits}

    def unit(self, unit: str) -> AttentionUnitConfig:
        """The config of one unit (what :mod:`hwaccel.emit` takes: ``slug``, ``kind``,
        ``build``)."""
        return AttentionUnitConfig(unit, self)


@dataclass(frozen=True)
class AttentionUnitConfig:
    """One attention unit of an :class:`AttentionConfig`, as a generator config.

    Parameters
    ----------
    unit : ``"softmax"``, ``"layernorm"`` or ``"gelu"``
    attention : AttentionConfig
        Its sizes; the slug is ``attention_<unit>_<attention.name>``.
    """

    unit: str
    attention: AttentionConfig

    kind = "attention"

    def __post_init__(self):
        check_choice("unit", self.unit, UNITS)
        if not isinstance(self.attention, AttentionConfig):
            raise TypeError(f"attention must be an AttentionConfig, not {self.attention!r}")

    @property
    def name(self) -> str:
        return f"{self.unit}_{self.attention.name}"

    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    def build(self):
        from .gelu import GeluUnit
        from .layernorm import LayerNormUnit
        from .softmax import SoftmaxUnit

        units = {"softmax": SoftmaxUnit, "layernorm": LayerNormUnit, "gelu": GeluUnit}
        return units[self.unit](self.attention)


#: Named sizes; the simulation tests run ``tiny`` (and smaller custom sizes).
SIZES: dict[str, AttentionConfig] = {
    c.name: c
    for c in (
        # accel_tiny's 4-lane words and 216-bit weight words.
        AttentionConfig(max_len=16, max_channels=16, lanes=4, load_bits=216, name="tiny"),
        # The reference vision transformer (16-17 tokens, width 32, FFN 64) with room for
        # sequences of 128 and BERT-base's 768 channels; accel_default's 16-lane words and
        # 2048-bit weight words; two bits a cycle.
        AttentionConfig(max_len=128, max_channels=1024, lanes=16, bits_per_cycle=2,
                        load_bits=2048, name="default"),
    )
}

#: Every unit of every size, as the generator registry lists presets (``<unit>_<size>``).
PRESETS: dict[str, AttentionUnitConfig] = {
    u.name: u for size in SIZES.values() for u in (size.unit(k) for k in UNITS)
}
