"""A preset's gate-level ASIC result without running Yosys: the latest synthesis in its build
folder, else one measured earlier and committed with its source (``data/asic_gates.json``).

A gate-level synthesis of a large preset takes a quarter of an hour or more here (``hwaccel
synth --target asic --preset accel_default``: 495 to 862 s), so ``hwaccel advise --no-synth`` reads
the recorded result instead of leaving the ASIC area empty, and names where it came from: the
result may be of an earlier revision of the RTL, as a committed placement is (:mod:`.placed`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

__all__ = ["COMMITTED", "committed_gates", "recorded_gates"]

#: Gate-level results measured with ``hwaccel synth --target asic`` and committed with their
#: source: ``{"gates": {slug: synthesize_gates(...) result}, "sources": {slug: text}}``.
COMMITTED = Path(__file__).parent / "data" / "asic_gates.json"

#: :func:`.asic_yosys.synthesize_gates` caches its result as ``asic_<16 hex digits>.json``.
_CACHE_NAME = re.compile(r"asic_[0-9a-f]{16}\.json")


def committed_gates() -> dict[str, tuple[dict, str]]:
    """``slug -> (gates, source)`` of the committed gate-level results."""
    data = json.loads(COMMITTED.read_text())
    return {slug: (gates, data["sources"][slug]) for slug, gates in data["gates"].items()}


def recorded_gates(config, out_dir: Path | str | None = None) -> tuple[dict | None, str]:
    """``(gates, where)``: the newest gate-level result in the preset's ASIC build folder (of
    whatever RTL was synthesized there last), else the committed one, else ``(None, why)``
    naming the command that synthesizes it. Nothing is elaborated or synthesized."""
    from .flow import impl_folder
    from .target import get_target

    folder = impl_folder(config, get_target("asic"), out_dir)
    local = sorted((p for p in folder.glob("asic_*.json") if _CACHE_NAME.fullmatch(p.name)),
                   key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    for path in reversed(local):
        try:
            return json.loads(path.read_text()) | {"cached": True}, f"gate-level synthesis {path}"
        except ValueError:   # a half-written cache file: try the next
            continue
    committed = committed_gates().get(config.slug)
    if committed:
        gates, source = committed
        return gates | {"cached": True}, (f"gate-level synthesis committed in "
                                          f"hwaccel/impl/data/asic_gates.json: {source}")
    return None, (f"not synthesized: run `hwaccel synth --preset {config.slug} --target asic` "
                  f"(minutes for a large preset)")
