"""Configuration of a pipeline of accelerator instances (:class:`~.pipeline.Pipeline`).

``instances`` accelerators of one :class:`AccelConfig`, instance ``k`` joined to instance
``k + 1`` by a :class:`LinkConfig` link that carries one activation word a beat, so the link's
``width`` must be the word's bytes (the accelerator's ``lanes``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ...config import check_int, check_name
from ..accel.config import PRESETS as ACCEL_PRESETS
from ..accel.config import AccelConfig
from ..link.config import PRESETS as LINK_PRESETS
from ..link.config import LinkConfig

__all__ = ["PipelineConfig", "MAX_INSTANCES", "PRESETS"]

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
    def lut_multipliers(self) -> bool:
        """The instances' :attr:`AccelConfig.lut_multipliers`: the FPGA flow
        (:func:`hwaccel.impl.flow.synthesize`) reads it from the top's config, so a top of
        instances that keep only their int8 products on DSP blocks synthesizes that way too."""
        return self.accel.lut_multipliers

    @property
    def slug(self) -> str:
        return f"{self.kind}_{self.name}"

    def derived(self) -> dict:
        return {"links": self.instances - 1, "accel": self.accel.derived(),
                "link": self.link.derived()}

    def build(self):
        from .pipeline import Pipeline

        return Pipeline(self)


#: Named tops (the generator registry lists them as ``pipeline_<name>``; ``make rtl`` emits
#: them and the every-preset tests lint them).
PRESETS: dict[str, PipelineConfig] = {
    c.name: c
    for c in (
        # Two tiny instances and the tiny link (4 credits against a 5-cycle round trip). On
        # ECP5 it does not fit the LFE5U-85F either: packed, 174 MULT18X18D of 156.
        PipelineConfig(ACCEL_PRESETS["tiny"], 2, LINK_PRESETS["tiny"], name="tiny_x2"),
        # tiny_x2 without the LSTM cells (CNN and GEMM programs; an LSTM command is illegal):
        # the two-instance top with a link that places and routes on the LFE5U-85F (68.75 MHz)
        # (`hwaccel synth --preset pipeline_tiny_conv_x2 --target ecp5`; docs/parallel-ecp5.md).
        PipelineConfig(ACCEL_PRESETS["tiny"].with_(lstm=None, name="tiny_conv"), 2,
                       LINK_PRESETS["tiny"], name="tiny_conv_x2"),
        # Two ecp5 instances and an 8-byte link (one 8-lane word a beat) of latency 2 whose
        # 40-byte buffer (W * (2L + 1)) keeps it at a beat a cycle. Yosys synthesizes it for
        # ECP5 (`hwaccel synth --preset pipeline_ecp5_x2 --target ecp5`), but it does not fit
        # one LFE5U-85F: packed, it needed 266 MULT18X18D of 156 and 250 DP16KD of 208 at
        # 72032ed (one `ecp5` alone places with 104 and 145 now), so nextpnr stops before
        # placing (hwaccel synth names both).
        PipelineConfig(ACCEL_PRESETS["ecp5"], 2,
                       LinkConfig(width=8, latency=2, buffer=40, watchdog=64, name="ecp5"),
                       name="ecp5_x2"),
    )
}
