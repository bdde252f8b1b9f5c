"""What the ends of a link or of the host port do, cycle by cycle: transfers offered by a
sender, and the ``ready`` pattern of a receiver.

Shared by :mod:`.link` and :mod:`.arbiter` (and by their testbenches, which drive the
Components from the same objects, so the model and the hardware see identical traffic).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from ..config import check_int

__all__ = ["Transfer", "Receiver", "beats_of"]


@dataclass(frozen=True)
class Transfer:
    """``size`` bytes that the sender offers from cycle ``at`` on (and not before the cycle
    after its previous beat went: one stream, in order).

    Raises
    ------
    TypeError, ValueError
        Naming the field and the bad value.
    """

    size: int
    at: int = 0

    def __post_init__(self):
        check_int("size", self.size, min=1)
        check_int("at", self.at, min=0)

    def beats(self, width: int) -> list[int]:
        """The byte count of each of its ``ceil(size / width)`` beats: all ``width`` but the
        last."""
        n = math.ceil(self.size / width)
        return [width] * (n - 1) + [self.size - (n - 1) * width]


def beats_of(transfers: Iterable[Transfer], width: int) -> list[tuple[int, int, int, bool]]:
    """Every beat of ``transfers`` in order, as ``(transfer, at, count, last)``."""
    out = []
    for i, t in enumerate(transfers):
        if not isinstance(t, Transfer):
            raise TypeError(f"transfers must hold Transfer objects, not {t!r}")
        counts = t.beats(width)
        out += [(i, t.at, c, j == len(counts) - 1) for j, c in enumerate(counts)]
    return out


@dataclass(frozen=True)
class Receiver:
    """A receiver's ``ready``: ``prefix[c]`` for cycles ``c < len(prefix)``, then ``repeat``
    over and over (``repeat[(c - len(prefix)) % len(repeat)]``). A ``repeat`` with no ``True``
    (or empty) is a receiver that stops draining after ``prefix``.

    Raises
    ------
    TypeError
        If a pattern holds something other than bools.
    """

    prefix: tuple[bool, ...] = ()
    repeat: tuple[bool, ...] = (True,)

    def __post_init__(self):
        for name in ("prefix", "repeat"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not all(isinstance(b, bool) for b in value):
                raise TypeError(f"{name} must be a tuple of bools, not {value!r}")

    @classmethod
    def always(cls) -> Receiver:
        return cls()

    @classmethod
    def every(cls, period: int, phase: int = 0) -> Receiver:
        """Ready one cycle in ``period`` (cycles ``c`` with ``c % period == phase``): a
        receiver that drains ``1 / period`` beats a cycle."""
        check_int("period", period, min=1)
        check_int("phase", phase, min=0, max=period - 1)
        return cls((), tuple(i == phase for i in range(period)))

    @classmethod
    def stops_after(cls, prefix: Iterable[bool]) -> Receiver:
        """``prefix``, then never ready again (a receiver that stops draining)."""
        return cls(tuple(bool(b) for b in prefix), ())

    def ready(self, cycle: int) -> bool:
        if cycle < len(self.prefix):
            return self.prefix[cycle]
        return bool(self.repeat) and self.repeat[(cycle - len(self.prefix)) % len(self.repeat)]

    def next_ready(self, cycle: int) -> int | None:
        """The first cycle ``>= cycle`` at which the receiver is ready; ``None`` if never."""
        for c in range(cycle, len(self.prefix)):
            if self.prefix[c]:
                return c
        if not any(self.repeat):
            return None
        c = max(cycle, len(self.prefix))
        base, n = len(self.prefix), len(self.repeat)
        for k in range(n):
            if self.repeat[(c - base + k) % n]:
                return c + k
        raise AssertionError("unreachable: repeat holds a True")
