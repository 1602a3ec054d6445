"""One landscape run (task=landscape), from a composed config to a finished run directory,
through the same sweep expansion (grid.py), run-dir format (results/), statistics and terminal
table as a net run, so `swarm run`, `swarm rerun`, multiruns, the objective and `swarm collect`
work unchanged. `runner.run` hands a landscape config here.

Each cell keeps its own landscape beside its paths (a sweep may vary the surface or its data):
```
cells/NNN/loss.npy            [bees, epochs + 1]   loss after e steps
cells/NNN/position.npy        [bees, frames, dims] each particle's point at each recorded epoch
cells/NNN/diverged_epoch.npy, stopped_epoch.npy    as for nets (never stopped early: -1)
cells/NNN/surface_x.npy (, surface_y.npy), surface_z.npy   the drawn loss: [points] and
                              [points] or [points, points] (rows: y)
cells/NNN/minima.npy          [k, dims] known minima (mean: the empirical mean; line: least
                              squares; your own expr: the lowest point drawn)
cells/NNN/samples_x.npy (, samples_y.npy)   the data of `mean` and `line`
```
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from swarmcli import grid, lock, memory, optim, plan, results, schedules, stats
from swarmcli.config import SwarmError, schedule_params
from swarmcli.engine import parts, runtime
from swarmcli.landscape import particles, surfaces
from swarmcli.objective import RunSummary
from swarmcli.stats import print_table


def prepare(cfg):
    """Validate, expand and size a landscape run before anything is built: (axes, cells, groups,
    device)."""
    axes, cells = grid.expand(cfg)
    groups = grid.groups(cells)
    tr, s = cells[0].cfg.train, cells[0].cfg.surface
    try:
        device = runtime.resolve_device(tr.device)
    except RuntimeError as e:
        raise SwarmError(str(e)) from None
    frames = memory.frame_count(tr.epochs, tr.stride)
    per_bee = 8 * ((tr.epochs + 1) + 2 * frames + 16)  # loss, positions, optimizer state
    need = len(cells) * tr.bees * per_bee + len(cells) * 3 * 8 * s.grid ** 2
    allowed = memory.budget(tr.memory_limit_gb)
    if need > allowed:
        raise SwarmError(f"this landscape run needs ~{memory.size(need)}, more than the "
                         f"{memory.size(allowed)} allowed (train.memory_limit_gb); lower "
                         f"train.bees (now {tr.bees}), train.epochs (now {tr.epochs}; or raise "
                         f"train.stride) or surface.grid (now {s.grid})")
    return axes, cells, groups, device


def cell_landscape(cell) -> tuple[surfaces.Landscape, dict]:
    """A cell's landscape and the arrays that draw it."""
    land = surfaces.resolve(cell.cfg.surface, cell.cfg.train.bees)
    mesh = land.mesh(cell.cfg.surface.grid)
    arrays = {"surface_x": mesh[0][0] if land.dims == 2 else mesh[0], "surface_z": mesh[-1],
              "minima": land.minima}
    if land.dims == 2:
        arrays["surface_y"] = mesh[1][:, 0]
    arrays |= {f"samples_{k}": v for k, v in land.samples.items()}
    return land, arrays


def run(cfg, run_dir, *, out=sys.stdout, tracker=None) -> RunSummary:
    """Move every cell's particles and write the run directory (held by lock.py); swarm.json
    says how the run ended, as for nets."""
    start = time.perf_counter()
    axes, cells, cell_groups, device = prepare(cfg)
    c0 = cells[0].cfg
    tr = c0.train
    torch.set_num_threads(plan.threads(tr.threads, 0))
    axis_names = [a.name for a in axes]
    frames = plan.frames(tr.epochs, tr.stride)
    finals, diverged = {}, 0
    manifest = results.new_manifest(c0, axes, cells, device, frames)
    manifest |= {"record": ["position"], "surface": asdict(c0.surface)}
    with lock.hold(run_dir), results.RunWriter(Path(run_dir), manifest) as writer:
        for group in cell_groups:
            g0 = group[0].cfg
            land, drawn = cell_landscape(group[0])
            start_pts = particles.starts(land, tr.bees, g0.surface.spread, tr.seed)
            o = g0.optim
            hyper = {k: v.repeat_interleave(tr.bees) for k, v in
                     optim.hyper_parameters(o.name, [c.cfg.optim for c in group]).items()}
            sched = parts.Schedule(g0.schedule.name, schedules.resolve(
                g0.schedule.name, schedule_params(g0), tr.epochs))
            res = particles.descend(
                particles.loss_function(land, getattr(torch, tr.dtype), device, len(group)),
                np.tile(start_pts, (len(group), 1)), o.name, hyper,
                optim.flags(o.name, o), sched, tr.epochs, frames, tr.dtype, device)
            for k, cell in enumerate(group):
                s = slice(k * tr.bees, (k + 1) * tr.bees)
                arrays = {"loss": res.loss[s], "position": res.position[s],
                          "diverged_epoch": res.diverged_epoch[s],
                          "stopped_epoch": np.full(tr.bees, -1, dtype=np.int64), **drawn}
                n_div = int((arrays["diverged_epoch"] >= 0).sum())
                diverged += n_div
                finals[cell.index] = arrays["loss"][:, -1].copy()
                writer.save_cell(cell.index, arrays, {
                    "diverged": n_div, "dims": land.dims, "surface": land.name,
                    "expr": land.expr, "start": land.start.tolist(), **land.info})
                if tracker is not None:  # logger=...: the cell's loss statistics
                    tracker.cell(cell, arrays)
                writer.rows += results.summary_rows(axis_names, cell.labels, cell.index,
                                                    arrays)
            writer.claim_saved()
        table = stats.compare_cells([finals[c.index] for c in cells], seed=tr.seed)
        seconds = writer.complete(table, start)
    print_table(cells, axis_names, finals, table, out)
    if diverged:
        print(f"{diverged} particle(s) diverged (non-finite loss) and were frozen", file=out)
    print(f"moved {len(cells) * tr.bees} particles x {tr.epochs} steps in {seconds:.2f} s "
          f"({device})", file=out)
    return RunSummary(Path(run_dir), finals, diverged, seconds, asdict(c0.objective))
