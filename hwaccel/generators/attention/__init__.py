"""Attention units: softmax, LayerNorm and GELU as stand-alone stream Components, each
bit-exact with its definition in :mod:`hwaccel.numerics`, with exact cycle models."""

from .config import PRESETS, AttentionConfig
from .gelu import GeluUnit
from .layernorm import LayerNormUnit
from .softmax import SoftmaxUnit

__all__ = ["AttentionConfig", "PRESETS", "SoftmaxUnit", "LayerNormUnit", "GeluUnit"]
