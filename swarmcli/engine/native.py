"""The native path: a group the C kernel covers (plain MLP, full batch, SGD / Adam / AdamW, no
early stopping, on the CPU) trains in `_kernel.c` instead of the torch loop.

This module turns a `CellGroup` into the kernel's plain arrays: the data as [in_dim, points]
rows, each bee's activation code and real width, its hyper-parameters in the run's dtype, and
each step's optimizer coefficients worked out in Python floats exactly as `optim` works them
out, once per distinct combination of hyper-parameters (so 100,000 bees of one cell need one
table row per step, not 100,000). The kernel is built when the package is installed; where it
could not be (no C compiler), the torch loop trains every group, and that loop stays the
reference the tests hold this path to.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from swarmcli import optim
from swarmcli.engine import runtime
from swarmcli.engine.layout import Layout, initial_flat
from swarmcli.engine.parts import CellGroup

KERNEL_OPTIMIZERS = {"sgd": 0, "adam": 1, "adamw": 2}
KERNEL_LOSSES = {"mse": 0, "mae": 1, "huber": 2, "bce": 3}
ACTIVATION_CODES = {"relu": 0, "tanh": 1, "tanhshrink": 2, "sigmoid": 3, "leaky_relu": 4,
                    "identity": 5, "elu": 6, "gelu": 7, "silu": 8, "softplus": 9, "sin": 10}
SECONDS_PER_CALL = 0.25  # bees per kernel call: about this long, so progress and Ctrl-C keep up
_I64, _PTR = ctypes.c_int64, ctypes.c_void_p


class KernelSpec(ctypes.Structure):
    """_kernel.c's KernelSpec, field for field."""

    _fields_ = ([(k, _I64) for k in ("n", "n_ex", "size", "layers", "epochs", "frames", "n_rows",
                                     "n_real", "n_rec", "loss_kind", "opt", "use_mom",
                                     "nesterov", "use_wd", "same_eval")]
                + [(k, _PTR) for k in ("fi", "fo", "off", "widths", "acts", "row", "frame_of",
                                       "bees", "blocks", "x", "y", "tw", "ex", "c", "hyp", "coef",
                                       "flat", "rec_loss", "rec_val", "rec_ypred", "rec_flat")])


@functools.cache
def kernel():
    """The compiled kernel (a ctypes library), or None where it was not built."""
    spec = importlib.util.find_spec("swarmcli.engine._kernel")
    if spec is None or not spec.origin:
        return None
    lib = ctypes.CDLL(spec.origin)
    if lib.spec_size() != ctypes.sizeof(KernelSpec):
        return None  # a stale build of another layout: never call it
    for name in ("train_bees_f32", "train_bees_f64", "train_lanes_f32", "train_lanes_f64"):
        getattr(lib, name).argtypes = [ctypes.POINTER(KernelSpec), _I64, _I64]
    lib.tanh_array.argtypes = lib.exp_array.argtypes = [_PTR, _PTR, _I64]
    return lib


def unsupported(group: CellGroup) -> str | None:
    """Why the kernel cannot train this group (None: it can)."""
    net, opt = group.network, group.optimizer
    reasons = [
        (not net.plain, "dropout or batch norm"),
        (bool(group.data.batch_size), "mini-batches"),
        (group.stopping.patience is not None, "early stopping"),
        (opt.name not in KERNEL_OPTIMIZERS, f"optimizer {opt.name}"),
        (group.loss.kind not in KERNEL_LOSSES, f"loss {group.loss.kind}"),
        (group.runtime.device == "cuda", "device cuda"),
        (group.runtime.device == "auto" and runtime.resolve_device("auto") != "cpu",
         "a GPU is available"),
    ]
    for bad, why in reasons:
        if bad:
            return why
    if group.network.depth < 1:
        return "no hidden layer"
    return None if kernel() is not None else "the native kernel was not built"


# Points are padded with zero inputs to a whole number of vectors (8 lanes): the kernel's loops
# over points then never run their scalar remainder, which for 101 points was 5 of every 17
# iterations. Padded points get no gradient (dloss/dpred is 0 there) and are never recorded.
PAD = 8


