"""The objective a job returns to a Hydra sweeper: one number for a whole swarm's final losses.
Numpy only, so config validation, the runner and `swarm collect` share it without importing
each other."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from swarmcli.checks import check_choice, check_number

OBJECTIVE_STATS = ("median", "mean", "quantile", "fraction_below")


@dataclass
class RunSummary:
    """What one run of any task returns (runner.run): a Hydra sweeper reads `objective`."""

    run_dir: Path
    final_losses: dict[int, np.ndarray]  # cell index -> [bees]
    diverged: int
    seconds: float
    objective_cfg: dict = field(default_factory=dict)

    @property
    def objective(self) -> float:
        """The number a Hydra sweeper minimises to find settings that work on average (default:
        median final loss over every bee, a diverged bee counting as +inf)."""
        finals = np.concatenate(list(self.final_losses.values()))
        return objective(finals, **self.objective_cfg)


def check_objective(stat: str, q: float = 0.5, threshold: float = 0.01) -> None:
    """Raise SwarmError, naming the key, if the objective settings are not usable."""
    check_choice("objective.stat", stat, OBJECTIVE_STATS)
    if stat == "quantile":
        check_number("objective.q", q, low=0, high=1)
    if stat == "fraction_below":
        check_number("objective.threshold", threshold)


def objective(final_losses, stat: str = "median", q: float = 0.5,
              threshold: float = 0.01) -> float:
    """One number for a whole swarm (lower is better), for a minimising Hydra sweeper.

    `final_losses` holds every bee's final loss (any shape); a diverged bee (NaN or inf) counts as
    +inf, so settings that diverge often never look good.

    - median: the median bee (default), robust to a few bad inits;
    - mean: the average; +inf as soon as one bee diverges;
    - quantile: the q-quantile (q=0.9: "90% of inits reach at most this"), linear interpolation
      between order statistics, +inf if that touches a diverged bee;
    - fraction_below: 1 - (fraction of bees whose final loss is < threshold), so 0.0 means every
      bee got there; minimise it to maximise the fraction that learns.
    """
    check_objective(stat, q, threshold)
    f = np.asarray(final_losses, dtype=np.float64).ravel()
    if f.size == 0:
        raise ValueError("objective of an empty swarm (no final losses)")
    f = np.where(np.isfinite(f), f, np.inf)
    if stat == "median":
        return float(np.median(f))
    if stat == "mean":
        return float(np.mean(f))
    if stat == "fraction_below":
        return float(1.0 - np.mean(f < threshold))
    s = np.sort(f)
    h = (s.size - 1) * float(q)
    lo, hi = math.floor(h), math.ceil(h)
    if hi == lo:
        return float(s[lo])
    if not math.isfinite(s[hi]):  # numpy would give nan for inf * 0 or inf - inf
        return math.inf
    return float(s[lo] + (h - lo) * (s[hi] - s[lo]))
