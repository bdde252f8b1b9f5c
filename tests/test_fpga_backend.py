"""The ``fpga`` backend without a board: the board's design (UART, bridge, accelerator) in
Verilator behind a simulated serial line, driven by the very host code and framing a board gets.

A small CNN compiled for ``tiny`` runs through it bit-exact against ``golden``, cycles from the
device's counters; without a port the backend says "no device" in one line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwaccel.generators.accel import PRESETS
from hwaccel.generators.board import BridgeConfig
from hwaccel.runtime import backends
from hwaccel.runtime.backends import BackendUnavailable
from hwaccel.runtime.serial_bench import small_cnn

pytestmark = pytest.mark.usefixtures("one_thread")

#: tiny behind a bit-per-clock UART: the fastest line the simulation can run.
BRIDGE = BridgeConfig(PRESETS["tiny"], divisor=1, max_words=16, gap=64, name="tiny_sim")


@pytest.fixture(scope="module")
def line():
    from hwaccel.runtime.serial_sim import SimSerial
    from hwaccel.sim.harness import Harness
    from hwaccel.sim.runner import design_for

    link = SimSerial(Harness(design_for(BRIDGE)), BRIDGE.divisor)
    yield link
    link.close()


def test_no_port_is_no_device_in_one_line():
    with pytest.raises(BackendUnavailable) as info:
        backends.get("fpga").check()
    msg = str(info.value)
    assert msg.startswith("fpga: no device") and "\n" not in msg


def test_a_port_that_does_not_exist_is_no_device():
    with pytest.raises(BackendUnavailable, match=r"^fpga: no device at /dev/hwaccel-none "):
        backends.get("fpga", port="/dev/hwaccel-none").check()


def test_cnn_through_the_uart_equals_golden(line, seed):
    import hwaccel

    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(5, 1, 8, 8, generator=gen)
    cm = hwaccel.compile(small_cnn(), x[:2], calibration=torch.randn(64, 1, 8, 8,
                                                                      generator=gen),
                         preset="tiny")
    gold = cm.execute("golden", x)
    fpga = backends.get("fpga", link=line)
    got = fpga.run(cm, x, batch=3)   # two batches: the link is reused
    np.testing.assert_array_equal(got.int_logits, gold.int_logits)
    rtl = cm.execute("rtl", x, batch=3)   # the bare accelerator on the simulated host port
    assert got.cycles_per_sample == rtl.cycles_per_sample > 0
    assert any("bytes out" in n for n in got.notes)


def test_a_board_running_another_preset_is_refused(line):
    from hwaccel.runtime.serial_link import LinkError, LinkHost

    with pytest.raises(LinkError, match=r"the board runs another accelerator than accel_ecp5"):
        LinkHost(line, PRESETS["ecp5"])


def test_a_program_fault_is_named_with_cause_and_pc(line, seed):
    """A faulting program on the board is an error with its cause and pc, read from STATUS
    over the link, as on ``rtl``."""
    from types import SimpleNamespace

    from hwaccel.compiler.builders import Program
    from hwaccel.compiler.lower import Lowered
    from hwaccel.generators.accel.cases import fault_programs
    from hwaccel.runtime.backends.programs import ProgramFault

    cfg = BRIDGE.accel
    builder, cause, pc = fault_programs(cfg, np.random.default_rng(seed))["illegal_15"]
    lowered = Lowered(builder, (), "image", 1.0,
                      (Program(builder.commands, builder.wgt, builder.wgt_top, ()),))
    fpga = backends.get("fpga", link=line)
    fpga.open(SimpleNamespace(config=cfg))
    try:
        with pytest.raises(ProgramFault,
                           match=rf"^fpga: batch 3 faulted: cause {cause.name} at pc {pc}$"):
            fpga.execute(SimpleNamespace(config=cfg), lowered, 3)
    finally:
        fpga.close()
