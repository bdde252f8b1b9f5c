"""The reference workloads: the brief's CNN and LSTM, the four MLPerf Tiny reference
architectures, their data (nothing downloaded) and training.

``load(name)`` returns a trained float model and its fixed evaluation split for every name in
``WORKLOADS`` (``cnn``, ``lstm``, ``resnet8``, ``dscnn``, ``mobilenet``, ``autoencoder``,
``transformer``, ``transformer_tokens``);
training takes seconds to a minute on a CPU and is cached (``$HWACCEL_CACHE`` or
``./build/models``). ``WORKLOADS[name]`` (:mod:`.registry`) gives each one's network, data, input
shape and score (top-1 accuracy, or ROC AUC of the reconstruction error for the autoencoder);
:func:`macs` counts a model's multiply-accumulates from its modules.
"""

from .data import Split, digits, tokens
from .metrics import macs, roc_auc
from .mlperf import DSCNN, AutoEncoder, MobileNetV1, ResNet8
from .nets import CNN, LSTMClassifier
from .registry import WORKLOADS, Workload, workload
from .train import evaluate, load

__all__ = ["CNN", "LSTMClassifier", "ResNet8", "DSCNN", "MobileNetV1", "AutoEncoder", "Split",
           "Workload", "WORKLOADS", "workload", "digits", "tokens", "load", "evaluate", "macs",
           "roc_auc"]
