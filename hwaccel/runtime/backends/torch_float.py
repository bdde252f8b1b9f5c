"""``torch-cpu`` and ``torch-cuda``: the float ``nn.Module`` the model was compiled from.

This is the reference every other backend is measured against (top-1 agreement, logit error).
The module is copied to the device, so the caller's model stays where it was. Timing follows
the usual rules for asynchronous devices: a warm-up call first (kernel selection, allocator),
and ``torch.cuda.synchronize()`` before every clock read.

On CUDA the run asks for IEEE float32 contractions: cuDNN's convolutions and RNNs default to
TF32 (a 10-bit mantissa) on Ampere and later, which put the H200's logits up to 1e-2 away from
the CPU's (docs/gpu-results.md), so the reference would no longer be the float model. The
``xla`` backend asks for ``Precision.HIGHEST`` for the same reason.
"""

from __future__ import annotations

import contextlib
import copy
import time

import numpy as np

from . import BackendRun, TorchDeviceBackend, batch1_latency, chunks, progress

__all__ = ["TorchBackend", "ieee_float32", "tf32_knobs"]

IEEE_NOTE = "float32 contractions in IEEE float32 (TF32 off)"


def tf32_knobs() -> list[tuple[object, str, object]]:
    """``(settings object, attribute, IEEE value)`` for cuBLAS matmuls and cuDNN convolutions
    and RNNs: the ``fp32_precision`` settings where torch has them (it refuses reading the old
    ``allow_tf32`` flags once the new ones were set), else the ``allow_tf32`` flags."""
    import torch

    b = torch.backends
    if hasattr(getattr(b.cudnn, "conv", None), "fp32_precision"):
        return [(b.cuda.matmul, "fp32_precision", "ieee"),
                (b.cudnn.conv, "fp32_precision", "ieee"),
                (b.cudnn.rnn, "fp32_precision", "ieee")]
    return [(b.cuda.matmul, "allow_tf32", False), (b.cudnn, "allow_tf32", False)]


@contextlib.contextmanager
def ieee_float32():
    """Inside: float32 contractions in IEEE float32, not TF32; the previous settings come
    back on exit, also on an error."""
    knobs = tf32_knobs()
    saved = [getattr(obj, name) for obj, name, _ in knobs]
    try:
        for obj, name, value in knobs:
            setattr(obj, name, value)
        yield
    finally:
        for (obj, name, _), value in zip(knobs, saved):
            setattr(obj, name, value)


class TorchBackend(TorchDeviceBackend):
    def run(self, compiled, x, *, batch: int = 256, latency_samples: int = 16,
            progress_bar: bool = False) -> BackendRun:
        """Logits of ``compiled.module`` on ``x`` in batches of ``batch``; ``latency_s`` is
        the median of ``latency_samples`` batch-1 calls."""
        import torch

        from ...compiler.errors import check_finite

        check_finite(x, "input")  # the integer backends refuse it too: so must the reference
        device = self.check()
        dev = torch.device(self.device)
        module = copy.deepcopy(compiled.module).to(dev).eval()
        x = torch.as_tensor(x)
        cuda = dev.type == "cuda"
        sync = torch.cuda.synchronize if cuda else (lambda: None)

        def call(xb):
            out = module(xb.to(dev))
            sync()
            return out

        parts = chunks(len(x), batch)
        exact = ieee_float32() if cuda else contextlib.nullcontext()
        with torch.inference_mode(), exact:
            call(x[parts[0]])  # warm-up
            t0 = time.perf_counter()
            out = [call(x[s]).cpu() for s in progress(parts, total=len(parts),
                                                      desc=self.name, enabled=progress_bar)]
            seconds = time.perf_counter() - t0
            latency = batch1_latency(call, x, latency_samples)
        logits = torch.cat(out).to(torch.float64).numpy()
        notes = (IEEE_NOTE,) if cuda else ()
        return BackendRun(self.name, device, np.asarray(logits), seconds, latency, notes=notes)
