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


def function(name: str):
    return TARGETS[name]


def training_data(name: str, domain, points: int, noise_sd: float, noise_seed: int):
    """x evenly spaced over the domain, y = f(x) + noise drawn once from `noise_seed`."""
    x = np.linspace(domain[0], domain[1], points)
    y = function(name)(x)
    if noise_sd > 0:
        y = y + np.random.default_rng(noise_seed).normal(0.0, noise_sd, size=points)
    return x, y


def dense_curve(name: str, domain, points: int = 400):
    """The noiseless target on a fine grid, drawn behind the bees in every plot."""
    x = np.linspace(domain[0], domain[1], points)
    return x, function(name)(x)


def turning_points(name: str, domain) -> np.ndarray:
    """x where the target's slope changes sign (or jumps): where ReLU kinks are needed."""
    x, y = dense_curve(name, domain, 20001)
    d = np.diff(y)
    idx = np.nonzero(np.sign(d[1:]) != np.sign(d[:-1]))[0] + 1
    return x[idx]
