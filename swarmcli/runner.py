"""One run, from a composed config to a finished run directory: Spec -> Plan -> Engine -> Results.

`run(cfg, run_dir)` is a plain function (no Hydra inside), so tests and other tools call it
directly; `swarm run` is a thin Hydra wrapper around it.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from swarmcli import config, grid, lock, memory, nn, plan, results, stats, targets, trainer
from swarmcli.config import SwarmError
from swarmcli.engine import runtime
from swarmcli.objective import RunSummary  # noqa: F401 (runner.RunSummary: where callers look)
from swarmcli.stats import print_table


def manifest(cfg, axes, cells, device: str) -> dict:
    """swarm.json as the run starts (results/schema.py owns its fields)."""
    return results.new_manifest(cfg, axes, cells, device,
                                plan.frames(cfg.train.epochs, cfg.train.stride))


def prepare(cfg):
    """Validate, expand and size a run, building no array: (axes, cells, groups of cells,
    device). A run that would not fit in memory is refused here, before its data exists."""
    if config.task_kind(cfg) == "landscape":
        from swarmcli.landscape import run as landscape_run
        return landscape_run.prepare(cfg)
    if config.task_kind(cfg) == "classification":
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


def run(cfg, run_dir, *, out=sys.stdout, tracker=None) -> RunSummary:
    """Train every cell of `cfg`'s sweep and write the run directory, holding it (lock.py).

    However the run ends, swarm.json says so: `complete` only after the last cell and the
    summary, `interrupted` after Ctrl-C or SIGTERM, `failed` after an error (a full disk
    included, as far as the disk still takes the note). `tracker` (loggers.session) is handed
    each cell once it is saved."""
    if config.task_kind(cfg) == "landscape":
        from swarmcli.landscape import run as landscape_run
        return landscape_run.run(cfg, run_dir, out=out, tracker=tracker)
    if config.task_kind(cfg) == "classification":
        from swarmcli import classify
        return classify.run(cfg, run_dir, out=out, tracker=tracker)
    start = time.perf_counter()
    axes, cells, cell_groups, device = prepare(cfg)
    engine_groups = [plan.cell_group(g) for g in cell_groups]
    tr = cells[0].cfg.train
    n_threads = plan.threads(tr.threads, max(plan.work(g) for g in engine_groups))
    torch.set_num_threads(n_threads)
    axis_names = [a.name for a in axes]
    start_manifest = manifest(cells[0].cfg, axes, cells, device)
    with lock.hold(run_dir), results.RunWriter(Path(run_dir), start_manifest) as writer:
        t = cells[0].cfg.target
        x, y, val = targets.training_data(t)
        tx, ty = targets.dense_curve(t)
        writer.save_arrays(x=x, y=y, val_mask=val, target_x=tx, target_y=ty)
        if (ex := targets.eval_grid(t)) is not None:
            writer.save_arrays(eval_x=ex)
        acts = sorted({c.cfg.model.activation for c in cells})
        writer.save_npz("activations", nn.activation_curves(acts))
        finals, _, diverged = trainer.train_cells(writer, zip(cell_groups, engine_groups),
                                                  axis_names, tracker=tracker)
        table = stats.compare_cells([finals[c.index] for c in cells],
                                    seed=cells[0].cfg.train.seed)
        seconds = writer.complete(table, start)
    print_table(cells, axis_names, finals, table, out)
    if diverged:
        print(f"{diverged} bee(s) diverged (non-finite loss) and were frozen", file=out)
    print(f"trained {sum(g.total_bees for g in engine_groups)} bees x {tr.epochs} epochs in "
          f"{seconds:.2f} s ({device}, {n_threads} thread{'s' * (n_threads > 1)})", file=out)
    return RunSummary(Path(run_dir), finals, diverged, seconds,
                      asdict(cells[0].cfg.objective))

