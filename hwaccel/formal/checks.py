"""The properties ``hwaccel verify`` knows: every harness of every block, on its small configs.

Each generator package that has properties holds a ``formal.py`` with ``formal_configs()``
(slug -> config), ``PROPERTIES`` and a harness class ``(config, prop, *, mutant)``, or with
``formal_checks()`` yielding ``(component, property, factory)`` where it has several; this module
lists them and runs them: ``abc pdr`` first (an unbounded proof, or a counterexample), or
k-induction (``smtbmc`` with Yices) for a harness that states its helper invariants
(``Harness.induction`` = k), and where that does not prove it within the time given, ``abc
bmc3`` to ``depth`` cycles (``unknown``, with that depth, unless it fails).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .runner import DEFAULT_ROOT, FormalResult, run_harness

__all__ = ["Check", "all_checks", "select", "run_check", "BLOCKS"]

#: generator package -> harness class name in its ``formal.py``.
BLOCKS = {
    "systolic": "SystolicHarness",
    "conv": "ConvHarness",
    "lstm": "LstmHarness",
    "accel": "ProcessorHarness",
}


@dataclass(frozen=True)
class Check:
    component: str
    prop: str
    make: Callable[..., object]

    def harness(self, *, mutant: bool = False):
        return self.make(mutant=mutant)


def all_checks() -> Iterator[Check]:
    for block, cls_name in BLOCKS.items():
        mod = importlib.import_module(f"hwaccel.generators.{block}.formal")
        if hasattr(mod, "formal_checks"):  # several harnesses: the package lists its checks
            for component, prop, make in mod.formal_checks():
                yield Check(component, prop, make)
            continue
        cls = getattr(mod, cls_name)
        for slug, cfg in mod.formal_configs().items():
            name = "accel_" + slug.split("_", 1)[1] + "_processor" if block == "accel" else slug
            for prop in mod.PROPERTIES:
                yield Check(name, prop,
                            lambda *, mutant=False, c=cfg, p=prop, k=cls: k(c, p, mutant=mutant))


def select(component: str | None = None, prop: str | None = None) -> list[Check]:
    """Checks whose component is ``component`` (if one is) or else starts with it
    (``systolic``), and whose property is ``prop`` when given."""
    checks = list(all_checks())
    if component:
        exact = [c for c in checks if c.component == component]
        checks = exact or [c for c in checks if c.component.startswith(component)]
        if not checks:
            names = sorted({c.component for c in all_checks()})
            raise ValueError(f"component must be one of {', '.join(names)} (or a prefix), "
                             f"not {component!r}")
    if prop:
        checks = [c for c in checks if c.prop == prop]
        if not checks:
            raise ValueError(f"no property {prop!r} for {component or 'any component'}")
    return checks


def run_check(check: Check, *, depth: int = 24, prove_s: int = 240, mutant: bool = False,
              root: Path = DEFAULT_ROOT) -> FormalResult:
    """``abc pdr`` (or k-induction where the harness asks for it) for at most ``prove_s``
    seconds, then (if undecided) ``abc bmc3`` to ``depth`` cycles. ``mutant`` runs the
    harness's deliberately broken variant."""
    folder = root / check.component / (check.prop + ("_mutant" if mutant else ""))
    name = check.prop + (" (mutant)" if mutant else "")
    harness = check.harness(mutant=mutant)
    k = harness.induction
    row = run_harness(harness, component=check.component, prop=name, folder=folder,
                      engine="smtbmc" if k else "pdr", depth=k, timeout_s=prove_s)
    if row.status != "unknown" or depth <= 0:
        return row
    spent = row.seconds
    bmc = run_harness(check.harness(mutant=mutant), component=check.component, prop=name,
                      folder=folder.with_name(folder.name + "_bmc"), engine="bmc3",
                      depth=depth, timeout_s=max(prove_s, 180))
    bmc.seconds = round(bmc.seconds + spent, 1)
    bmc.note = f"pdr undecided after {spent:.0f} s; " + (bmc.note or "")
    return bmc
