"""Configuration of a pipeline of accelerator instances (:class:`~.pipeline.Pipeline`).

``instances`` accelerators of one :class:`AccelConfig`, instance ``k`` joined to instance
``k + 1`` by a :class:`LinkConfig` link that carries one activation word a beat, so the link's
``width`` must be the word's bytes (the accelerator's ``lanes``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...config import check_int, check_name
from ..accel.config import AccelConfig
from ..link.config import LinkConfig

__all__ = ["PipelineConfig", "MAX_INSTANCES"]

#: Most instances in one top (the status ports are one bit an instance, read as one word).
MAX_INSTANCES = 16


@dataclass(frozen=True)
class PipelineConfig:
    """``instances`` accelerators of ``accel`` chained by ``instances - 1`` links of ``link``.

    Parameters
    ----------
    accel : AccelConfig
        Every instance's configuration.
    instances : int
        How many (``2..MAX_INSTANCES``).
    link : LinkConfig
        Every link's; ``link.width`` must equal ``accel.lanes`` (one activation word a beat).
    name : str
        Preset name; the slug is ``pipeline_<name>``.

    Raises
    ------
    TypeError, ValueError
        Naming the field, its limit and the bad value.
    """

    accel: AccelConfig
    instances: int = 3
    link: LinkConfig = LinkConfig(width=4, latency=2, buffer=16, watchdog=64, name="tiny")
    name: str = "custom"

    kind = "pipeline"

    def __post_init__(self):
        if not isinstance(self.accel, AccelConfig):
            raise TypeError(f"accel must be an AccelConfig, not {self.accel!r}")
        if not isinstance(self.link, LinkConfig):
            raise TypeError(f"link must be a LinkConfig, not {self.link!r}")
        check_int("instances", self.instances, min=2, max=MAX_INSTANCES)
        check_name(self.name)
        if self.link.width != self.accel.lanes:
            raise ValueError(f"link.width must be the activation word's bytes "
                             f"({self.accel.lanes}, the lanes of {self.accel.slug}): a beat "
                             f"carries one word, not {self.link.width!r}")

    def with_(self, **changes) -> PipelineConfig:
        return replace(self, **changes)

    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    def derived(self) -> dict:
        return {"links": self.instances - 1, "accel": self.accel.derived(),
                "link": self.link.derived()}

    def build(self):
        from .pipeline import Pipeline

        return Pipeline(self)
