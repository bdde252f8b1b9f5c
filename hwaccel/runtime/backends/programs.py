"""Backends that execute the lowered accelerator programs: ``golden`` here, ``rtl`` in
:mod:`.rtl`.

Both quantize the inputs, cut them into batches that fit the preset's scratchpads, lower each
batch to a program (:meth:`CompiledModel.lower`), execute it and read the logits back out of the
activation image. Only the executor differs: the golden interpreter, or the accelerator's
Verilog in the C++ harness. A program that faults is an error with its cause and pc, never a
silent wrong answer.
"""

from __future__ import annotations

import time

import numpy as np

from . import BackendRun, progress

__all__ = ["ProgramBackend", "GoldenBackend", "ProgramFault", "batch_size"]


class ProgramFault(RuntimeError):
    """A program stopped with the accelerator's error state (cause and pc in the message)."""


def batch_size(compiled, requested: int | None) -> int:
    """The batch a program holds: ``requested``, capped at what fits the preset."""
    most = int(compiled.max_batch)
    if requested is None:
        return most
    if requested < 1:
        raise ValueError(f"batch must be at least 1, not {requested!r}")
    return min(requested, most)


class ProgramBackend:
    """Runs lowered programs batch by batch; subclasses provide the executor."""

    integer = True
    hardware = False

    def __init__(self, *, name: str):
        self.name = name

    # executor hooks --------------------------------------------------------------------------
    def open(self, compiled) -> None:
        """One-time set-up before the timed run (a build, a simulator instance)."""

    def execute(self, compiled, lowered, index: int) -> tuple[np.ndarray, int | None]:
        """Run one lowered batch; returns the activation image and the cycles it took."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what :meth:`open` took."""

    def run_on_host(self, compiled, lowered, index: int, wait) -> tuple[np.ndarray, int]:
        """The host-port protocol of the hardware backends: every program of batch ``index``
        in turn on ``self.host``, one activation scratchpad -- soft reset, load, then
        ``wait(where)`` starts it and returns STATUS once busy drops (raising its own timeout
        naming ``where``); a fault is a :class:`ProgramFault` with its cause and pc. The cycles
        are the hardware's counter over each program (cleared when one starts) plus one a word
        the host writes between programs; only the outputs are read back."""
        host, cfg = self.host, compiled.config
        cycles = lowered.host_words
        for k, load in enumerate(lowered.loads()):
            where = f"batch {index}" + (f" program {k + 1} of {len(lowered.programs)}" if k
                                        else "")
            host.soft_reset()
            host.load(load)
            status = wait(where)
            if status["error"] or not status["done"]:
                raise ProgramFault(f"{self.name}: {where} faulted: cause "
                                   f"{status['cause'].name} at pc {status['pc']}")
            cycles += host.counters()["cycles"]
        first, words = lowered.span
        image = np.zeros((cfg.act_depth, cfg.lanes), dtype=np.int64)
        image[first:first + words] = host.read_act(first, words)
        return image, cycles

    # the protocol ----------------------------------------------------------------------------
    def run(self, compiled, x, *, batch: int | None = None,
            progress_bar: bool = False) -> BackendRun:
        x_int = compiled.quantize_input(x)  # refuses NaN and inf before any set-up
        device = self.check()
        size = batch_size(compiled, batch)
        self.open(compiled)
        try:
            t0 = time.perf_counter()
            ints, floats, cycles = self.batches(compiled, x_int, size, progress_bar=progress_bar)
            seconds = time.perf_counter() - t0
        finally:
            self.close()
        return self.result(device, ints, floats, cycles, seconds, size)

    def batches(self, compiled, x_int, size: int, *, first: int = 0,
                progress_bar: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
        """``(int outputs, float outputs, cycles)`` of the quantized inputs ``x_int`` in
        consecutive batches of ``size`` (the backend opened); ``first`` numbers the first batch
        in messages. Run on consecutive slices cut at multiples of ``size``, the same batches
        run and the concatenated results are those of one call (:mod:`..shards`)."""
        starts = range(0, len(x_int), size)
        ints, floats, cycles = [], [], 0
        for i, s in enumerate(progress(starts, total=len(starts), desc=self.name,
                                       enabled=progress_bar)):
            lowered = compiled.lower(x_int[s:s + size])
            image, c = self.execute(compiled, lowered, first + i)
            q = np.asarray(lowered.ints(image), dtype=np.int64)  # read the image once
            ints.append(q)
            floats.append(compiled.postprocess(q * lowered.output_scale))
            cycles += c or 0
        return np.concatenate(ints), np.concatenate(floats), cycles

    def result(self, device: str, ints, floats, cycles: int, seconds: float,
               size: int) -> BackendRun:
        """The :class:`BackendRun` of outputs ``ints`` / ``floats`` that took ``cycles``."""
        n = len(ints)
        return BackendRun(self.name, device, floats, seconds, seconds / n, int_logits=ints,
                          cycles_per_sample=cycles / n if self.hardware else None,
                          notes=(f"batches of {size}",))


class GoldenBackend(ProgramBackend):
    """The accelerator's bit-exact interpreter (numpy): the reference for the integer backends."""

    def check(self) -> str:
        return "cpu (golden interpreter)"

    def execute(self, compiled, lowered, index: int):
        from ...generators.accel.model import run_program

        act = lowered.builder.act
        for k, load in enumerate(lowered.loads()):  # one activation image through them all
            res = run_program(compiled.config, act, load.wgt, load.commands)
            if res.error or not res.done:
                part = f" program {k + 1} of {len(lowered.programs)}" if k else ""
                raise ProgramFault(f"{self.name}: batch {index}{part} faulted: cause "
                                   f"{res.cause.name} at pc {res.pc}")
            act = res.act
        return act, None
