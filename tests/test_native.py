"""The C kernel (engine/native.py, engine/_kernel.c): its tanh, every feature it covers against the
torch loop, how a run chooses it, and what it refuses. Its equivalence with the plain per-bee
torch reference, activation by optimizer, is in test_engine_equivalence.py."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest
import torch
from groups import make_group

from swarmcli import config, grid, plan
from swarmcli.engine import loop, native, parts
from swarmcli.errors import SwarmError

X = np.linspace(-3, 3, 41)
Y = np.sin(X)


def test_kernel_is_built():
    assert native.kernel() is not None, "the C kernel was not built (setup.py, a C compiler)"


def test_tanh_within_two_ulp_of_libm():
    x = np.concatenate([np.linspace(-30, 30, 200_001), np.geomspace(1e-300, 1, 2001),
                        -np.geomspace(1e-12, 0.7, 2001), [0.0, -0.0, 0.625, -0.625, 19.99, 20.0,
                                                          20.01, np.inf, -np.inf]])
    out = np.empty_like(x)
    native.kernel().tanh_array(x.ctypes.data, out.ctypes.data, len(x))
    ref = np.tanh(x)
    ulp = np.abs(out - ref) / np.spacing(np.abs(ref))
    assert ulp.max() <= 2, f"{ulp.max()} ulp at x={x[ulp.argmax()]!r}"
    assert np.signbit(out[x == 0]).tolist() == np.signbit(x[x == 0]).tolist()
    nan = np.array([np.nan])
    native.kernel().tanh_array(nan.ctypes.data, out.ctypes.data, 1)
    assert np.isnan(out[0])


def test_exp_within_two_ulp_of_libm():
    x = np.concatenate([np.linspace(-708, 709.78, 400_001), np.linspace(-30, 30, 100_001),
                        np.geomspace(1e-300, 1, 2001), -np.geomspace(1e-300, 1, 2001),
                        [0.0, -0.0, 0.3465, -0.3465, 709.0, 709.78]])
    out = np.empty_like(x)
    native.kernel().exp_array(x.ctypes.data, out.ctypes.data, len(x))
    ref = np.exp(x)
    ulp = np.abs(out - ref) / np.spacing(ref)
    assert ulp.max() <= 2, f"{ulp.max()} ulp at x={x[ulp.argmax()]!r}"
    edges = np.array([-np.inf, -1000.0, 710.0, np.inf, np.nan])
    out = np.empty_like(edges)
    native.kernel().exp_array(edges.ctypes.data, out.ctypes.data, len(edges))
    assert out[:4].tolist() == [0.0, 0.0, np.inf, np.inf] and np.isnan(out[4])


def both_paths(group: parts.CellGroup):
    """The torch loop's result and the kernel's, for one group."""
    torch_path = loop.train(replace(group, runtime=replace(group.runtime, native=False)))
    kernel_group = replace(group, runtime=replace(group.runtime, native=True))
    assert native.unsupported(kernel_group) is None
    return torch_path, loop.train(kernel_group)


def assert_same(a, b, tol=1e-10):
    for name in ("loss", "val_loss", "ypred", "diverged_epoch", "stopped_epoch"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_allclose(y, x, rtol=tol, atol=tol, err_msg=name)
    assert len(a.weights) == len(b.weights) and len(a.biases) == len(b.biases)
    for x, y in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_allclose(y, x, rtol=tol, atol=tol, err_msg="weights/biases")


# Features the kernel covers beyond activation x optimizer, pairwise: every pair of levels of
# any two factors meets in some row (checked below).
FACTORS = {
    "loss": ["mse", "mae", "huber", "bce"],
    "schedule": ["constant", "step", "cyclic", "cosine"],
    "data": ["plain", "validation", "eval_grid", "2d"],
    "extras": ["none", "penalties", "record_all", "lr_grid"],
}


def covering_rows():
    levels = list(FACTORS.values())
    # an orthogonal array OA(16, 4, 4, 2): rows (a, b, a+b, a+2b) over GF(4)
    mul = [[0, 0, 0, 0], [0, 1, 2, 3], [0, 2, 3, 1], [0, 3, 1, 2]]
    return [(levels[0][a], levels[1][b], levels[2][a ^ b], levels[3][a ^ mul[2][b]])
            for a, b in itertools.product(range(4), range(4))]


ROWS = covering_rows()


def test_rows_cover_every_pair():
    levels = list(FACTORS.values())
    for i, j in itertools.combinations(range(4), 2):
        seen = {(r[i], r[j]) for r in ROWS}
        assert seen == set(itertools.product(levels[i], levels[j])), (i, j)


def feature_group(loss, schedule, data, extras, dtype="float64"):
    widths, acts = [2, 5, 5], ["relu", "tanh", "sigmoid"]
    x, y, in_dim, data_kw = X, Y, 1, {}
    if loss == "bce":
        y = (Y > 0).astype(float)
    if data == "validation":
        data_kw["val_mask"] = np.arange(len(X)) % 4 == 0
    elif data == "eval_grid":
        data_kw["eval_x"] = np.linspace(-4, 4, 23)
    elif data == "2d":
        x, in_dim = np.stack([X, np.cos(3 * X)], axis=1), 2
    sched = {"constant": parts.Schedule(),
             "step": parts.Schedule("step", {"step_size": 5, "gamma": 0.5}),
             "cyclic": parts.Schedule("cyclic", {"max_lr": 0.05, "step_size_up": 4}),
             "cosine": parts.Schedule("cosine", {"t_max": 30, "eta_min": 0.001})}[schedule]
    lrs = [0.01, 0.02, 0.005] if extras == "lr_grid" else [0.01] * 3
    kw = {"loss": parts.Loss(loss, 0.3, *((0.001, 0.002) if extras == "penalties" else (0, 0)))}
    record = ("ypred", "weights", "biases") if extras == "record_all" else ("ypred",)
    return make_group(depth=2 if data == "plain" else 1, widths=widths, activation=acts,
                      optimizer="sgd", hyper={"lr": lrs, "momentum": [0.9] * 3,
                                              "dampening": [0.0] * 3, "weight_decay": [0.0] * 3},
                      x=x, y=y, epochs=30, seed=4, bees=2, frames=range(0, 31, 3), dtype=dtype,
                      record=record, network={"in_dim": in_dim}, data=data_kw, schedule=sched,
                      **kw)


@pytest.fixture(params=["lanes", "per_bee"])
def kernel_path(request, monkeypatch):
    """Every bee of a one-hidden-layer group through the lane kernel, or every bee one by one."""
    monkeypatch.setattr(native, "MIN_LANE_FILL", 0.0 if request.param == "lanes" else 2.0)
    return request.param


@pytest.mark.parametrize(("loss", "schedule", "data", "extras"), ROWS)
def test_kernel_matches_torch_loop(loss, schedule, data, extras, kernel_path):
    """Losses, schedules, validation points, an evaluation grid, 2-D inputs, penalties, recorded
    weights and biases, per-cell lr: the kernel equals the torch loop (itself held to the
    per-bee reference) to 1e-10 in float64."""
    group = feature_group(loss, schedule, data, extras)
    lanes, _ = native.lane_plan(group, np.float64)
    assert len(lanes) == (3 if kernel_path == "lanes" and data != "plain" else 0)
    assert_same(*both_paths(group))


def test_lane_plan_covers_each_bee_once_in_blocks_of_one_shape():
    group = make_group(depth=1, widths=[4, 4, 7, 4], activation=["relu", "relu", "relu", "tanh"],
                       optimizer="sgd", hyper={"lr": [0.01] * 4}, x=X, y=Y, epochs=1, seed=0,
                       bees=13, dtype="float32")
    blocks, singles = native.lane_plan(group, np.float32)
    # 26 bees of (4, relu): a full block of 16, and 10 (under 3/4 of 16) left one by one;
    # 13 of (7, relu) and 13 of (4, tanh): a block each, 3 lanes empty
    assert blocks.shape == (3, 16)
    assert list(singles) == list(range(16, 26))
    assert sorted([*blocks[blocks >= 0], *singles]) == list(range(52))
    shape = np.repeat([0, 0, 1, 2], 13)
    for block in blocks:
        real = block[block >= 0]
        assert len(set(shape[real])) == 1 and (block[len(real):] == -1).all()
    elu = replace(group, network=replace(group.network, activations=("elu",) * 4))
    blocks, singles = native.lane_plan(elu, np.float32)  # libm per lane: one bee at a time
    assert blocks.size == 0 and list(singles) == list(range(52))


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_kernel_matches_torch_loop_in_float32(optimizer, kernel_path):
    hyper = {"sgd": {"lr": [0.01] * 2, "momentum": [0.9, 0.0], "dampening": [0.0] * 2,
                     "weight_decay": [0.0, 0.01]},
             "adam": {"lr": [0.01] * 2, "beta1": [0.9, 0.7], "beta2": [0.999] * 2,
                      "eps": [1e-8] * 2, "weight_decay": [0.0, 0.01]}}
    hyper["adamw"] = hyper["adam"]
    group = make_group(depth=1, widths=[3, 10], activation=["tanhshrink", "relu"],
                       optimizer=optimizer, hyper=hyper[optimizer], x=X, y=Y, epochs=20, seed=2,
                       bees=3, frames=range(21), dtype="float32")
    assert_same(*both_paths(group), tol=1e-5)


def test_diverged_bee_freezes_as_in_torch(kernel_path):
    """A bee whose loss overflows is frozen from that epoch: same loss record, same
    diverged_epoch, same last predictions."""
    group = make_group(depth=1, widths=[8, 8], activation="relu", optimizer="sgd",
                       hyper={"lr": [0.01, 30.0], "momentum": [0.9] * 2, "dampening": [0.0] * 2,
                              "weight_decay": [0.0] * 2},
                       x=X, y=Y, epochs=40, seed=1, bees=2, frames=range(41),
                       dtype="float64", record=("ypred", "weights"))
    a, b = both_paths(group)
    assert (a.diverged_epoch[2:] > 0).all() and (a.diverged_epoch[:2] == -1).all()
    np.testing.assert_array_equal(b.diverged_epoch, a.diverged_epoch)
    assert_same(a, b)


@pytest.mark.parametrize("data", ["plain", "validation"])  # per-bee kernel, lane kernel
def test_threads_split_bees_without_changing_results(data):
    group = feature_group("mse", "constant", data, "none")
    group = replace(group, bees=40, runtime=replace(group.runtime, native=True))
    one = loop.train(group)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        native.SECONDS_PER_CALL, old = 1e-4, native.SECONDS_PER_CALL  # many small calls
        two = loop.train(group)
    finally:
        torch.set_num_threads(before)
        native.SECONDS_PER_CALL = old
    for name in ("loss", "ypred"):
        np.testing.assert_array_equal(getattr(two, name), getattr(one, name))


def cells_group(*overrides):
    cfg = config.compose(["train.epochs=3", "train.bees=2", *overrides])
    _, cells = grid.expand(cfg)
    return plan.cell_group(grid.groups(cells)[0])


def test_runs_take_the_kernel_where_it_covers_them():
    assert cells_group().runtime.native
    assert cells_group("+sweep=width_activation").runtime.native
    assert not cells_group("train.native=off").runtime.native
    assert not cells_group("model.dropout=0.2").runtime.native
    assert not cells_group("optim=rmsprop").runtime.native
    assert not cells_group("train.batch_size=8").runtime.native
    on = cells_group("train.native=on")
    assert on.runtime.native and not on.runtime.compile


def test_native_on_refuses_what_it_cannot_train():
    with pytest.raises(SwarmError, match=r"train.native=on cannot train this run: optimizer "
                                         r"rmsprop \(choices: auto, off\)"):
        cells_group("train.native=on", "optim=rmsprop")


def test_without_the_kernel_runs_train_in_torch(monkeypatch):
    monkeypatch.setattr(native, "kernel", lambda: None)
    group = cells_group()
    assert not group.runtime.native
    assert native.unsupported(group) == "the native kernel was not built"
    with pytest.raises(SwarmError, match="native kernel was not built"):
        cells_group("train.native=on")


@pytest.mark.parametrize("activation", native.LANE_ACTIVATIONS)
def test_every_lane_activation_trains_in_lanes_as_in_torch(activation, monkeypatch):
    """native.LANE_ACTIVATIONS and the kernel's LANE_DISPATCH name the same activations: each
    trains in a lane block (a missing case would fail the call) and matches the torch loop."""
    monkeypatch.setattr(native, "MIN_LANE_FILL", 0.0)
    group = make_group(depth=1, widths=[3, 3], activation=[activation] * 2, optimizer="sgd",
                       hyper={"lr": [0.01] * 2, "momentum": [0.9] * 2, "dampening": [0.0] * 2,
                              "weight_decay": [0.0] * 2},
                       x=X, y=Y, epochs=10, seed=3, bees=8, frames=range(11), dtype="float64")
    blocks, singles = native.lane_plan(group, np.float64)
    assert len(singles) == 0 and (blocks >= 0).sum() == 16
    assert_same(*both_paths(group))
