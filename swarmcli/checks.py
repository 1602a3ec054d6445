"""The two checks every setting goes through: a choice from a list, or a number in a range.
One message shape everywhere ("KEY=VALUE must be ..."), naming the key, the bad value and what
is allowed; no imports, so config, schedules, splits, render and objective share it."""

from __future__ import annotations

import math

from swarmcli.errors import SwarmError


def check_choice(key: str, value, choices) -> None:
    if value not in choices:
        raise SwarmError(f"{key}={value!r} is not one of: {', '.join(map(str, choices))}")


def check_number(key: str, value, *, low=None, high=None, low_open: bool = False,
                 high_open: bool = False, integer: bool = False, none_ok: bool = False,
                 hint: str = "") -> None:
    """`value` a finite number (an int when `integer`; never a bool) in the range given: `low`
    and `high` included unless `low_open`/`high_open`; None allowed when `none_ok`."""
    if value is None and none_ok:
        return
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    what = "an integer" if integer else "a number"
    if low is not None and high is not None:
        bounds = f" in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    elif low is not None:
        bounds = f" {'>' if low_open else '>='} {low}"
    elif high is not None:
        bounds = f" {'<' if high_open else '<='} {high}"
    else:
        bounds, what = "", "a finite number"
    raise SwarmError(f"{key}={value!r} must be {what}{bounds}{' or null' * none_ok}{hint}")
