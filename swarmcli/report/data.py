"""A saved run as the plain numbers its report page draws: numpy and the run-dir readers only.

The page is one file people send on, so what it holds is budgeted, and the budget is said on the
page: each cell shows at most MAX_BEES bees' curves (bee i is the same network in every cell
and in every plot), and predictions are kept at most MAX_POINTS x-values and as many recorded
frames as fit MAX_VALUES numbers over all cells (first and last frame always); loss curves keep
at most MAX_EPOCHS epochs and MAX_LOSS_VALUES numbers over all cells. Loss bands, the summary
table and the final-loss distribution use every bee. A sweep of many cells first shows fewer bees
(down to 10) to keep MIN_FRAMES frames, then fewer frames (two at worst: first and last), then
fewer bees: never a bigger page. Predictions travel as uint16 over
each cell's own range (resolution range / 65534, far below a pixel), base64 in the page: 2.7
bytes a number, so the page is about 0.3 MB + 2.7 x min(MAX_VALUES, cells x bees x frames x
points) bytes + ~1 MB of loss curves at most (measured: width_activation 2.82 MB, 9 cells x 10
bees, 86 of 151 frames kept; weight_distribution 2.85 MB, 50 of 500 bees, 156 of 401 frames).
"""

from __future__ import annotations

import math
import shlex
import warnings
from pathlib import Path

import numpy as np

from swarmcli import results
from swarmcli.report import tasks
from swarmcli.report.numbers import (
    KINK_BINS,
    MAX_EPOCHS,
    MAX_LOSS_VALUES,
    pack16,
    plan_sizes,
    sig,
    spread,
)
from swarmcli.results.summary import read_summary


def cell_title(axes: list[dict], labels: dict) -> str:
    parts = []
    for a in axes:
        v = str(labels[a["name"]])
        parts.append(v if "=" in v else f"{a['name'].rsplit('.', 1)[-1]}={v}")
    return ", ".join(parts) or "swarm"


def _diverged_mask(cell, epochs: np.ndarray) -> np.ndarray:
    """[bees, len(epochs)]: the bee had gone non-finite at or before that epoch."""
    d = np.asarray(cell.diverged_epoch)[:, None]
    return (d >= 0) & (d <= epochs[None, :])


