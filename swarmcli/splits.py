"""Held-out validation points taken from the training x, so a run can show how a swarm does
where it was not trained: between the points (`random`), across a hole (`gap`) or beyond the
right end of the data (`extrapolate`).

`split` returns boolean masks over x; the caller trains on x[train] and scores on x[val].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from swarmcli.checks import check_choice, check_number
from swarmcli.errors import SwarmError

KINDS = ("none", "random", "gap", "extrapolate")
_TOL = 1e-9  # relative to the domain's width: x within this of a boundary counts as on it


def _number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def check(
    kind: str,
    fraction: float = 0.2,
    seed: int = 0,
    gap: Sequence[float] | None = None,
    domain: Sequence[float] | None = None,
    key: str = "target.split",
) -> None:
    """Check the split settings without the data; raise SwarmError naming the bad value.

    `domain`, when given, is [low, high] of x, and an explicit gap must lie inside it."""
    check_choice(f"{key}.kind", kind, KINDS)
    check_number(f"{key}.seed", seed, low=0, integer=True)
    if kind == "none":
        return
    uses_fraction = kind != "gap" or gap is None
    if uses_fraction:
        check_number(f"{key}.fraction", fraction, low=0, high=1, low_open=True, high_open=True,
                     hint=", e.g. 0.2")
    if kind == "gap" and gap is not None:
        lo_g, hi_g = _pair(gap, key)
        if domain is not None:
            lo, hi = float(domain[0]), float(domain[1])
            tol = _TOL * (hi - lo)
            if lo_g < lo - tol or hi_g > hi + tol:
                raise SwarmError(f"{key}.gap={[lo_g, hi_g]!r} must lie inside the domain "
                                 f"{[lo, hi]!r}")


def _pair(gap, key: str) -> tuple[float, float]:
    try:
        vals = list(gap)
    except TypeError:
        vals = None
    if (
        vals is None
        or len(vals) != 2
        or not all(_number(v) and math.isfinite(v) for v in vals)
        or not vals[0] < vals[1]
    ):
        shown = vals if vals is not None else gap
        raise SwarmError(f"{key}.gap={shown!r} must be [low, high] in x units with low < high")
    return float(vals[0]), float(vals[1])


def held_out(
    kind: str,
    fraction: float = 0.2,
    gap: Sequence[float] | None = None,
    domain: Sequence[float] = (-5.0, 5.0),
) -> tuple[float, float] | None:
    """The x interval held out by `gap` or `extrapolate` (for shading plots); None for the
    kinds that hold out scattered points or nothing. Settings are assumed checked."""
    lo, hi = float(domain[0]), float(domain[1])
    if kind == "gap":
        if gap is not None:
            return float(gap[0]), float(gap[1])
        mid, half = (lo + hi) / 2, fraction * (hi - lo) / 2
        return mid - half, mid + half
    if kind == "extrapolate":
        return hi - fraction * (hi - lo), hi
    return None


def split(
    x,
    kind: str = "none",
    fraction: float = 0.2,
    seed: int = 0,
    gap: Sequence[float] | None = None,
    key: str = "target.split",
) -> tuple[np.ndarray, np.ndarray]:
    """(train_mask, val_mask): disjoint boolean arrays over the sorted 1-D `x` that together
    cover every point.

    none: every point trains. random: round(fraction * len(x)) points, at least 1 and leaving
    at least 2 to train, drawn with np.random.default_rng(seed). gap: points with
    gap[0] <= x <= gap[1] (default: the middle `fraction` of the domain). extrapolate: points
    with x > high - fraction * (high - low). The domain is [x[0], x[-1]]."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1 or x.size == 0 or not np.isfinite(x).all() or np.any(np.diff(x) < 0):
        raise SwarmError(f"{key}: x must be a non-empty, sorted 1-D array of finite numbers")
    domain = (float(x[0]), float(x[-1]))
    check(kind, fraction, seed, gap, domain, key)
    n = x.size
    val = np.zeros(n, dtype=bool)
    if kind == "none":
        return ~val, val
    if kind == "random":
        if n < 3:
            raise SwarmError(f"{key}.kind='random' needs at least 3 points, not {n}")
        k = min(max(int(round(fraction * n)), 1), n - 2)
        val[np.random.default_rng(int(seed)).choice(n, size=k, replace=False)] = True
        return ~val, val
    lo, hi = domain
    if not lo < hi:
        raise SwarmError(f"{key}.kind={kind!r} needs x spanning an interval, not the single x={lo}")
    tol = _TOL * (hi - lo)
    a, b = held_out(kind, fraction, gap, domain)
    if kind == "gap":
        val = (x >= a - tol) & (x <= b + tol)
        what = f"{key}.gap={[a, b]!r}" if gap is not None else f"{key}.fraction={fraction!r}"
    else:
        val = x > a + tol
        what = f"{key}.fraction={fraction!r}"
    spacing = (hi - lo) / (n - 1)
    if not val.any():
        raise SwarmError(
            f"{what} holds out no point of x (points are about {spacing:.3g} apart); "
            "widen it or add target.points"
        )
    if val.all():
        raise SwarmError(f"{what} holds out every point of x, leaving none to train on; narrow it")
    return ~val, val
