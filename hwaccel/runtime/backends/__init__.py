"""Backends: one small protocol, chosen by name, each imported only when it is asked for.

A backend runs a :class:`~hwaccel.runtime.runnable.Runnable` on a batch of inputs and returns
a :class:`BackendRun` (float logits, and the integer outputs where it computes the accelerator's
arithmetic). torch, JAX and Verilator are imported inside their own backend, so asking for
``golden`` never loads JAX and a machine without a GPU can still list every backend.

============== =========================================================== =============
name           what runs                                                   kind
============== =========================================================== =============
golden         the accelerator's bit-exact interpreter on the lowered       integer
               programs (:func:`hwaccel.generators.accel.model.run_program`)
rtl            the same programs on the accelerator's Verilog, in the       integer,
               Verilator C++ harness                                        hardware
torch-cpu      the float ``nn.Module`` on the CPU                           float
torch-cuda     the float ``nn.Module`` on a CUDA device                     float
xla            the float IR as a ``jax.jit`` function (TPU, GPU or CPU)     float
torch-int8     the quantized IR's integer arithmetic in torch (CPU)         integer
torch-int8-cuda  the same on a CUDA device                                  integer
fpga           the same programs on a board, over its USB serial port and   integer,
               the UART bridge (:mod:`.fpga`; ``port=``)                    hardware
============== =========================================================== =============

A backend whose dependency or device is missing raises :class:`BackendUnavailable` from
:meth:`Backend.check` (and from ``run``) with one line that names what is missing.
"""

from __future__ import annotations

import importlib
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = ["Backend", "BackendRun", "BackendUnavailable", "REGISTRY", "get", "names",
           "progress", "chunks", "batch1_latency", "TorchDeviceBackend"]


class BackendUnavailable(RuntimeError):
    """A backend's dependency or device is missing; the message is one line that says which."""


@dataclass(frozen=True)
class BackendRun:
    """What one backend produced on ``samples`` inputs.

    ``seconds`` is the wall time of the run itself (one-time set-up such as a Verilator build or
    a jit compile happens before it and is not counted). ``latency_s`` is the wall time one
    sample takes: measured on batch-1 calls for the float backends, and the run's wall time per
    sample for the program backends, which execute whole batches as one program.
    ``cycles_per_sample`` is the hardware's own cycle counter over the run, per sample.
    """

    backend: str
    device: str
    logits: np.ndarray                        # float [samples, classes]
    seconds: float
    latency_s: float
    int_logits: np.ndarray | None = None      # integer backends: the accelerator's int8 outputs
    cycles_per_sample: float | None = None    # hardware backends
    notes: tuple[str, ...] = ()

    @property
    def samples(self) -> int:
        return int(self.logits.shape[0])

    @property
    def throughput(self) -> float:
        """Samples per second of wall time."""
        return self.samples / self.seconds if self.seconds > 0 else float("inf")


class Backend(Protocol):
    """What every backend provides.

    ``integer`` backends compute the accelerator's integer arithmetic and must equal ``golden``
    exactly; ``hardware`` backends report cycles.
    """

    name: str
    integer: bool
    hardware: bool

    def check(self) -> str:
        """The device it would run on; raises :class:`BackendUnavailable` if it cannot run."""

    def run(self, compiled, x, **opts) -> BackendRun:
        """Run ``compiled`` on the float inputs ``x`` (images, or token ids for the LSTM)."""


#: name -> (module under this package, class, constructor arguments)
REGISTRY: dict[str, tuple[str, str, dict]] = {
    "golden": ("programs", "GoldenBackend", {}),
    "rtl": ("rtl", "RtlBackend", {}),
    "torch-cpu": ("torch_float", "TorchBackend", {"device": "cpu"}),
    "torch-cuda": ("torch_float", "TorchBackend", {"device": "cuda"}),
    "xla": ("xla", "XlaBackend", {}),
    "torch-int8": ("int8", "TorchInt8Backend", {"device": "cpu"}),
    "torch-int8-cuda": ("int8", "TorchInt8Backend", {"device": "cuda"}),
    "fpga": ("fpga", "FpgaBackend", {}),
}


def names() -> list[str]:
    """Every backend name, available here or not."""
    return list(REGISTRY)


def get(name: str, **options) -> Backend:
    """The backend called ``name`` (its module is imported now, its dependencies later);
    ``options`` go to its constructor (``fpga``: ``port``, ``baud``)."""
    if name not in REGISTRY:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(REGISTRY)}")
    module, cls, kwargs = REGISTRY[name]
    mod = importlib.import_module(f"{__name__}.{module}")
    return getattr(mod, cls)(name=name, **kwargs, **options)


# --- helpers the backends share ------------------------------------------------------------------
def progress(iterable, *, total: int, desc: str, enabled: bool):
    """``iterable`` with a tqdm bar on stderr when ``enabled`` (and tqdm is installed)."""
    if not enabled:
        return iterable
    try:
        from tqdm import tqdm
    except ModuleNotFoundError:
        return iterable
    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, unit="batch", leave=False)


def chunks(n: int, size: int) -> list[slice]:
    """``n`` items in consecutive slices of at most ``size``."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size!r}")
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]


def batch1_latency(call, x, count: int) -> float:
    """Median wall seconds of ``call(x[i:i+1])`` over the first ``count`` samples (each call
    must finish its work, device included, before it returns)."""
    times = []
    for i in range(max(1, min(count, len(x)))):
        t0 = time.perf_counter()
        call(x[i:i + 1])
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class TorchDeviceBackend:
    """Base of the backends that run torch on ``device`` ("cpu" or "cuda")."""

    integer = False
    hardware = False

    def __init__(self, *, name: str, device: str):
        self.name = name
        self.device = device

    def check(self, device: str | None = None) -> str:
        """A description of ``device`` (default: the backend's); raises
        :class:`BackendUnavailable` when there is no CUDA device."""
        import torch

        device = device or self.device
        if device == "cuda":
            if not torch.cuda.is_available():
                raise BackendUnavailable(
                    f"{self.name}: no CUDA device (torch.cuda.is_available() is False)")
            return f"cuda:{torch.cuda.current_device()} ({torch.cuda.get_device_name()})"
        if device != "cpu":
            raise ValueError(f"device must be 'cpu' or 'cuda', not {device!r}")
        return "cpu"
