"""Hardware generators, one package per block, found by name.

Each package exports ``PRESETS`` (name -> frozen config) from its ``config`` module; a config
knows its ``kind``, its ``slug`` and how to ``build()`` its Component. Packages are imported
lazily so that listing presets stays cheap.
"""

from __future__ import annotations

import importlib

__all__ = ["KINDS", "presets", "config_for"]

#: kind -> package that holds ``config.PRESETS``.
KINDS = {
    "systolic": "hwaccel.generators.systolic",
    "lstm": "hwaccel.generators.lstm",
    "conv": "hwaccel.generators.conv",
    "accel": "hwaccel.generators.accel",
    "attention": "hwaccel.generators.attention",
    "link": "hwaccel.generators.link",
    "pipeline": "hwaccel.generators.multi",
}


def presets() -> dict[str, object]:
    """Every preset of every generator, keyed by slug (``<kind>_<preset>``)."""
    out = {}
    for pkg in KINDS.values():
        module = importlib.import_module(f"{pkg}.config")
        for config in module.PRESETS.values():
            out[config.slug] = config
    return out


def config_for(slug: str):
    """The preset config called ``slug``; raises ``KeyError`` naming the known slugs."""
    table = presets()
    if slug not in table:
        raise KeyError(f"unknown preset {slug!r}; known: {', '.join(sorted(table))}")
    return table[slug]