def _rows(x, dtype) -> np.ndarray:
    """Points as [in_dim, points] rows, zero-padded to a multiple of PAD."""
    x = np.asarray(x, dtype=np.float64)
    x = (x.reshape(-1, 1) if x.ndim == 1 else x).T
    out = np.zeros((x.shape[0], -(-x.shape[1] // PAD) * PAD), dtype=dtype)
    out[:, :x.shape[1]] = x
    return out


def _hyper_rows(group: CellGroup):
    """The distinct per-cell hyper-parameter combinations (float64 rows) and each bee's row."""
    hyper = group.optimizer.hyper
    names = list(hyper)
    cols = np.array([[float(v) for v in np.broadcast_to(hyper[k], (group.cells,))] for k in names])
    rows, inverse = np.unique(cols.T, axis=0, return_inverse=True)
    per_bee = np.repeat(inverse.reshape(-1), group.bees)
    return names, rows, per_bee


def _lr_table(group: CellGroup, base_lr: np.ndarray) -> np.ndarray:
    """[epochs, rows] float64: each row's lr at each step, as `ChunkTrainer.step_to` sets it."""
    schedule = group.optimizer.schedule
    if schedule.name == "constant":
        return np.broadcast_to(base_lr, (group.epochs, len(base_lr)))
    from swarmcli import schedules
    base = torch.as_tensor(base_lr, dtype=torch.float64)
    return np.stack([schedules.scheduled_lr(schedule.name, schedule.params, base, e).numpy()
                     for e in range(group.epochs)])


def coefficients(group: CellGroup, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(coef [epochs, rows, 3], each bee's row, hyper [rows, 6], flags [3]) in the run's
    dtype: each step's factors as `optim`'s coefficients() returns them, in the same Python
    float arithmetic (`beta ** t` as Python's pow), then cast as torch casts a Python float."""
    names, rows, per_bee = _hyper_rows(group)
    h = {k: rows[:, i] for i, k in enumerate(names)}
    lr = _lr_table(group, h["lr"])
    epochs, n_rows = group.epochs, len(rows)
    coef = np.zeros((epochs, n_rows, 3), dtype=np.float64)
    hyp = np.zeros((n_rows, 6), dtype=np.float64)  # _kernel.c's H_* order
    wd = h["weight_decay"]
    if group.optimizer.name == "sgd":
        mom = h["momentum"]
        damp = np.where(mom != 0, h["dampening"], 0.0)
        hyp[:, 0], hyp[:, 1] = mom, wd
        coef[:, :, 0] = -lr
        coef[:, :, 1], coef[:, :, 2] = mom.astype(dtype), (1 - damp).astype(dtype)
        if epochs:
            coef[0, :, 1], coef[0, :, 2] = 0.0, 1.0
        flags = [bool((mom != 0).any()), bool(group.optimizer.flags.get("nesterov", False))]
    else:
        b1, b2 = h["beta1"], h["beta2"]
        hyp[:, 1], hyp[:, 2], hyp[:, 3], hyp[:, 4], hyp[:, 5] = wd, 1 - b1, b2, 1 - b2, h["eps"]
        for r in range(n_rows):
            beta1, beta2 = float(b1[r]), float(b2[r])
            steps = [float(t) for t in range(1, epochs + 1)]
            bc1 = np.array([optim.bias_correction(t, beta1) for t in steps])
            coef[:, r, 0] = -(lr[:, r] / bc1).astype(dtype)
            coef[:, r, 1] = [optim.bias_correction(t, beta2) ** 0.5 for t in steps]
            coef[:, r, 2] = 1 - lr[:, r] * wd[r]
        flags = [False, False]
    flags.append(bool((wd != 0).any()))
    return (coef.astype(dtype), per_bee.astype(np.int64), hyp.astype(dtype),
            np.array(flags, dtype=np.bool_))


def constants(group: CellGroup, n_train: int, n_val: int, dtype) -> np.ndarray:
    """The kernel's scalar constants (the C_* enum of _kernel.c, in its order) in the run's
    dtype."""
    s = 1.0 / n_train
    return np.array([1.0, 0.5, 0.0, group.network.leaky_slope, group.loss.huber_delta, 20.0,
                     0.7071067811865476, 0.3989422804014327, group.loss.l1, group.loss.l2,
                     s, 2 * s, n_train, max(n_val, 1)], dtype=dtype)


# A block of the lane kernel holds 64 bytes' worth of bees (16 in float32, 8 in float64), all of
# one width, activation and hyper-parameter row. A part-filled block costs a full one; below this
# fill its bees go one by one through the per-bee kernel instead. Measured (one lane is 1.5-2.3x
# faster than one bee there for relu, tanh and tanhshrink): the default hive's 10 bees a cell
# (10 of 16 lanes) trained in 53 ms in blocks and 44 ms one by one.
MIN_LANE_FILL = 0.75
MAX_LANE_INPUTS = 4  # kernel_lanes.h keeps each unit's input-weight sums in 4 registers
# The activations with no libm call (sigmoid and silu through _kernel.c's exp_v), the lane
# kernel's LANE_DISPATCH: for the others each lane calls libm anyway, and one bee at a time
# measured faster (elu, width 20: 32 vs 45 us per bee-epoch).
LANE_ACTIVATIONS = ("relu", "tanh", "tanhshrink", "sigmoid", "silu")


def lane_plan(group: CellGroup, dtype) -> tuple[np.ndarray, np.ndarray]:
    """(blocks [count, lanes] of bee indices, -1 for an empty lane; the bees left to the per-bee
    kernel). Bees of one width, activation and hyper-parameter row share blocks, in bee order;
    the plan depends on nothing but the group, so any number of threads trains the same
    blocks."""
    net = group.network
    if net.depth != 1 or net.in_dim > MAX_LANE_INPUTS:
        return np.zeros((0, 1), dtype=np.int64), np.arange(group.total_bees, dtype=np.int64)
    lanes = 64 // np.dtype(dtype).itemsize
    rows = _hyper_rows(group)[2][::group.bees]
    cells_of: dict[tuple, list[int]] = {}  # cell shape -> its cells, in order
    for c, key in enumerate(zip(net.widths, net.activations, rows)):
        cells_of.setdefault(key, []).append(c)
    blocks, singles = [], []
    for key, cells in cells_of.items():
        bees = np.concatenate([np.arange(c * group.bees, (c + 1) * group.bees) for c in cells])
        if key[1] not in LANE_ACTIVATIONS:
            singles += list(bees)
            continue
        full = len(bees) // lanes * lanes if MIN_LANE_FILL <= 1 else 0
        blocks += list(bees[:full].reshape(-1, lanes))
        rest = bees[full:]
        if len(rest) and MIN_LANE_FILL <= len(rest) / lanes <= 1:
            blocks.append(np.concatenate([rest, np.full(lanes - len(rest), -1)]))
        else:
            singles += list(rest)
    table = np.array(blocks, dtype=np.int64).reshape(-1, lanes)
    return table, np.array(sorted(singles), dtype=np.int64)


def _ptr(a: np.ndarray | None):
    return None if a is None else a.ctypes.data


def train(group: CellGroup, res, on_epochs=None) -> None:
    """Train every bee of the group in the kernel, writing into `res` (a `loop.GroupResult` of
    empty arrays) as the torch loop would."""
    lib = kernel()
    net, data = group.network, group.data
    dtype = np.dtype(group.runtime.dtype)
    layout = Layout.of(group)
    flat = np.ascontiguousarray(initial_flat(group).numpy().astype(dtype))
    shapes = layout.shapes
    ints = {"fi": [a for a, _ in shapes], "fo": [b for _, b in shapes],
            "off": [o for o, _ in layout.entries[0::2]],
            "widths": np.repeat(net.widths, group.bees),
            "acts": np.repeat([ACTIVATION_CODES[a] for a in net.activations], group.bees)}
    ints = {k: np.ascontiguousarray(v, dtype=np.int64) for k, v in ints.items()}
    x = _rows(data.x, dtype)
    same_eval = data.eval_x is None
    ex = x if same_eval else _rows(data.eval_x, dtype)
    n_real = len(data.y)
    y = np.zeros(x.shape[1], dtype=dtype)
    y[:n_real] = np.asarray(data.y).reshape(-1)
    val = data.val_mask
    tw = np.zeros(x.shape[1], dtype=dtype)
    tw[:n_real] = 1.0 if val is None else ~val
    n_train = n_real if val is None else int((~val).sum())
    c = constants(group, n_train, n_real - n_train, dtype)
    coef, row, hyp, flags = coefficients(group, dtype)
    frame_of = np.full(group.epochs + 1, -1, dtype=np.int64)
    frame_of[list(group.recording.frames)] = np.arange(len(group.recording.frames))
    rec = group.recording.what
    n, frames = group.total_bees, len(group.recording.frames)
    rec_flat = (np.empty((n, frames, layout.size), dtype=dtype)
                if "weights" in rec or "biases" in rec else None)
    for a in (res.loss, res.val_loss, res.ypred):
        assert a is None or (a.flags.c_contiguous and a.dtype == dtype)
    spec = KernelSpec(
        n=x.shape[1], n_ex=ex.shape[1], n_real=n_real, n_rec=data.n_eval, size=layout.size,
        layers=len(shapes), epochs=group.epochs, frames=frames, n_rows=coef.shape[1],
        loss_kind=KERNEL_LOSSES[group.loss.kind],
        opt=KERNEL_OPTIMIZERS[group.optimizer.name], use_mom=int(flags[0]), nesterov=int(flags[1]),
        use_wd=int(flags[2]), same_eval=int(same_eval), row=_ptr(row), frame_of=_ptr(frame_of),
        x=_ptr(x), y=_ptr(y), tw=_ptr(tw), ex=_ptr(ex), c=_ptr(c), hyp=_ptr(hyp),
        coef=_ptr(coef), flat=_ptr(flat), rec_loss=_ptr(res.loss), rec_val=_ptr(res.val_loss),
        rec_ypred=_ptr(res.ypred), rec_flat=_ptr(rec_flat),
        **{k: _ptr(v) for k, v in ints.items()})
    blocks, singles = lane_plan(group, dtype)
    spec.blocks, spec.bees = _ptr(blocks), _ptr(singles)
    suffix = "f32" if dtype == np.float32 else "f64"
    lanes, one = getattr(lib, f"train_lanes_{suffix}"), getattr(lib, f"train_bees_{suffix}")

    def run(fn, lo: int, hi: int, bees: int) -> int:  # ctypes lets go of the GIL for the call
        status = fn(ctypes.byref(spec), lo, hi)
        if status == -2:
            raise RuntimeError("lane kernel given an activation it does not cover (lane_plan)")
        if status != 0:
            raise MemoryError("the native kernel could not allocate its scratch memory")
        return bees * (group.epochs + 1)

    per_call = max(1, int(SECONDS_PER_CALL / _bee_seconds(group)))
    calls = [(one, lo, min(len(singles), lo + per_call), min(per_call, len(singles) - lo))
             for lo in range(0, len(singles), per_call)]
    step = max(1, 3 * per_call // blocks.shape[1])  # a lane costs about a third of a bee
    calls += [(lanes, lo, min(len(blocks), lo + step),
               int((blocks[lo:lo + step] >= 0).sum())) for lo in range(0, len(blocks), step)]
    workers = min(torch.get_num_threads(), len(calls))  # plan.threads: 1 for small runs
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    try:
        done = pool.map(run, *zip(*calls)) if pool else (run(*call) for call in calls)
        for bee_epochs in done:
            if on_epochs is not None:
                on_epochs(bee_epochs)
    finally:  # on Ctrl-C, the calls under way finish (a fraction of a second); no more start
        if pool:
            pool.shutdown(wait=True, cancel_futures=True)
    for i, ((ow, (a, b)), (ob, _)) in enumerate(zip(layout.entries[0::2], layout.entries[1::2])):
        if "weights" in rec:
            res.weights[i][...] = rec_flat[:, :, ow:ow + a * b].reshape(n, frames, a, b)
        if "biases" in rec:
            res.biases[i][...] = rec_flat[:, :, ob:ob + b]
    bad = ~np.isfinite(res.loss)
    res.diverged_epoch[:] = np.where(bad.any(axis=1), bad.argmax(axis=1), -1)


def _bee_seconds(group: CellGroup) -> float:
    """A rough cost of one bee's training here (about 1 ns per unit-point multiply-add)."""
    net = group.network
    per_epoch = len(group.data.x) * net.width * (net.in_dim + (net.depth - 1) * net.width + 1)
    return max(1e-9, 1e-9 * per_epoch * (group.epochs + 1))
