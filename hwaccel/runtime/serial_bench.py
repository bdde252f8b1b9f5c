"""What the board's serial line carries for a reference workload, measured on the simulated line.

``python -m hwaccel.runtime.serial_bench --preset ecp5 --workload cnn --batch 1`` compiles the
trained workload for the preset (or, with ``--workload small_cnn``, :func:`small_cnn` on
random 8 x 8 images: the reference CNN's 28 x 28 maps do not fit ``tiny``), runs it through
the ``fpga`` backend on the board's design in Verilator behind
:class:`~hwaccel.runtime.serial_sim.SimSerial` (one bit a clock), checks the outputs bit-exact
against ``golden``, and prints one JSON row: the bytes the host wrote and read on the line
(counted by the line itself), the line's time at ``--baud`` (ten bit times a byte: start, eight
data bits, stop) and the device's cycles a sample.

``--frames-only`` skips the RTL (no Verilator build: ``ecp5``'s takes long): a
:class:`FrameCounter` answers each request with a reply of the length the bridge would send, so
the bytes are the same as on the design's line but for STATUS polls (it answers "done" to the
first; a real run polls while the accelerator works, 16 bytes a poll), and the outputs are not
computed (``exact`` is null).
"""

from __future__ import annotations

import argparse
import json

import numpy as np

__all__ = ["measure", "small_cnn", "FrameCounter"]


class FrameCounter:
    """A link that answers every request as the bridge of ``bridge`` (a
    :class:`~hwaccel.generators.board.BridgeConfig`) frames its reply -- INFO in full, READ with
    its count of the region's words (zeros), STATUS done, the counters (zeros) -- and counts
    the bytes either way."""

    def __init__(self, bridge):
        self.bridge = bridge
        self.bytes_written = self.bytes_read = 0
        self._replies = bytearray()

    def write(self, data: bytes) -> None:
        from ..generators.accel.isa import COUNTERS
        from ..generators.board.framing import (
            COUNTER_BYTES,
            VERSION,
            Fault,
            Op,
            config_id,
            info_payload,
            reply,
        )

        b, ab = self.bridge, self.bridge.accel.addr_bits
        self.bytes_written += len(data)
        op, payload = data[1], data[4:-2]
        body = b""
        if op == Op.INFO:
            body = info_payload(VERSION, b.region_bytes, b.max_words, ab, config_id(b.accel))
        elif op == Op.READ:
            addr, count = int.from_bytes(payload[:4], "little"), int.from_bytes(payload[4:6],
                                                                                "little")
            body = bytes(count * b.region_bytes[addr >> ab & 3])
        elif op == Op.STATUS:
            body = (2).to_bytes(4, "little")   # done, not busy
        elif op == Op.COUNTERS:
            body = bytes(COUNTER_BYTES * len(COUNTERS))
        self._replies += reply(Fault.OK, body)

    def read(self, n: int) -> bytes:
        data = bytes(self._replies[:n])
        del self._replies[:n]
        self.bytes_read += len(data)
        return data

    def pause(self) -> None:
        pass

    def close(self) -> None:
        pass


def small_cnn():
    """Two 3 x 3 convs (4 and 8 channels) with ReLU and max pools and a linear layer on
    1 x 8 x 8 images (seeded weights): a CNN that ``tiny`` runs."""
    import torch
    from torch import nn

    torch.manual_seed(3)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(8 * 2 * 2, 8)).eval()


def measure(preset: str, workload: str = "cnn", batch: int = 1, *, baud: int = 1_000_000,
            calibration: int = 512, frames_only: bool = False) -> dict:
    """The row described in the module docstring."""
    from ..generators.accel.config import MODEL_PRESETS, PRESETS
    from ..generators.board import BridgeConfig
    from ..models.train import load
    from ..sim.harness import Harness
    from ..sim.runner import design_for
    from . import compile as compile_model
    from .backends import get
    from .serial_sim import SimSerial

    cfg = (PRESETS | MODEL_PRESETS)[preset]
    bridge = BridgeConfig(cfg, divisor=1, max_words=16, gap=64, name=f"{preset}_sim")
    if workload == "small_cnn":
        import torch

        gen = torch.Generator().manual_seed(0)
        module, calib = small_cnn(), torch.randn(calibration, 1, 8, 8, generator=gen)
        x = torch.randn(batch, 1, 8, 8, generator=gen)
    else:
        module, split = load(workload)
        calib, x = split.x_train[:calibration], split.x_test[:batch]
    cm = compile_model(module, calib[:8], preset=preset, calibration=calib, strict=False)
    if cm.refusal is not None:
        raise SystemExit(f"{workload} does not compile for {preset}: {cm.refusal}")
    if frames_only:
        link = FrameCounter(bridge)
    else:
        link = SimSerial(Harness(design_for(bridge)), bridge.divisor)
    try:
        run = get("fpga", link=link).run(cm, x, batch=batch)
    finally:
        link.close()
    exact = None
    if not frames_only:
        exact = bool(np.array_equal(run.int_logits, cm.execute("golden", x).int_logits))
    moved = link.bytes_written + link.bytes_read
    return {"preset": preset, "workload": workload, "batch": batch,
            "line": "frames only" if frames_only else "verilated", "exact": exact,
            "bytes_out": link.bytes_written, "bytes_in": link.bytes_read, "bytes": moved,
            "baud": baud, "line_ms": round(moved * 10 / baud * 1e3, 3),
            "device_cycles_per_sample": None if frames_only else run.cycles_per_sample}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m hwaccel.runtime.serial_bench",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--workload", default="cnn")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--baud", type=int, default=1_000_000)
    p.add_argument("--frames-only", action="store_true",
                   help="count the frames without the RTL (see the module docstring)")
    args = p.parse_args(argv)
    print(json.dumps(measure(args.preset, args.workload, args.batch, baud=args.baud,
                             frames_only=args.frames_only)))


if __name__ == "__main__":
    main()
