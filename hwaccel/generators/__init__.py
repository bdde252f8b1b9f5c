"""Hardware generators, one package per block, found by name.

Each package exports ``PRESETS`` (name -> frozen config) from its ``config`` module; a config
knows its ``kind``, its ``slug`` and how to ``build()`` its Component. Packages are imported
lazily so that listing presets stays cheap.
"""

from __future__ import annotations

import importlib

__all__ = ["KINDS", "presets", "known", "config_for"]

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


def _tables(name: str) -> dict[str, object]:
    """Every generator package's ``config.<name>`` (when it has one), keyed by slug."""
    out = {}
    for pkg in KINDS.values():
        module = importlib.import_module(f"{pkg}.config")
        out |= {c.slug: c for c in getattr(module, name, {}).values()}
    return out


def presets() -> dict[str, object]:
    """Every preset of every generator, keyed by slug (``<kind>_<preset>``)."""
    return _tables("PRESETS")


def known() -> dict[str, object]:
    """:func:`presets` and the configurations a package keeps apart from them
    (``MODEL_PRESETS``: not emitted by ``make rtl``, but simulated, placed and routed by name,
    e.g. ``hwaccel synth --preset accel_ecp5_144``), keyed by slug."""
    return presets() | _tables("MODEL_PRESETS")


def config_for(slug: str):
    """The config called ``slug`` (:func:`known`), or the one whose slug ends in ``_slug``
    when only one does (a bare preset name: ``ecp5_144``); raises ``KeyError`` naming the
    known slugs."""
    table = known()
    matches = [s for s in table if s.endswith(f"_{slug}")]
    if slug not in table and len(matches) == 1:
        slug = matches[0]
    if slug not in table:
        raise KeyError(f"unknown preset {slug!r}; known: {', '.join(sorted(table))}")
    return table[slug]
