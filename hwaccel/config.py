"""Validation helpers shared by every generator's frozen config dataclass.

Errors read "X must be Y, not {value!r}" so that a user sees both the parameter and the bad value.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

__all__ = ["check_int", "check_choice", "check_bool", "check_name", "config_to_json",
           "config_fingerprint"]


def check_int(name: str, value: Any, *, min: int | None = None, max: int | None = None) -> int:
    """Return ``value`` if it is an ``int`` (not a ``bool``) within ``[min, max]``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if min is not None and value < min:
        raise ValueError(f"{name} must be at least {min}, not {value!r}")
    if max is not None and value > max:
        raise ValueError(f"{name} must be at most {max}, not {value!r}")
    return value


def check_choice(name: str, value: Any, choices: tuple) -> Any:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")
    return value


def check_name(value: Any) -> str:
    """A preset name: it becomes part of a Verilog module name and of file names."""
    if not isinstance(value, str) or not value.replace("_", "").isalnum():
        raise ValueError(f"name must be an identifier-like string, not {value!r}")
    return value


def config_to_json(config: Any) -> dict:
    """The config's fields as plain JSON data (what the RTL sidecar carries); a field that is
    itself a config dataclass becomes a nested dict."""
    return {f.name: (config_to_json(v) if dataclasses.is_dataclass(v) else v)
            for f in dataclasses.fields(config) for v in [getattr(config, f.name)]}


def config_fingerprint(config: Any) -> str:
    """A short digest of the config's fields that differ from their defaults (a nested config
    as its own such fields): equal for equal configs, and unchanged when a field is added with
    a default that keeps the old behaviour, so a measurement taken of one config (a committed
    placement) is not read for another of the same name."""
    def changed(c):
        out = {}
        for f in dataclasses.fields(c):
            v = getattr(c, f.name)
            if dataclasses.is_dataclass(v):
                out[f.name] = changed(v)
            elif f.default is dataclasses.MISSING or v != f.default:
                out[f.name] = v
        return out

    text = json.dumps(changed(config), sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