def _bands(loss: np.ndarray, keep: np.ndarray) -> dict:
    """Per kept epoch the 25/50/75 % quantiles over every bee (a diverged bee is left out)."""
    a = np.where(np.isfinite(loss[:, keep]), loss[:, keep], np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an epoch where every bee diverged
        q = np.nanquantile(a, [0.25, 0.5, 0.75], axis=0)
    return {"q25": sig(q[0]), "q50": sig(q[1]), "q75": sig(q[2])}


def kink_counts(run, cell, frames: np.ndarray, edges: np.ndarray) -> list[list[int]]:
    """Per kept frame, how many first-layer kinks (x = -b/w) fall in each bin of the domain."""
    w, b = np.asarray(cell.weights(0)), np.asarray(cell.biases(0))
    out = []
    for f in frames:
        with np.errstate(divide="ignore", invalid="ignore"):
            k = -b[:, f, :] / w[:, f, 0, :]
        k = k[~_diverged_mask(cell, run.frames[[f]])[:, 0]]
        out.append(np.histogram(k[np.isfinite(k)], edges)[0].tolist())
    return out


def turning_points(tx: np.ndarray, ty: np.ndarray) -> np.ndarray:
    """x where the target's slope changes sign: where a kink helps most."""
    s = np.sign(np.diff(ty))
    nz = np.flatnonzero(s)
    return tx[nz[1:][s[nz[1:]] != s[nz[:-1]]]]


def table_measure(run_dir: Path) -> str:
    """The per-bee number summary.csv's cell medians are of (runner and classify decide)."""
    extra = read_summary(run_dir)[2]
    return ("test error" if "final_test_accuracy" in extra else
            "training error" if "final_accuracy" in extra else "final loss")


def _table_rows(run_dir: Path, axis_names: list[str]) -> list[dict]:
    """summary.csv per cell: median [CI], IQR, diverged, stopped, verdict vs the best cell."""
    rows, _, extra = read_summary(run_dir)
    cells: dict[int, list[dict]] = {}
    for r in rows:
        cells.setdefault(r["cell"], []).append(r)
    # what the cells were compared on: a classification run's test (else training) error
    acc = next((k for k in ("final_test_accuracy", "final_accuracy") if k in extra), None)
    out = []
    for index, bees in sorted(cells.items()):
        first = bees[0]
        final = np.array([(1 - r[acc] if acc else r["final_loss"]) if not r["diverged"]
                          else np.inf for r in bees])
        fin = final[np.isfinite(final)]
        q25, q75 = (np.quantile(fin, [0.25, 0.75]) if fin.size else (math.nan, math.nan))
        p = first.get("p_vs_best", math.nan)
        p = p if isinstance(p, float) else math.nan
        verdict = "best" if math.isnan(p) else ("tied" if first.get("tied_with_best") is True
                                                 else "worse") + f" (p={p:.2g})"
        out.append({
            "cell": index, "labels": {a: first[a] for a in axis_names},
            "median": first.get("cell_median", float(np.median(final))),
            "ci": [first.get("cell_median_ci_low"), first.get("cell_median_ci_high")],
            "iqr": [float(q25), float(q75)],
            "diverged": int(sum(r["diverged"] for r in bees)), "bees": len(bees),
            "stopped": int(sum(r.get("stopped_epoch", -1) >= 0 for r in bees))
            if "stopped_epoch" in extra else None,
            "verdict": verdict, "p": None if math.isnan(p) else p})
    return out


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except (OSError, UnicodeError):
        return ""


def reproduce_command(run_dir: Path) -> str:
    """`swarm run OVERRIDES` from the run's own .hydra/overrides.yaml (the lines Hydra saved)."""
    import yaml

    try:
        overrides = yaml.safe_load((run_dir / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, yaml.YAMLError):
        overrides = None
    if not isinstance(overrides, list):  # no .hydra/ (a run made in Python): rerun only
        return ""
    return shlex.join(["swarm", "run", *map(str, overrides)])


def run_payload(run_dir) -> dict:
    """Everything the run page draws, as JSON-ready plain data."""
    run_dir = Path(run_dir)
    run = results.load_checked(run_dir)
    m = run.manifest
    axes = [{"name": a["name"], "labels": a["labels"]} for a in run.axes]
    cells = run.cells
    # the hive, kinks and data panels are a 1-D regression's; a landscape or classification run
    # gets its own view (tasks.py: paths, boundaries) besides the summary, loss bands, final
    # losses and its rendered figures
    curve = run.task == "regression" and bool(cells)
    has_ypred = curve and "ypred" in m["record"]
    x = (run.eval_x if has_ypred else run.x) if curve else np.zeros(0)
    order = np.argsort(x, kind="stable")
    bees_max = max((c.info["bees"] for c in cells), default=0)
    nb, nf, npts = plan_sizes(len(cells), bees_max, len(run.frames), len(x))
    frames = spread(len(run.frames), nf)

    task_view, task_frames = tasks.view(run) if not curve else (None, None)
    if task_frames is not None:  # the slider steps through the frames the view keeps
        frames = task_frames
    pts = order[spread(len(order), npts)]
    curves = max(1, len(cells) * min(nb, bees_max) * (2 if any(c.has("val_loss") for c in cells)
                                                       else 1))
    keep_ep = spread(run.epochs + 1, min(MAX_EPOCHS + 1, max(2, MAX_LOSS_VALUES // curves)))
    val_mask = (np.load(run_dir / "val_mask.npy").astype(bool).tolist()
                if curve and (run_dir / "val_mask.npy").exists() else [False] * len(x))
    has_kinks = curve and all(c.has("weights_0") and c.has("biases_0") for c in cells)
    edges = np.linspace(float(run.x.min()), float(run.x.max()), KINK_BINS + 1) \
        if curve else np.zeros(2)
    out_cells = []
    for c in cells:
        loss = np.asarray(c.loss, dtype=np.float64)
        shown = np.arange(min(nb, c.info["bees"]))
        cell = {"index": c.index, "title": cell_title(axes, c.labels),
                "position": c.info["position"], "bees": c.info["bees"], "shown": len(shown),
                "loss": [sig(loss[b, keep_ep]) for b in shown], "bands": _bands(loss, keep_ep),
                "final": sig(np.where(np.isfinite(loss[:, -1]), loss[:, -1], np.inf)),
                "diverged": int((np.asarray(c.diverged_epoch) >= 0).sum())}
        if c.has("val_loss"):
            val = np.asarray(c.array("val_loss"), dtype=np.float64)
            cell["val_bands"] = _bands(val, keep_ep)
            cell["val_loss"] = [sig(val[b, keep_ep]) for b in shown]
        if has_ypred:
            y = np.array(c.ypred[shown][:, frames][:, :, pts], dtype=np.float64)  # [b, f, p]
            y[_diverged_mask(c, run.frames[frames])[shown]] = np.nan
            cell["ypred"] = pack16(np.transpose(y, (1, 0, 2)))  # [frame, bee, point]
        if has_kinks:
            cell["kinks"] = kink_counts(run, c, frames, edges)
        out_cells.append(cell)
    y_all = np.concatenate([run.y, run.load("target_y")]) if curve else np.zeros(1)
    lo, hi = float(y_all.min()), float(y_all.max())
    pad = 0.35 * (hi - lo or 1.0)
    return {
        "kind": "run", "task": run.task, "name": run_dir.name, "path": str(run_dir.resolve()),
        "state": run.state, "sweep": m.get("sweep") or "", "lesson": m.get("lesson") or "",
        "epochs": run.epochs, "command": reproduce_command(run_dir),
        "rerun": f"swarm rerun {shlex.quote(str(run_dir))}",
        "config": _text(run_dir / ".hydra" / "config.yaml"),
        "axes": axes, "grid": _grid(axes, len(cells)),
        "frames": [int(run.frames[f]) for f in frames], "recorded_frames": len(run.frames),
        "loss_epochs": keep_ep.tolist(),
        "x": sig(x[pts], 6), "train_x": sig(run.x, 6) if curve else [],
        "train_y": sig(run.y, 6) if curve else [],
        "val_mask": val_mask,
        "target_x": sig(run.load("target_x"), 5) if curve else [],
        "target_y": sig(run.load("target_y"), 5) if curve else [],
        "ylim": [lo - pad, hi + pad], "kink_edges": sig(edges, 6) if has_kinks else None,
        "turning_points": sig(turning_points(run.load("target_x"), run.load("target_y")), 5)
        if has_kinks else [],
        "budget": {"bees": nb, "frames": len(frames), "points": len(pts),
                   "bees_total": bees_max, "points_total": int(len(x))},
        "cells": out_cells, "table": _table_rows(run_dir, [a["name"] for a in axes])
        if (run_dir / "summary.csv").exists() else [],
        "measure": table_measure(run_dir) if (run_dir / "summary.csv").exists() else "",
        "figures": figures(run_dir), "view": task_view,
    }


def _grid(axes: list[dict], n: int) -> dict:
    """Panels' rows x columns: first axis rows, second columns; one axis wraps near-square."""
    if len(axes) == 2:  # (three or more axes: the cells wrap, each titled with every value)
        return {"rows": len(axes[0]["labels"]), "cols": len(axes[1]["labels"]), "by": "axes"}
    cols = max(1, math.ceil(math.sqrt(n)))
    return {"rows": math.ceil(n / cols), "cols": cols, "by": "index"}


FIGURE_TYPES = {".png": "image", ".gif": "image", ".mp4": "video"}


def figures(run_dir: Path) -> list[dict]:
    """The stills and videos already rendered, linked from the folder beside the page."""
    d = Path(run_dir) / "figures"
    if not d.is_dir():
        return []
    return [{"src": f"figures/{p.name}", "kind": FIGURE_TYPES[p.suffix], "name": p.name}
            for p in sorted(d.iterdir()) if p.suffix in FIGURE_TYPES]
