"""How sure a swarm lets us be: each cell's median final loss with a bootstrap confidence
interval, and which cells cannot be told apart from the best.

This is swarm's promise ("on average, not one lucky run") made explicit. numpy only: scipy would
add ~40 MB for two textbook procedures, and the tests hold these to scipy where it is installed.

- A diverged bee (non-finite loss) counts as +inf: it failed, and dropping it would flatter its
  cell. The median stays finite while fewer than half of a cell's bees diverge.
- `median_ci`: percentile bootstrap of the median, from a seeded generator (reproducible).
- `mann_whitney_p`: two-sided Mann-Whitney U test (exact distribution for small samples without
  ties, as scipy's `method="auto"` does; else the normal approximation with tie and continuity
  corrections). It asks whether one cell's bees tend to end lower than another's, with no
  assumption on the shape of the loss distribution (losses are skewed, often bimodal).
- `holm`: Holm's step-down correction, since every cell is compared with the best at once.
- `compare_cells`: per cell, the median, its CI, the Holm-adjusted p-value against the cell
  with the lowest median, and whether it is indistinguishable from that best cell at `alpha`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EXACT_MAX = 8  # scipy's "auto": the exact U distribution when both samples are this small
N_BOOT, LEVEL = 2000, 0.95  # bootstrap resamples; the confidence intervals' level


def as_losses(values) -> np.ndarray:
    """float64 copy with every non-finite value (a diverged bee) as +inf."""
    a = np.asarray(values, dtype=np.float64).ravel()
    return np.where(np.isfinite(a), a, np.inf)


def median_ci(values, *, level: float = LEVEL, n_boot: int = N_BOOT,
              seed: int = 0) -> tuple[float, float, float]:
    """(median, low, high): the sample median and a percentile-bootstrap `level` interval."""
    a = as_losses(values)
    return _median_ci(a, _draws(seed, n_boot, a.size), level)


def _draws(seed: int, n_boot: int, size: int) -> np.ndarray:
    """The bootstrap's resampling indices: the same for every cell of one size and seed, so
    `compare_cells` draws them once (a fifth of its time on the default hive)."""
    return np.random.default_rng(seed).integers(0, size, size=(n_boot, size)) if size else None


def _median_ci(a: np.ndarray, draws, level: float) -> tuple[float, float, float]:
    if a.size == 0:
        return (math.nan,) * 3
    meds = _row_medians(a[draws])
    tail = (1 - level) / 2
    lo, hi = np.quantile(meds, [tail, 1 - tail], method="inverted_cdf")
    return float(np.median(a)), float(lo), float(hi)


def _row_medians(rows: np.ndarray) -> np.ndarray:
    """np.median(rows, axis=1), bit for bit, by one sort: a third of its time on a swarm's
    2000 x 10 resamples, where np.median's partitioning per row costs more than sorting."""
    s = np.sort(rows, axis=1)
    n = s.shape[1]
    return s[:, n // 2] if n % 2 else (s[:, n // 2 - 1] + s[:, n // 2]) / 2


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (1-based), ties sharing the mean of their positions."""
    order = np.argsort(values, kind="mergesort")
    sorted_v = values[order]
    starts = np.r_[0, np.flatnonzero(sorted_v[1:] != sorted_v[:-1]) + 1]
    ends = np.r_[starts[1:], values.size]
    avg = (starts + ends + 1) / 2.0
    ranks = np.empty(values.size)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def _exact_cdf(u: int, n1: int, n2: int) -> float:
    """P(U <= u) under the null, counting the arrangements of n1 + n2 untied values."""
    # counts[j][k]: arrangements of j values of sample 1 among the first positions with U = k
    counts = np.zeros((n1 + 1, n1 * n2 + 1))
    counts[0, 0] = 1
    for pos in range(n1 + n2):
        for j in range(min(pos + 1, n1), 0, -1):
            # placing a sample-1 value at `pos` after (pos - (j - 1)) sample-2 values
            shift = pos - (j - 1)
            if shift > n2:
                continue
            counts[j, shift:] += counts[j - 1, :counts.shape[1] - shift]
    total = math.comb(n1 + n2, n1)
    return float(counts[n1, :u + 1].sum() / total)


def mann_whitney_p(a, b) -> float:
    """Two-sided p-value of the Mann-Whitney U test that `a` and `b` come from one distribution."""
    a, b = as_losses(a), as_losses(b)
    n1, n2 = a.size, b.size
    if n1 == 0 or n2 == 0:
        return math.nan
    both = np.concatenate([a, b])
    ranks = _ranks(both)
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2
    u = max(u1, n1 * n2 - u1)
    ties = np.unique(both, return_counts=True)[1]
    if max(n1, n2) <= EXACT_MAX and (ties == 1).all():
        return min(1.0, 2 * (1 - _exact_cdf(int(round(u)) - 1, n1, n2)))
    n = n1 + n2
    mu = n1 * n2 / 2
    var = n1 * n2 / 12 * ((n + 1) - (ties**3 - ties).sum() / (n * (n - 1)))
    if var <= 0:
        return 1.0
    z = (u - mu - 0.5) / math.sqrt(var)
    return min(1.0, math.erfc(z / math.sqrt(2)))


def holm(pvalues) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as given; nan stays nan)."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok], kind="mergesort")]
    m = order.size
    running = 0.0
    for i, idx in enumerate(order):
        running = max(running, min(1.0, (m - i) * p[idx]))
        out[idx] = running
    return out


# summary.csv's per-cell columns (repeated on each bee's row), in CellStats' field order
CELL_COLUMNS = ("cell_median", "cell_median_ci_low", "cell_median_ci_high", "p_vs_best",
                "tied_with_best")


@dataclass(frozen=True)
class CellStats:
    median: float
    ci_low: float
    ci_high: float
    p_vs_best: float  # Holm-adjusted; nan for the best cell itself
    tied_with_best: bool  # the best cell, or not significantly worse than it at alpha

    def columns(self) -> dict:
        """The cell's statistics as summary.csv columns."""
        return dict(zip(CELL_COLUMNS, (self.median, self.ci_low, self.ci_high, self.p_vs_best,
                                       self.tied_with_best)))

    def verdict(self) -> str:
        """A short word for tables: best, tied (cannot be told apart from best), or worse."""
        if math.isnan(self.p_vs_best):
            return "best"
        return f"{'tied' if self.tied_with_best else 'worse'} (p={self.p_vs_best:.2g})"


def compare_cells(finals: list, *, alpha: float = 0.05, seed: int = 0) -> list[CellStats]:
    """Per cell (a list of per-bee final losses each): median, bootstrap CI, and the comparison
    with the cell of lowest median (two-sided Mann-Whitney U, Holm-corrected over the cells)."""
    losses = [as_losses(f) for f in finals]
    draws = {n: _draws(seed, N_BOOT, n) for n in {a.size for a in losses}}
    cis = [_median_ci(a, draws[a.size], LEVEL) for a in losses]
    meds = np.array([c[0] for c in cis])
    if not len(finals) or np.isnan(meds).all():
        return [CellStats(*c, math.nan, False) for c in cis]
    best = int(np.nanargmin(np.where(np.isnan(meds), np.inf, meds)))
    raw = [math.nan if i == best else mann_whitney_p(f, finals[best])
           for i, f in enumerate(finals)]
    adj = holm(raw)
    return [CellStats(*cis[i], float(adj[i]), i == best or bool(adj[i] >= alpha))
            for i in range(len(finals))]


def print_table(cells, axis_names, finals, table: list[CellStats], out) -> None:
    """Per cell: median final loss with its bootstrap 95% CI, the inter-quartile range, how many
    diverged, and whether it can be told apart from the best cell (Mann-Whitney U, Holm)."""
    head = [*(a.rsplit(".", 1)[-1] for a in axis_names), "median loss [95% CI]", "IQR",
            "diverged", "vs best"]
    body = []
    for c in cells:
        f, st = finals[c.index], table[c.index]
        ok = f[np.isfinite(f)]
        q1, q3 = np.percentile(ok, [25, 75]) if ok.size else (np.nan,) * 2
        body.append([*(c.labels[a] for a in axis_names),
                     f"{st.median:.3g} [{st.ci_low:.3g}, {st.ci_high:.3g}]", f"{q1:.3g}-{q3:.3g}",
                     f"{(~np.isfinite(f)).sum()}/{f.size}", st.verdict()])
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    for r in [head, *body]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)
    print("vs best: two-sided Mann-Whitney U against the cell of lowest median, Holm-corrected; "
          "tied = cannot be told apart at p < 0.05", file=out)
