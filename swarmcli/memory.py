"""The memory a run will take, known before any of it is allocated.

Every knob that scales memory is counted: target.points and target.eval_points (the data,
activations [bees, width, points], the recorded predictions), model.width and model.depth
(parameters and optimizer state), train.bees, train.epochs (the loss record [bees, epochs + 1])
and what train.record keeps at which stride.
Groups of cells train one after another, so the run needs what its largest group needs. A run over
train.memory_limit_gb (default: half the free memory) is refused with one line saying what to
lower. The counts follow engine.loop.train's allocations and round up (tests/test_stops.py measures
a run's peak against them); nothing here builds an array.
"""

from __future__ import annotations

import os

from swarmcli import grid, nn
from swarmcli.engine.parts import Runtime
from swarmcli.errors import SwarmError

# Float64 arrays of `points` values alive at once while the data is built: x, y, the noise, the
# split's permutation and mask, a formula's temporaries.
DATA_COPIES = 6
# Tensors [bees, width, points] alive at once per hidden layer (pre-activation, activation, their
# gradients) and besides (prediction, residual, loss, derivative temporaries).
ACT_PER_LAYER, ACT_EXTRA = 4, 6
# Parameter-sized buffers per bee on the training device: parameters, gradient, up to three
# optimizer state buffers (RMSprop centred with momentum), two step temporaries.
PARAM_COPIES = 7
ROW_BYTES = 1024  # one summary.csv row (a dict of ~10 values) while the run collects them
# What any run adds on top, whatever its size: torch's kernels on first use, the modules the
# runner imports late, allocator slack (a 2-bee run grows a process by 18-20 MB here).
RUNTIME = 32 << 20
HARMLESS = 64 << 20  # data this small may be built before the full estimate, whatever the budget


def budget(limit_gb: float | None) -> int:
    if limit_gb is not None:
        return int(limit_gb * 2**30)
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


def size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


def frame_count(epochs: int, stride: int) -> int:
    """len(plan.frames(epochs, stride)), without building the list (epochs may be huge)."""
    return epochs // stride + 1 + (epochs % stride != 0)


def check_data(cfg) -> None:
    """Before the config is validated (which evaluates a formula on the points) or any data is
    built: refuse a target.points or target.eval_points, anywhere in the sweep, whose arrays
    alone exceed the budget."""
    allowed = budget(cfg.train.memory_limit_gb)
    axes = grid.axes(cfg)
    for key in ("points", "eval_points"):
        values = [cfg.target[key]]
        for axis in axes:
            values += [v for k, vals in zip(axis.keys, zip(*axis.values)) if k == f"target.{key}"
                       for v in vals]
        n = max((v for v in values if isinstance(v, int)), default=0)
        need = DATA_COPIES * 8 * n
        if need > max(allowed, HARMLESS):  # below that, `check` refuses with the whole picture
            raise SwarmError(f"target.{key}={n} needs {size(need)} for the data alone but "
                             f"{size(allowed)} is allowed (train.memory_limit_gb); lower "
                             f"target.{key}")


def estimate(cells: list[grid.Cell], device: str = "cpu", points: int | None = None,
             n_eval: int | None = None, in_dim: int = 1) -> dict[str, int]:
    """Bytes one group of cells needs, by part: recordings, parameters (and optimizer state,
    and the float64 initial draw), activations, data. `points` and `n_eval` (where predictions
    are recorded) default to the 1-D target's; another task gives its own."""
    c = cells[0].cfg
    t, m, tr = c.target, c.model, c.train
    n_points = t.points if points is None else points
    width = max(cell.cfg.model.width for cell in cells)
    n = len(cells) * tr.bees
    item = 4 if tr.dtype == "float32" else 8
    shapes = nn.layer_shapes(m.depth, width, in_dim)
    per_bee = sum(fi * fo + fo for fi, fo in shapes) + (2 * width * m.depth if m.batch_norm else 0)
    frames = frame_count(tr.epochs, tr.stride)
    if n_eval is None:
        n_eval = t.points + t.eval_points  # targets.eval_grid: at most both grids' points
    per_frame = 0
    if "ypred" in tr.record:
        per_frame += n_eval * (2 if m.dropout else 1)
    if "weights" in tr.record:
        per_frame += sum(fi * fo for fi, fo in shapes)
    if "biases" in tr.record:
        per_frame += sum(fo for _, fo in shapes)
    per_epoch = 1 if t.split.kind == "none" else 2  # loss, and validation loss
    records = n * (item * (per_frame * frames + per_epoch * (tr.epochs + 1)) + 16 + ROW_BYTES)
    per_act = width * n_points * item
    chunk = n if device != "cpu" else max(1, min(n, Runtime.chunk_bytes // max(per_act, 1)))
    # The float64 initial draw of every bee (held through training) and its concatenation,
    # one cell's draw and padding, then the chunk's own buffers.
    params = 8 * per_bee * (2 * n + 3 * tr.bees) + PARAM_COPIES * item * per_bee * chunk
    # training, then (no gradient: half as many tensors) the predictions on the evaluation grid
    acts = chunk * (per_act * (ACT_PER_LAYER * m.depth + ACT_EXTRA) + 3 * 8 * n_points
                    + width * n_eval * item * (ACT_PER_LAYER * m.depth + ACT_EXTRA) // 2)
    return {"recordings": records, "parameters": params, "activations": acts,
            "data": DATA_COPIES * 8 * n_eval * in_dim, "runtime": RUNTIME}


def check(groups: list[list[grid.Cell]], device: str = "cpu", **sizes) -> None:
    """Refuse, before anything is allocated, a run whose largest group exceeds the budget
    (`sizes`: estimate's points, n_eval, in_dim, for a task other than regression)."""
    parts = max((estimate(cells, device, **sizes) for cells in groups),
                key=lambda p: sum(p.values()))
    cfg = groups[0][0].cfg
    need, allowed = sum(parts.values()), budget(cfg.train.memory_limit_gb)
    if need <= allowed:
        return
    tr, m, t = cfg.train, cfg.model, cfg.target
    fixes = {
        "recordings": f"raise train.stride (now {tr.stride}), record fewer fields "
                      f"(train.record={list(tr.record)}), lower train.epochs (now {tr.epochs}) "
                      f"or train.bees (now {tr.bees})",
        "parameters": f"lower model.width (now {m.width}), model.depth (now {m.depth}) or "
                      f"train.bees (now {tr.bees})",
        "activations": f"lower target.points (now {t.points}), target.eval_points (now "
                       f"{t.eval_points}) or model.width (now {m.width})",
        "data": f"lower target.points (now {t.points}) or target.eval_points (now "
                f"{t.eval_points})",
    }
    if cfg.task.kind == "classification":
        d = cfg.dataset
        fixes["activations"] = (f"lower dataset.samples (now {d.samples}), dataset.grid (now "
                                f"{d.grid}) or model.width (now {m.width})")
        fixes["data"] = f"lower dataset.samples (now {d.samples}) or dataset.grid (now {d.grid})"
    # what the knobs can change, largest first; parts under 1% of it are left out
    order = sorted((p for p in parts if p != "runtime"), key=parts.get, reverse=True)
    own = need - parts["runtime"]
    raise SwarmError(
        f"training needs about {size(need)} but {size(allowed)} is allowed "
        f"(train.memory_limit_gb): " + "; ".join(f"{p} {size(parts[p])}: {fixes[p]}"
                                                 for p in order if parts[p] * 100 >= own))
