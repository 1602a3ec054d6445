"""One run, from a composed config to a finished run directory: Spec -> Plan -> Engine -> Results.

`run(cfg, run_dir)` is a plain function (no Hydra inside), so tests and other tools call it
directly; `swarm run` is a thin Hydra wrapper around it.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from swarmcli import (
    config,
    engine,
    grid,
    lock,
    memory,
    nn,
    objective,
    optim,
    results,
    schedules,
    stats,
    stops,
    targets,
)
from swarmcli.config import SwarmError


@dataclass
class RunSummary:
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
        return objective.objective(finals, **self.objective_cfg)


def frames(epochs: int, stride: int) -> list[int]:
    """Recorded epochs: every `stride`-th from 0, and always the last."""
    f = list(range(0, epochs + 1, stride))
    return f if f[-1] == epochs else f + [epochs]


def make_batch(cells: list[grid.Cell]) -> engine.Batch:
    c0 = cells[0].cfg
    t, m, o, tr, sc = c0.target, c0.model, c0.optim, c0.train, c0.schedule
    x, y, val = targets.training_data(t)
    hyper = optim.hyper_parameters(o.name, [c.cfg.optim for c in cells])
    flags = optim.flags(o.name, o)
    sched = schedules.resolve(sc.name, config.schedule_params(c0), tr.epochs)
    return engine.Batch(
        depth=m.depth, widths=[c.cfg.model.width for c in cells], bees=tr.bees,
        activation=[c.cfg.model.activation for c in cells], optimizer=o.name, hyper=hyper,
        x=x, y=y, epochs=tr.epochs, seed=tr.seed, init=m.init, init_std=m.init_std,
        init_bounds=tuple(m.init_bounds),
        leaky_slope=m.leaky_slope, flags=flags, schedule=sc.name, schedule_params=sched,
        loss=tr.loss, huber_delta=tr.huber_delta, l1=tr.l1, l2=tr.l2, dropout=m.dropout,
        batch_norm=m.batch_norm, batch_size=tr.batch_size,
        val_mask=val if val.any() else None, patience=tr.patience, min_delta=tr.min_delta,
        record=tuple(tr.record), frames=frames(tr.epochs, tr.stride),
        eval_x=targets.eval_grid(t), device=tr.device,
        dtype=tr.dtype, compile=use_compile(tr.compile, len(cells) * tr.bees * len(x)
                                            * m.width * m.depth * tr.epochs))


# Above this many bee-unit-point-epochs (eager: ~30 s here, compiled ~2.4x faster) compiling
# pays for itself: ~30 s the first time, a few seconds once Inductor's on-disk cache holds the
# kernels.
COMPILE_WORK = 2e10


def use_compile(setting: str, work: float) -> bool:
    return setting == "on" or (setting == "auto" and work >= COMPILE_WORK)


# Below this much work per epoch (bees x width x points x depth, over a batch) one intra-op
# thread is fastest: more threads only add overhead. benchmarks/threads.py on the 2-core
# development machine (shared, load 6-8): 2 threads took 2-7x longer than 1 at every size from
# 6e3 to 1e8, so only batches beyond that get every core; re-measure on a machine of your own.
THREADS_WORK = 1e8


def threads(setting, work: float) -> int:
    """torch's intra-op threads for a run: the integer given, or for `auto` one thread below
    THREADS_WORK and every usable core (at most OMP_NUM_THREADS, when set) from there on."""
    if setting != "auto":
        return int(setting)
    if work < THREADS_WORK:
        return 1
    cores = len(os.sched_getaffinity(0))
    omp = os.environ.get("OMP_NUM_THREADS", "")
    return min(cores, int(omp)) if omp.isdigit() and int(omp) > 0 else cores


def cell_arrays(batch: engine.Batch, res: engine.BatchResult, k: int, width: int) -> dict:
    """Cell k's slice of a batch result, with padded hidden units cut back to the cell's width."""
    s = slice(k * batch.bees, (k + 1) * batch.bees)
    out = {"loss": res.loss[s], "diverged_epoch": res.diverged_epoch[s],
           "stopped_epoch": res.stopped_epoch[s]}
    for name in ("val_loss", "ypred", "ypred_train"):
        if getattr(res, name) is not None:
            out[name] = getattr(res, name)[s]
    last = batch.depth
    for i, (w, b) in enumerate(zip(res.weights or [None] * (last + 1),
                                   res.biases or [None] * (last + 1))):
        fi = 1 if i == 0 else width
        fo = 1 if i == last else width
        if w is not None:
            out[f"weights_{i}"] = w[s, :, :fi, :fo]
        if b is not None:
            out[f"biases_{i}"] = b[s, :, :fo]
    return out


def manifest(cfg, axes, cells, device: str) -> dict:
    """swarm.json as the run starts (results/schema.py owns its fields)."""
    return results.new_manifest(cfg, axes, cells, device, frames(cfg.train.epochs,
                                                                 cfg.train.stride))


def prepare(cfg):
    """Validate, expand and size a run, building no array: (axes, cells, plan, device). A run
    that would not fit in memory is refused here, before its data exists."""
    memory.check_data(cfg)
    axes, cells = grid.expand(cfg)
    plan = grid.batches(cells)
    try:
        device = engine.resolve_device(cells[0].cfg.train.device)
    except RuntimeError as e:
        raise SwarmError(str(e)) from None
    memory.check(plan, device)
    return axes, cells, plan, device


def run(cfg, run_dir, *, gradient: str = "fused", out=sys.stdout) -> RunSummary:
    """Train every cell of `cfg`'s sweep and write the run directory, holding it (lock.py).

    However the run ends, swarm.json says so: `complete` only after the last cell and the
    summary, `interrupted` after Ctrl-C or SIGTERM, `failed` after an error (a full disk
    included, as far as the disk still takes the note)."""
    from tqdm import tqdm

    start = time.perf_counter()
    axes, cells, plan, device = prepare(cfg)
    batch_list = [make_batch(b) for b in plan]
    tr = cells[0].cfg.train
    n_threads = threads(tr.threads, max(b.total_bees * b.width * len(b.x) * b.depth
                                        for b in batch_list))
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

            total = sum(b.total_bees * b.epochs for b in batch_list)
            show = cells[0].cfg.progress and sys.stderr.isatty()
            with tqdm(total=total, disable=not show, unit="bee-epoch", unit_scale=True,
                      desc="training", leave=False) as bar:
                for cells_in_batch, batch in zip(plan, batch_list):
                    res = engine.train(batch, gradient=gradient, on_epochs=bar.update)
                    for k, cell in enumerate(cells_in_batch):
                        arrays = cell_arrays(batch, res, k, cell.cfg.model.width)
                        n_div = int((arrays["diverged_epoch"] >= 0).sum())
                        diverged += n_div
                        finals[cell.index] = arrays["loss"][:, -1].copy()
                        writer.save_cell(cell.index, arrays, {"diverged": n_div})
                        rows += results.summary_rows(axis_names, cell.labels, cell.index, arrays)
                    del res, arrays  # the next batch's recordings take their place (memory.py)
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
    print(f"trained {sum(b.total_bees for b in batch_list)} bees x {tr.epochs} epochs in "
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
