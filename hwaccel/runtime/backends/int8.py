"""``torch-int8`` / ``torch-int8-cuda``: the quantized IR's integer arithmetic in torch.

It computes what the accelerator computes (:func:`hwaccel.compiler.int8.forward`: the same
requantization, saturation and fixed-point LSTM tables) with torch ops on the CPU or a CUDA
device, batched as a framework would run it, so its outputs must equal ``golden`` exactly --
the comparison is on the integer outputs, not on floats.
"""

from __future__ import annotations

import time

import numpy as np

from . import BackendRun, TorchDeviceBackend, batch1_latency, chunks, progress

__all__ = ["TorchInt8Backend"]


class TorchInt8Backend(TorchDeviceBackend):
    integer = True

    def run(self, compiled, x, *, device: str | None = None, batch: int = 256,
            latency_samples: int = 16, progress_bar: bool = False) -> BackendRun:
        """Integer logits of ``compiled.qgraph`` on ``x`` in batches of ``batch`` (``device``
        overrides the one the backend's name implies)."""
        device = device or self.device
        x_int = np.asarray(compiled.quantize_input(x))  # refuses NaN and inf first
        described = self.check(device)
        sync = _sync(device)

        def call(xb):
            out = compiled.int8_forward(xb, device)
            sync()
            return out

        parts = chunks(len(x_int), batch)
        call(x_int[parts[0]])  # warm-up
        t0 = time.perf_counter()
        out = [_numpy(call(x_int[s])) for s in progress(parts, total=len(parts), desc=self.name,
                                                        enabled=progress_bar)]
        seconds = time.perf_counter() - t0
        latency = batch1_latency(call, x_int, latency_samples)
        ints = np.concatenate(out).astype(np.int64)
        logits = compiled.postprocess(ints * compiled.qgraph.output_scale)
        return BackendRun(self.name, described, logits, seconds, latency, int_logits=ints)


def _sync(device: str):
    import torch

    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)
