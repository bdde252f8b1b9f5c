"""Implementation flow: Yosys synthesis, nextpnr place and route, reports and bitstreams.

``config -> Verilog (elaborated for a Target) -> yosys -> nextpnr -> SynthReport``

* :mod:`.target` -- the targets (``ecp5``, ``ice40``, ``generic``): devices, tool flags, which
  cells count as LUT/FF/DSP/BRAM; a target is also the ``platform`` given to ``elaborate``.
* :mod:`.tools` -- finding and running the PyPI (YoWASP) tools; errors name the pip package.
* :mod:`.yosys` / :mod:`.nextpnr` -- one tool each: script or command line, and result parsing.
* :mod:`.shell` -- a serial scan wrapper so that a core with hundreds of ports fits real pins.
* :mod:`.report` -- :class:`SynthReport`, the data every view (table, JSON, baselines) reads.
* :mod:`.flow` -- :func:`synthesize` and :func:`bitstream`, the verbs the CLI and tests call.
"""

from __future__ import annotations

from .flow import bitstream, synthesize
from .report import SynthReport
from .target import TARGETS, Target, get_target
from .tools import ImplError

__all__ = ["synthesize", "bitstream", "SynthReport", "Target", "TARGETS", "get_target",
           "ImplError"]
