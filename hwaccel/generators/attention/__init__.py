"""Attention units: softmax, LayerNorm and GELU as stand-alone stream Components, each
bit-exact with its definition in :mod:`hwaccel.numerics`, with exact cycle models (:mod:`.perf`).

One :class:`AttentionConfig` (``max_len``, ``max_channels``, ``lanes``, ``bits_per_cycle``,
``load_bits``, and the pace-for-area counts ``dividers``, ``roots``, ``slots``, ``table_row``)
sizes all three; :meth:`AttentionConfig.unit` names one of them as a generator
preset (``attention_<unit>_<size>``, for :mod:`hwaccel.emit`). Every unit takes and emits words
of ``lanes`` int8 (the accelerator's activation word), one a cycle, ``source`` as ``{data,
last}``; ``last`` marks a row's last word. Tables and per-channel parameters arrive as packed
beats of ``load_bits`` (a weight-scratchpad word; :mod:`.packing` defines the layout once for
the units, the driver and the golden interpreter). What a processor wires to each:

==========  ================================  ==========================================
unit        loads (packed beats)              per row
==========  ================================  ==========================================
softmax     ``table``: 256 x 18-bit ``EXP``   ``sink`` words carry ``length`` and the
                                              causal ``valid`` count (0: no mask)
LayerNorm   ``setup``: ``{C, E, S}`` (one     ``ceil(C / lanes)`` words
            beat), then ``params``: C x
            ``{G, B}`` (73 bits each)
GELU        ``table``: 256 x int8             any words, ``last`` passed on
==========  ================================  ==========================================
"""

from .config import PRESETS, SIZES, UNITS, AttentionConfig, AttentionUnitConfig
from .gelu import GeluUnit
from .layernorm import LayerNormUnit
from .softmax import SoftmaxUnit

__all__ = ["AttentionConfig", "AttentionUnitConfig", "PRESETS", "SIZES", "UNITS", "SoftmaxUnit",
           "LayerNormUnit", "GeluUnit"]
