"""The comparison figures of a multirun: final loss per value of each swept key, and heat maps.

Drawn with matplotlib alone, in the shared look of every swarm figure (render/style.py), from the
merged table only; matplotlib is imported when a figure is drawn, so `--no-render` never pays.
"""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import numpy as np

from swarmcli.collect.table import CollectResult, distinct
from swarmcli.errors import SwarmError

MAX_BOX_VALUES = 12  # a key with more distinct values is drawn as a scatter, not boxes
MAX_HEATMAPS = 15


def _finite_or_inf(x) -> float:
    return x if x is not None and math.isfinite(x) else math.inf


def heatmap_table(result: CollectResult, x: str, y: str):
    """(x values, y values, median final loss [len(y), len(x)]) over every bee with that pair of
    values, whatever the other keys; a diverged bee counts as +inf, an empty pair is NaN."""
    xs = distinct(r[x] for r in result.rows)
    ys = distinct(r[y] for r in result.rows)
    groups: dict[tuple, list[float]] = {}
    for r in result.rows:
        groups.setdefault((r[x], r[y]), []).append(_finite_or_inf(r["final_loss"]))
    med = np.full((len(ys), len(xs)), np.nan)
    for (vx, vy), f in groups.items():
        if vx in xs and vy in ys:
            med[ys.index(vy), xs.index(vx)] = np.median(np.asarray(f))
    return xs, ys, med


def label(v) -> str:
    """A value as a tick label or a cell of the printed report: floats to 3 digits."""
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _file_key(k: str) -> str:
    return re.sub(r"[^\w.-]+", "_", k)


def style():
    """The render package's shared style, imported only when collect draws (matplotlib is
    slow to import, and `--no-render` never needs it)."""
    from swarmcli.render import style as shared

    return shared


def plot_distributions(result: CollectResult, path: Path) -> Path | None:
    """One panel per swept key: the final-loss distribution of every bee, per value of the key
    (boxes and points; diverged bees counted above each box)."""
    if not result.swept or not result.rows:
        return None
    import matplotlib

    with matplotlib.rc_context(style().RC):  # the look of every swarm figure
        return _plot_distributions(result, path)


def _plot_distributions(result: CollectResult, path: Path) -> Path:
    keys = result.swept
    ncol = min(3, len(keys))
    nrow = math.ceil(len(keys) / ncol)
    fig = style().new_figure(520 * ncol, 400 * nrow, 100)
    finite_all = [r["final_loss"] for r in result.rows
                  if r["final_loss"] is not None and math.isfinite(r["final_loss"])]
    log = bool(finite_all) and min(finite_all) > 0 and max(finite_all) > 10 * min(finite_all)
    rng = np.random.default_rng(0)
    for i, key in enumerate(keys):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        values = distinct(r[key] for r in result.rows)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        per = {v: [] for v in values}
        div = {v: 0 for v in values}
        for r in result.rows:
            v, f = r[key], r["final_loss"]
            if v is None:
                continue
            if f is not None and math.isfinite(f):
                per[v].append(f)
            else:
                div[v] += 1
        if numeric and len(values) > MAX_BOX_VALUES:  # e.g. an optuna search: scatter
            for v in values:
                ax.scatter([v] * len(per[v]), per[v], s=8, alpha=0.5, color="C0")
                if per[v]:
                    ax.scatter([v], [np.median(per[v])], marker="_", s=120, color="C3")
            gone = [v for v in values if div[v]]
            if gone:  # diverged bees: a red x just under the top edge, at their value
                ax.scatter(gone, [0.97] * len(gone), marker="x", s=25, color="C3",
                           transform=ax.get_xaxis_transform(),
                           label=f"{sum(div.values())} diverged")
                ax.legend(loc="upper left")
            lo, hi = min(values), max(values)
            if lo > 0 and hi / lo > 20:
                ax.set_xscale("log")
                ax.set_xlim(lo / (hi / lo) ** 0.04, hi * (hi / lo) ** 0.04)
            else:
                ax.set_xlim(lo - 0.04 * (hi - lo), hi + 0.04 * (hi - lo))
            ax.set_xlabel(key)
        else:
            pos = np.arange(len(values))
            data = [per[v] if per[v] else [np.nan] for v in values]
            ax.boxplot(data, positions=pos, widths=0.6, showfliers=False,
                       medianprops={"color": "C3"})
            for p, v in zip(pos, values):
                if per[v]:
                    jit = rng.uniform(-0.18, 0.18, len(per[v]))
                    ax.scatter(p + jit, per[v], s=6, alpha=0.35, color="C0", zorder=3)
            ax.set_xticks(pos, [label(v) for v in values],
                          rotation=30 if len(values) > 5 else 0)
            ax.set_xlabel(key)
            for p, v in zip(pos, values):
                if div[v]:
                    ax.annotate(f"{div[v]} diverged", (p, 1.0), xycoords=("data", "axes fraction"),
                                ha="center", va="bottom", color="C3")
        if log:
            ax.set_yscale("log")
        ax.set_ylabel("final loss" if i % ncol == 0 else "")
        ax.grid(alpha=0.3, axis="y")
    n_jobs = len({r["job"] for r in result.rows})
    fig.suptitle(f"final loss per value of each swept key ({len(result.rows)} bees, "
                 f"{n_jobs} jobs)")
    fig.savefig(path)
    return path


