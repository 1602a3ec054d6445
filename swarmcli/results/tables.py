"""A saved run as tables: the per-cell summary (numpy only, for trackers too) and, for notebooks,
tidy pandas frames (one row per observation, swept values as columns, so `groupby`, seaborn and
plotnine take them as they are) and the run's HTML face in Jupyter.

Kept apart from reader.py, which stays numpy-only; pandas is imported only when a frame is
asked for.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

import numpy as np

from swarmcli.results.summary import read_summary

_CELL_STATS = ("cell_median", "cell_median_ci_low", "cell_median_ci_high", "p_vs_best",
               "tied_with_best")


def cell_rows(run_dir) -> list[dict]:
    """One row per cell from summary.csv: its swept values, bees, diverged bees, the final
    loss's median, 95% CI (bootstrap) and quartiles over the bees, the held-out loss's median
    where recorded, and the comparison with the best cell (Mann-Whitney U, Holm)."""
    rows, axes, extra = read_summary(run_dir)
    out = []
    for cell in sorted({r["cell"] for r in rows}):
        bees = [r for r in rows if r["cell"] == cell]
        final = np.array([r["final_loss"] for r in bees], dtype=float)
        ok = final[np.isfinite(final)]
        q25, q75 = np.percentile(ok, [25, 75]) if ok.size else (np.nan, np.nan)
        row = {"cell": cell, **{a: bees[0][a] for a in axes}, "bees": len(bees),
               "diverged": sum(r["diverged"] for r in bees)}
        first = bees[0]
        row.update({"median_loss": first.get("cell_median", float(np.median(ok)) if ok.size
                                             else np.nan),
                    "ci_low": first.get("cell_median_ci_low", np.nan),
                    "ci_high": first.get("cell_median_ci_high", np.nan),
                    "q25": float(q25), "q75": float(q75)})
        if "final_val_loss" in extra:
            val = np.array([r["final_val_loss"] for r in bees], dtype=float)
            val = val[np.isfinite(val)]
            row["median_val_loss"] = float(np.median(val)) if val.size else np.nan
        if "p_vs_best" in extra:
            row["p_vs_best"] = first["p_vs_best"]
            row["tied_with_best"] = first["tied_with_best"]
        out.append(row)
    return out


def summary_frame(run):
    import pandas as pd

    return pd.DataFrame(cell_rows(run.path)).set_index("cell")


def bees_frame(run):
    """summary.csv as a DataFrame, one row per bee."""
    import pandas as pd

    rows, _, _ = read_summary(run.path)
    return pd.DataFrame(rows)


def _with_axes(df, cell):
    for k, v in reversed(cell.labels.items()):
        df.insert(1, k, cell.values.get(k, v))  # a grid axis keeps its typed value
    return df


def loss_frame(run):
    """One row per (cell, bee, epoch): swept values, `loss` and, with held-out points,
    `val_loss`."""
    import pandas as pd

    parts = []
    for c in run.cells:
        loss = np.asarray(c.loss)
        bees, epochs = loss.shape
        cols = {"cell": c.index, "bee": np.repeat(np.arange(bees), epochs),
                "epoch": np.tile(np.arange(epochs), bees), "loss": loss.reshape(-1)}
        if c.has("val_loss"):
            cols["val_loss"] = np.asarray(c.array("val_loss")).reshape(-1)
        parts.append(_with_axes(pd.DataFrame(cols), c))
    return pd.concat(parts, ignore_index=True)


def ypred_frame(run, epochs=None, cells=None):
    """One row per (cell, bee, recorded epoch, point): swept values, `epoch`, `x`, `ypred`, and
    `kind` (train, val or grid: a training point, a held-out point, or between them).
    `epochs`: recorded epochs to keep (negative counts from the last frame; default all);
    `cells`: cell indices (default all)."""
    import pandas as pd

    if "ypred" not in run.manifest["record"]:
        raise ValueError(f"{run.path} recorded no predictions (train.record="
                         f"{run.manifest['record']}); rerun with train.record=[ypred]")
    frames = run.frames
    if epochs is None:
        pick = np.arange(len(frames))
    else:
        pick = []
        for e in epochs:
            e = int(frames[e]) if e < 0 else int(e)
            hits = np.flatnonzero(frames == e)
            if not hits.size:
                raise KeyError(f"epoch {e} was not recorded; recorded: {frames.tolist()}")
            pick.append(int(hits[0]))
        pick = np.asarray(pick)
    x = np.asarray(run.eval_x)
    kind = np.full(len(x), "grid", dtype=object)
    train_x = np.asarray(run.x)
    val = run.load("val_mask").astype(bool) if (run.path / "val_mask.npy").exists() \
        else np.zeros(len(train_x), bool)
    for xs, name in ((train_x[~val], "train"), (train_x[val], "val")):
        kind[np.isin(x, xs)] = name
    parts = []
    for c in run.cells:
        if cells is not None and c.index not in cells:
            continue
        y = np.asarray(c.ypred[:, pick])  # [bees, frames, points]
        bees, nf, npts = y.shape
        df = pd.DataFrame({"cell": c.index, "bee": np.repeat(np.arange(bees), nf * npts),
                           "epoch": np.tile(np.repeat(frames[pick], npts), bees),
                           "x": np.tile(x, bees * nf), "kind": np.tile(kind, bees * nf),
                           "ypred": y.reshape(-1)})
        parts.append(_with_axes(df, c))
    return pd.concat(parts, ignore_index=True)


def figure_paths(run) -> dict[str, Path]:
    """Figure file stem -> path, e.g. `hive_epoch0150` -> RUN_DIR/figures/hive_epoch0150.png."""
    d = run.path / "figures"
    return {p.stem: p for p in sorted(d.glob("*")) if p.is_file()} if d.is_dir() else {}


def final_hive(run) -> Path | None:
    """The hive still at the latest epoch drawn (the first page, if there are pages)."""
    hives = [p for p in figure_paths(run).values()
             if p.name.startswith("hive") and "_epoch" in p.name and p.suffix == ".png"]
    if not hives:
        return None
    return max(hives, key=lambda p: (int(p.stem.rsplit("_epoch", 1)[1]), -len(p.name)))


def to_html(run) -> str:
    """The run in a notebook: its state and lesson, the per-cell summary, the final hive."""
    head = (f"<p><b>swarm run</b> <code>{html.escape(str(run.path))}</code>: {run.state}, "
            f"{len(run.cells)} cells, {run.epochs} epochs</p>")
    lesson = run.manifest.get("lesson")
    if lesson:
        head += f"<p><i>{html.escape(lesson)}</i></p>"
    table = ""
    if (run.path / "summary.csv").exists():
        table = summary_frame(run).to_html(float_format=lambda v: f"{v:.3g}", border=0,
                                           na_rep="")  # p_vs_best of the best cell itself
    img = ""
    hive = final_hive(run)
    if hive is not None:
        data = base64.b64encode(hive.read_bytes()).decode()
        img = (f'<img src="data:image/png;base64,{data}" alt="{html.escape(hive.name)}" '
               'style="max-width:100%">')
    return f"<div>{head}{table}{img}</div>"
