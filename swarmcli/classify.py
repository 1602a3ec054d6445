"""task.kind=classification: swarms of decision boundaries (seed 003). The same grid, engine,
optimizers and run dir as a regression run; what differs is the data (labelled 2-D points,
datasets.py), the loss (binary cross-entropy on logits) and what is kept: each bee's logit at
every point and on a grid around them, per recorded epoch, from which accuracy follows.

Test points never enter training: the engine trains on the rest (validation points, if any, held
out there as a regression split is) and records logits everywhere, so train, validation and
test accuracy, and the test loss, are computed here from the same recorded frames.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from swarmcli import datasets, grid, lock, memory, nn, plan, results, stats, trainer
from swarmcli.engine import parts, runtime
from swarmcli.errors import SwarmError
from swarmcli.objective import RunSummary

IN_DIM = 2


def prepare(cfg):
    """Validate, expand and size a classification run, building no array: (axes, cells, groups
    of cells, device). One dataset per run: grid.py refuses dataset keys in a sweep (a
    multirun, -m, varies them)."""
    axes, cells = grid.expand(cfg)
    groups = grid.groups(cells)
    try:
        device = runtime.resolve_device(cells[0].cfg.train.device)
    except RuntimeError as e:
        raise SwarmError(str(e)) from None
    d = cfg.dataset
    memory.check(groups, device, points=d.samples, n_eval=d.samples + d.grid**2, in_dim=IN_DIM)
    return axes, cells, groups, device


def engine_data(pts: datasets.Points, batch_size) -> parts.Data:
    """Training sees every point but the test ones (validation points are masked out of its
    loss); logits are recorded at every point, then on the grid."""
    keep = ~pts.test
    val = pts.val[keep]
    return parts.Data(x=pts.x[keep], y=pts.y[keep], val_mask=val if val.any() else None,
                      eval_x=np.concatenate([pts.x, pts.grid_x]), batch_size=batch_size)


def accuracy(logits: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[bees, frames]: the share of the masked points each bee puts on their side (logit > 0
    is class 1)."""
    return ((logits[..., mask] > 0) == (y[mask] > 0.5)).mean(axis=-1)


def bce(logits: np.ndarray, y: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """[bees, frames]: mean binary cross-entropy of the logits on the masked points, in the
    stable form torch uses: max(z, 0) - z y + log(1 + exp(-|z|))."""
    z, t = logits[..., mask].astype(np.float64), y[mask]
    return (np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))).mean(axis=-1)


def cell_scores(logits: np.ndarray, pts: datasets.Points) -> dict[str, np.ndarray]:
    """Accuracy per bee per recorded frame on train (and val) and test points, and the test
    loss, from the logits at the data points (the first len(x) columns of ypred)."""
    at = logits[..., :len(pts.y)]
    out = {"accuracy": accuracy(at, pts.y, pts.train)}
    if pts.val.any():
        out["val_accuracy"] = accuracy(at, pts.y, pts.val)
    if pts.test.any():
        out["test_accuracy"] = accuracy(at, pts.y, pts.test)
        out["test_loss"] = bce(at, pts.y, pts.test)
    return out


def new_manifest(cfg, axes, cells, device, pts: datasets.Points) -> dict:
    m = results.new_manifest(cfg, axes, cells, device,
                             plan.frames(cfg.train.epochs, cfg.train.stride))
    m.update(dataset=asdict(cfg.dataset), extent=list(pts.extent), grid=pts.grid)
    m["record"] = sorted({"ypred", *m["record"]})
    return m


