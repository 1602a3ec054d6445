"""classification's data: labelled 2-D points drawn once from a seed (numpy only), a stratified
train / validation / test split, and the grid the decision boundaries are recorded on.

`moons` and `circles` follow scikit-learn's make_moons and make_circles line for line (the same
RandomState calls in the same order), so `dataset.seed=3` gives seed 003's very points without
scikit-learn at run time; tests/test_classify.py holds them to scikit-learn where it is installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swarmcli import choices
from swarmcli.checks import check_choice, check_number
from swarmcli.errors import SwarmError

GRID_MARGIN = 0.15  # the evaluation grid reaches this share of the data's extent beyond it
CIRCLES_FACTOR = 0.5  # inner circle's radius / outer's (scikit-learn's default is 0.8)


@dataclass(frozen=True, eq=False)
class Points:
    """Every point and its label, and which are held out; `grid_x` where boundaries are
    recorded (a grid of side `grid` over `extent`)."""

    x: np.ndarray  # [n, 2] float64
    y: np.ndarray  # [n] float64, 0 or 1
    test: np.ndarray  # [n] bool: held out for test accuracy, never trained on
    val: np.ndarray  # [n] bool: held out for validation (loss recorded, early stopping)
    extent: tuple[float, float, float, float]  # x0 low, x0 high, x1 low, x1 high
    grid: int

    @property
    def train(self) -> np.ndarray:
        return ~(self.test | self.val)

    @property
    def grid_x(self) -> np.ndarray:
        """[grid * grid, 2], row-major: point (i, j) is (x0[j], x1[i]), as imshow draws it."""
        a0, b0, a1, b1 = self.extent
        g0, g1 = np.meshgrid(np.linspace(a0, b0, self.grid), np.linspace(a1, b1, self.grid))
        return np.stack([g0.ravel(), g1.ravel()], axis=1)


def _shuffle(x, y, gen: np.random.RandomState):
    """sklearn.utils.shuffle: one RandomState.shuffle of the indices."""
    idx = np.arange(len(x))
    gen.shuffle(idx)
    return x[idx], y[idx]


def _two_arcs(out_x, out_y, in_x, in_y, noise, gen):
    x = np.vstack([np.append(out_x, in_x), np.append(out_y, in_y)]).T
    y = np.hstack([np.zeros(len(out_x), dtype=np.intp), np.ones(len(in_x), dtype=np.intp)])
    x, y = _shuffle(x, y, gen)
    return x + gen.normal(scale=noise, size=x.shape), y


def moons(n: int, noise: float, seed: int):
    """scikit-learn's make_moons(n, shuffle=True, noise=noise, random_state=seed)."""
    gen = np.random.RandomState(seed)
    n_out = n // 2
    n_in = n - n_out
    return _two_arcs(np.cos(np.linspace(0, np.pi, n_out)), np.sin(np.linspace(0, np.pi, n_out)),
                     1 - np.cos(np.linspace(0, np.pi, n_in)),
                     1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5, noise, gen)


def circles(n: int, noise: float, seed: int, factor: float = CIRCLES_FACTOR):
    """scikit-learn's make_circles(n, shuffle=True, noise=noise, random_state=seed, factor)."""
    gen = np.random.RandomState(seed)
    n_out = n // 2
    n_in = n - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    return _two_arcs(np.cos(t_out), np.sin(t_out), np.cos(t_in) * factor,
                     np.sin(t_in) * factor, noise, gen)


def xor(n: int, noise: float, seed: int):
    """Uniform on [-1, 1]^2 with half the points each side: class 1 in the quadrants where
    x0 * x1 > 0, class 0 in the others; then noise."""
    gen = np.random.default_rng(seed)
    y = np.arange(n) % 2
    a = gen.uniform(0, 1, size=(n, 2))
    s0 = gen.choice([-1.0, 1.0], size=n)
    x = np.stack([s0 * a[:, 0], np.where(y == 1, s0, -s0) * a[:, 1]], axis=1)
    return x + gen.normal(scale=noise, size=x.shape), y


def spirals(n: int, noise: float, seed: int):
    """Two interleaved arms, 1.2 turns each (angle 3 pi r), radius 0.2 to 1 (class k is arm k),
    then noise."""
    gen = np.random.default_rng(seed)
    y = np.arange(n) % 2
    t = np.sqrt(gen.uniform(0.04, 1, size=n))  # even density along the arm
    angle = 3 * np.pi * t + np.pi * y
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    return x + gen.normal(scale=noise, size=x.shape), y


def blobs(n: int, noise: float, seed: int):
    """Two round Gaussian clouds (sd 0.5) centred at (-1, -1) and (1, 1), then noise."""
    gen = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = (2 * y[:, None] - 1) * np.ones(2) + gen.normal(scale=0.5, size=(n, 2))
    return x + gen.normal(scale=noise, size=x.shape), y


DATASETS = {f.__name__: f for f in (moons, circles, xor, spirals, blobs)}  # as choices.DATASETS


def stratified(y: np.ndarray, fraction: float, pool: np.ndarray, gen) -> np.ndarray:
    """A mask of round(fraction * count) points of each class, drawn from `pool`, so the held-out
    points keep the classes' proportions (as scikit-learn's stratify=y)."""
    out = np.zeros(len(y), dtype=bool)
    for c in (0, 1):
        idx = np.flatnonzero(pool & (y == c))
        out[gen.permutation(idx)[:int(round(fraction * len(idx)))]] = True
    return out


def make(d) -> Points:
    """The points of a `DatasetConfig` (checked by datasets.check), split and framed."""
    x, y = DATASETS[d.name](d.samples, d.noise, d.seed)
    gen = np.random.default_rng(d.split_seed)
    everything = np.ones(len(y), dtype=bool)
    test = stratified(y, d.test_fraction, everything, gen)
    val = stratified(y, d.val_fraction, ~test, gen)
    lo, hi = x.min(axis=0), x.max(axis=0)
    pad = GRID_MARGIN * (hi - lo)
    extent = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    return Points(x.astype(np.float64), y.astype(np.float64), test, val,
                  tuple(float(v) for v in extent), d.grid)


def check(d) -> None:
    """Raise SwarmError naming the first bad `dataset.*` value (a DatasetConfig)."""
    check_choice("dataset.name", d.name, choices.DATASETS)
    check_number("dataset.samples", d.samples, low=4, high=10**7, integer=True)
    check_number("dataset.noise", d.noise, low=0)
    check_number("dataset.test_fraction", d.test_fraction, low=0, high=1, high_open=True)
    check_number("dataset.val_fraction", d.val_fraction, low=0, high=1, high_open=True)
    check_number("dataset.grid", d.grid, low=2, high=2000, integer=True)
    if (1 - d.test_fraction) * (1 - d.val_fraction) < 0.1:
        raise SwarmError(f"dataset.test_fraction={d.test_fraction!r} and dataset.val_fraction="
                         f"{d.val_fraction!r} leave under 10% of the points to train on")
