"""Convolution engine generator: config, Components (engine, max-pool, chain), driver, models."""

from .config import PRESETS, ConvConfig, PoolConfig
from .layer import ConvLayer, check_layer, descriptor
from .model import FLOAT_TOLERANCE, conv_float, conv_golden, scalesim_best
from .plan import LayerPlan, plan_layer

__all__ = ["ConvConfig", "PoolConfig", "PRESETS", "ConvLayer", "LayerPlan", "check_layer",
           "descriptor", "plan_layer", "conv_golden", "conv_float", "FLOAT_TOLERANCE",
           "scalesim_best"]
