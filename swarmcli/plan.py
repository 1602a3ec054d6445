"""From validated cells to the engine's input, in one place: each group of cells (grid.groups)
becomes one `engine.parts.CellGroup`, and the run-wide choices that follow from its size
(compile, threads) are made here. The way back, a group's result cut into cells, lives here too.
"""

from __future__ import annotations

import os
from dataclasses import replace

from swarmcli import config, grid, optim, schedules, targets
from swarmcli.engine import native, parts
from swarmcli.engine.loop import GroupResult
from swarmcli.errors import SwarmError

# Above this many bee-unit-point-epochs (eager: ~30 s here, compiled ~2.4x faster) compiling
# pays for itself: ~30 s the first time, a few seconds once Inductor's on-disk cache holds the
# kernels.
COMPILE_WORK = 2e10

# Below this much work per epoch (bees x width x points x depth, over a group) one intra-op
# thread is fastest: more threads only add overhead. benchmarks/threads.py on the 2-core
# development machine (shared, load 6-8): 2 threads took 2-7x longer than 1 at every size from
# 6e3 to 1e8, so only groups beyond that get every core; re-measure on a machine of your own.
THREADS_WORK = 1e8


def frames(epochs: int, stride: int) -> list[int]:
    """Recorded epochs: every `stride`-th from 0, and always the last."""
    f = list(range(0, epochs + 1, stride))
    return f if f[-1] == epochs else f + [epochs]


def cell_group(cells: list[grid.Cell], data: parts.Data | None = None,
               loss: str | None = None, in_dim: int = 1) -> parts.CellGroup:
    """The engine's input for cells that train together (they share every config key but
    grid.PER_CELL). Another task passes its own `data`, `loss` kind and `in_dim`; by default
    the 1-D target's."""
    c0 = cells[0].cfg
    t, m, o, tr = c0.target, c0.model, c0.optim, c0.train
    if data is None:
        x, y, val = targets.training_data(t)
        data = parts.Data(x=x, y=y, val_mask=val if val.any() else None,
                          eval_x=targets.eval_grid(t), batch_size=tr.batch_size)
    group = parts.CellGroup(
        network=parts.Network(
            depth=m.depth, widths=tuple(c.cfg.model.width for c in cells),
            activations=tuple(c.cfg.model.activation for c in cells), init=m.init,
            init_std=m.init_std, init_bounds=tuple(m.init_bounds), leaky_slope=m.leaky_slope,
            dropout=m.dropout, batch_norm=m.batch_norm, in_dim=in_dim),
        data=data,
        optimizer=parts.Optimizer(
            name=o.name, hyper=optim.hyper_parameters(o.name, [c.cfg.optim for c in cells]),
            flags=optim.flags(o.name, o),
            schedule=parts.Schedule(c0.schedule.name, schedules.resolve(
                c0.schedule.name, config.schedule_params(c0), tr.epochs))),
        bees=tr.bees, epochs=tr.epochs, seed=tr.seed,
        loss=parts.Loss(loss or tr.loss, tr.huber_delta, tr.l1, tr.l2),
        stopping=parts.Stopping(tr.patience, tr.min_delta),
        recording=parts.Recording(tuple(tr.record), tuple(frames(tr.epochs, tr.stride))),
        runtime=parts.Runtime(device=tr.device, dtype=tr.dtype))
    native_on = use_native(tr.native, group)
    compile_on = not native_on and use_compile(tr.compile, work(group) * group.epochs)
    return replace(group, runtime=replace(group.runtime, compile=compile_on, native=native_on))


def work(group: parts.CellGroup) -> float:
    """Bee-unit-points of one epoch's forward pass: what the per-epoch cost scales with."""
    net = group.network
    return group.total_bees * net.width * len(group.data.x) * net.depth


def use_native(setting: str, group: parts.CellGroup) -> bool:
    """The C kernel where it covers the group (`auto`), insisted on (`on`: a group it cannot
    train is refused before anything trains), or never (`off`)."""
    if setting == "off":
        return False
    why = native.unsupported(group)
    if why and setting == "on":
        raise SwarmError(f"train.native=on cannot train this run: {why} (choices: auto, off)")
    return why is None


def use_compile(setting: str, work: float) -> bool:
    return setting == "on" or (setting == "auto" and work >= COMPILE_WORK)


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


def cell_arrays(group: parts.CellGroup, res: GroupResult, k: int, width: int) -> dict:
    """Cell k's slice of a group's result, with padded hidden units cut back to the cell's
    width."""
    s = slice(k * group.bees, (k + 1) * group.bees)
    out = {"loss": res.loss[s], "diverged_epoch": res.diverged_epoch[s],
           "stopped_epoch": res.stopped_epoch[s]}
    for name in ("val_loss", "ypred", "ypred_train"):
        if getattr(res, name) is not None:
            out[name] = getattr(res, name)[s]
    last = group.network.depth
    for i, (w, b) in enumerate(zip(res.weights or [None] * (last + 1),
                                   res.biases or [None] * (last + 1))):
        fi = group.network.in_dim if i == 0 else width
        fo = 1 if i == last else width
        if w is not None:
            out[f"weights_{i}"] = w[s, :, :fi, :fo]
        if b is not None:
            out[f"biases_{i}"] = b[s, :, :fo]
    return out