def run(cfg, run_dir, *, out=sys.stdout, tracker=None) -> RunSummary:
    """Train every cell of a classification sweep and write the run dir (as runner.run)."""
    start = time.perf_counter()
    axes, cells, cell_groups, device = prepare(cfg)
    pts = datasets.make(cfg.dataset)
    tr = cells[0].cfg.train
    data = engine_data(pts, tr.batch_size)
    engine_groups = []
    for g in cell_groups:
        group = plan.cell_group(g, data=data, loss="bce", in_dim=IN_DIM)
        rec = group.recording  # the logits are always kept: accuracy is read from them
        engine_groups.append(replace(group, recording=replace(
            rec, what=tuple(dict.fromkeys(("ypred", *rec.what))))))
    n_threads = plan.threads(tr.threads, max(plan.work(g) for g in engine_groups))
    torch.set_num_threads(n_threads)
    axis_names = [a.name for a in axes]
    start_manifest = new_manifest(cells[0].cfg, axes, cells, device, pts)
    with lock.hold(run_dir), results.RunWriter(Path(run_dir), start_manifest) as writer:
        writer.save_arrays(x=pts.x, y=pts.y, test_mask=pts.test, val_mask=pts.val,
                           eval_x=data.eval_x)
        acts = sorted({c.cfg.model.activation for c in cells})
        writer.save_npz("activations", nn.activation_curves(acts))
        finals, test_err, diverged = trainer.train_cells(
            writer, zip(cell_groups, engine_groups), axis_names, tracker=tracker,
            scores=lambda arrays: scores(arrays, pts))
        table = stats.compare_cells([test_err[c.index] for c in cells],
                                    seed=cells[0].cfg.train.seed)
        seconds = writer.complete(table, start)
    print_table(cells, axis_names, test_err, table, bool(pts.test.any()), out)
    if diverged:
        print(f"{diverged} bee(s) diverged (non-finite loss) and were frozen", file=out)
    print(f"trained {sum(g.total_bees for g in engine_groups)} bees x {tr.epochs} epochs in "
          f"{seconds:.2f} s ({device}, {n_threads} thread{'s' * (n_threads > 1)})", file=out)
    return RunSummary(Path(run_dir), finals, diverged, seconds, asdict(cells[0].cfg.objective))


def scores(arrays: dict, pts: datasets.Points) -> tuple[dict, dict, np.ndarray]:
    """For runner.train_cells: a cell's accuracies and test loss per bee and recorded epoch (from
    its recorded logits), summary.csv's final_* columns of them, and what the cells are compared
    on: each bee's test error (training error without test points), a diverged bee's inf."""
    extra = cell_scores(arrays["ypred"], pts)
    columns = {f"final_{name}": a[:, -1] for name, a in extra.items()}
    acc = extra.get("test_accuracy", extra["accuracy"])[:, -1]
    return extra, columns, np.where(np.isfinite(arrays["loss"][:, -1]), 1.0 - acc, np.inf)


def print_table(cells, axis_names, test_err, table, has_test: bool, out) -> None:
    """Per cell: median final test accuracy with its bootstrap 95% CI (statistics of the error
    rate 1 - accuracy, so 'best' is the most accurate cell), the inter-quartile range, and
    whether it can be told apart from the best cell (Mann-Whitney U, Holm)."""
    what = "test" if has_test else "train"
    head = [*(a.rsplit(".", 1)[-1] for a in axis_names), f"median {what} accuracy [95% CI]",
            "IQR", "diverged", "vs best"]
    body = []
    for c in cells:
        err, st = test_err[c.index], table[c.index]
        ok = 1 - err[np.isfinite(err)]
        q1, q3 = np.percentile(ok, [25, 75]) if ok.size else (np.nan,) * 2
        body.append([*(c.labels[a] for a in axis_names),
                     f"{1 - st.median:.3f} [{1 - st.ci_high:.3f}, {1 - st.ci_low:.3f}]",
                     f"{q1:.3f}-{q3:.3f}", f"{(~np.isfinite(err)).sum()}/{err.size}",
                     st.verdict()])
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    for r in [head, *body]:
        print("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip(), file=out)
    print("vs best: two-sided Mann-Whitney U of the error rates against the most accurate cell, "
          "Holm-corrected; tied = cannot be told apart at p < 0.05", file=out)
