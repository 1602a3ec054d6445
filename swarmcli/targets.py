"""Target functions and the training data drawn from them, in numpy so results and renderers
need no torch."""

from __future__ import annotations

import numpy as np

from swarmcli.checks import check_choice, check_number
from swarmcli.errors import SwarmError
from swarmcli.formula import compile_formula, evaluate
from swarmcli.splits import check as check_split
from swarmcli.splits import split

TARGETS = {
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
    "abs": np.abs,
    "step": lambda x: (x >= 0).astype(float),
    "noisy_sin": np.sin,  # sin plus Gaussian noise (target.noise_sd > 0)
}


def values(t, x: np.ndarray) -> np.ndarray:
    """The noiseless target f(x), float64: a named function, or the user's formula (checked
    finite on the training points by config.validate); `t` is a TargetConfig."""
    f = compile_formula(t.expr) if t.expr else TARGETS[t.name]
    return np.asarray(f(x), dtype=np.float64)


def training_data(t):
    """x evenly spaced over the domain, y = f(x) + noise drawn once from `noise_seed`, and the
    validation mask (True = held out) of the split; `t` is a TargetConfig."""
    x = np.linspace(t.domain[0], t.domain[1], t.points)
    y = values(t, x)
    if t.noise_sd > 0:
        y = y + np.random.default_rng(t.noise_seed).normal(0.0, t.noise_sd, size=t.points)
    _, val = split(x, t.split.kind, t.split.fraction, t.split.seed, t.split.gap)
    return x, y, val


def eval_grid(t) -> np.ndarray | None:
    """Where predictions are recorded: `eval_points` evenly over the domain plus every training
    point, sorted, so a curve is smooth between points (interpolation, gaps and extrapolation
    show) and still passes through the training x; None (eval_points=0): the training x."""
    if not t.eval_points:
        return None
    x = np.linspace(t.domain[0], t.domain[1], t.points)
    return np.union1d(np.linspace(t.domain[0], t.domain[1], t.eval_points), x)


def dense_curve(t, points: int = 400):
    """The noiseless target on a fine grid, drawn behind the bees in every plot."""
    x = np.linspace(t.domain[0], t.domain[1], points)
    return x, values(t, x)


def check(t) -> None:
    """Raise SwarmError naming the first bad `target.*` value (a TargetConfig)."""
    check_choice("target.name", t.name, TARGETS)
    if len(t.domain) != 2 or not t.domain[0] < t.domain[1]:
        raise SwarmError(f"target.domain={list(t.domain)!r} must be [low, high] with low < high")
    check_number("target.points", t.points, low=2, integer=True)
    check_number("target.eval_points", t.eval_points, low=0, integer=True)
    check_number("target.noise_sd", t.noise_sd, low=0)
    if t.name == "noisy_sin" and t.noise_sd == 0:
        raise SwarmError("target.name=noisy_sin needs target.noise_sd > 0 (target=noisy_sin "
                         "sets 0.1)")
    if t.expr is not None:
        evaluate(t.expr, np.linspace(t.domain[0], t.domain[1], t.points))
    check_split(t.split.kind, t.split.fraction, t.split.seed, t.split.gap, domain=t.domain)
