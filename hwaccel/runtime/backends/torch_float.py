"""``torch-cpu`` and ``torch-cuda``: the float ``nn.Module`` the model was compiled from.

This is the reference every other backend is measured against (top-1 agreement, logit error).
The module is copied to the device, so the caller's model stays where it was. Timing follows
the usual rules for asynchronous devices: a warm-up call first (kernel selection, allocator),
and ``torch.cuda.synchronize()`` before every clock read.
"""

from __future__ import annotations

import copy
import time

import numpy as np

from . import BackendRun, TorchDeviceBackend, batch1_latency, chunks, progress

__all__ = ["TorchBackend"]


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
        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

        def call(xb):
            out = module(xb.to(dev))
            sync()
            return out

        parts = chunks(len(x), batch)
        with torch.inference_mode():
            call(x[parts[0]])  # warm-up
            t0 = time.perf_counter()
            out = [call(x[s]).cpu() for s in progress(parts, total=len(parts),
                                                      desc=self.name, enabled=progress_bar)]
            seconds = time.perf_counter() - t0
            latency = batch1_latency(call, x, latency_samples)
        logits = torch.cat(out).to(torch.float64).numpy()
        return BackendRun(self.name, device, np.asarray(logits), seconds, latency)
