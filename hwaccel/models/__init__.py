"""The reference workloads: the brief's CNN and LSTM, their data (nothing downloaded) and training.

``load("cnn")`` / ``load("lstm")`` return a trained float model and its fixed evaluation split;
training takes seconds on a CPU and is cached (``$HWACCEL_CACHE`` or ``./build/models``).
"""

from .data import Split, digits, tokens
from .nets import CNN, LSTMClassifier
from .train import load

__all__ = ["CNN", "LSTMClassifier", "Split", "digits", "tokens", "load"]
