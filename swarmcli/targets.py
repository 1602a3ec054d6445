"""Target functions and the training data drawn from them, in numpy so results and renderers
need no torch."""

from __future__ import annotations

import numpy as np

TARGETS = {
    "sin": np.sin,
    "cos": np.cos,
    "exp": np.exp,
    "abs": np.abs,
    "step": lambda x: (x >= 0).astype(float),
    "noisy_sin": np.sin,  # sin plus Gaussian noise (target.noise_sd > 0)
}


def function(name: str, expr: str | None = None):
    """The target function: a named one, or a user's formula checked by the whitelist parser."""
    if expr:
        from swarmcli.formula import compile_formula

        return compile_formula(expr)
    return TARGETS[name]


def training_data(t):
    """x evenly spaced over the domain, y = f(x) + noise drawn once from `noise_seed`, and the
    validation mask (True = held out) of the split; `t` is a TargetConfig."""
    from swarmcli.splits import split

    x = np.linspace(t.domain[0], t.domain[1], t.points)
    y = np.asarray(function(t.name, t.expr)(x), dtype=float) * np.ones_like(x)
    if t.expr:
        from swarmcli.formula import check_values

        check_values(x, y)
    if t.noise_sd > 0:
        y = y + np.random.default_rng(t.noise_seed).normal(0.0, t.noise_sd, size=t.points)
    _, val = split(x, t.split.kind, t.split.fraction, t.split.seed, t.split.gap)
    return x, y, val


def dense_curve(t, points: int = 400):
    """The noiseless target on a fine grid, drawn behind the bees in every plot."""
    x = np.linspace(t.domain[0], t.domain[1], points)
    return x, np.asarray(function(t.name, t.expr)(x), dtype=float) * np.ones_like(x)
