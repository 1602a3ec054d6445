"""Every shipped sweep composes, expands into the cells its seed describes, and trains end to end
at tiny size."""

from __future__ import annotations

from importlib.resources import files

import numpy as np
import pytest
from conftest import compose_config

from swarmcli import grid, load

SWEEPS = sorted(p.name[:-5] for p in (files("swarmcli.configs") / "sweep").iterdir()
                if p.name.endswith(".yaml"))
CELLS = {"width_activation": 9, "lr_momentum": 6, "weight_distribution": 1, "tiny_nets": 4,
         "optimizer_zoo": 9, "lr_schedules": 6, "init_schemes": 16, "regularization": 4,
         "depth_width": 4, "early_stopping": 3, "optimizer_paths": 8, "lr_paths": 10,
         "gd_mean": 2, "saddle_escape": 3,
         "moons_activation": 8}


def test_every_sweep_is_listed_here():
    assert sorted(CELLS) == SWEEPS


@pytest.mark.parametrize("sweep", SWEEPS)
def test_sweep_trains_end_to_end(sweep, tiny_run):
    run = load(tiny_run(f"+sweep={sweep}", "train.epochs=4", "train.bees=2"))
    assert run.state == "complete" and len(run.cells) == CELLS[sweep]
    for cell in run.cells:
        assert cell.loss.shape == (2, 5) and np.isfinite(cell.loss[:, 0]).all()


def test_seed_000_settings():
    cfg = compose_config(["+sweep=width_activation"])
    _, cells = grid.expand(cfg)
    c = cells[0].cfg
    assert (c.target.domain, c.target.points, c.optim.lr, c.optim.momentum, c.train.epochs,
            c.train.bees) == ([-5.0, 5.0], 61, 0.01, 0.9, 150, 10)
    assert [(x.cfg.model.width, x.cfg.model.activation) for x in cells[:4]] == [
        (1, "relu"), (1, "tanh"), (1, "tanhshrink"), (3, "relu")]
    (group,) = grid.groups(cells)  # widths pad, activations take slices of the bee axis
    assert [(x.cfg.model.activation, x.cfg.model.width) for x in group] == [
        (a, w) for a in ("relu", "tanh", "tanhshrink") for w in (1, 3, 10)]  # one run each


def test_seed_002_settings():
    _, cells = grid.expand(compose_config(["+sweep=weight_distribution"]))
    c = cells[0].cfg
    assert (c.train.bees, c.model.width, c.target.points, c.train.epochs) == (500, 20, 101, 400)
    assert c.target.domain == pytest.approx([-3 * np.pi, 3 * np.pi])
    assert set(c.train.record) == {"ypred", "weights", "biases"}


def test_seed_001_pairs_architecture_and_optimizer():
    axes, cells = grid.expand(compose_config(["+sweep=tiny_nets"]))
    assert [a.name for a in axes] == ["architecture", "optimizer"]
    got = {(c.cfg.model.depth, c.cfg.model.width, c.cfg.optim.name, c.cfg.optim.lr)
           for c in cells}
    assert got == {(1, 60, "sgd", 0.01), (1, 60, "adam", 0.001), (2, 10, "sgd", 0.01),
                   (2, 10, "adam", 0.001)}
    assert all(c.cfg.train.epochs == 5000 and c.cfg.target.noise_sd > 0 for c in cells)


def test_a_sweeps_labels_name_its_axis_values():
    """depth_width's paired axis is labelled 1x60, 2x10, ... (its `labels:`), not by values."""
    (axis,) = grid.axes(compose_config(["+sweep=depth_width"]))
    assert axis.name == "architecture" and axis.labels == ("1x60", "2x10", "3x7", "4x6")
    assert [axis.label(i) for i in range(4)] == ["1x60", "2x10", "3x7", "4x6"]
    assert axis.values == ((1, 60), (2, 10), (3, 7), (4, 6))


def test_a_paired_axis_without_labels_names_only_the_keys_that_vary():
    (axis,) = grid.axes(compose_config(["+sweep.paired.p.model.depth=[1,2]",
                                        "+sweep.paired.p.model.width=[60,10]",
                                        "+sweep.paired.p.optim.lr=[0.01,0.01]"]))
    assert axis.labels is None
    assert [axis.label(0), axis.label(1)] == ["depth=1, width=60", "depth=2, width=10"]
