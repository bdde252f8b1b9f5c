"""The Pareto front of a set of points: which points no other point beats on both axes.

Pure Python (no matplotlib), so a design-space sweep can name its front without drawing it;
:mod:`hwaccel.plotting` draws the same front as a staircase.
"""

from __future__ import annotations

import math

__all__ = ["SENSES", "known", "pareto_front", "staircase"]

SENSES = ("min", "max")


def known(v) -> bool:
    """Whether a coordinate is a number (not ``None``, not NaN)."""
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def sign(sense: str, name: str) -> int:
    """+1 for an axis minimized, -1 for one maximized (``name`` is for the error)."""
    if sense not in SENSES:
        raise ValueError(f"{name} must be 'min' or 'max', not {sense!r}")
    return 1 if sense == "min" else -1


def pareto_front(xs, ys, *, x: str = "min", y: str = "min") -> list[int]:
    """Indices (ascending) of the points no other point dominates.

    ``x`` and ``y`` say whether each axis is minimized or maximized. A point dominates another
    when it is at least as good on both axes and better on one, so identical points are all on
    the front, and of points with the same ``x`` only those with the best ``y`` are. Points with
    an unknown coordinate (``None`` or NaN) are never on it.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys must have the same length, not {len(xs)} and {len(ys)}")
    sx, sy = sign(x, "x"), sign(y, "y")
    pts = [(i, sx * a, sy * b) for i, (a, b) in enumerate(zip(xs, ys))
           if known(a) and known(b)]
    return [i for i, a, b in pts
            if not any(a2 <= a and b2 <= b and (a2 < a or b2 < b) for _, a2, b2 in pts)]


def staircase(xs, ys, front, *, x: str = "min", y: str = "min") -> list[tuple]:
    """The vertices of the front's staircase, in ``x`` order.

    Even vertices are the front's points (``front`` as :func:`pareto_front` gives it, identical
    points once); between two of them the odd vertex is the corner at the worse ``x`` and the
    worse ``y`` of the pair, so the line bounds what the front dominates and touches no other
    point of the front's own making. One front point gives a single vertex.
    """
    sx, sy = sign(x, "x"), sign(y, "y")
    pts = sorted({(xs[i], ys[i]) for i in front}, key=lambda p: (p[0], sy * p[1]))
    out = pts[:1]
    for (a1, b1), (a2, b2) in zip(pts, pts[1:]):
        corner = (max(a1, a2) if sx > 0 else min(a1, a2), max(b1, b2) if sy > 0 else min(b1, b2))
        if corner not in ((a1, b1), (a2, b2)):
            out.append(corner)
        out.append((a2, b2))
    return out
