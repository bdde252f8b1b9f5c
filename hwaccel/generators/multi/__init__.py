"""Several accelerator instances in one top.

* :class:`Pipeline` -- ``N`` instances chained by links, with device-to-device copies
  (:mod:`.pipeline`): a :class:`CopySender` reads an instance's send mirror (a copy of its
  activation scratchpad) into a link, a :class:`LinkWriter` writes what arrives into the next
  instance while it is idle.

Their cycle models are in :mod:`hwaccel.parallel.pp_model` (the pipeline) and
:mod:`hwaccel.parallel.link` (a link).
"""

from .config import PRESETS, PipelineConfig
from .pipeline import Pipeline
from .sender import FIRST_BEAT, CopySender
from .writer import LinkWriter

__all__ = ["Pipeline", "PipelineConfig", "PRESETS", "CopySender", "LinkWriter", "FIRST_BEAT"]