def plot_heatmap(result: CollectResult, x: str, y: str, path: Path) -> Path:
    """Median final loss for each pair of values of keys x and y (log colour scale)."""
    import matplotlib

    with matplotlib.rc_context(style().RC):  # the look of every swarm figure
        return _plot_heatmap(result, x, y, path)


def _plot_heatmap(result: CollectResult, x: str, y: str, path: Path) -> Path:
    from matplotlib.colors import LogNorm, Normalize

    xs, ys, med = heatmap_table(result, x, y)
    shown = np.where(np.isfinite(med), med, np.nan)
    ok = shown[np.isfinite(shown)]
    if ok.size and ok.min() > 0 and ok.max() > 10 * ok.min():
        norm = LogNorm(ok.min(), ok.max())
    else:
        norm = Normalize(*(ok.min(), ok.max()) if ok.size else (0, 1))
    fig = style().new_figure(int(100 * max(4.5, 1.0 * len(xs) + 2.5)),
                           int(100 * max(3.5, 0.6 * len(ys) + 2.0)), 100)
    ax = fig.add_subplot()
    ax.set_facecolor("0.85")
    im = ax.imshow(shown, norm=norm, cmap="viridis_r", aspect="auto")
    fig.colorbar(im, ax=ax, label="median final loss")
    ax.set_xticks(range(len(xs)), [label(v) for v in xs])
    ax.set_yticks(range(len(ys)), [label(v) for v in ys])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    for (i, j), m in np.ndenumerate(med):
        text = "-" if np.isnan(m) else ("diverged" if np.isinf(m) else f"{m:.3g}")
        dark = np.isfinite(m) and norm(m) > 0.6
        ax.text(j, i, text, ha="center", va="center",
                color="white" if dark else "black")
    ax.set_title(f"median final loss by {y} x {x}\n(over all bees and other settings)")
    fig.savefig(path)
    return path


def draw_all(result: CollectResult, out_dir: Path,
             pairs: list[tuple[str, str]] | None = None) -> list[Path]:
    """The comparison plots into out_dir; pairs default to every pair of swept keys with at most
    MAX_BOX_VALUES values each (at most MAX_HEATMAPS of them)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in [*out_dir.glob("heatmap_*.png"), out_dir / "final_loss_by_key.png"]:
        old.unlink(missing_ok=True)
    written = []
    p = plot_distributions(result, out_dir / "final_loss_by_key.png")
    if p:
        written.append(p)
    if pairs is None:
        small = [k for k in result.swept
                 if len(distinct(r[k] for r in result.rows)) <= MAX_BOX_VALUES]
        pairs = list(itertools.combinations(small, 2))[:MAX_HEATMAPS]
    for x, y in pairs:
        for k in (x, y):
            if k not in result.columns:
                raise SwarmError(f"--heatmap key {k!r} is not a column; swept keys: "
                                 f"{', '.join(result.swept) or 'none'}")
        name = f"heatmap_{_file_key(y)}_vs_{_file_key(x)}.png"
        written.append(plot_heatmap(result, x, y, out_dir / name))
    return written

