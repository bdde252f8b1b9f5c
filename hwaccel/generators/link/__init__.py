"""Links between accelerator instances and the host port they share.

* :class:`Link` -- a point-to-point link of ``W`` bytes a beat, ``L`` cycles of latency and a
  receive buffer of ``D`` bytes whose credits return over the same latency: it sustains
  ``min(W, D / (2L + 1))`` bytes a cycle (the protocol, the credit rule and a worked example
  are in :mod:`.link`).
* :class:`HostPortArbiter` -- ``N`` instances' beat streams onto one host port, round-robin,
  beat by beat or transfer by transfer (:mod:`.arbiter`).

Their cycle models, equal to these Components cycle for cycle, are :mod:`hwaccel.parallel.link`
and :mod:`hwaccel.parallel.arbiter`.
"""

from .arbiter import HostPortArbiter
from .config import PRESETS, ArbiterConfig, LinkConfig, arbiter_layout, beat_layout
from .link import Link

__all__ = ["Link", "HostPortArbiter", "LinkConfig", "ArbiterConfig", "PRESETS", "beat_layout",
           "arbiter_layout"]
