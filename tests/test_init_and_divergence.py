"""Initial weights are paired across cells and stable as prefixes; divergence is contained."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from groups import make_group

from swarmcli import load, nn
from swarmcli.engine import loop


def test_init_matches_torch_linear_distribution():
    """Default init is nn.Linear's: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases."""
    (w0, b0), (w1, b1) = nn.init_params(seed=0, depth=1, width=20, bees=2000)
    bound = 1 / np.sqrt(20)
    assert w1.abs().max() <= bound and w1.abs().max() > 0.99 * bound
    assert abs(w1.mean().item()) < 0.01 and abs(w1.var().item() - bound**2 / 3) < 0.002
    assert w0.abs().max() <= 1.0 and w0.abs().max() > 0.99


def test_first_bees_of_a_large_swarm_equal_a_small_swarm():
    small = nn.init_params(seed=7, depth=3, width=20, bees=10)
    large = nn.init_params(seed=7, depth=3, width=20, bees=500)
    for (ws, bs), (wl, bl) in zip(small, large):
        assert torch.equal(ws, wl[:10]) and torch.equal(bs, bl[:10])


def test_seed_changes_weights():
    a = nn.init_params(seed=1, depth=1, width=5, bees=3)
    b = nn.init_params(seed=2, depth=1, width=5, bees=3)
    assert not torch.equal(a[0][0], b[0][0])


def test_cells_of_same_shape_start_paired(tiny_run):
    """Cells that differ only in lr start from identical weights, bee for bee."""
    run = load(tiny_run("+sweep.grid.optim.lr=[0.01,0.1]", "train.record=[weights,biases]",
                        "model.width=4"))
    a, b = run.cells
    np.testing.assert_array_equal(a.weights(0)[:, 0], b.weights(0)[:, 0])
    np.testing.assert_array_equal(a.biases(1)[:, 0], b.biases(1)[:, 0])
    assert not np.array_equal(a.weights(0)[:, -1], b.weights(0)[:, -1])


@pytest.mark.parametrize("activation", ["relu", "sigmoid"])
def test_width_padding_keeps_each_cell_its_own_init(tiny_run, activation):
    """A width-3 cell padded into a batch with width 10 starts exactly like a width-3 run on its
    own, and trains like it up to float32 rounding (padded zeros change the summation order).
    sigmoid(0) = 0.5: there the padded units must be masked out, or they would move."""
    act = f"model.activation={activation}"
    both = load(tiny_run("+sweep.grid.model.width=[3,10]", "train.record=[weights]", act,
                         name="a"))
    alone = load(tiny_run("model.width=3", "train.record=[weights]", act, name="b"))
    for layer in range(2):
        padded, single = both.cell(width=3).weights(layer), alone.cells[0].weights(layer)
        assert padded.shape == single.shape
        np.testing.assert_array_equal(padded[:, 0], single[:, 0])
        np.testing.assert_allclose(padded, single, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both.cell(width=3).loss, alone.cells[0].loss, rtol=1e-5)


def test_diverging_bee_is_frozen_and_flagged_while_others_train():
    """Cell 1 (lr 50) diverges; cell 0 in the same batch trains exactly as it would alone."""
    x = np.linspace(-5, 5, 61)
    hyper = {"lr": [0.01, 50.0], "momentum": [0.9, 0.9], "dampening": [0.0, 0.0],
             "weight_decay": [0.0, 0.0]}
    common = dict(depth=1, bees=3, activation="relu", optimizer="sgd", x=x, y=np.sin(x),
                  epochs=40, seed=0, frames=[0, 40], dtype="float32")
    mixed = loop.train(make_group(widths=[10, 10], hyper=hyper, **common))
    alone = loop.train(make_group(widths=[10], hyper={k: v[:1] for k, v in hyper.items()},
                                  **common))
    assert (mixed.diverged_epoch[3:] > 0).all()
    assert (mixed.diverged_epoch[:3] == -1).all()
    assert not np.isfinite(mixed.loss[3:, -1]).any()
    np.testing.assert_array_equal(mixed.loss[:3], alone.loss)
    bad = mixed.diverged_epoch[3]  # from the epoch it diverged, a frozen bee's loss stays bad
    assert not np.isfinite(mixed.loss[3, bad:]).any()


def test_run_reports_divergence(tiny_run):
    run_dir = tiny_run("optim.lr=100", "train.epochs=30")
    run = load(run_dir)
    with open(run_dir / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert run.cells[0].info["diverged"] == 3
    assert len(rows) == 3 and all(r["diverged"] == "True" for r in rows)
    assert all(r["cell_median"] == "inf" for r in rows)  # a diverged bee counts as +inf


@pytest.mark.parametrize("use_autograd, batch_size", [
    (False, None), (True, None), (False, 20)])
def test_a_diverged_bees_weights_stay_frozen_at_finite_values(use_autograd, batch_size):
    """From the epoch its loss goes non-finite, a bee's recorded weights and biases stay those
    of that epoch, instead of turning NaN with the next steps. Full-batch, they are huge but
    finite (one step blew the loss up); mini-batches can overflow within the epoch's steps."""
    x = np.linspace(-5, 5, 61)
    hyper = {"lr": [0.01, 50.0], "momentum": [0.9, 0.9], "dampening": [0.0, 0.0],
             "weight_decay": [0.0, 0.0]}
    res = loop.train(make_group(
        widths=[10, 10], hyper=hyper, depth=2, bees=3, activation="relu", optimizer="sgd", x=x,
        y=np.sin(x), epochs=20, seed=0, frames=list(range(21)), dtype="float32",
        record=("weights", "biases"), data={"batch_size": batch_size}),
        use_autograd=use_autograd)
    assert (res.diverged_epoch[:3] == -1).all() and (res.diverged_epoch[3:] > 0).all()
    assert (res.diverged_epoch[3:] < 20).all()  # frozen for a while: something to check
    for bee in range(3, 6):
        d = res.diverged_epoch[bee]
        for a in [*res.weights, *res.biases]:
            assert np.isfinite(a[bee, :d]).all(), (bee, d)
            assert batch_size or np.isfinite(a[bee]).all(), (bee, d)
            for e in range(d + 1, 21):  # frozen from epoch d on
                np.testing.assert_array_equal(a[bee, e], a[bee, d])
            assert not (a[bee, d] == a[bee, d - 1]).all()  # (the epoch-d step did move it)


def test_a_diverged_run_saves_frozen_finite_weights(tiny_run):
    run = load(tiny_run("optim.lr=100", "optim.momentum=0.9", "train.epochs=12",
                        "train.record=[weights,biases]"))
    cell = run.cells[0]
    d = np.asarray(cell.diverged_epoch)
    assert (d >= 0).all() and (d < 12).all()
    for layer in range(2):
        for a in (cell.weights(layer), cell.biases(layer)):
            for bee in range(3):
                assert np.isfinite(a[bee]).all()
                assert (a[bee, d[bee]:] == a[bee, d[bee]]).all()
