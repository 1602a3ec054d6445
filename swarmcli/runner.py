"""One run, from a composed config to a finished run directory: Spec -> Plan -> Engine -> Results.

`run(cfg, run_dir)` is a plain function (no Hydra inside), so tests and other tools call it
directly; `swarm run` is a thin Hydra wrapper around it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from swarmcli import grid, lock, memory, nn, plan, results, stats, stops, targets
from swarmcli.config import SwarmError
from swarmcli.engine import loop, runtime
from swarmcli.objective import RunSummary


def manifest(cfg, axes, cells, device: str) -> dict:
    """swarm.json as the run starts (results/schema.py owns its fields)."""
    return results.new_manifest(cfg, axes, cells, device,
                                plan.frames(cfg.train.epochs, cfg.train.stride))


def prepare(cfg):
    """Validate, expand and size a run, building no array: (axes, cells, groups of cells,
    device). A run that would not fit in memory is refused here, before its data exists."""
    if cfg.task.kind == "classification":
        from swarmcli import classify
        return classify.prepare(cfg)
    memory.check_data(cfg)
    axes, cells = grid.expand(cfg)
    groups = grid.groups(cells)
    try:
        device = runtime.resolve_device(cells[0].cfg.train.device)
    except RuntimeError as e:
        raise SwarmError(str(e)) from None
    memory.check(groups, device)
    return axes, cells, groups, device


def run(cfg, run_dir, *, out=sys.stdout) -> RunSummary:
    """Train every cell of `cfg`'s sweep and write the run directory, holding it (lock.py).

    However the run ends, swarm.json says so: `complete` only after the last cell and the
    summary, `interrupted` after Ctrl-C or SIGTERM, `failed` after an error (a full disk
    included, as far as the disk still takes the note)."""
    if cfg.task.kind == "classification":
        from swarmcli import classify
        return classify.run(cfg, run_dir, out=out)
    from tqdm import tqdm

    start = time.perf_counter()
    axes, cells, cell_groups, device = prepare(cfg)
    engine_groups = [plan.cell_group(g) for g in cell_groups]
    tr = cells[0].cfg.train
    n_threads = plan.threads(tr.threads, max(plan.work(g) for g in engine_groups))
    torch.set_num_threads(n_threads)
    axis_names = [a.name for a in axes]
    rows, finals, diverged = [], {}, 0
    writer = None
    with lock.hold(run_dir):
        try:
            writer = results.RunWriter(Path(run_dir), manifest(cells[0].cfg, axes, cells, device))
            t = cells[0].cfg.target
            x, y, val = targets.training_data(t)
            tx, ty = targets.dense_curve(t)
            writer.save_arrays(x=x, y=y, val_mask=val, target_x=tx, target_y=ty)
            if (ex := targets.eval_grid(t)) is not None:
                writer.save_arrays(eval_x=ex)
            acts = sorted({c.cfg.model.activation for c in cells})
            writer.save_npz("activations", nn.activation_curves(acts))

            total = sum(g.total_bees * g.epochs for g in engine_groups)
            show = cells[0].cfg.progress and sys.stderr.isatty()
            with tqdm(total=total, disable=not show, unit="bee-epoch", unit_scale=True,
                      desc="training", leave=False) as bar:
                for cells_of_group, group in zip(cell_groups, engine_groups):
                    res = loop.train(group, on_epochs=bar.update)
                    for k, cell in enumerate(cells_of_group):
                        arrays = plan.cell_arrays(group, res, k, cell.cfg.model.width)
                        n_div = int((arrays["diverged_epoch"] >= 0).sum())
                        diverged += n_div
                        finals[cell.index] = arrays["loss"][:, -1].copy()
                        writer.save_cell(cell.index, arrays, {"diverged": n_div})
                        rows += results.summary_rows(axis_names, cell.labels, cell.index, arrays)
                    del res, arrays  # the next group's recordings take their place (memory.py)
            table = stats.compare_cells([finals[c.index] for c in cells],
                                        seed=cells[0].cfg.train.seed)
            for r in rows:
                r.update(table[r["cell"]].columns())
            writer.save_summary(sorted(rows, key=lambda r: (r["cell"], r["bee"])))
            seconds = time.perf_counter() - start
            writer.manifest["train_seconds"] = seconds
            writer.set_state("complete")
        except BaseException as e:
            if writer is not None:
                state = "interrupted" if stops.interrupted_by(e) else "failed"
                writer.stop(state, sorted(rows, key=lambda r: (r["cell"], r["bee"])))
            raise
    print_table(cells, axis_names, finals, table, out)
    if diverged:
        print(f"{diverged} bee(s) diverged (non-finite loss) and were frozen", file=out)
    print(f"trained {sum(g.total_bees for g in engine_groups)} bees x {tr.epochs} epochs in "
          f"{seconds:.2f} s ({device}, {n_threads} thread{'s' * (n_threads > 1)})", file=out)
    return RunSummary(Path(run_dir), finals, diverged, seconds,
                      asdict(cells[0].cfg.objective))


def print_table(cells, axis_names, finals, table: list[stats.CellStats], out) -> None:
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
