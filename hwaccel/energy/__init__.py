"""Energy per inference: an event-count model over the accelerator's counters (ASIC, at a node)
and a rough FPGA estimate, from a cited per-event table (``data/events.json``) and SRAM figures
from CACTI run once (``data/cacti.json``).

``estimate(cfg, counters, node=45, host_words=0, clock_mhz=None) -> Energy`` (:mod:`.model`),
``fpga_estimate(cfg, counters, resources, fmax_mhz, static_mw=None) -> Energy`` (:mod:`.fpga`:
rough, with the LFE5U-85F's cited static power x the run's time unless ``static_mw`` is given),
``sram.sram_macro(bits, width, node) -> SramMacro`` (:mod:`.sram`), and
``host_transfer(cfg, lowered)`` (:mod:`.host`). ``hwaccel bench energy`` prints them.
"""

from __future__ import annotations

from . import sram
from .fpga import fpga_estimate
from .host import host_transfer
from .model import Energy, estimate
from .table import NODES

__all__ = ["Energy", "estimate", "fpga_estimate", "host_transfer", "NODES", "sram"]

