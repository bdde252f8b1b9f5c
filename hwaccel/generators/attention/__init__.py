"""Attention units: softmax, LayerNorm and GELU as stand-alone stream Components, each
bit-exact with its definition in :mod:`hwaccel.numerics`, with exact cycle models."""

from .config import PRESETS, SIZES, UNITS, AttentionConfig, AttentionUnitConfig
from .gelu import GeluUnit
from .layernorm import LayerNormUnit
from .softmax import SoftmaxUnit

__all__ = ["AttentionConfig", "AttentionUnitConfig", "PRESETS", "SIZES", "UNITS", "SoftmaxUnit",
           "LayerNormUnit", "GeluUnit"]
