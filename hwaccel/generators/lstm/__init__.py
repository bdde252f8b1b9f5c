"""LSTM cell engine: config, Component, golden model, stream driver and test cases."""

from .config import PRESETS, LstmConfig, LstmStackConfig
from .model import LstmParams, float_sequence, golden_outputs, golden_sequence, quantize_lstm

__all__ = ["LstmConfig", "LstmStackConfig", "PRESETS", "LstmParams", "quantize_lstm",
           "golden_sequence", "golden_outputs", "float_sequence"]
