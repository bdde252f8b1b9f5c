"""Design points and design spaces: what a sweep evaluates.

A point is a generator config on a synthesis target:

* ``systolic``: an ``R x C`` systolic array with a dataflow (``os`` / ``ws``); the reference
  models run on it as GEMMs (:mod:`.workloads`);
* ``accel``: an accelerator preset (``hwaccel rtl --list``); the models run on it as programs.

A space is the cross product of ``rows x cols x dataflow`` (``cols`` defaults to square arrays)
plus any accelerator presets, all on one target, given on the command line or in a JSON file
with the same keys::

    {"rows": [2, 4, 8], "cols": [8], "dataflow": ["os", "ws"], "accel": ["ecp5"],
     "target": "ecp5", "batch": 1}
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import check_choice, check_int
from ..generators.systolic.config import DATAFLOWS, SystolicConfig
from ..impl.target import TARGETS

#: The targets a sweep point is synthesized for: those of the place-and-route flow (the asic
#: target's gate-level report is its own flow, ``hwaccel synth --target asic``).
SWEEP_TARGETS = tuple(t for t in TARGETS if t != "asic")

__all__ = ["DesignPoint", "Space", "make_space", "load_space", "KINDS"]

KINDS = ("systolic", "accel")


@dataclass(frozen=True)
class DesignPoint:
    """One configuration to evaluate (see the module docstring)."""

    kind: str
    target: str = "ecp5"
    rows: int = 0
    cols: int = 0
    dataflow: str = ""
    preset: str = ""
    batch: int = 1

    def __post_init__(self):
        check_choice("kind", self.kind, KINDS)
        check_choice("target", self.target, SWEEP_TARGETS)
        check_int("batch", self.batch, min=1, max=64)
        if self.kind == "systolic":
            self.config()  # validates rows, cols and dataflow with the generator's own checks
        else:
            from ..generators.accel import PRESETS

            check_choice("preset", self.preset, tuple(PRESETS))

    def config(self):
        if self.kind == "accel":
            from ..generators.accel import PRESETS

            return PRESETS[self.preset]
        return SystolicConfig(rows=self.rows, cols=self.cols, dataflow=self.dataflow,
                              name=f"{self.dataflow}_{self.rows}x{self.cols}")

    @property
    def label(self) -> str:
        return self.config().slug

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Space:
    points: tuple[DesignPoint, ...]
    target: str
    batch: int


def _int_list(name: str, value) -> list[int]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
        try:
            value = [int(v) for v in items]
        except ValueError:
            raise ValueError(f"{name} must be comma-separated integers, not {value!r}") from None
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ValueError(f"{name} must be a non-empty list of integers, not {value!r}")
    for v in value:
        check_int(name, v, min=1, max=256)
    return value


def _str_list(value) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return list(value or [])


def make_space(*, rows=None, cols=None, dataflow="os,ws", accel=None, target: str = "ecp5",
               batch: int = 1) -> Space:
    """The points of ``rows x cols x dataflow`` (``cols`` omitted: square arrays) plus the
    accelerator presets in ``accel``; lists or comma-separated strings."""
    points = []
    if rows is not None:
        rs = _int_list("rows", rows)
        cs = _int_list("cols", cols) if cols is not None else None
        for df in _str_list(dataflow):
            check_choice("dataflow", df, DATAFLOWS)
            for r in rs:
                for c in (cs if cs is not None else [r]):
                    points.append(DesignPoint("systolic", target, r, c, df, batch=batch))
    points += [DesignPoint("accel", target, preset=p, batch=batch) for p in _str_list(accel)]
    if not points:
        raise ValueError("the space is empty: give --rows (systolic arrays) and/or --accel "
                         "(accelerator presets)")
    return Space(tuple(dict.fromkeys(points)), target, batch)


def load_space(path: Path | str, *, target: str | None = None) -> Space:
    """A space from a JSON file with the keys of :func:`make_space` (``target`` overrides)."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"space file {str(path)!r} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"space file {str(path)!r} is not valid JSON: {exc}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"space file {str(path)!r} must hold a JSON object, not {spec!r}")
    known = {"rows", "cols", "dataflow", "accel", "target", "batch"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"space file {str(path)!r}: unknown key(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(known))}")
    if target is not None:
        spec["target"] = target
    return make_space(**{"dataflow": "os,ws", **spec})
